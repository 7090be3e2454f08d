"""Topological concentration: the vectorised TC against the plain loop and a hand-worked
example, ATC's random-projection limit, the TC-guided reweighting and bad inputs."""

import pytest
import torch
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from graphkit.extras.graph.topological_concentration import (
    approximate_topological_concentration,
    atc_limit,
    tc_reweight,
    topological_concentration,
    topological_concentration_loop,
)

# 0-1, 0-2, 1-2, 2-3, 3-4 (degrees 2, 2, 3, 2, 1; mean 2, so beta = 1/2)
TRAIN = torch.tensor([[0, 0, 1, 2, 3], [1, 2, 2, 3, 4]])
QUERY = torch.tensor([[0], [3]])


def random_graph(n=40, m=90, q=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, n, (2, m), generator=g), torch.randint(0, n, (2, q), generator=g), n


def test_hand_worked_five_node_example():
    """Query edge 0-3. K = 1: N(0) = {1, 2}, N(3) = {2, 4} share node 2, so c_03 = 1/2 and
    c_30 = 1/2. K = 2 (beta 1/2): node 0's 2-hop multiset is N(1) + N(2) = {0: 2, 1, 2, 3}
    (5 walks), node 3's 2-hop set is N(2) | N(4) = {0, 1, 3}. Numerator of c_03:
    (1,1) 1 [node 2] + (1,2) 1/2 [node 1] + (2,1) 1/2 [node 2] + (2,2) 1/4 * (2 + 1 + 1)
    = 3; denominator 2 (1 + 1/2) + 5 (1/2 + 1/4) = 6.75: c_03 = 4/9. Node 3's multisets are
    {2, 4} and {0, 1, 3: 2} (4 walks), node 0's sets {1, 2} and {0, 1, 2, 3}: numerator
    1 + 1/2 + 1/2 + 1/4 * 4 = 3, denominator 2 * 1.5 + 4 * 0.75 = 6: c_30 = 1/2.
    Train-train, K = 1 (denominator |N(i)| - 1, degree >= 2 needed): node 0: c_01 = |{2}| / 1,
    c_02 = |{1}| / 1 -> 1; node 1 -> 1; node 2: c_20 = 1/2, c_21 = 1/2, c_23 = 0 -> 1/3;
    node 3: no shared neighbour -> 0; node 4 has degree 1 -> 0."""
    expected = {
        (QUERY, 1): [0.5, 0, 0, 0.5, 0],
        (QUERY, 2): [4 / 9, 0, 0, 0.5, 0],
        (TRAIN, 1): [1, 1, 1 / 3, 0, 0],
    }
    for (query, k), want in expected.items():
        want = torch.tensor(want, dtype=torch.float64)
        for fn in (topological_concentration, topological_concentration_loop):
            got = fn(TRAIN, query, 5, num_hops=k)
            assert torch.allclose(got, want, atol=1e-12), (fn.__name__, k, got)


@pytest.mark.parametrize("num_hops", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_matches_loop_on_random_graph(num_hops, seed):
    train, query, n = random_graph(seed=seed)
    for q in (query, train):  # train-test and train-train (the -1 correction and degree rule)
        fast = topological_concentration(train, q, n, num_hops)
        slow = topological_concentration_loop(train, q, n, num_hops)
        assert fast.dtype == torch.float64 and fast.shape == (n,)
        assert (fast - slow).abs().max() < 1e-12
        assert bool((fast > 0).any())
    fast = topological_concentration(train, query, n, num_hops, beta=0.3)
    slow = topological_concentration_loop(train, query, n, num_hops, beta=0.3)
    assert (fast - slow).abs().max() < 1e-12


def test_duplicates_and_direction_do_not_matter():
    train, query, n = random_graph(seed=2)
    base = topological_concentration(train, query, n, 2)
    doubled = topological_concentration(torch.cat([train, train.flip(0)], 1),
                                        torch.cat([query, query, query.flip(0)], 1), n, 2)
    assert torch.equal(base, doubled)


def _exact_projection_cosine(train, query, n, num_hops):
    """mean_j cos(M_i, M_j) with M = mean_k A_hat^k, A_hat = (D + I)^-1 (A + I), dense."""
    a = torch.zeros(n, n, dtype=torch.float64)
    a[train[0], train[1]] = 1
    a[train[1], train[0]] = 1
    a += torch.eye(n, dtype=torch.float64)
    a.clamp_(max=1)  # closed neighbourhoods as sets, as ATC's sparse matrix merges a self-loop
    a_hat = a / a.sum(1, keepdim=True)
    power, m = torch.eye(n, dtype=torch.float64), torch.zeros(n, n, dtype=torch.float64)
    for _ in range(num_hops):
        power = a_hat @ power
        m += power / num_hops
    q = torch.unique(torch.cat([query, query.flip(0)], 1), dim=1)
    cos = torch.nn.functional.cosine_similarity(m[q[0]], m[q[1]], dim=1)
    out = torch.zeros(n, dtype=torch.float64).index_add_(0, q[0], cos)
    return out / torch.bincount(q[0], minlength=n).clamp(min=1)


def test_atc_tends_to_the_cosine_it_projects_as_dimensions_grow():
    """ATC's Z Z^T is a Gaussian random projection of M M^T (M = mean_k A_hat^k), so its
    cosines converge to M's row cosines: the error shrinks with the dimension."""
    train, query, n = random_graph(n=30, m=70, q=25, seed=3)
    exact = _exact_projection_cosine(train, query, n, 2).float()
    errors = {}
    for dim in (8, 128, 8192):
        atc = approximate_topological_concentration(
            train, query, n, 2, dim=dim, generator=torch.Generator().manual_seed(0))
        errors[dim] = float((atc - exact).abs().max())
    assert errors[8192] < 0.05 < errors[8]
    assert errors[8192] < errors[128] < errors[8]


@pytest.mark.parametrize("num_hops", [1, 2, 3])
def test_atc_limit_is_the_exact_cosine_atc_projects(num_hops):
    train, query, n = random_graph(n=30, m=70, q=25, seed=3)
    assert bool((train[0] == train[1]).any())  # a self-loop edge is covered
    limit = atc_limit(train, query, n, num_hops)
    assert limit.dtype == torch.float64
    torch.testing.assert_close(limit, _exact_projection_cosine(train, query, n, num_hops),
                               rtol=0, atol=1e-12)
    big = approximate_topological_concentration(train, query, n, num_hops, dim=8192,
                                                generator=torch.Generator().manual_seed(0))
    assert float((big.double() - limit).abs().max()) < 0.05


def test_atc_shape_and_nodes_without_queries():
    train, query, n = random_graph(seed=4)
    atc = approximate_topological_concentration(train, query, n, 1,
                                                generator=torch.Generator().manual_seed(0))
    assert atc.shape == (n,) and atc.dtype == torch.float32
    without = torch.ones(n, dtype=torch.bool)
    without[query.flatten()] = False
    assert bool((atc[without] == 0).all()) and bool((atc.abs() <= 1 + 1e-6).all())


def test_reweight_on_tiny_graph():
    """Validation edge 0-3. Targets with validation neighbours: 0 (N_val = {3}) and 3
    (N_val = {0}). Into 0: from 1, |{0, 2} & {3}| = 0; from 2, |{0, 1, 3} & {3}| / 3 = 1/3;
    self-loop, |{1, 2} & {3}| = 0: normalised, edge 2 -> 0 gains 1. Into 3: from 2,
    |{0, 1, 3} & {0}| / 3; from 4 and the self-loop 0: edge 2 -> 3 gains 1. Every other edge
    keeps GCN's weight."""
    edge_index, weight = tc_reweight(TRAIN, QUERY, 5)
    ref_index, ref_weight = gcn_norm(torch.cat([TRAIN, TRAIN.flip(0)], 1), None, 5,
                                     add_self_loops=True)
    ref = {tuple(e): w for e, w in zip(ref_index.t().tolist(), ref_weight.tolist())}
    got = {tuple(e): w for e, w in zip(edge_index.t().tolist(), weight.tolist())}
    assert set(got) == set(ref) and len(got) == 5 * 2 + 5
    for e, w in got.items():
        assert w == pytest.approx(ref[e] + (1.0 if e in {(2, 0), (2, 3)} else 0.0))
    # GCN's weight of 2 -> 0: degrees with self-loops 4 and 3
    assert got[(2, 0)] == pytest.approx(1 / (4 * 3) ** 0.5 + 1)
    half = dict(zip(map(tuple, edge_index.t().tolist()),
                    tc_reweight(TRAIN, QUERY, 5, alpha=0.5)[1].tolist()))
    assert half[(2, 3)] == pytest.approx(ref[(2, 3)] + 0.5)
    # no validation edges: plain GCN weights
    _, plain = tc_reweight(TRAIN, torch.empty(2, 0, dtype=torch.long), 5)
    assert torch.allclose(plain, torch.tensor([ref[e] for e in got]))


def test_reweight_feeds_gcnconv_at_the_target():
    edge_index, weight = tc_reweight(TRAIN, QUERY, 5)
    conv = GCNConv(5, 5, normalize=False, bias=False)
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(5))
    dense = torch.zeros(5, 5)
    dense[edge_index[1], edge_index[0]] = weight  # row: target, column: source
    x = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(conv(x, edge_index, weight), dense @ x, atol=1e-6)


@pytest.mark.parametrize("fn", [topological_concentration, topological_concentration_loop,
                                approximate_topological_concentration, atc_limit])
def test_bad_inputs(fn):
    with pytest.raises(ValueError, match="out of range"):
        fn(TRAIN, torch.tensor([[0], [5]]), 5)
    with pytest.raises(ValueError, match="edge_index_train holds node id 4"):
        fn(TRAIN, QUERY, 4)
    with pytest.raises(ValueError, match="query_edges is empty"):
        fn(TRAIN, torch.empty(2, 0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="edge_index_train is empty"):
        fn(torch.empty(2, 0, dtype=torch.long), QUERY, 5)
    for hops in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="num_hops"):
            fn(TRAIN, QUERY, 5, num_hops=hops)
    with pytest.raises(ValueError, match="negative node id"):
        fn(TRAIN, torch.tensor([[-1], [2]]), 5)
    with pytest.raises(ValueError, match="empty"):
        fn(TRAIN, QUERY, 0)
    with pytest.raises(ValueError, match="num_nodes must be an integer, got 4.5"):
        fn(TRAIN, QUERY, 4.5)


def test_bad_beta_dim_alpha():
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            topological_concentration(TRAIN, QUERY, 5, beta=beta)
        with pytest.raises(ValueError, match="beta"):
            topological_concentration_loop(TRAIN, QUERY, 5, beta=beta)
    with pytest.raises(ValueError, match="dim"):
        approximate_topological_concentration(TRAIN, QUERY, 5, dim=0)
    with pytest.raises(ValueError, match="alpha"):
        tc_reweight(TRAIN, QUERY, 5, alpha=-1.0)
    with pytest.raises(ValueError, match="edge_index_valid holds node id 7"):
        tc_reweight(TRAIN, torch.tensor([[0], [7]]), 5)
    with pytest.raises(ValueError, match="num_nodes must be an integer"):
        tc_reweight(TRAIN, QUERY, 5.5)


def test_vectorised_matches_loop_on_cora(data_root):
    """The spec's check (max-abs 1e-9 on Cora), on the benchmark's 70/10/20 split, for the
    train-train, train-val and train-test variants at K = 1 and 2."""
    from graphkit.data import load
    from graphkit.train.forward import link_split

    data = load("Cora", root=data_root)
    splits = link_split(data, split=0, seed_step=1, num_val=0.1, num_test=0.2)
    train, val, test = (g.edge_label_index[:, g.edge_label == 1] for g in splits)
    for query in (train, val, test):
        for k in (1, 2):
            fast = topological_concentration(train, query, data.num_nodes, k)
            slow = topological_concentration_loop(train, query, data.num_nodes, k)
            assert (fast - slow).abs().max() < 1e-9
            assert float(fast.max()) > 0
