"""Robustness-oriented contrastive representation learning (STABLE, stage 1).

Li et al., "Reliable Representations Make A Stronger Defender: Unsupervised Structure
Refinement for Robust GNN", KDD 2022. A Deep Graph Infomax encoder (Velickovic et al.,
ICLR 2019) whose two graph summaries come from views that *recover* a random share of the edges
the Jaccard pre-processing deleted, so the embeddings become insensitive to those edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.data.validation import check_edge_index, check_features, check_num_nodes
from graphkit.nn._checks import check_node_features
from graphkit.nn.conv import degree_power_norm
from graphkit.robust.augment import recover_edges
from graphkit.train.early_stopping import EarlyStopping

__all__ = ["DGIEncoder", "RecoverDGI", "ContrastiveResult", "contrastive_embeddings",
           "normalized_adjacency"]


def normalized_adjacency(
    edge_index: Tensor, num_nodes: int, self_loop_weight: float, device: torch.device | str
) -> Tensor:
    r"""Sparse :math:`D^{-1/2}(A + \beta I)D^{-1/2}` with :math:`\beta` = ``self_loop_weight``."""
    loop = torch.arange(num_nodes, device=edge_index.device)
    ei = torch.cat([edge_index, torch.stack([loop, loop])], dim=1)
    w = torch.cat([torch.ones(edge_index.size(1), device=ei.device),
                   torch.full((num_nodes,), self_loop_weight, device=ei.device)])
    ei, w = degree_power_norm(ei, w, num_nodes, alpha=-0.5, add_self_loops=False)
    # row = target i, column = source j
    adj = torch.sparse_coo_tensor(ei.flip(0), w, (num_nodes, num_nodes), check_invariants=True)
    return adj.coalesce().to(device)


class DGIEncoder(nn.Module):
    r"""The one-layer GCN encoder of `"Deep Graph Infomax" <https://arxiv.org/abs/1809.10341>`_
    (Velickovic et al., ICLR 2019), as STABLE uses it:

    .. math::
        \mathbf{H} = \mathrm{PReLU}\big(\hat{\mathbf{A}} \mathbf{X} \mathbf{W} + \mathbf{b}\big),
        \qquad \hat{\mathbf{A}} = \mathbf{D}^{-1/2}(\mathbf{A} + \beta\mathbf{I})
        \mathbf{D}^{-1/2}.

    Args:
        in_channels (int): input feature size.
        hidden_channels (int): embedding size (default: ``512``).

    Shapes:
        - **input:** features :math:`(N, F)` (dense or sparse), sparse :math:`\hat{A}` of
          shape :math:`(N, N)`
        - **output:** :math:`(N, D)`
    """

    def __init__(self, in_channels: int, hidden_channels: int = 512) -> None:
        super().__init__()
        self.lin = nn.Linear(in_channels, hidden_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(hidden_channels))
        self.act = nn.PReLU()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.zeros_(self.bias)
        self.act.reset_parameters()

    def transform(self, x: Tensor) -> Tensor:
        """:math:`XW` (sparse-aware), shared by every view in an epoch."""
        # metadata only: a wrong width failed in the matmul naming neither x nor the width
        check_node_features(x, self.lin.in_features)
        if x.layout != torch.strided:
            return torch.sparse.mm(x, self.lin.weight.t())
        return self.lin(x)

    def propagate(self, adj: Tensor, xw: Tensor) -> Tensor:
        """:math:`\\mathrm{PReLU}(\\hat{A} \\cdot XW + b)`; ``xw`` may stack several
        ``[N, D]`` blocks side by side, each gets the bias."""
        if not adj.is_floating_point():  # metadata only; an edge_index failed in the matmul
            raise ValueError(f"adj must be the sparse normalised adjacency (build it with "
                             f"graphkit.robust.contrastive.normalized_adjacency), got a "
                             f"{adj.dtype} tensor of shape {list(adj.shape)}")
        out = torch.sparse.mm(adj, xw)
        out = out.view(out.size(0), -1, self.bias.numel()) + self.bias
        return self.act(out).view(xw.shape)

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        return self.propagate(adj, self.transform(x))


class RecoverDGI(nn.Module):
    r"""DGI with two recover-augmented summaries, the contrastive model of `"Reliable
    Representations Make A Stronger Defender: Unsupervised Structure Refinement for Robust GNN"
    <https://arxiv.org/abs/2207.00012>`_ (Li et al., KDD 2022), after `"Deep Graph Infomax"
    <https://arxiv.org/abs/1809.10341>`_ (Velickovic et al., ICLR 2019).

    With :math:`h = E(X, \hat{A})`, negatives :math:`\tilde{h} = E(X_{\pi}, \hat{A})` (rows
    shuffled), summaries :math:`s_v = \sigma(\mathrm{mean}\,E(X, \hat{A}_v))` of the views
    :math:`v \in \{1, 2\}` and a bilinear critic :math:`D(h, s) = h^\top W s + b`, the logits

    .. math::
        \ell = \big[D(h, s_1) + D(h, s_2);\; D(\tilde{h}, s_1) + D(\tilde{h}, s_2)\big]

    are trained with binary cross-entropy against labels ``[1; 0]``.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 512) -> None:
        super().__init__()
        self.encoder = DGIEncoder(in_channels, hidden_channels)
        self.critic = nn.Bilinear(hidden_channels, hidden_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        nn.init.xavier_uniform_(self.critic.weight)
        nn.init.zeros_(self.critic.bias)

    def forward(self, x: Tensor, adj: Tensor, views: list[Tensor], perm: Tensor) -> Tensor:
        xw = self.encoder.transform(x)
        n = xw.size(0)
        both = self.encoder.propagate(adj, torch.cat([xw, xw[perm]], dim=1))
        pos, neg = both[:, : xw.size(1)], both[:, xw.size(1):]
        logits = xw.new_zeros(2 * n)
        h = torch.cat([pos, neg], dim=0)
        for view in views:
            s = torch.sigmoid(self.encoder.propagate(view, xw).mean(dim=0))
            logits = logits + self.score(h, s)
        return logits

    def score(self, h: Tensor, s: Tensor) -> Tensor:
        """Bilinear critic :math:`h_i^\\top W s + b` for one summary ``s`` (computed as
        ``h @ (W s)``: ``nn.Bilinear`` on an expanded ``s`` is far slower to differentiate)."""
        return h @ (self.critic.weight[0] @ s) + self.critic.bias

    @torch.no_grad()
    def embed(self, x: Tensor, adj: Tensor) -> Tensor:
        return self.encoder(x, adj).detach()


@dataclass
class ContrastiveResult:
    """Embeddings and the training trace of :func:`contrastive_embeddings`."""

    embeddings: Tensor
    epochs: int
    best_epoch: int
    best_loss: float


def contrastive_embeddings(
    x: Tensor,
    edge_index: Tensor,
    removed_edge_index: Tensor,
    num_nodes: int | None = None,
    hidden_channels: int = 512,
    beta: float = 2.0,
    recover_ratio: float = 0.2,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    max_epochs: int = 10_000,
    patience: int = 20,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> ContrastiveResult:
    r"""Train :class:`RecoverDGI` on the pruned graph and return its node embeddings.

    The base graph is :math:`D^{-1/2}(A_{pre} + \beta I)D^{-1/2}`. Two views, each
    :math:`A_{pre}` plus a random ``recover_ratio`` of the removed edges (drawn once), are
    normalised with self-loop weight :math:`\beta + 1`, as the official code does. Adam; early
    stopping on the training loss with ``patience``; the best-loss weights are restored and the
    embeddings :math:`E(X, \hat{A})` returned. ``recover_ratio=0`` gives plain DGI views.

    Args:
        x (Tensor): ``[N, F]`` features (dense or sparse).
        edge_index (Tensor): edges of the pre-processed graph :math:`A_{pre}` (both directions).
        removed_edge_index (Tensor): edges deleted by the pre-processing :math:`A_{del}`.
        num_nodes (int, optional): defaults to ``x.size(0)``.
        hidden_channels, beta, recover_ratio, lr, weight_decay, max_epochs, patience: as in
            the paper (defaults: 512, 2, 0.2, 1e-3, 0, 10000, 20).
        generator (torch.Generator, optional): CPU generator for views, shuffles and the
            initialisation.
        device: where to train.
    """
    n = check_num_nodes(x.size(0) if num_nodes is None else num_nodes, x)
    if x.layout in (torch.strided, torch.sparse_coo, torch.sparse_csr):
        check_features(x)  # sparse too: a NaN in sparse features trained to NaN silently
    edge_index = check_edge_index(edge_index, n)
    removed_edge_index = check_edge_index(removed_edge_index, n, "removed_edge_index")
    if hidden_channels <= 0 or max_epochs <= 0 or patience <= 0:
        raise ValueError(
            "hidden_channels, max_epochs and patience must be positive, got "
            f"{hidden_channels}, {max_epochs}, {patience}"
        )
    if not 0 <= beta < float("inf"):  # NaN gave a NaN adjacency and NaN embeddings
        raise ValueError(f"beta (self-loop weight) must be a finite non-negative number, "
                         f"got {beta}")
    adj = normalized_adjacency(edge_index, n, beta, device)
    views = [
        normalized_adjacency(
            recover_edges(edge_index, removed_edge_index, recover_ratio, n, generator),
            n, beta + 1.0, device,
        )
        for _ in range(2)
    ]
    x = _as_model_input(x).to(device)
    if generator is None:
        model = RecoverDGI(x.size(1), hidden_channels).to(device)
    else:
        # The construction's draws and manual_seed (which seeds every device) stay inside the
        # fork, the model's device included: the caller's global random state is left as it
        # was, and the weights come from the generator alone.
        dev = torch.device(device)
        forked = [dev.index if dev.index is not None else torch.cuda.current_device()] \
            if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            model = RecoverDGI(x.size(1), hidden_channels).to(device)
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            model.reset_parameters()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    target = torch.cat([torch.ones(n), torch.zeros(n)]).to(device)
    # the initial weights are the fallback (loss inf, epoch 0): a NaN loss never replaces them
    stopper = EarlyStopping("min", patience, baseline=float("inf"), baseline_epoch=0)
    stopper.snapshot(model)
    epoch = 0
    for epoch in range(max_epochs):  # noqa: B007 - reported after the loop
        model.train()
        optimizer.zero_grad()
        perm = torch.randperm(n, generator=generator).to(device)
        loss = F.binary_cross_entropy_with_logits(model(x, adj, views, perm), target)
        if stopper.step(float(loss.detach()), epoch=epoch):
            stopper.snapshot(model)
        elif stopper.should_stop:  # wait == patience: stop before this epoch's step
            break
        loss.backward()
        optimizer.step()
    stopper.restore(model)
    model.eval()
    return ContrastiveResult(model.embed(x, adj), epoch + 1, stopper.best_epoch, stopper.best)


def _as_model_input(x: Tensor) -> Tensor:
    """Binary bag-of-words and identity features are sparse: multiply them as sparse COO."""
    if x.layout != torch.strided:
        return x.to_sparse_coo().coalesce().float()
    x = x.float()
    if x.numel() and float((x != 0).float().mean()) < 0.1:
        return x.to_sparse_coo().coalesce()
    return x
