import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphkit.data.datasets.synthetic import contextual_sbm
from graphkit.extras._core.registry import create_model
from graphkit.extras.graph import pamc
from graphkit.extras.graph.pamc import (
    PamC,
    dense_infonce_loss,
    fit_pamc,
    influence_weights,
    init_centres,
    meta_node_loss,
    meta_node_similarity,
    pretrain_autoencoder,
    student_t_assignment,
    target_distribution,
)
from graphkit.metrics.clustering import clustering_accuracy

PATH = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # 0 - 1 - 2


def _ring(n: int) -> torch.Tensor:
    i = torch.arange(n)
    return torch.stack([torch.cat([i, (i + 1) % n]), torch.cat([(i + 1) % n, i])])


def test_influence_weights_are_the_summed_powers_of_the_row_normalised_adjacency():
    p = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=float)
    p /= p.sum(1, keepdims=True)  # D^-1 (A + I)
    for order, cumulative, expected in [(1, True, p), (2, True, p + p @ p), (3, False, p @ p @ p)]:
        ei, w = influence_weights(PATH, 3, order, cumulative)
        dense = torch.zeros(3, 3, dtype=torch.float64)
        dense[ei[0], ei[1]] = w.double()
        np.testing.assert_allclose(dense.numpy(), expected, rtol=1e-6)
    # one direction given is made undirected, as SCGC symmetrises
    ei, w = influence_weights(PATH[:, ::2], 3)
    assert ei.size(1) == 7 and torch.allclose(w.sum(), torch.tensor(3.0))


def test_meta_node_similarity_is_the_cluster_weighted_block_sum_exactly():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(12, 4, generator=g, dtype=torch.float64)
    q = torch.rand(12, 3, generator=g, dtype=torch.float64)
    meta = q.t() @ z
    # C C^T = Q^T (Z Z^T) Q: the k x k meta-node products stand for all n^2 node pairs
    torch.testing.assert_close(meta @ meta.t(), q.t() @ (z @ z.t()) @ q, rtol=1e-12, atol=1e-12)
    block = q.t() @ (z @ z.t()) @ q
    norms = block.diagonal().sqrt()
    cos = block / norms[:, None] / norms[None, :]
    torch.testing.assert_close(meta_node_similarity(z, q, mask_diagonal=False), cos)
    masked = meta_node_similarity(z, q)
    assert torch.equal(masked.diagonal(), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(masked + torch.eye(3, dtype=torch.float64), cos)


def _official_reference(z, assign, w_dense, tau):
    # the official NcontrastCCSP written densely: diagonal similarities set to 0
    zh = F.normalize(z, dim=1)
    s = (zh @ zh.t()).fill_diagonal_(0.0)
    pos = (w_dense * torch.exp(tau * s)).sum(1)
    c = F.normalize(assign.t() @ z, dim=1)
    cc = (c @ c.t()).fill_diagonal_(0.0)
    return -torch.log(pos + 1e-10).mean() + torch.log(torch.exp(tau * cc).sum(1)).mean()


def test_meta_node_loss_equals_the_dense_expression_on_a_tiny_graph():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 3, generator=g, dtype=torch.float64)
    q = torch.softmax(torch.randn(6, 2, generator=g, dtype=torch.float64), 1)
    ei, w = influence_weights(_ring(6), 6, order=2)
    w_dense = torch.zeros(6, 6, dtype=torch.float64)
    w_dense[ei[0], ei[1]] = w.double()
    for tau in (0.5, 2.0):
        got = meta_node_loss(z, q, ei, w.double(), tau=tau)
        torch.testing.assert_close(got, _official_reference(z, q, w_dense, tau))


def test_tight_balanced_clusters_make_the_approximation_exact_up_to_log_n_over_k():
    # nodes of cluster c all point along u_c (any length): then sum_j exp(tau s_ij) equals
    # (n/k) sum_b exp(tau cos(C_a, C_b)), and the two losses differ by the constant log(n/k)
    g = torch.Generator().manual_seed(2)
    k, per = 3, 4
    u = F.normalize(torch.randn(k, 5, generator=g, dtype=torch.float64), dim=1)
    labels = torch.arange(k).repeat_interleave(per)
    z = u[labels] * (0.5 + torch.rand(k * per, 1, generator=g, dtype=torch.float64))
    onehot = F.one_hot(labels, k).double()
    ei = _ring(k * per)
    for tau in (0.25, 1.0, 3.0):
        dense = dense_infonce_loss(z, ei, tau=tau, mask_diagonal=False, eps=0.0)
        meta = meta_node_loss(z, onehot, ei, tau=tau, mask_diagonal=False, eps=0.0)
        assert float(dense - meta) == pytest.approx(math.log(per), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_meta_node_negatives_stay_within_two_tau_of_the_dense_ones(seed):
    # cosines lie in [-1, 1], so log sum_j exp(tau s_ij) is within tau of log n and the
    # meta-node term within tau of log k: after the constant, |difference| <= 2 tau
    g = torch.Generator().manual_seed(seed)
    n, k, tau = 40, 4, 0.7
    z = torch.randn(n, 8, generator=g, dtype=torch.float64)
    onehot = F.one_hot(torch.randint(k, (n,), generator=g), k).double()
    loop = torch.arange(n).repeat(2, 1)  # self-pairs only: the positive term is log 1 = 0
    dense = dense_infonce_loss(z, loop, tau=tau, mask_diagonal=False, eps=0.0)
    meta = meta_node_loss(z, onehot, loop, tau=tau, mask_diagonal=False, eps=0.0)
    gap = float((dense - math.log(n)) - (meta - math.log(k)))
    assert abs(gap) <= 2 * tau


def test_gradient_reaches_the_encoder_and_the_assignments():
    torch.manual_seed(0)
    model = PamC(8, 3, hidden_channels=(16,), out_channels=4)
    x = torch.randn(10, 8)
    z, q = model(x)
    loss = meta_node_loss(z, q, _ring(10))  # soft meta-nodes: gradients through Q as well
    loss.backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.centres.grad.abs().sum() > 0  # only the assignments lead to the centres
    model.zero_grad()
    z, _ = model(x)
    dense_infonce_loss(z, _ring(10)).backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0


def test_head_rows_are_distributions():
    g = torch.Generator().manual_seed(0)
    q = student_t_assignment(torch.randn(7, 3, generator=g), torch.randn(4, 3, generator=g))
    p = target_distribution(q)
    for m in (q, p):
        assert m.shape == (7, 4) and torch.allclose(m.sum(1), torch.ones(7))


def test_learns_two_planted_clusters_on_a_small_sbm():
    data = contextual_sbm(num_nodes=200, num_classes=2, num_features=16, feature_signal=2.0,
                          homophily=0.9, avg_degree=6, seed=0)
    model = PamC(16, 2, hidden_channels=(32, 32), out_channels=4)
    fit = fit_pamc(model, data.x, data.edge_index, epochs=60, pretrain_epochs=10, batch_size=64,
                   lr=3e-3, order=2, kmeans_init=5, seed=0, keep_epoch_labels=True)
    start = clustering_accuracy(data.y, fit.epoch_labels[0])  # k-means on the features alone
    final = clustering_accuracy(data.y, fit.labels)
    assert start < 0.7 and final >= 0.95  # measured 0.62 -> 0.975 on this seed
    assert torch.equal(fit.labels, model.predict(data.x))
    assert len(fit.epoch_times) == len(fit.losses) == 60


def test_registered_and_built_by_name():
    model = create_model("pamc", in_channels=5, num_clusters=2, hidden_channels=(8,))
    assert isinstance(model, PamC) and model.centres.shape == (2, 10)


@pytest.mark.parametrize("call, message", [
    (lambda: meta_node_loss(torch.full((3, 2), float("nan")), torch.ones(3, 1), PATH),
     "z holds NaN"),
    (lambda: meta_node_loss(torch.randn(3, 2), torch.ones(4, 1), PATH), r"assign must be \[3"),
    (lambda: meta_node_loss(torch.randn(3, 2), -torch.ones(3, 1), PATH), "non-negative"),
    (lambda: meta_node_loss(torch.randn(3, 2), torch.ones(3, 1), PATH + 5), "out of range"),
    (lambda: meta_node_loss(torch.randn(3, 2), torch.ones(3, 1), PATH, tau=0.0), "tau must"),
    (lambda: meta_node_loss(torch.randn(0, 2), torch.ones(0, 1), PATH), "z is empty"),
    (lambda: dense_infonce_loss(torch.randn(3, 2), PATH, torch.ones(2)), "edge_weight"),
    (lambda: dense_infonce_loss(torch.randn(3, 2), PATH, -torch.ones(4)),
     "edge_weight must be finite and non-negative"),
    (lambda: dense_infonce_loss(torch.randn(3, 2), PATH, torch.full((4,), float("nan"))),
     "edge_weight must be finite and non-negative"),
    (lambda: student_t_assignment(torch.randn(3, 2), torch.randn(2, 4)),
     r"centres must be \[num_clusters, 2\]"),
    (lambda: student_t_assignment(torch.randn(3), torch.randn(2, 3)), r"z must be a \[num_nodes"),
    (lambda: student_t_assignment(torch.randn(3, 2), torch.randn(2, 2), v=0.0), "v must be"),
    (lambda: student_t_assignment(torch.randn(3, 2), torch.randn(2, 2), v=float("nan")),
     "v must be"),
    (lambda: target_distribution(torch.rand(3)), r"q must be a \[num_nodes, num_clusters\]"),
    (lambda: fit_pamc(PamC(2, 2, (4,), 2), torch.randn(3, 2, dtype=torch.float64), PATH),
     "x has dtype torch.float64 but the model's parameters are torch.float32"),
    (lambda: pretrain_autoencoder(PamC(2, 2, (4,), 2), torch.tensor([[0.0, float("nan")]] * 3),
                                  epochs=1), "x holds NaN"),
    (lambda: pretrain_autoencoder(PamC(2, 2, (4,), 2), torch.randn(0, 2), epochs=1),
     "the graph is empty"),
    (lambda: init_centres(PamC(2, 2, (4,), 2), torch.tensor([[0.0, float("nan")]] * 3)),
     "x holds NaN"),
    (lambda: influence_weights(PATH, 3, order=0), "order must be a positive integer"),
    (lambda: PamC(4, 0), "num_clusters must be a positive integer"),
    (lambda: PamC(4, 2)(torch.randn(3, 5)), r"x must be \[n, 4\]"),
    (lambda: fit_pamc(PamC(2, 2), torch.randn(3, 2), PATH, loss="nce"), "loss must be one of"),
    (lambda: fit_pamc(PamC(2, 5), torch.randn(3, 2), PATH), "3 nodes cannot form 5"),
    (lambda: fit_pamc(PamC(2, 2), torch.tensor([[0.0, float("nan")]] * 3), PATH),
     "x holds NaN"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_float64_model_is_pretrained_and_trained_in_float64():
    # the autoencoder's decoder was float32 whatever the model: the first batch raised
    data = contextual_sbm(num_nodes=40, num_classes=2, num_features=8, seed=0)
    x = data.x.double()
    model = PamC(8, 2, hidden_channels=(6,), out_channels=3).double()
    fit = fit_pamc(model, x, data.edge_index, epochs=2, pretrain_epochs=1, kmeans_init=1)
    assert math.isfinite(fit.pretrain_loss) and all(math.isfinite(v) for v in fit.losses)
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_influence_weights_keep_float64_for_a_float64_model(monkeypatch):
    # they were always rounded to float32, so a float64 loss used float32 weights
    p = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=float)
    p /= p.sum(1, keepdims=True)
    ei, w = influence_weights(PATH, 3, order=2, dtype=torch.float64)
    dense = torch.zeros(3, 3, dtype=torch.float64)
    dense[ei[0], ei[1]] = w
    np.testing.assert_allclose(dense.numpy(), p + p @ p, rtol=1e-12)

    seen = []

    def spy(z, assign, edge_index, edge_weight, tau):
        seen.append(edge_weight.dtype)
        return meta_node_loss(z, assign, edge_index, edge_weight, tau)

    monkeypatch.setattr(pamc, "meta_node_loss", spy)
    model = PamC(2, 2, hidden_channels=(4,), out_channels=2).double()
    fit_pamc(model, torch.randn(3, 2, dtype=torch.float64), PATH, epochs=1, pretrain_epochs=0,
             kmeans_init=1)
    assert seen == [torch.float64]


def test_epoch_times_wait_for_the_kernels_of_each_step(monkeypatch):
    # on CUDA the clock was read with the loss tail, backward and step still queued
    events = []
    monkeypatch.setattr(pamc, "synchronize", lambda device: events.append(("sync", device)))
    model = PamC(2, 2, hidden_channels=(4,), out_channels=2)
    step = model.forward
    monkeypatch.setattr(model, "forward", lambda x: events.append("step") or step(x))
    fit = fit_pamc(model, torch.randn(3, 2), PATH, epochs=2, pretrain_epochs=0, kmeans_init=1)
    cpu = ("sync", torch.device("cpu"))
    assert events[:6] == [cpu, "step", cpu] * 2 and len(fit.epoch_times) == 2
