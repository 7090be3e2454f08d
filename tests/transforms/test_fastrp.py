import numpy as np
import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import to_undirected

from graphkit.embed import fastrp
from graphkit.transforms import FastRP


@pytest.fixture()
def data():
    ei = to_undirected(torch.tensor([[0, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 2]]))
    return Data(x=torch.ones(6, 3), edge_index=ei, num_nodes=6)  # node 5 isolated


def test_stores_the_embedding(data):
    out = FastRP(dim=8)(data.clone())
    assert out.fastrp.shape == (6, 8) and out.fastrp.dtype == torch.float32
    ref = fastrp(data.edge_index, dim=8, num_nodes=6)
    np.testing.assert_allclose(out.fastrp.numpy(), ref)
    assert torch.equal(out.x, data.x)


def test_weighted_uses_the_edge_weights(data):
    data.edge_weight = torch.linspace(0.5, 3.0, data.num_edges)
    out = FastRP(dim=8, weighted=True)(data.clone())
    np.testing.assert_allclose(out.fastrp.numpy(), fastrp(data, dim=8, weighted=True))
    assert not np.allclose(out.fastrp.numpy(), fastrp(data.edge_index, dim=8, num_nodes=6))
    del data.edge_weight
    with pytest.raises(ValueError, match="weighted=True needs data.edge_weight"):
        FastRP(dim=8, weighted=True)(data)


def test_concatenates_to_features_and_passes_options(data):
    out = FastRP(dim=4, attr="x", cat=True, dtype="float64", seed=1)(data.clone())
    assert out.x.shape == (6, 7) and torch.equal(out.x[:, :3], data.x)
    ref = fastrp(data.edge_index, dim=4, num_nodes=6, dtype="float64", seed=1)
    np.testing.assert_allclose(out.x[:, 3:].numpy(), ref.astype(np.float32))
    assert "FastRP(dim=4" in repr(FastRP(dim=4))


def test_bad_arguments(data):
    with pytest.raises(ValueError, match="dim must be positive"):
        FastRP(dim=0)
    with pytest.raises(ValueError, match="iteration_weights is empty"):
        FastRP(dim=4, iteration_weights=())(data.clone())


def test_concatenation_names_bad_features_and_attr_must_be_named(data):
    # torch.cat failed with size errors naming neither data.x nor the node count
    short = data.clone()
    short.x = torch.ones(4, 3)
    with pytest.raises(ValueError, match="data.x has 4 rows but the graph has 6 nodes"):
        FastRP(dim=4, attr="x", cat=True)(short)
    cube = data.clone()
    cube.x = torch.ones(6, 2, 2)
    with pytest.raises(ValueError, match=r"data.x must be one- or two-dimensional"):
        FastRP(dim=4, attr="x", cat=True)(cube)
    with pytest.raises(ValueError, match="dim must be a positive integer, got 2.5"):
        FastRP(dim=2.5)  # was truncated to 2 columns
    with pytest.raises(ValueError, match="attr must be a non-empty"):
        FastRP(dim=4, attr="")  # stored the embedding under data[""]
