import pytest
import torch
from torch_geometric.data import Data


@pytest.fixture
def two_blobs() -> Data:
    """60 nodes in two classes: class-dependent features, edges only within a class."""
    g = torch.Generator().manual_seed(0)
    n = 60
    y = torch.arange(n) % 2
    x = torch.randn(n, 8, generator=g) + 1.5 * torch.nn.functional.one_hot(y, 8).float()
    src = torch.randint(0, n, (300,), generator=g)
    dst = torch.randint(0, n, (300,), generator=g)
    keep = y[src] == y[dst]
    edge_index = torch.stack([src[keep], dst[keep]])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    idx = torch.arange(n)
    return Data(x=x, edge_index=edge_index, y=y, train_mask=idx < 20,
                val_mask=(idx >= 20) & (idx < 40), test_mask=idx >= 40)


@pytest.fixture
def block_link_graph():
    """``make(n, features, pairs, signal)``: ``n`` nodes in two classes, undirected edges only
    within a class (from ``pairs`` random draws), features with a class signal: a graph whose
    links a GNN can predict."""
    def make(n: int, features: int, pairs: int, signal: float) -> Data:
        g = torch.Generator().manual_seed(0)
        y = torch.arange(n) % 2
        src, dst = torch.randint(0, n, (2, pairs), generator=g)
        keep = (y[src] == y[dst]) & (src < dst)
        ei = torch.unique(torch.stack([src[keep], dst[keep]]), dim=1)
        ei = torch.cat([ei, ei.flip(0)], 1)
        x = torch.randn(n, features, generator=g) + signal * torch.nn.functional.one_hot(
            y, features).float()
        return Data(x=x, edge_index=ei, num_nodes=n)

    return make


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny graphs run fastest single-threaded (and do not thrash a shared, loaded CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
