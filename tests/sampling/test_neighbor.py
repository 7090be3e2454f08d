import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_geometric.data import Data

from graphkit.sampling import NeighborLoader, NeighborSampler

BACKENDS = ["numba", "torch"]


def random_graph(n: int, e: int, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    return Data(x=torch.randn(n, 3, generator=g), y=torch.arange(n), edge_index=ei,
                edge_attr=torch.arange(e, dtype=torch.float).view(-1, 1), num_nodes=n)


def check_subgraph(data: Data, out, num_neighbors, replace=False):
    """Brute-force check of one sample against the definition of hop-wise sampling."""
    ei = data.edge_index
    n_id, local, e_id = out.n_id, out.edge_index, out.e_id
    # every sampled edge exists, with the PyG direction (neighbour -> node sampled for)
    assert torch.equal(n_id[local], ei[:, e_id])
    assert n_id.unique().numel() == n_id.numel()
    assert sum(out.num_sampled_nodes) == n_id.numel()
    assert sum(out.num_sampled_edges) == e_id.numel()
    if not replace:
        assert e_id.unique().numel() == e_id.numel()
    indeg = torch.bincount(ei[1], minlength=data.num_nodes)
    node_start, edge_start = 0, 0
    for hop, k in enumerate(num_neighbors):
        frontier = torch.arange(node_start, node_start + out.num_sampled_nodes[hop])
        m = out.num_sampled_edges[hop]
        hop_edges = local[:, edge_start:edge_start + m]
        # this hop's edges are sampled for this hop's frontier only
        assert bool(torch.isin(hop_edges[1], frontier).all())
        counts = torch.bincount(hop_edges[1] - node_start, minlength=frontier.numel())
        deg = indeg[n_id[frontier]]
        if k < 0:
            want = deg
        elif replace:
            want = torch.where(deg > 0, k, 0)
        else:
            want = deg.clamp(max=k)
        assert torch.equal(counts, want)
        # nodes added next are exactly the sampled neighbours not seen before
        nxt = out.num_sampled_nodes[hop + 1]
        new = torch.arange(frontier[-1] + 1 if frontier.numel() else node_start,
                           node_start + out.num_sampled_nodes[hop] + nxt)
        seen_before = torch.arange(0, node_start + out.num_sampled_nodes[hop])
        srcs = hop_edges[0].unique()
        assert torch.equal(srcs[~torch.isin(srcs, seen_before)].sort().values, new)
        node_start += out.num_sampled_nodes[hop]
        edge_start += m


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("replace", [False, True])
def test_sample_against_brute_force(backend, replace):
    data = random_graph(60, 400, seed=0)
    sampler = NeighborSampler(data, [4, 3, -1], replace=replace, backend=backend)
    g = torch.Generator().manual_seed(1)
    for seeds in (torch.tensor([0]), torch.tensor([5, 3, 59, 17]), torch.arange(60)):
        out = sampler.sample(seeds, generator=g)
        assert torch.equal(out.n_id[: seeds.numel()], seeds) and out.batch_size == seeds.numel()
        check_subgraph(data, out, [4, 3, -1], replace)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_neighbors_equals_backward_bfs(backend):
    data = random_graph(40, 90, seed=3)
    out = NeighborSampler(data, [-1, -1], backend=backend).sample(torch.tensor([0, 1]))
    reach = {0, 1}
    frontier = {0, 1}
    ei = data.edge_index.t().tolist()
    for _ in range(2):
        frontier = {u for u, v in ei if v in frontier} - reach
        reach |= frontier
    assert set(out.n_id.tolist()) == reach


@pytest.mark.parametrize("backend", BACKENDS)
def test_uniform_without_replacement(backend):
    # node 0 has 6 in-neighbours; k=2: each is drawn with probability 1/3
    ei = torch.stack([torch.arange(1, 7), torch.zeros(6, dtype=torch.long)])
    sampler = NeighborSampler(Data(edge_index=ei, num_nodes=7), [2], backend=backend)
    g = torch.Generator().manual_seed(0)
    hits = torch.zeros(7)
    for _ in range(3000):
        out = sampler.sample(torch.tensor([0]), generator=g)
        assert out.e_id.unique().numel() == 2
        hits[out.n_id[1:]] += 1
    assert torch.allclose(hits[1:] / 3000, torch.full((6,), 1 / 3), atol=0.04)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_slices_attributes(backend):
    data = random_graph(30, 120, seed=4)
    data.train_mask = torch.arange(30) % 2 == 0
    batch = NeighborSampler(data, [3, 3], backend=backend).batch(torch.tensor([4, 2]))
    assert torch.equal(batch.x, data.x[batch.n_id])
    assert torch.equal(batch.y, batch.n_id)
    assert torch.equal(batch.train_mask, data.train_mask[batch.n_id])
    assert torch.equal(batch.edge_attr.view(-1), batch.e_id.float())
    assert batch.num_nodes == batch.n_id.numel() and batch.batch_size == 2
    assert batch.y[: batch.batch_size].tolist() == [4, 2]


def test_loader_covers_input_nodes_once():
    data = random_graph(50, 200, seed=5)
    mask = torch.arange(50) % 3 == 0
    loader = NeighborLoader(data, [2, 2], batch_size=7, input_nodes=mask, shuffle=True)
    seen = []
    for batch in loader:
        seeds = batch.n_id[: batch.batch_size]
        assert torch.equal(seeds, loader.input_nodes[batch.input_id])
        seen += seeds.tolist()
        check_subgraph(data, batch, [2, 2])
    assert sorted(seen) == mask.nonzero().view(-1).tolist()
    assert len(loader) == 3


def test_isolated_and_empty():
    data = Data(edge_index=torch.empty((2, 0), dtype=torch.long), num_nodes=5)
    for backend in BACKENDS:
        out = NeighborSampler(data, [3, 3], backend=backend).sample(torch.tensor([1, 4]))
        assert out.n_id.tolist() == [1, 4] and out.edge_index.shape == (2, 0)
        assert out.num_sampled_nodes == [2, 0, 0]


def test_bad_inputs():
    data = random_graph(10, 20, seed=6)
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborSampler(data, [0])
    with pytest.raises(ValueError, match="num_neighbors"):
        NeighborSampler(data, [])
    with pytest.raises(ValueError, match="backend"):
        NeighborSampler(data, [2], backend="cuda")
    with pytest.raises(ValueError, match="out of range"):
        NeighborSampler(Data(edge_index=torch.tensor([[0], [9]]), num_nodes=3), [2])
    for backend in BACKENDS:
        sampler = NeighborSampler(data, [2], backend=backend)
        with pytest.raises(ValueError, match="distinct"):
            sampler.sample(torch.tensor([1, 1]))
        with pytest.raises(ValueError, match="must lie in"):
            sampler.sample(torch.tensor([10]))
        # the sampler is still usable after a rejected batch
        assert sampler.sample(torch.tensor([1])).n_id[0] == 1
    with pytest.raises(ValueError, match="input_nodes"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([11]))
    with pytest.raises(ValueError, match="mask"):
        NeighborLoader(data, [2], input_nodes=torch.ones(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_neighbors entries must be integers"):
        NeighborSampler(data, [2.5])  # was sampled with 2 per hop
    # float seeds were truncated to ids (1.5 -> 1)
    with pytest.raises(ValueError, match="input_nodes must hold integer node ids"):
        NeighborLoader(data, [2], input_nodes=torch.tensor([1.5]))
    # NaN features, or features with another row count (which a batch passed whole), at once
    edge_index = torch.tensor([[0, 1], [1, 2]])
    x = torch.tensor([[0.0], [float("nan")], [2.0]])
    with pytest.raises(ValueError, match="x holds NaN values"):
        NeighborSampler(Data(x=x, edge_index=edge_index), [2])
    with pytest.raises(ValueError, match="x has 2 rows but the graph has 3 nodes"):
        NeighborSampler(Data(x=torch.zeros(2, 1), edge_index=edge_index, num_nodes=3), [2])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 15),
    e=st.integers(0, 60),
    hops=st.lists(st.sampled_from([-1, 1, 2, 3]), min_size=1, max_size=3),
    replace=st.booleans(),
    backend=st.sampled_from(BACKENDS),
    seed=st.integers(0, 1000),
)
def test_property_sampler(n, e, hops, replace, backend, seed):
    data = random_graph(n, e, seed)
    g = torch.Generator().manual_seed(seed)
    seeds = torch.randperm(n, generator=g)[: max(1, n // 2)]
    out = NeighborSampler(data, hops, replace=replace, backend=backend).sample(seeds, g)
    check_subgraph(data, out, hops, replace)


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_fanout_reproduces_full_graph_message_passing(backend):
    """With num_neighbors=[-1, -1] a 2-layer GNN gives the seeds their full-graph outputs,
    which holds only if messages flow neighbour -> seed as in PyG."""
    from torch_geometric.nn import SAGEConv

    torch.manual_seed(0)
    data = random_graph(40, 160, seed=8)
    conv1, conv2 = SAGEConv(3, 8), SAGEConv(8, 4)

    def forward(x, edge_index):
        return conv2(conv1(x, edge_index).relu(), edge_index)

    full = forward(data.x, data.edge_index)
    loader = NeighborLoader(data, [-1, -1], batch_size=6, backend=backend)
    for batch in loader:
        out = forward(batch.x, batch.edge_index)[: batch.batch_size]
        assert torch.allclose(out, full[batch.n_id[: batch.batch_size]], atol=1e-5)
