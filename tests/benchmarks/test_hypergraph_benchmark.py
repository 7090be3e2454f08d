"""benchmarks/hypergraph.py: the PyG peer teacher computes graphkit's HGNN exactly; the
LightHGNN+ grid and its validation-only selection."""


import pytest
import torch

from graphkit.data.hypergraph import add_singleton_hyperedges, hyperedge_index_from_list
from graphkit.nn import HGNN


@pytest.fixture(scope="module")
def bench(import_script):
    return import_script("hypergraph")


@pytest.fixture
def hg():
    # 7 vertices, vertex 6 isolated (gets a singleton); sizes 3, 2, 4, 1.
    index, m = hyperedge_index_from_list([[0, 1, 2], [2, 3], [3, 4, 5, 0], [1]], num_nodes=7)
    return add_singleton_hyperedges(index, 7, m)


def _copy_weights(pyg, hgnn):
    with torch.no_grad():
        pyg.conv1.lin.weight.copy_(hgnn.conv1.lin.weight)
        pyg.conv2.lin.weight.copy_(hgnn.conv2.lin.weight)
        pyg.bias1.copy_(torch.randn_like(pyg.bias1))
        pyg.bias2.copy_(torch.randn_like(pyg.bias2))
        hgnn.conv1.bias.copy_(pyg.bias1)
        hgnn.conv2.bias.copy_(pyg.bias2)


@pytest.mark.parametrize("sparse", [False, True])
def test_symmetric_pyg_teacher_equals_hgnn(bench, hg, sparse):
    index, m = hg
    torch.manual_seed(0)
    x = torch.rand(7, 5)
    hgnn, pyg = HGNN(5, 8, 3).eval(), bench.PyGHGNN(5, 8, 3).eval()
    _copy_weights(pyg, hgnn)
    xin = x.to_sparse_csr() if sparse else x
    torch.testing.assert_close(pyg(xin, index, num_hyperedges=m), hgnn(x, index, num_hyperedges=m))
    torch.testing.assert_close(pyg.embed(xin, index, num_hyperedges=m),
                               hgnn.embed(x, index, num_hyperedges=m))


def test_native_pyg_teacher_uses_left_normalisation(bench, hg):
    index, m = hg
    torch.manual_seed(0)
    x = torch.rand(7, 5)
    native = bench.PyGHGNNNative(5, 4, 2, dropout=0.0).eval()
    H = torch.zeros(7, m)
    H[index[0], index[1]] = 1.0
    L = torch.diag(1 / H.sum(1)) @ H @ torch.diag(1 / H.sum(0)) @ H.T
    h = torch.relu(L @ native.conv1.lin(x) + native.bias1)
    torch.testing.assert_close(native(x, index, num_hyperedges=m),
                               L @ native.conv2.lin(h) + native.bias2)


def test_structure_merges_repeated_hyperedges_then_adds_singletons(bench):
    index, m = hyperedge_index_from_list([[0, 1], [1, 0], [2, 3]], num_nodes=5)
    args = type("Args", (), {"keep_duplicates": False})()
    out, k = bench.structure(index, 5, m, args)
    assert k == 3 and out[:, -1].tolist() == [4, 2]  # {0,1}, {2,3}, singleton {4}
    args.keep_duplicates = True
    assert bench.structure(index, 5, m, args)[1] == 4


def _grid_args(**kw):
    base = {"model": ["hgnn", "lighthgnn", "lighthgnn+"], "hyperedge_weight": [1.0, 0.5],
            "singletons": ["include", "exclude"], "noise": [1.0], "select_on_val": True,
            "lamb": [0.0], "tau": [1.0]}
    return type("Args", (), {**base, **kw})()


def test_grid_gives_one_lighthgnn_plus_per_setting(bench):
    args = _grid_args()
    specs = bench.model_specs(args)
    assert [k for _, k, _ in specs] == ["hgnn", "lighthgnn"] + ["lighthgnn+"] * 4
    assert [c["hyperedge_weight"] for _, _, c in specs[2:]] == [1.0, 1.0, 0.5, 0.5]
    assert [c["singletons"] for _, _, c in specs[2:]] == ["include", "exclude"] * 2
    assert len({n for n, _, _ in specs}) == 6
    plain = bench.model_specs(_grid_args(hyperedge_weight=[2.0], singletons=["exclude"],
                                         select_on_val=False))
    assert plain[1] == ("lighthgnn", "lighthgnn", {"lamb": 0.0, "tau": 1.0})
    assert plain[2] == ("lighthgnn+", "lighthgnn+", {"lamb": 0.0, "tau": 1.0,
                        "hyperedge_weight": 2.0, "singletons": "exclude", "noise": 1.0})


def test_lambda_tau_grid_is_shared_by_both_students(bench):
    args = _grid_args(lamb=[0.0, 0.5], tau=[1.0, 2.0], hyperedge_weight=[1.0],
                      singletons=["exclude"])
    specs = bench.model_specs(args)
    plain = [c for n, k, c in specs if k == "lighthgnn"]
    plus = [c for n, k, c in specs if k == "lighthgnn+"]
    assert [(c["lamb"], c["tau"]) for c in plain] == [(0.0, 1.0), (0.0, 2.0), (0.5, 1.0),
                                                      (0.5, 2.0)]
    assert [(c["lamb"], c["tau"]) for c in plus] == [(c["lamb"], c["tau"]) for c in plain]
    assert all(c["singletons"] == "exclude" for c in plus)
    assert len({n for n, _, _ in specs}) == len(specs) == 9
    assert bench.grid_name("lighthgnn", plain[2]) == "lighthgnn [lamb=0.5, tau=1]"


def test_each_student_is_selected_on_its_own_grid(bench):
    from graphkit.benchmarking import summarize

    args = _grid_args(lamb=[0.0, 0.5], hyperedge_weight=[1.0], singletons=["exclude"])
    results, rows = {}, []
    for i, (name, _, _) in enumerate(bench.model_specs(args)[1:]):
        results[name] = [{"val_accuracy": [0.3, 0.6, 0.5, 0.4][i], "accuracy": 0.1 * i}]
        rows.append(summarize(name, "d", "accuracy", [0.1 * i], 1.0, 1.0))
    sel = {r.system: r for r in bench.selected_rows(rows, results, args)}
    assert sel["lighthgnn"].extra["selected"] == {"lamb": 0.5, "tau": 1.0}
    assert sel["lighthgnn+"].extra["selected"]["lamb"] == 0.0
    assert sel["lighthgnn+"].mean == pytest.approx(0.2)


def test_selection_uses_mean_val_accuracy_only(bench):
    runs = {"a": [{"val_accuracy": 0.75, "accuracy": 0.9}, {"val_accuracy": 0.25, "accuracy": 0.9}],
            "b": [{"val_accuracy": 0.5, "accuracy": 0.1}, {"val_accuracy": 0.5, "accuracy": 0.1}],
            "c": []}
    assert bench.select_on_val(runs, ["a", "b", "c"]) == "a"  # tie: the first listed
    assert bench.select_on_val(runs, ["b", "a"]) == "b"
    runs["b"][0]["val_accuracy"] = 0.625  # higher mean val wins despite lower test accuracy
    assert bench.select_on_val(runs, ["a", "b"]) == "b"
    assert bench.select_on_val(runs, ["c"]) is None


def test_selected_rows_copy_the_selected_setting(bench):
    from graphkit.benchmarking import summarize

    args = _grid_args(hyperedge_weight=[1.0], singletons=["include", "exclude"])
    names = [bench.grid_name("lighthgnn+", c) for c in bench.plus_grid(args)]
    results = {names[0]: [{"val_accuracy": 0.5, "accuracy": 0.8}],
               names[1]: [{"val_accuracy": 0.6, "accuracy": 0.7}]}
    rows = [summarize(n, "d", m, [results[n][0][m]], 1.0, 1.0) for n in names
            for m in ("accuracy", "val_accuracy")]
    sel = bench.selected_rows(rows, results, args)
    assert [(r.system, r.metric, r.mean) for r in sel] == [
        ("lighthgnn+", "accuracy", 0.7), ("lighthgnn+", "val_accuracy", 0.6)]
    assert sel[0].extra["selected"]["singletons"] == "exclude"
    assert sel[0].extra["grid_val_accuracy"] == {names[0]: 0.5, names[1]: 0.6}


def test_student_norm_grid_covers_mlp_and_both_students(bench):
    args = _grid_args(model=["hgnn", "mlp", "lighthgnn", "lighthgnn+"], hyperedge_weight=[1.0],
                      singletons=["include"], student_norm=["batch", "none"])
    specs = bench.model_specs(args)
    assert [n for n, _, _ in specs] == [
        "hgnn", "mlp [norm=batch]", "mlp [norm=none]",
        "lighthgnn [lamb=0, tau=1, norm=batch]", "lighthgnn [lamb=0, tau=1, norm=none]",
        "lighthgnn+ [lamb=0, tau=1, beta=1, singletons=include, rho=1, norm=batch]",
        "lighthgnn+ [lamb=0, tau=1, beta=1, singletons=include, rho=1, norm=none]"]
    assert [bench.student_norm(c, args) for _, _, c in specs[1:]] == [True, False] * 3
    # One norm: the old names and settings, the norm taken from --student-norm.
    one = _grid_args(student_norm=["none"], select_on_val=False, hyperedge_weight=[1.0],
                     singletons=["include"])
    assert bench.model_specs(one)[1] == ("lighthgnn", "lighthgnn", {"lamb": 0.0, "tau": 1.0})
    assert bench.student_norm(None, one) is False


def test_norm_of_selected_lighthgnn_is_imposed_on_lighthgnn_plus(bench):
    from graphkit.benchmarking import summarize

    args = _grid_args(model=["lighthgnn", "lighthgnn+"], hyperedge_weight=[1.0],
                      singletons=["include", "exclude"], student_norm=["batch", "none"])
    val = {"lighthgnn [lamb=0, tau=1, norm=batch]": 0.5,
           "lighthgnn [lamb=0, tau=1, norm=none]": 0.6,  # LightHGNN prefers no BN
           "lighthgnn+ [lamb=0, tau=1, beta=1, singletons=include, rho=1, norm=batch]": 0.9,
           "lighthgnn+ [lamb=0, tau=1, beta=1, singletons=exclude, rho=1, norm=batch]": 0.8,
           "lighthgnn+ [lamb=0, tau=1, beta=1, singletons=include, rho=1, norm=none]": 0.55,
           "lighthgnn+ [lamb=0, tau=1, beta=1, singletons=exclude, rho=1, norm=none]": 0.65}
    assert sorted(val) == sorted(n for n, _, _ in bench.model_specs(args))
    results = {n: [{"val_accuracy": v, "accuracy": 1 - v}] for n, v in val.items()}
    rows = [summarize(n, "d", "accuracy", [1 - v], 1.0, 1.0) for n, v in val.items()]
    sel = {r.system: r for r in bench.selected_rows(rows, results, args)}
    assert sel["lighthgnn"].extra["selected"]["norm"] == "none"
    # LightHGNN+'s best point overall has the BN; the rule restricts it to no BN.
    assert sel["lighthgnn+"].extra["selected"] == {
        "lamb": 0.0, "tau": 1.0, "norm": "none", "hyperedge_weight": 1.0,
        "singletons": "exclude", "noise": 1.0}
    assert sel["lighthgnn+"].mean == pytest.approx(0.35)


def test_production_accuracy_runs_the_teacher_on_the_full_hypergraph(bench):
    """As the official ``prod_train.py``: "prod" accuracy = the teacher on the full hypergraph
    over all test vertices (not a mix of its observed-sub-hypergraph and full-hypergraph
    predictions); for a student it is the size-weighted mean of trans and ind."""
    from torch_geometric.data import Data

    from graphkit.data.hypergraph import subhypergraph
    from graphkit.metrics import accuracy
    from graphkit.nn import LightHGNN

    torch.manual_seed(0)
    n = 40
    lists = [sorted(torch.randperm(n)[:4].tolist()) for _ in range(30)]
    index, m = hyperedge_index_from_list(lists, num_nodes=n)
    index, m = add_singleton_hyperedges(index, n, m)
    x = torch.randn(n, 6) * 5
    test = torch.zeros(n, dtype=torch.bool)
    test[10:] = True
    obs = torch.arange(20)  # 10 "train/val" + 10 observed test vertices; 20-39 unseen
    ind = torch.zeros(n, dtype=torch.bool)
    ind[20:] = True
    sub, sub_m, _ = subhypergraph(obs, index, n, m)
    sub, sub_m = add_singleton_hyperedges(sub, 20, sub_m)
    tmask = torch.zeros(20, dtype=torch.bool)
    tmask[10:] = True
    observed = Data(x=x[obs], hyperedge_index=sub, num_hyperedges=sub_m,
                    test_mask=tmask, num_nodes=20)
    teacher = HGNN(6, 8, 3).eval()
    z = teacher(x, index, num_hyperedges=m)
    y = z.argmax(1)  # labels = the full-hypergraph predictions: its accuracy is 1
    observed.y = y[obs]
    full = Data(x=x, y=y, hyperedge_index=index, num_hyperedges=m, num_nodes=n)
    got = bench.production_metrics(teacher, "hgnn", observed, full, test, ind)
    assert got["accuracy"] == got["accuracy_ind"] == 1.0
    z_obs = teacher(x[obs], sub, num_hyperedges=sub_m)
    # The sub-hypergraph changes some observed test predictions, so a weighted mean of
    # trans and ind would be below 1.
    assert got["accuracy_trans"] == pytest.approx(accuracy(z_obs[tmask], y[10:20]))
    assert got["accuracy_trans"] < 1.0
    student = LightHGNN(6, 8, 3).eval()
    got = bench.production_metrics(student, "lighthgnn", observed, full, test, ind)
    assert got["accuracy"] == pytest.approx(
        (10 * got["accuracy_trans"] + 20 * got["accuracy_ind"]) / 30)


def test_rows_keep_the_per_run_values(bench):
    args = _grid_args(model=["hgnn"], select_on_val=False, setting="transductive",
                      teacher="hgnn", loss="paper", student_norm=["batch"])
    results = {"hgnn": [{"accuracy": 0.5, "val_accuracy": 0.4, "seconds": 1.0},
                        {"accuracy": 0.7, "val_accuracy": 0.6, "seconds": 1.0}]}
    rows = {r.metric: r for r in bench.summarize_runs("d", results, 1.0, args)}
    assert rows["accuracy"].extra["per_run"] == [0.5, 0.7]
    assert rows["accuracy"].mean == pytest.approx(0.6)
    assert rows["val_accuracy"].extra["per_run"] == [0.4, 0.6]


def _toy_hypergraph(num_nodes: int = 60, classes: int = 3):
    from torch_geometric.data import Data
    g = torch.Generator().manual_seed(0)
    y = torch.arange(num_nodes) % classes
    x = torch.nn.functional.one_hot(y, classes).float()
    x = x + torch.rand(num_nodes, classes, generator=g)
    x = torch.cat([x, torch.rand(num_nodes, 5, generator=g)], dim=1)
    members = [torch.nonzero(y == c).flatten()[torch.randperm(20, generator=g)[:4]].tolist()
               for c in range(classes) for _ in range(6)]
    index, m = hyperedge_index_from_list(members, num_nodes=num_nodes)
    index, m = add_singleton_hyperedges(index, num_nodes, m)
    return Data(x=x, y=y, hyperedge_index=index, num_hyperedges=m, num_nodes=num_nodes)


@pytest.mark.parametrize("setting", ["transductive", "production"])
def test_results_do_not_depend_on_the_other_models_run(bench, monkeypatch, setting):
    data = _toy_hypergraph()

    def run(models):
        monkeypatch.setattr("sys.argv", ["hypergraph.py", "--model", *models, "--setting", setting,
                                         "--epochs", "4", "--num-train", "5", "--num-val", "5",
                                         "--dense"])
        args = bench.parse_args()
        runner = bench.run_transductive if setting == "transductive" else bench.run_production
        torch.manual_seed(123)  # a different global state before each call must not matter
        torch.rand(int(torch.randint(1, 9, ())))
        return runner(data.clone(), args, 7)

    alone = {m: run([m])[m] for m in ("mlp", "lighthgnn", "lighthgnn+")}
    together = run(["hgnn", "mlp", "lighthgnn", "lighthgnn+"])
    for m, values in alone.items():
        assert values["accuracy"] == together[m]["accuracy"], m
        assert values["val_accuracy"] == together[m]["val_accuracy"], m


# each failed only inside the run (a torch or library error after loading, training or the
# earlier grid points), or ran with it: a NaN weight or rate passed the range checks
@pytest.mark.parametrize("flags, message", [
    (["--tau", "nan"],
     "argument --tau: must be a finite number, got nan"),
    (["--noise", "nan"],
     "argument --noise: must be a finite number, got nan"),
    (["--hidden", "0"],
     "argument --hidden: must be >= 1, got 0"),
    (["--dataset", "cocitation-cora", "cocitation-cor"],
     "argument --dataset: unknown dataset 'cocitation-cor'"),
])
def test_bad_values_fail_when_the_arguments_are_parsed(usage_error, flags, message):
    assert message in usage_error("hypergraph", flags)
