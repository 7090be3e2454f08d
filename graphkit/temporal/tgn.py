r"""TGN baseline: PyG's :class:`~torch_geometric.nn.models.TGNMemory` with a graph-attention
embedding over graphkit's :class:`~graphkit.sampling.TemporalNeighborSampler`.

`"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
<https://arxiv.org/abs/2006.10637>`_ (Rossi et al., 2020), as PyG's ``examples/tgn.py`` builds
it: a GRU memory per node updated from the last message (identity message function, last
aggregator), then one :class:`~torch_geometric.nn.conv.TransformerConv` layer over each node's
``num_neighbors`` most recent interactions with edge features
:math:`[\cos(w(t_{\mathrm{last}}(j) - t_{ij}) + b) \,\|\, m_{ij}]`, and a link predictor
:math:`\mathrm{Lin}(\mathrm{ReLU}(W_s z_u + W_d z_v))`.

It follows the :class:`~graphkit.temporal.link_training.TemporalLinkModel` protocol; the
memory's message stores, the neighbour buffer and the stored messages are part of its
``state_dict`` (extra state), so a checkpoint restores the stream state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import Linear
from torch_geometric.nn import TransformerConv
from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator, TGNMemory, TimeEncoder

from graphkit.temporal._checks import check_batch
from graphkit.temporal.event_graph import EventGraph

__all__ = ["TGN", "GraphAttentionEmbedding", "LinkPredictor"]


class GraphAttentionEmbedding(torch.nn.Module):
    r"""TGN's graph-attention embedding (`Rossi et al., 2020
    <https://arxiv.org/abs/2006.10637>`_): one two-head
    :class:`~torch_geometric.nn.conv.TransformerConv` layer over each node's recent events,

    .. math::
        \mathbf{z}_i = \mathbf{W}_{\mathrm{skip}}\mathbf{s}_i + \sum_{j \in \mathcal{N}(i)}
        \alpha_{ij}\big(\mathbf{W}_v \mathbf{s}_j + \mathbf{W}_e \mathbf{e}_{ij}\big),
        \qquad \mathbf{e}_{ij} = [\phi(t^{\mathrm{last}}_j - t_{ij}) \,\|\, \mathbf{m}_{ij}],

    with memories :math:`\mathbf{s}`, the time encoding :math:`\phi` and the attention
    :math:`\alpha_{ij}` of the transformer layer (heads concatenated).

    Args:
        in_channels (int): memory width.
        out_channels (int): embedding width (two heads of ``out_channels // 2``).
        msg_dim (int): event feature width.
        time_enc (TimeEncoder): the memory's time encoder, shared as in PyG's example: the
            memory owns it, so :meth:`reset_parameters` resets the attention layer only.
        dropout (float): attention dropout. (default: ``0.1``)
    """

    def __init__(self, in_channels: int, out_channels: int, msg_dim: int,
                 time_enc: TimeEncoder, dropout: float = 0.1) -> None:
        super().__init__()
        self.time_enc = time_enc
        self.conv = TransformerConv(in_channels, out_channels // 2, heads=2, dropout=dropout,
                                    edge_dim=msg_dim + time_enc.out_channels)

    def reset_parameters(self) -> None:
        """Re-initialise the attention layer (the shared ``time_enc`` is its owner's)."""
        self.conv.reset_parameters()

    def forward(self, x: Tensor, last_update: Tensor, edge_index: Tensor, t: Tensor,
                msg: Tensor) -> Tensor:
        rel_t = (last_update[edge_index[0]] - t).to(x.dtype)
        edge_attr = torch.cat([self.time_enc(rel_t), msg.to(x.dtype)], dim=-1)
        return self.conv(x, edge_index, edge_attr)


class LinkPredictor(torch.nn.Module):
    r"""TGN's link decoder (`Rossi et al., 2020 <https://arxiv.org/abs/2006.10637>`_), one
    logit per pair:

    .. math::
        \hat{y}_{uv} = \mathbf{w}^{\top}\,\mathrm{ReLU}(\mathbf{W}_s \mathbf{z}_u
        + \mathbf{W}_d \mathbf{z}_v + \mathbf{b}) + c.

    Args:
        in_channels (int): embedding width.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.lin_src = Linear(in_channels, in_channels)
        self.lin_dst = Linear(in_channels, in_channels)
        self.lin_final = Linear(in_channels, 1)

    def reset_parameters(self) -> None:
        for lin in (self.lin_src, self.lin_dst, self.lin_final):
            lin.reset_parameters()

    def forward(self, z_src: Tensor, z_dst: Tensor) -> Tensor:
        return self.lin_final((self.lin_src(z_src) + self.lin_dst(z_dst)).relu()).view(-1)


class TGN(torch.nn.Module):
    r"""TGN from `"Temporal Graph Networks for Deep Learning on Dynamic Graphs"
    <https://arxiv.org/abs/2006.10637>`_ (Rossi et al., 2020) with PyG's memory; defaults of
    PyG's ``examples/tgn.py``:

    .. math::
        \mathbf{s}_i \leftarrow \mathrm{GRU}\big([\mathbf{s}_i \,\|\, \mathbf{s}_j \,\|\,
        \mathbf{m}_{ij} \,\|\, \phi(t - t_i)],\ \mathbf{s}_i\big), \qquad
        \mathbf{z}_i = \mathrm{Attn}\big(\mathbf{s}_i, \{\mathbf{s}_j, \mathbf{e}_{ij}\}\big),
        \qquad \hat{y}_{uv} = \mathrm{LinkPredictor}(\mathbf{z}_u, \mathbf{z}_v)

    (last message per node; :class:`GraphAttentionEmbedding`, :class:`LinkPredictor`).

    Args:
        num_nodes (int): number of nodes.
        msg_dim (int): event feature width (``0`` when there are none). (default: ``0``)
        memory_dim (int): memory width. (default: ``100``)
        time_dim (int): time-encoding width. (default: ``100``)
        embedding_dim (int): embedding width. (default: ``100``)
        num_neighbors (int): most recent interactions attended to. (default: ``10``)
    """

    def __init__(self, num_nodes: int, msg_dim: int = 0, memory_dim: int = 100,
                 time_dim: int = 100, embedding_dim: int = 100,
                 num_neighbors: int = 10) -> None:
        super().__init__()
        if int(num_nodes) <= 0:
            raise ValueError(f"num_nodes must be positive, got {num_nodes}")
        if int(msg_dim) < 0:
            raise ValueError(f"msg_dim must be non-negative, got {msg_dim}")
        self.num_nodes, self.msg_dim = int(num_nodes), int(msg_dim)
        # PyG's message store drops empty (width 0) messages when concatenating them, so a
        # stream without event features gets one constant zero feature.
        raw = max(self.msg_dim, 1)
        self.event_graph = EventGraph(num_nodes, raw, num_neighbors)
        self.memory = TGNMemory(num_nodes, raw, memory_dim, time_dim,
                                message_module=IdentityMessage(raw, memory_dim, time_dim),
                                aggregator_module=LastAggregator())
        self.gnn = GraphAttentionEmbedding(memory_dim, embedding_dim, raw, self.memory.time_enc)
        self.link_pred = LinkPredictor(embedding_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.memory.reset_parameters()
        self.gnn.reset_parameters()
        self.link_pred.reset_parameters()
        self.reset_state()

    # ------------------------------------------------------------------ state
    def reset_state(self) -> None:
        """Zero the memory, empty the message stores and the neighbour buffer."""
        self.memory.reset_state()
        # PyG allocates the memory's scratch id map with torch.empty and writes it before every
        # read; zeroed, seeded models have identical state dicts (reproducible checkpoints)
        self.memory._assoc.zero_()
        self.event_graph.reset(self.memory.memory.device, self.memory.memory.dtype)

    def _apply(self, fn, recurse=True):
        # PyG's message stores and the event features are no buffers: move them as well
        super()._apply(fn, recurse)
        mem = self.memory.memory
        for name in ("msg_s_store", "msg_d_store"):
            store = getattr(self.memory, name)
            for key, (src, dst, t, raw) in store.items():
                store[key] = (src.to(mem.device), dst.to(mem.device), t.to(mem.device),
                              raw.to(mem.device, mem.dtype))
        self.event_graph.to_(mem.device, mem.dtype)
        return self

    def get_extra_state(self) -> dict[str, Any]:
        return {"msg_s": dict(self.memory.msg_s_store), "msg_d": dict(self.memory.msg_d_store),
                "memory_training": self.memory.training, **self.event_graph.state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.memory.msg_s_store = dict(state["msg_s"])
        self.memory.msg_d_store = dict(state["msg_d"])
        # PyG's TGNMemory flushes its store into the memory when it enters eval mode; a store
        # saved in eval mode was flushed already, so the flag comes with it (else a later
        # .eval() would apply the same messages twice)
        if "memory_training" in state:
            self.memory.training = bool(state["memory_training"])
        self.event_graph.load_state(state)

    # ------------------------------------------------------------------ protocol
    def embed(self, nodes: Tensor, t_query: Tensor) -> tuple[Tensor, Tensor]:
        """Embeddings of the distinct ``nodes``: ``(n_id, z)`` with ``z[i]`` for ``n_id[i]``."""
        n_id = torch.unique(nodes)
        # every node is embedded as of just after the batch's last event time
        times = t_query.max().expand(n_id.numel()) + 1
        all_id, edge_index, e_t, e_msg = self.event_graph.subgraph(n_id, times)
        z, last_update = self.memory(all_id)
        z = self.gnn(z, last_update, edge_index, e_t, e_msg)
        return all_id, z

    def score(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor, neg_dst: Tensor
              ) -> tuple[Tensor, Tensor]:
        """Logits of ``(src, dst)`` and ``(src, neg_dst)`` from the memory before the batch."""
        check_batch(self.num_nodes, src, dst, t, neg_dst=neg_dst)
        if src.numel() == 0:  # nothing to score (t.max() below needs an event)
            empty = self.link_pred.lin_final.weight.new_zeros(0)
            return empty, empty.clone()
        all_id, z = self.embed(torch.cat([src, dst, neg_dst]), t)
        z_src = z[torch.searchsorted(all_id, src)]
        pos = self.link_pred(z_src, z[torch.searchsorted(all_id, dst)])
        neg = self.link_pred(z_src, z[torch.searchsorted(all_id, neg_dst)])
        return pos, neg

    def update_state(self, src: Tensor, dst: Tensor, t: Tensor, msg: Tensor) -> None:
        """Store the batch's messages in the memory and its events in the neighbour buffer."""
        sampler = self.event_graph.sampler  # holds the last event time
        check_batch(self.num_nodes, src, dst, t, msg, self.msg_dim, integer_time=True,
                    ordered_time=True, last_t=None if sampler is None else sampler._last_t)
        if src.numel() == 0:  # PyG's memory fails on an empty batch
            return
        if self.msg_dim == 0:
            msg = msg.new_zeros(msg.size(0), 1)
        msg = msg.to(self.event_graph.msgs)
        self.memory.update_state(src, dst, t, msg)
        self.memory.detach()
        self.event_graph.insert(src, dst, t, msg)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(num_nodes={self.num_nodes}, "
                f"memory_dim={self.memory.memory_dim}, "
                f"num_neighbors={self.event_graph.num_neighbors})")
