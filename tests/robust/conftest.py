import pytest
import torch


def two_communities(n_per: int = 12, seed: int = 0, p_in: float = 0.5, p_out: float = 0.03,
                    num_features: int = 20):
    """A small two-block SBM with block-correlated binary features, labels and masks."""
    from torch_geometric.data import Data
    from torch_geometric.utils import to_undirected

    gen = torch.Generator().manual_seed(seed)
    n = 2 * n_per
    y = torch.arange(n) // n_per
    same = y.view(-1, 1) == y.view(1, -1)
    prob = torch.where(same, torch.tensor(p_in), torch.tensor(p_out))
    upper = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    edge_index = to_undirected(upper.nonzero().t(), num_nodes=n)
    feat_p = torch.full((n, num_features), 0.05)
    half = num_features // 2
    feat_p[y == 0, :half] = 0.6
    feat_p[y == 1, half:] = 0.6
    x = (torch.rand(n, num_features, generator=gen) < feat_p).float()
    perm = torch.randperm(n, generator=gen)
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][perm[:6]] = True
    masks[1][perm[6:12]] = True
    masks[2][perm[12:]] = True
    return Data(x=x, edge_index=edge_index, y=y, train_mask=masks[0], val_mask=masks[1],
                test_mask=masks[2], num_nodes=n)


@pytest.fixture
def sbm():
    return two_communities()
