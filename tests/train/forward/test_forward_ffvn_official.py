"""FF-VN against a dense re-derivation of the official ``GNN_VNLA`` computation.

The reference below follows facebookresearch/forwardgnn
(``src/forward_learning/nodeclass/gnn_ff_with_virtual_nodes.py``, ``forward_learning/loss.py``,
``exp/nodeclass/nodeclass-ff-virtual_nodes.sh``) with plain dense algebra and none of graphkit's
helpers: row L2 normalisation (+1e-8) of every layer's input; GCN as
``D^-1/2 (A + I) D^-1/2 X W^T + b`` then ReLU; virtual class nodes linked both ways to the
training nodes only; loss ``BCE(sum(h^2) - theta, 1)`` on the training rows of the positive graph
plus the mean over negative graphs of ``BCE(sum(h^2) - theta, 0)``; negatives reading the
positive graph's features; validation and inference by ``mean(h^2)`` summed over layers, with
labelled nodes linked to their true class node and evaluation nodes to the candidate's.
"""

import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from graphkit.train.forward import FFVirtualNodes, LayerwiseTrainer, wrong_classes

THETA = 2.0


def three_classes() -> Data:
    """45 nodes in three classes, undirected edges mostly within a class, no self-loops."""
    g = torch.Generator().manual_seed(3)
    n, c = 45, 3
    y = torch.arange(n) % c
    x = torch.rand(n, 6, generator=g) + F.one_hot(y, 6).float()
    src = torch.randint(0, n, (160,), generator=g)
    dst = torch.randint(0, n, (160,), generator=g)
    keep = (src != dst) & ((y[src] == y[dst]) | (torch.rand(160, generator=g) < 0.2))
    ei = torch.stack([src[keep], dst[keep]])
    idx = torch.arange(n)
    return Data(x=x, edge_index=torch.cat([ei, ei.flip(0)], dim=1), y=y,
                train_mask=idx < 21, val_mask=(idx >= 21) & (idx < 33), test_mask=idx >= 33)


def linked_edges(data: Data, nodes: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    n = data.num_nodes
    return torch.cat([data.edge_index, torch.stack([nodes, classes + n]),
                      torch.stack([classes + n, nodes])], dim=1)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return x / (torch.norm(x, p=2, dim=1, keepdim=True) + 1e-8)


def gcn_relu(layer, x: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The official GNNConv("GCN"): PyG GCNConv (self-loops, symmetric normalisation), ReLU."""
    m = x.size(0)
    a = torch.zeros(m, m, dtype=x.dtype)
    a.index_put_((edges[1], edges[0]), torch.ones(edges.size(1), dtype=x.dtype),
                 accumulate=True)
    a = a + torch.eye(m, dtype=x.dtype)
    d = a.sum(dim=1).pow(-0.5)
    w, b = layer.conv.lin.weight.detach(), layer.conv.bias.detach()
    return torch.relu(d[:, None] * a * d[None, :] @ (x @ w.t()) + b)


def ff_logit(h: torch.Tensor) -> torch.Tensor:
    return h.pow(2).sum(dim=1) - THETA


def test_ffvn_step_losses_gap_and_scores_match_the_official_computation():
    data = three_classes()
    n, c = data.num_nodes, 3
    train, val, test = data.train_mask, data.val_mask, data.test_mask
    train_idx = train.nonzero().view(-1)
    torch.manual_seed(0)
    net = FFVirtualNodes("gcn", 6, 8, c, num_layers=2)
    initial = [{k: v.clone() for k, v in layer.state_dict().items()} for layer in net.layers]
    torch.manual_seed(1)
    wrong = wrong_classes(data.y[train], c, num_negs=100)  # what fit draws first
    torch.manual_seed(1)
    # two steps per layer and one validation check, so the restored checkpoint is the last state
    logs = net.fit(data, train, val, LayerwiseTrainer(epochs=2, val_every=2, patience=1))
    assert wrong.shape == (c - 1, int(train.sum()))

    x0 = normalise(torch.cat([data.x, net.virtual.features]))
    pos_edges = linked_edges(data, train_idx, data.y[train_idx])
    neg_edges = [linked_edges(data, train_idx, wrong[k]) for k in range(c - 1)]
    ref = FFVirtualNodes("gcn", 6, 8, c, num_layers=2)  # holds the initial parameters
    x_pos = x0
    for l, layer in enumerate(net.layers):
        ref.layers[l].load_state_dict(initial[l])
        # the first step's loss, from the layer's initial parameters
        hp = gcn_relu(ref.layers[l], x_pos, pos_edges)[train_idx]
        loss_pos = F.binary_cross_entropy_with_logits(ff_logit(hp), torch.ones(len(hp)))
        loss_neg = torch.stack([F.binary_cross_entropy_with_logits(
            ff_logit(gcn_relu(ref.layers[l], x_pos, e)[train_idx]), torch.zeros(len(hp)))
            for e in neg_edges]).mean()
        torch.testing.assert_close(torch.tensor(logs[l].losses[0]), loss_pos + loss_neg)
        # the official "TrainSep" at the restored checkpoint: mean positive minus negative logit
        gp = ff_logit(gcn_relu(layer, x_pos, pos_edges)[train_idx]).mean()
        gn = torch.cat([ff_logit(gcn_relu(layer, x_pos, e)[train_idx]) for e in neg_edges])
        assert abs(net.goodness_gap[l] - float(gp - gn.mean())) < 1e-5
        # the next layer's input, for positives and negatives alike
        x_pos = normalise(gcn_relu(layer, x_pos, pos_edges))

    def scores(eval_mask, labelled, layers):
        nodes = (labelled | eval_mask).nonzero().view(-1)
        out = []
        for k in range(c):
            classes = torch.where(labelled[nodes], data.y[nodes], torch.full_like(nodes, k))
            edges, x, total = linked_edges(data, nodes, classes), x0, 0.0
            for layer in net.layers[:layers]:
                x = gcn_relu(layer, x, edges)
                total = total + x[:n][eval_mask].pow(2).mean(dim=1)
                x = normalise(x)
            out.append(total)
        return torch.stack(out, dim=1)

    # validation (early stopping): training labels only; test: training and validation labels
    for l in range(2):
        acc = (scores(val, train, l + 1).argmax(1) == data.y[val]).float().mean()
        assert abs(logs[l].best_score - float(acc)) < 1e-6
    got = net.layer_scores(test, train | val)
    for l in range(2):
        torch.testing.assert_close(got[l], scores(test, train | val, l + 1), rtol=1e-5,
                                   atol=1e-6)
