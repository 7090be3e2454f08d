"""LightHGNN / LightHGNN+: losses against NumPy, reliabilities, splits, distillation."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from graphkit.data.hypergraph import add_singleton_hyperedges, hyperedge_index_from_list
from graphkit.nn import HGNN, LightHGNN
from graphkit.nn.models.lighthgnn import (
    LightHGNNLoss,
    distill,
    distillation_loss,
    hyperedge_distillation_loss,
    hyperedge_reliability,
    perturb_features,
    production_split,
    split_per_class,
    topology_score,
)


def np_softmax(z):
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@pytest.fixture
def logits():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3
    t = torch.randn(7, 4, generator=g, dtype=torch.float64) * 3
    return s, t


@pytest.mark.parametrize("tau", [1.0, 2.5])
def test_paper_loss_equals_numpy_kl(logits, tau):
    s, t = logits
    p, q = np_softmax(t.numpy() / tau), np_softmax(s.numpy() / tau)
    expected = np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1))
    got = distillation_loss(s, t, tau=tau).item()
    assert abs(got - expected) < 1e-6


def test_paper_loss_is_zero_iff_distributions_agree(logits):
    s, _ = logits
    assert abs(distillation_loss(s, s + 5.0).item()) < 1e-12  # softmax is shift invariant
    assert distillation_loss(s, -s).item() > 0


def test_repo_loss_reproduces_log_target_semantics(logits):
    # The official code passes probabilities p as a log-target: sum exp(p) (p - log q) / N.
    s, t = logits
    p = np_softmax(t.numpy())
    log_q = np.log(np_softmax(s.numpy()))
    expected = np.sum(np.exp(p) * (p - log_q)) / s.shape[0]
    got = distillation_loss(s, t, tau=3.0, mode="repo").item()  # tau unused in the repo term
    assert abs(got - expected) < 1e-6


def test_hyperedge_loss_equals_numpy(logits):
    s, t = logits
    edges = [[0, 1, 2], [2, 3], [4, 5, 6, 0]]
    index, m = hyperedge_index_from_list(edges, num_nodes=7)
    mask = torch.tensor([True, False, True])
    tau = 2.0
    p, q = np_softmax(t.numpy() / tau), np_softmax(s.numpy() / tau)
    kls = []
    for e in (0, 2):
        pe, qe = p[edges[e]].mean(0), q[edges[e]].mean(0)
        kls.append(np.sum(pe * (np.log(pe) - np.log(qe))))
    got = hyperedge_distillation_loss(s, t, index, m, mask, tau=tau).item()
    assert abs(got - np.mean(kls)) < 1e-6
    # repo mode: kl_div(log(q_e / tau), p_e / tau, log_target=True), batchmean.
    p1, q1 = np_softmax(t.numpy()), np_softmax(s.numpy())
    vals = []
    for e in (0, 2):
        pe, qe = p1[edges[e]].mean(0) / tau, q1[edges[e]].mean(0)
        vals.append(np.sum(np.exp(pe) * (pe - np.log(qe / tau))))
    got = hyperedge_distillation_loss(s, t, index, m, mask, tau=tau, mode="repo").item()
    assert abs(got - np.mean(vals)) < 1e-6
    none = torch.zeros(3, dtype=torch.bool)
    assert hyperedge_distillation_loss(s, t, index, m, none).item() == 0.0


@pytest.mark.parametrize("mode", ["paper", "repo"])
def test_hyperedge_loss_leaves_empty_hyperedges_out(mode):
    """Ids 1, 2 (a gap) and 5 (num_hyperedges above the largest id) have no member: their
    all-zero mean gave inf in "repo" mode (log 0) and diluted the "paper" average."""
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    gapped = torch.tensor([[0, 1, 2, 2, 3, 5], [0, 0, 0, 3, 3, 4]])
    compact = torch.tensor([[0, 1, 2, 2, 3, 5], [0, 0, 0, 1, 1, 2]])
    expected = hyperedge_distillation_loss(s, t, compact, 3, mode=mode)
    got = hyperedge_distillation_loss(s, t, gapped, 6, mode=mode)
    assert torch.isfinite(got)
    torch.testing.assert_close(got, expected)
    # a mask selects among the non-empty ones: empty id 1 and real id 3 count as id 3 alone
    mask = torch.tensor([False, True, False, True, False, False])
    torch.testing.assert_close(
        hyperedge_distillation_loss(s, t, gapped, 6, mask, mode=mode),
        hyperedge_distillation_loss(s, t, compact, 3, torch.tensor([False, True, False]),
                                    mode=mode))
    only_empty = torch.tensor([False, True, True, False, False, True])
    assert hyperedge_distillation_loss(s, t, gapped, 6, only_empty, mode=mode).item() == 0.0


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_paper_hyperedge_term_adds_no_target_of_its_own(logits, tau):
    """Why the paper's topology-aware term can only reweight the vertex term: KL is jointly
    convex, so the KL between member means is at most the member mean of the vertex KLs, and
    a student that matches the teacher at every vertex zeroes both terms."""
    s, t = logits
    edges = [[0, 1, 2], [2, 3], [4, 5, 6, 0], [1, 4]]
    index, m = hyperedge_index_from_list(edges, num_nodes=7)
    p, q = np_softmax(t.numpy() / tau), np_softmax(s.numpy() / tau)
    vertex_kl = np.sum(p * (np.log(p) - np.log(q)), axis=1)
    for e in range(m):
        mask = torch.zeros(m, dtype=torch.bool)
        mask[e] = True
        got = hyperedge_distillation_loss(s, t, index, m, mask, tau=tau).item()
        assert 0.0 <= got <= vertex_kl[edges[e]].mean() + 1e-12
    assert abs(hyperedge_distillation_loss(t, t, index, m, tau=tau).item()) < 1e-12


def test_repo_hyperedge_term_has_a_minimiser_of_its_own(logits):
    """The official (``repo``) terms are minimised where the student's softmax is the softmax
    of the teacher's probabilities (logits = p); there the vertex term's gradient vanishes but
    the hyperedge term's does not (softmax of member means is not the member mean of softmax),
    whereas the ``paper`` terms share their minimiser (student = teacher)."""
    _, t = logits
    index, m = hyperedge_index_from_list([[0, 1, 2], [2, 3], [4, 5, 6, 0], [1, 4]], 7)

    def grad(fn, s):
        s = s.clone().requires_grad_()
        return torch.autograd.grad(fn(s), s)[0].abs().max().item()

    p = torch.softmax(t, -1)
    assert grad(lambda s: distillation_loss(s, t, mode="repo"), p) < 1e-12
    assert grad(lambda s: hyperedge_distillation_loss(s, t, index, m, mode="repo"), p) > 1e-3
    assert grad(lambda s: distillation_loss(s, t), t) < 1e-12
    assert grad(lambda s: hyperedge_distillation_loss(s, t, index, m), t) < 1e-12


def test_losses_reject_bad_inputs(logits):
    s, t = logits
    with pytest.raises(ValueError, match="mode"):
        distillation_loss(s, t, mode="kl")
    with pytest.raises(ValueError, match="tau"):
        distillation_loss(s, t, tau=0.0)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(s, t[:3])
    index, m = hyperedge_index_from_list([[0, 1]], num_nodes=7)
    with pytest.raises(ValueError, match="hyperedge_mask"):
        hyperedge_distillation_loss(s, t, index, m, torch.ones(2, dtype=torch.bool))
    # a 0/1 integer mask was read as an index list (hyperedges 1, 0, 1, not 0 and 2)
    index3, m3 = hyperedge_index_from_list([[0, 1], [2, 3], [4, 5]], num_nodes=7)
    with pytest.raises(ValueError, match="hyperedge_mask must be a boolean mask, got dtype "
                                         "torch.int64"):
        hyperedge_distillation_loss(s, t, index3, m3, torch.tensor([1, 0, 1]))
    outside = torch.tensor([[0, 7], [0, 0]])  # vertex 7 of 7 logits rows
    with pytest.raises(ValueError, match="hyperedge_index"):
        hyperedge_distillation_loss(s, t, outside)
    with pytest.raises(ValueError, match="hyperedge_index"):
        LightHGNNLoss(t, hyperedge_index=outside, reliability=torch.ones(1))
    with pytest.raises(ValueError, match="hyperedge_index"):
        topology_score(s, outside)
    with pytest.raises(ValueError, match=r"embedding must be \[N, d\], got shape \[7\]"):
        topology_score(s[:, 0], index)


def test_reliability_rejects_nan_logits():
    index, m = hyperedge_index_from_list([[0, 1], [1, 2]], num_nodes=3)
    z = torch.randn(3, 4)
    noisy = z.clone()
    noisy[1, 2] = float("nan")
    with pytest.raises(ValueError, match="noisy_logits"):
        hyperedge_reliability(z, noisy, index, m)


def test_reliability_in_unit_interval_with_least_reliable_at_zero():
    g = torch.Generator().manual_seed(1)
    edges = [[0, 1], [1, 2, 3], [4, 5], [5, 6, 7, 0], [2, 6]]
    index, m = hyperedge_index_from_list(edges, num_nodes=8)
    clean = torch.randn(8, 3, generator=g)
    noisy = clean + torch.randn(8, 3, generator=g)
    r = hyperedge_reliability(clean, noisy, index, m)
    assert r.shape == (m,)
    assert bool(((r >= 0) & (r <= 1)).all())
    # Independent computation of delta_e and its argmax.
    def ent(z):
        p = np_softmax(z.numpy().astype(np.float64))
        return -(p * np.log(p)).sum(1)
    hc, hn = ent(clean), ent(noisy)
    delta = np.array([abs(hn[e].mean() - hc[e].mean()) for e in edges])
    assert r[int(delta.argmax())].item() == 0.0
    np.testing.assert_allclose(r.numpy(), 1 - delta / delta.max(), atol=1e-6)


def test_reliability_without_noise_effect_is_one_not_nan():
    index, m = hyperedge_index_from_list([[0, 1], [1, 2]], num_nodes=3)
    z = torch.randn(3, 4)
    r = hyperedge_reliability(z, z.clone(), index, m)
    assert torch.equal(r, torch.ones(m))
    # All hyperedges equally unstable: no division problem, every one is "least reliable".
    index2, m2 = hyperedge_index_from_list([[0], [1]], num_nodes=2)
    clean = torch.tensor([[5.0, 0.0], [5.0, 0.0]])
    noisy = torch.zeros(2, 2)
    r2 = hyperedge_reliability(clean, noisy, index2, m2)
    assert not bool(torch.isnan(r2).any()) and torch.equal(r2, torch.zeros(2))


def test_perturb_features_formula():
    x = torch.randn(5, 3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    eps = torch.randn(5, 3, generator=g2)
    torch.testing.assert_close(perturb_features(x, 0.7, g1), x * (eps + 1) * 0.7)
    with pytest.raises(ValueError, match="noise_level"):
        perturb_features(x, -1.0)


def test_topology_score_equals_numpy():
    edges = [[0, 1, 2], [2, 3]]
    index, m = hyperedge_index_from_list(edges, num_nodes=5)  # vertex 4 in no hyperedge
    h = torch.randn(5, 3, dtype=torch.float64)
    hn = h.numpy()
    expected = np.mean([np.mean([np.linalg.norm(hn[v] - hn[e].mean(0)) for v in e])
                        for e in edges])
    assert abs(topology_score(h, index, m) - expected) < 1e-10


def test_split_per_class_counts_and_partition():
    y = torch.arange(3).repeat_interleave(torch.tensor([10, 12, 9]))
    g = torch.Generator().manual_seed(0)
    tr, va, te = split_per_class(y, 2, 3, generator=g)
    assert [int(tr[y == c].sum()) for c in range(3)] == [2, 2, 2]
    assert [int(va[y == c].sum()) for c in range(3)] == [3, 3, 3]
    assert bool((tr.int() + va.int() + te.int() == 1).all())
    with pytest.raises(ValueError, match="class 2"):
        split_per_class(y, 5, 5)
    # -1 (unlabelled) is no class: it put unlabelled vertices in train, val and test
    with pytest.raises(ValueError, match=r"negative class id \(-1\)"):
        split_per_class(torch.tensor([-1, -1, -1, 0, 0, 0, 1, 1, 1]), 1, 1)


def test_production_split_hides_the_inductive_share():
    n = 50
    tr = torch.zeros(n, dtype=torch.bool)
    va = torch.zeros(n, dtype=torch.bool)
    te = torch.zeros(n, dtype=torch.bool)
    tr[:5], va[5:10], te[10:] = True, True, True
    ps = production_split(tr, va, te, ind_ratio=0.9, generator=torch.Generator().manual_seed(0))
    assert int(ps.test_ind.sum()) == 36 and int(ps.test_tran.sum()) == 4
    assert not bool((ps.test_ind & ps.test_tran).any())
    assert torch.equal(ps.test_ind | ps.test_tran, te)
    assert ps.observed[:10].tolist() == list(range(10))
    assert set(ps.observed.tolist()) == set(range(10)) | set(ps.test_tran.nonzero().view(-1)
                                                          .tolist())
    with pytest.raises(ValueError, match="overlap"):
        production_split(tr, tr, te)
    with pytest.raises(ValueError, match="ind_ratio"):
        production_split(tr, va, te, ind_ratio=1.5)


def test_production_split_requires_boolean_masks_of_one_length():
    n = 12
    tr, va, te = (torch.zeros(n, dtype=torch.bool) for _ in range(3))
    tr[:4], va[4:8], te[8:] = True, True, True
    idx = [m.nonzero().view(-1) for m in (tr, va, te)]  # these gave nonsense silently
    with pytest.raises(ValueError, match=r"train_mask must be a 1-D boolean mask over the "
                                         r"vertices, got dtype torch.int64 and shape \[4\]"):
        production_split(*idx)
    with pytest.raises(ValueError, match="val_mask must be a 1-D boolean mask.*torch.float32"):
        production_split(tr, va.float(), te)
    with pytest.raises(ValueError, match="must have one length N, got 12, 12, 11"):
        production_split(tr, va, te[:-1])


def test_loss_object_mixes_ce_and_kd(logits):
    s, t = logits
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2])
    train = torch.tensor([True, True, False, False, False, False, True])
    data = Data(y=y, train_mask=train)
    loss = LightHGNNLoss(t, lamb=0.25, tau=1.0)
    ce = torch.nn.functional.cross_entropy(s[train], y[train])
    expected = 0.25 * ce + 0.75 * distillation_loss(s, t)
    torch.testing.assert_close(loss(s, data), expected)
    torch.testing.assert_close(LightHGNNLoss(t)(s, data), distillation_loss(s, t))  # lamb = 0
    with pytest.raises(ValueError, match="every vertex"):
        loss(s[:3], data)
    with pytest.raises(ValueError, match="lamb"):
        LightHGNNLoss(t, lamb=2.0)
    with pytest.raises(ValueError, match="hyperedge_index"):
        LightHGNNLoss(t, reliability=torch.ones(2))


@pytest.mark.parametrize("plus", [False, True])
def test_distilled_student_follows_its_teacher(plus):
    torch.manual_seed(0)
    # Two communities of 20 vertices each; features are noisy class indicators.
    n = 40
    y = torch.arange(2).repeat_interleave(20)
    x = torch.nn.functional.one_hot(y, 2).float() + 0.8 * torch.randn(n, 2)
    x = torch.cat([x, torch.randn(n, 6)], 1)
    edges = [list(range(i, i + 5)) for i in range(0, 40, 5)]
    index, m = hyperedge_index_from_list(edges, num_nodes=n)
    index, m = add_singleton_hyperedges(index, n, m)
    tr, va, te = split_per_class(y, 3, 5, generator=torch.Generator().manual_seed(0))
    teacher = HGNN(8, 16, 2)
    opt = torch.optim.Adam(teacher.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(teacher(x, index)[tr], y[tr]).backward()
        opt.step()
    teacher.eval()
    with torch.no_grad():
        z = teacher(x, index)
    rel = None
    if plus:
        with torch.no_grad():
            rel = hyperedge_reliability(z, teacher(perturb_features(x), index), index, m)
    student = LightHGNN(8, 32, 2)
    res = distill(student, x, y, z, tr, va, te, hyperedge_index=index, num_hyperedges=m,
                  reliability=rel, epochs=50)
    student.eval()
    agree = (student(x).argmax(1) == z.argmax(1)).float().mean().item()
    assert agree > 0.85
    assert 0.0 <= res.test_acc <= 1.0 and 1 <= res.best_epoch <= 50


def test_distill_rejects_bad_features_and_teacher_logits():
    n = 12
    y = torch.arange(2).repeat_interleave(6)
    tr, va, te = split_per_class(y, 2, 2, generator=torch.Generator().manual_seed(0))
    x, z = torch.randn(n, 4), torch.randn(n, 2)
    bad_z = z.clone()
    bad_z[4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"teacher_logits holds NaN values \(first in row 4\)"):
        distill(LightHGNN(4, 8, 2), x, y, bad_z, tr, va, te, epochs=1)
    with pytest.raises(ValueError, match="teacher_logits has 11 rows but the graph has 12"):
        distill(LightHGNN(4, 8, 2), x, y, z[:-1], tr, va, te, epochs=1)
    # said "scores must cover every vertex like the teacher logits [12, 3], got [12, 2]"
    with pytest.raises(ValueError, match=r"the student's class count \(2\) differs from the "
                                         r"teacher's \(3\)"):
        distill(LightHGNN(4, 8, 2), x, y, torch.randn(n, 3), tr, va, te, epochs=1)
    bad_x = x.clone()
    bad_x[0, 0] = float("inf")
    with pytest.raises(ValueError, match="x holds infinite values"):
        distill(LightHGNN(4, 8, 2), bad_x, y, z, tr, va, te, epochs=1)


def _plus_loss(t, index, m, **kwargs):
    return LightHGNNLoss(t, hyperedge_index=index, num_hyperedges=m,
                         reliability=torch.ones(m, dtype=t.dtype), **kwargs)


def test_hyperedge_weight_scales_the_hyperedge_term(logits):
    s, t = logits
    index, m = hyperedge_index_from_list([[0, 1, 2], [2, 3], [4, 5, 6, 0], [1]], num_nodes=7)
    data = Data(y=torch.zeros(7, dtype=torch.long), train_mask=torch.ones(7, dtype=torch.bool))
    kd, hkd = distillation_loss(s, t), hyperedge_distillation_loss(s, t, index, m)
    for beta in (0.0, 0.5, 2.0):  # reliability 1: every hyperedge is drawn
        torch.testing.assert_close(_plus_loss(t, index, m, hyperedge_weight=beta)(s, data),
                                   kd + beta * hkd)


def test_excluded_singletons_are_never_sampled(logits):
    s, t = logits
    index, m = hyperedge_index_from_list([[0, 1, 2], [3], [4, 5, 6, 0], [1]], num_nodes=7)
    data = Data(y=torch.zeros(7, dtype=torch.long), train_mask=torch.ones(7, dtype=torch.bool))
    loss = _plus_loss(t, index, m, singletons=False)
    assert loss.reliability.tolist() == [1.0, 0.0, 1.0, 0.0]
    kept = torch.tensor([True, False, True, False])
    torch.testing.assert_close(loss(s, data), distillation_loss(s, t)
                               + hyperedge_distillation_loss(s, t, index, m, kept))
    assert _plus_loss(t, index, m).reliability.tolist() == [1.0] * 4  # official: all sampled


def test_plus_options_reject_bad_inputs(logits):
    _, t = logits
    index, m = hyperedge_index_from_list([[0, 1, 2], [3, 4]], num_nodes=7)
    with pytest.raises(ValueError, match="hyperedge_weight"):
        _plus_loss(t, index, m, hyperedge_weight=-1.0)
    with pytest.raises(ValueError, match="one value per hyperedge"):
        LightHGNNLoss(t, hyperedge_index=index, num_hyperedges=m, reliability=torch.ones(3))
    # these passed construction and failed at the first step inside torch.bernoulli
    for bad, shown in ((1.5, "1.5"), (-0.1, "-0.1"), (float("nan"), "nan")):
        with pytest.raises(ValueError, match=rf"reliability must lie in \[0, 1\], got {shown}"):
            LightHGNNLoss(t, hyperedge_index=index, num_hyperedges=m,
                          reliability=torch.tensor([0.5, bad], dtype=torch.float64))
    with pytest.raises(ValueError, match="reliability must hold floating-point.*torch.int64"):
        LightHGNNLoss(t, hyperedge_index=index, num_hyperedges=m,
                      reliability=torch.ones(m, dtype=torch.long))


def test_student_is_dhg_mlp_with_batch_norm():
    """The official student is DHG's ``MLP([in, hid])`` (``use_bn=True`` by default: Linear,
    ReLU, BatchNorm1d, Dropout) followed by ``Linear(hid, C)``; rebuilt here with plain torch
    layers and the same weights, in train mode (batch statistics, same dropout mask) and in
    eval mode (running statistics)."""
    torch.manual_seed(0)
    x = torch.randn(40, 6) * 3 + 1
    student = LightHGNN(6, 16, 3)
    ref = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.BatchNorm1d(16),
                              torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))
    ref[0].load_state_dict(student.lin1.state_dict())
    ref[4].load_state_dict(student.lin2.state_dict())
    for mode in ("train", "eval"):
        student.train(mode == "train")
        ref.train(mode == "train")
        torch.manual_seed(1)
        out = student(x)
        torch.manual_seed(1)
        torch.testing.assert_close(out, ref(x))
    torch.testing.assert_close(student.norm.running_mean, ref[2].running_mean)
    torch.testing.assert_close(student.norm.running_var, ref[2].running_var)
    # The embedding (topology score) is the official ``get_emb=True`` output: after the BN.
    torch.testing.assert_close(student.embed(x), ref[2](ref[1](ref[0](x))))
    assert "batch_norm=True" in repr(student)


def test_eval_folds_batch_norm_into_the_output_layer_exactly():
    """In eval mode the BN (running statistics, learnt affine or none) is folded into ``lin2``;
    the logits equal the layer-by-layer formula to float round-off, gradients still reach the
    BN parameters, and a BN without running statistics keeps using the batch statistics."""
    torch.manual_seed(0)
    x = torch.randn(50, 6) * 2
    student = LightHGNN(6, 16, 3)
    with torch.no_grad():
        student.norm.running_mean.normal_()
        student.norm.running_var.uniform_(0.1, 3.0)
        student.norm.weight.normal_()
        student.norm.bias.normal_()
    student.eval()
    unfolded = student.lin2(student.norm(torch.relu(student.lin1(x))))
    out = student(x)
    torch.testing.assert_close(out, unfolded, rtol=1e-5, atol=1e-5)
    assert not torch.equal(out, student.lin2(torch.relu(student.lin1(x))))  # the BN acts
    out.sum().backward()
    assert student.norm.weight.grad.abs().sum() > 0 and student.norm.bias.grad.abs().sum() > 0
    plain = LightHGNN(6, 16, 3)
    plain.norm = torch.nn.BatchNorm1d(16, affine=False)
    with torch.no_grad():
        plain.norm.running_mean.normal_()
        plain.norm.running_var.uniform_(0.1, 3.0)
    plain.eval()
    torch.testing.assert_close(plain(x), plain.lin2(plain.norm(torch.relu(plain.lin1(x)))),
                               rtol=1e-5, atol=1e-5)
    batch_stats = LightHGNN(6, 16, 3)
    batch_stats.norm = torch.nn.BatchNorm1d(16, track_running_stats=False)
    batch_stats.eval()
    h = torch.relu(batch_stats.lin1(x))
    expected = batch_stats.lin2((h - h.mean(0)) / torch.sqrt(h.var(0, unbiased=False) + 1e-5))
    torch.testing.assert_close(batch_stats(x), expected, rtol=1e-4, atol=1e-5)


def test_student_without_batch_norm_is_the_plain_mlp():
    torch.manual_seed(0)
    x = torch.randn(10, 6)
    student = LightHGNN(6, 16, 3, batch_norm=False).eval()
    assert student.norm is None and not any(
        isinstance(m, torch.nn.BatchNorm1d) for m in student.modules())
    expected = student.lin2(torch.relu(student.lin1(x)))
    torch.testing.assert_close(student(x), expected)
    # Same parameter draws with and without the norm: only the BN is added.
    torch.manual_seed(3)
    a = LightHGNN(6, 16, 3)
    torch.manual_seed(3)
    b = LightHGNN(6, 16, 3, batch_norm=False)
    torch.testing.assert_close(a.lin1.weight, b.lin1.weight)
    torch.testing.assert_close(a.lin2.weight, b.lin2.weight)
