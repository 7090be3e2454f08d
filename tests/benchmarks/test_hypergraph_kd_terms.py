"""benchmarks/hypergraph_kd_terms.py: the gradient probe leaves LightHGNN+'s training as it is
and measures what it claims."""

import math

import pytest
import torch
from torch_geometric.data import Data

from graphkit.data.hypergraph import add_singleton_hyperedges, hyperedge_index_from_list
from graphkit.nn import LightHGNN
from graphkit.nn.models.lighthgnn import distill, split_per_class
from graphkit.train import seed_everything, train_node_classifier


@pytest.fixture(scope="module")
def probe(import_script):
    return import_script("hypergraph_kd_terms")


def test_gradient_stats_cosine_ratio_and_orthogonal_part(probe):
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    kd = (w * torch.tensor([3.0, 0.0])).sum()  # gradient (3, 0)
    hkd = (w * torch.tensor([3.0, 4.0])).sum()  # gradient (3, 4)
    got = probe.gradient_stats(kd, hkd, [w])
    assert got["grad_cosine"] == pytest.approx(0.6)
    assert got["grad_ratio"] == pytest.approx(5 / 3)
    assert got["grad_new"] == pytest.approx(4 / 3)  # the (0, 4) component over |(3, 0)|
    assert math.isclose(got["kd_loss"], 3.0) and math.isclose(got["hkd_loss"], 11.0)


@pytest.mark.parametrize("mode", ["paper", "repo"])
def test_probe_trains_exactly_like_distill(probe, mode):
    n = 30
    y = torch.arange(3).repeat_interleave(10)
    seed_everything(0)
    x = torch.nn.functional.one_hot(y, 3).float() + torch.randn(n, 3)
    index, m = hyperedge_index_from_list([list(range(i, i + 4)) for i in range(0, 27, 3)], n)
    index, m = add_singleton_hyperedges(index, n, m)
    tr, va, te = split_per_class(y, 3, 3, generator=torch.Generator().manual_seed(0))
    z = torch.randn(n, 3) * 2
    rel = torch.rand(m)

    seed_everything(1)
    ref = LightHGNN(3, 8, 3)
    res_ref = distill(ref, x, y, z, tr, va, te, hyperedge_index=index, num_hyperedges=m,
                      reliability=rel, mode=mode, epochs=15)
    seed_everything(1)
    student = LightHGNN(3, 8, 3)
    loss = probe.TermProbe(list(student.parameters()), z, index, m, rel, mode)
    res = train_node_classifier(student, Data(x=x, y=y, train_mask=tr, val_mask=va,
                                              test_mask=te, num_nodes=n),
                                lr=0.01, weight_decay=5e-4, epochs=15, selection="val_acc",
                                forward=lambda mod, d: mod(d.x), train_loss_fn=loss)
    assert [h["loss"] for h in res.history] == [h["loss"] for h in res_ref.history]
    for a, b in zip(student.state_dict().values(), ref.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert len(loss.records) == 15
    assert all(-1.0 <= r["grad_cosine"] <= 1.0 and r["grad_ratio"] >= 0 for r in loss.records)


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"],
     "argument --epochs: must be >= 1, got 0"),
    (["--num-train", "-1"],
     "argument --num-train: must be >= 1, got -1"),
    (["--dataset", "nope"],
     "argument --dataset: unknown dataset 'nope'"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("hypergraph_kd_terms", flags)
