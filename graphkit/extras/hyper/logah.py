r"""LoGAH: a graph hypernetwork with a low-rank parameter decoder.

`"LoGAH: Predicting 774-Million-Parameter Transformers using Graph HyperNetworks with 1/100
Parameters" <https://arxiv.org/abs/2405.16287>`_ (Zhou et al., 2024), built on GHN-3 (`"Can We
Scale Transformers to Predict Parameters of Diverse ImageNet Models?"
<https://arxiv.org/abs/2303.04143>`_). A target network is traced into a computational graph
(:func:`~graphkit.extras.hyper.arch_graph.trace_architecture`); each node starts as the
embedding of its op and of its parameter's shape, plus Graphormer's in/out-degree centrality and
distance-from-the-input embeddings; Graphormer layers attend over all nodes with a per-head
bias learned from the shortest-path distances (forward and backward); a decoder maps each node
embedding :math:`h` to the node's parameters.

- :class:`LowRankDecoder` (LoGAH, the official ``ConvDecoder3LoRA``): an MLP gives
  :math:`Z \in \mathbb{R}^{2r \times r}`, a linear map :math:`r \to c_k` gives
  :math:`\mathrm{Lin}(\mathrm{ReLU}(Z)) \in \mathbb{R}^{2r \times c_k}`, whose memory is read as
  :math:`[A; B^\top] \in \mathbb{R}^{2 c_k \times r}` (as the official code does), and

  .. math::
      W = A_{[:m]}\, B_{[:, :n]} \in \mathbb{R}^{m \times n}, \qquad
      \operatorname{rank} W \le r, \quad m, n \le c_k = \text{max\_shape}.

  A 4-D kernel :math:`(c_o, c_i, k_h, k_w)` is the :math:`(c_o k_h) \times (c_i k_w)` product,
  reshaped; a 1-D pair (norm weight, bias) is the two columns of the :math:`n \times 2`
  product (the official code reads it from a :math:`2n \times 1` product, which limits 1-D
  tensors to half of ``max_shape``).
- :class:`TiledDecoder` (the GHN-3 peer): an MLP gives one :math:`T \times T` block (and a
  :math:`2 \times T` vector block) that is repeated to cover larger tensors, as GHN-3's
  ``_tile_params`` does. Its spatial crops are replaced by the same :math:`(c_o k_h) \times
  (c_i k_w)` matrix view as the low-rank decoder, so the two differ only in how a large matrix
  is formed; GHN-3's separate classification-layer predictor is not used.

Predicted tensors are normalised per tensor as in GHN-3 (:func:`normalize_predicted`):
fan-in scaling :math:`W \sqrt{2 / \text{fan\_in}}` for matrices and kernels,
:math:`2\sigma(p/2)` for normalisation weights, :math:`\tanh(p/5)` for biases; free tensors
(positional embeddings, class tokens) are left as predicted. :func:`apply_predicted` writes them
into a model as its initialisation; :func:`meta_train` trains a GHN on a family of models
(:func:`vit_family`) by back-propagating the target's loss through the predicted parameters.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from graphkit.extras._core.attention import MultiHeadSelfAttention, scaled_dot_product
from graphkit.extras._core.blocks import MLP
from graphkit.extras._core.checks import check_positive
from graphkit.extras._core.modules import eval_mode
from graphkit.extras._core.registry import register_model
from graphkit.extras.hyper.arch_graph import OP_TYPES, ArchGraph, trace_architecture
from graphkit.extras.hyper.base import (
    HyperArchitecture,
    HyperInput,
    HyperNetSpec,
    HyperOutput,
    Variability,
)

__all__ = [
    "GraphHyperNetwork",
    "GraphormerLayer",
    "LowRankDecoder",
    "ShapeEncoder",
    "TiledDecoder",
    "TinyViT",
    "ViTConfig",
    "apply_predicted",
    "ghn3_tiled",
    "logah",
    "meta_train",
    "normalize_predicted",
    "vit_family",
]

_PAPER = ("LoGAH: Predicting 774-Million-Parameter Transformers using Graph HyperNetworks "
          "with 1/100 Parameters")

#: The review's criteria: conditioned on the architecture (the task), one tensor per graph
#: node (component-wise), a different architecture (and output size) for every input.
GHN_SPEC = HyperNetSpec(
    inputs=HyperInput.TASK,
    outputs=HyperOutput.COMPONENT,
    input_variability=Variability.DYNAMIC,
    output_variability=Variability.DYNAMIC,
    architecture=HyperArchitecture.ATTENTION,
)

_NO_NORM = {"param", "embedding"}  # free tensors: GHN-3 leaves positional encodings as predicted


# ----------------------------------------------------------------------------------- target
@dataclass(frozen=True)
class ViTConfig:
    """One architecture of the ViT family (image side, patch, channels and classes are shared
    by the family and given to :meth:`build`)."""

    dim: int
    depth: int
    heads: int
    mlp_ratio: float = 2.0

    def build(self, img_size: int = 16, patch: int = 4, in_channels: int = 3,
              num_classes: int = 10, pool: str = "mean") -> TinyViT:
        return TinyViT(img_size, patch, in_channels, num_classes, self.dim, self.depth,
                       self.heads, self.mlp_ratio, pool)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    r"""A pre-norm Vision Transformer (`"An Image is Worth 16x16 Words"
    <https://arxiv.org/abs/2010.11929>`_) small enough to train on a CPU: a strided-convolution
    patch embedding, learned positional embeddings, ``depth`` blocks
    :math:`x \leftarrow x + \mathrm{MSA}(\mathrm{LN}(x))`,
    :math:`x \leftarrow x + \mathrm{MLP}(\mathrm{LN}(x))`, a final LayerNorm and a linear head
    on the mean token (``pool="mean"``, as in `"Better plain ViT baselines"
    <https://arxiv.org/abs/2205.01580>`_) or on a class token (``pool="cls"``). Initialised as
    timm's ViT (truncated normal, std 0.02).

    Args:
        img_size (int, optional): image side. (default: ``16``)
        patch (int, optional): patch side; must divide ``img_size``. (default: ``4``)
        in_channels (int, optional): image channels. (default: ``3``)
        num_classes (int, optional): classes. (default: ``10``)
        dim (int, optional): token width. (default: ``64``)
        depth (int, optional): blocks. (default: ``2``)
        heads (int, optional): attention heads; must divide ``dim``. (default: ``4``)
        mlp_ratio (float, optional): MLP hidden width over ``dim``. (default: ``2.0``)
        pool (str, optional): ``"mean"`` or ``"cls"``. (default: ``"mean"``)

    Shapes:
        - **input:** :math:`(B, C, S, S)`; **output:** :math:`(B, \text{classes})`
    """

    def __init__(self, img_size: int = 16, patch: int = 4, in_channels: int = 3,
                 num_classes: int = 10, dim: int = 64, depth: int = 2, heads: int = 4,
                 mlp_ratio: float = 2.0, pool: str = "mean") -> None:
        super().__init__()
        check_positive(img_size=img_size, patch=patch, in_channels=in_channels,
                       num_classes=num_classes, dim=dim, depth=depth, heads=heads)
        if img_size % patch:
            raise ValueError(f"patch={patch} must divide img_size={img_size}")
        if not (math.isfinite(mlp_ratio) and mlp_ratio > 0):
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio}")
        if pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")
        self.img_size, self.in_channels, self.pool = img_size, in_channels, pool
        tokens = (img_size // patch) ** 2 + (pool == "cls")
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.empty(1, tokens, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.patch_embed.reset_parameters()
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                m.reset_parameters()

    def example_input(self) -> Tensor:
        """A zero image batch of one, for :func:`trace_architecture`."""
        p = self.pos_embed
        return torch.zeros(1, self.in_channels, self.img_size, self.img_size,
                           device=p.device, dtype=p.dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1:] != (self.in_channels, self.img_size, self.img_size):
            raise ValueError(f"TinyViT expects (B, {self.in_channels}, {self.img_size}, "
                             f"{self.img_size}) images, got {tuple(x.shape)}")
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        if self.cls_token is not None:
            t = torch.cat([self.cls_token.expand(t.size(0), -1, -1), t], dim=1)
        t = t + self.pos_embed
        for block in self.blocks:
            t = block(t)
        t = self.norm(t)
        return self.head(t[:, 0] if self.cls_token is not None else t.mean(1))


def vit_family(dims: Sequence[int] = (32, 48, 64), depths: Sequence[int] = (1, 2, 3),
               heads: Sequence[int] = (2, 4), mlp_ratios: Sequence[float] = (2.0, 4.0),
               exclude: Sequence[ViTConfig] = ()) -> list[ViTConfig]:
    """Every combination of the given widths, depths, head counts and MLP ratios (a small
    stand-in for the paper's generated ViTs-1K), minus ``exclude`` (held-out architectures).
    Head counts that do not divide the width are skipped."""
    for name, values in (("dims", dims), ("depths", depths), ("heads", heads)):
        check_positive(**{f"{name}[{i}]": v for i, v in enumerate(values)})
    for r in mlp_ratios:
        if not (math.isfinite(r) and r > 0):
            raise ValueError(f"mlp_ratios must be positive, got {r}")
    out = [ViTConfig(d, n, h, r) for d in dims for n in depths for h in heads for r in mlp_ratios
           if d % h == 0 and ViTConfig(d, n, h, r) not in set(exclude)]
    if not out:
        raise ValueError("the family is empty: no width is divisible by a head count")
    return out


# ----------------------------------------------------------------------------------- GHN
class ShapeEncoder(nn.Module):
    r"""Embeds a parameter's shape: output channels, input channels and the two spatial sizes
    each get an embedding of width ``hid / 4`` (GHN-3's ``ShapeEncoder``); channel counts are
    bucketed on a half-octave grid :math:`\lfloor 2 \log_2 c \rceil` up to ``max_channels``,
    spatial sizes up to ``max_spatial``; ops without parameters get a reserved index.

    Args:
        hid (int): embedding width, divisible by 4.
        max_channels (int, optional): the largest channel count told apart. (default: ``8192``)
        max_spatial (int, optional): the largest kernel side told apart. (default: ``16``)
    """

    def __init__(self, hid: int, max_channels: int = 8192, max_spatial: int = 16) -> None:
        super().__init__()
        check_positive(hid=hid, max_channels=max_channels, max_spatial=max_spatial)
        if hid % 4:
            raise ValueError(f"hid must be divisible by 4, got {hid}")
        self.n_ch = 2 * math.ceil(math.log2(max_channels)) + 1
        self.n_sp = max_spatial + 1
        self.embed_channel = nn.Embedding(self.n_ch + 1, hid // 4)
        self.embed_spatial = nn.Embedding(self.n_sp + 1, hid // 4)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for e in (self.embed_channel, self.embed_spatial):
            nn.init.trunc_normal_(e.weight, std=e.weight.shape[1] ** -0.5)

    def indices(self, shapes: Sequence[tuple[int, ...] | None]) -> Tensor:
        """``(N, 4)`` bucket indices of (out, in, k_h, k_w) for each shape."""
        rows = []
        for s in shapes:
            if s is None:
                rows.append([self.n_ch, self.n_ch, self.n_sp, self.n_sp])
                continue
            s4 = _as_4d(s)
            if min(s4) < 1:
                raise ValueError(f"cannot embed the parameter shape {tuple(s)}: a size is 0")
            ch = [min(round(2 * math.log2(c)), self.n_ch - 1) for c in s4[:2]]
            rows.append([*ch, *(min(k, self.n_sp - 1) for k in s4[2:])])
        return torch.tensor(rows, dtype=torch.long)

    def forward(self, shapes: Sequence[tuple[int, ...] | None]) -> Tensor:
        idx = self.indices(shapes).to(self.embed_channel.weight.device)
        return torch.cat([self.embed_channel(idx[:, 0]), self.embed_channel(idx[:, 1]),
                          self.embed_spatial(idx[:, 2]), self.embed_spatial(idx[:, 3])], dim=1)


def _as_4d(shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    s = list(shape)
    while len(s) > 2 and s[0] == 1:  # (1, tokens, dim) positional embeddings
        s = s[1:]
    if len(s) == 1:
        return s[0], 1, 1, 1
    if len(s) == 2:
        return s[0], s[1], 1, 1
    if len(s) == 3:
        return s[0], s[1], s[2], 1
    return s[0], s[1], s[2], math.prod(s[3:])


class GraphormerLayer(nn.Module):
    r"""A pre-norm Transformer layer over all nodes of a graph with an additive attention bias
    (`"Do Transformers Really Perform Bad for Graph Representation?"
    <https://arxiv.org/abs/2106.05234>`_, GHN-3's ``TransformerLayer``):

    .. math::
        X \leftarrow X + \Big[\mathrm{softmax}\big(Q_h K_h^\top / \sqrt{d} + B_h\big) V_h
        \Big]_h W_o, \qquad X \leftarrow X + \mathrm{MLP}(\mathrm{LN}(X))

    with :math:`Q, K, V` from :math:`\mathrm{LN}(X)` and :math:`B` the per-head bias built from
    the shortest-path distances by :class:`GraphHyperNetwork`.

    Args:
        dim (int): node width.
        heads (int, optional): attention heads, dividing ``dim``. (default: ``4``)
        mlp_ratio (float, optional): MLP hidden width over ``dim``. (default: ``4.0``)

    Shapes:
        - **input:** ``x`` :math:`(N, d)`, ``bias`` :math:`(h, N, N)`
        - **output:** :math:`(N, d)`
    """

    def __init__(self, dim: int, heads: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        check_positive(dim=dim, heads=heads)
        if dim % heads:
            raise ValueError(f"heads={heads} must divide dim={dim}")
        if not (math.isfinite(mlp_ratio) and mlp_ratio > 0):
            raise ValueError(f"mlp_ratio must be positive, got {mlp_ratio}")
        self.dim, self.heads = dim, heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = MLP(dim, int(dim * mlp_ratio))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (self.ln1, self.qkv, self.out, self.ln2, self.ff):
            m.reset_parameters()

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        if x.dim() != 2 or x.size(1) != self.dim:
            raise ValueError(f"x must be (num_nodes, {self.dim}), got {tuple(x.shape)}")
        n = x.size(0)
        if bias.shape != (self.heads, n, n):
            raise ValueError(f"bias must be (heads, num_nodes, num_nodes) = "
                             f"({self.heads}, {n}, {n}), got {tuple(bias.shape)}")
        q, k, v = self.qkv(self.ln1(x)).view(n, 3, self.heads, -1).permute(1, 2, 0, 3)
        att = scaled_dot_product(q, k, v, q.size(-1) ** -0.5, bias)  # (h, N, d_h)
        x = x + self.out(att.transpose(0, 1).reshape(n, self.dim))
        return x + self.ff(self.ln2(x))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, heads={self.heads})"


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _check_h(h: Tensor, hid: int) -> None:
    if h.dim() != 2 or h.size(1) != hid:
        raise ValueError(f"the decoder expects node embeddings (P, {hid}), got {tuple(h.shape)}")


def _init_small(lin: nn.Linear) -> None:
    # GHN-3 shrinks the decoders' last layers (weights / 5, zero bias) for a stable start
    with torch.no_grad():
        lin.weight.div_(5.0)
        lin.bias.zero_()


class LowRankDecoder(nn.Module):
    r"""LoGAH's decoder: two rank-``rank`` factors per node whose product is the weight (see
    the module docstring). Its size does not depend on the target's widths except through the
    final ``rank -> max_shape`` map.

    Args:
        hid (int): node embedding width.
        rank (int, optional): the rank :math:`r`. (default: ``16``)
        max_shape (int, optional): :math:`c_k`, the largest row or column count of a predicted
            matrix. (default: ``2048``)
        hidden (Sequence[int], optional): MLP hidden sizes; :obj:`None` gives
            ``(4 hid, 8 hid)`` as the official code. (default: :obj:`None`)

    Shapes:
        - :meth:`matrix`: ``h`` :math:`(P, hid)` to :math:`(P, m, n)`
        - :meth:`vector`: ``h`` :math:`(P, hid)` to :math:`(P, 2, n)`
    """

    def __init__(self, hid: int, rank: int = 16, max_shape: int = 2048,
                 hidden: Sequence[int] | None = None) -> None:
        super().__init__()
        check_positive(hid=hid, rank=rank, max_shape=max_shape)
        self.hid, self.rank, self.max_shape = hid, rank, max_shape
        hidden = (4 * hid, 8 * hid) if hidden is None else tuple(hidden)
        check_positive(**{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        self.mlp = _mlp([hid, *hidden, 2 * rank * rank])
        self.l2 = nn.Linear(rank, max_shape)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        self.l2.reset_parameters()
        _init_small(self.mlp[-1])

    def factors(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """``A`` :math:`(P, c_k, r)` and ``B`` :math:`(P, r, c_k)`."""
        _check_h(h, self.hid)
        r, ck = self.rank, self.max_shape
        z = self.mlp(h).view(-1, 2 * r, r)
        y = self.l2(F.relu(z)).reshape(-1, 2 * ck, r)  # the official memory reading
        a, b_t = y.split(ck, dim=1)
        return a, b_t.transpose(1, 2)

    def _check(self, m: int, n: int) -> None:
        if not (0 < m <= self.max_shape and 0 < n <= self.max_shape):
            raise ValueError(f"a ({m}, {n}) matrix exceeds max_shape={self.max_shape}")

    def matrix(self, h: Tensor, m: int, n: int) -> Tensor:
        self._check(m, n)
        a, b = self.factors(h)
        return a[:, :m] @ b[:, :, :n]

    def vector(self, h: Tensor, n: int) -> Tensor:
        # an (n, 2) product: widths up to max_shape (the official (2n, 1) stops at half)
        return self.matrix(h, n, 2).transpose(1, 2)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, max_shape={self.max_shape})"


class TiledDecoder(nn.Module):
    r"""GHN-3's decoder as the peer: a fixed :math:`T \times T` block per node (and a
    :math:`2 \times T` block for 1-D pairs), repeated along both axes and cropped to the
    target's shape (GHN-3's ``_tile_params``).

    Args:
        hid (int): node embedding width.
        tile (int, optional): :math:`T`. (default: ``32``)
        hidden (Sequence[int], optional): MLP hidden sizes; :obj:`None` gives
            ``(4 hid, 8 hid)`` as GHN-3. (default: :obj:`None`)

    Shapes:
        - :meth:`matrix`: ``h`` :math:`(P, hid)` to :math:`(P, m, n)`
        - :meth:`vector`: ``h`` :math:`(P, hid)` to :math:`(P, 2, n)`
    """

    def __init__(self, hid: int, tile: int = 32, hidden: Sequence[int] | None = None) -> None:
        super().__init__()
        check_positive(hid=hid, tile=tile)
        self.hid, self.tile = hid, tile
        hidden = (4 * hid, 8 * hid) if hidden is None else tuple(hidden)
        check_positive(**{f"hidden[{i}]": h for i, h in enumerate(hidden)})
        self.mlp = _mlp([hid, *hidden, tile * tile])
        self.mlp_1d = _mlp([hid, 2 * hid, 2 * tile])
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in (*self.mlp, *self.mlp_1d):
            if isinstance(m, nn.Linear):
                m.reset_parameters()
        _init_small(self.mlp[-1])
        _init_small(self.mlp_1d[-1])

    def matrix(self, h: Tensor, m: int, n: int) -> Tensor:
        check_positive(m=m, n=n)
        _check_h(h, self.hid)
        t = self.tile
        block = self.mlp(h).view(-1, t, t)
        return block.repeat(1, -(-m // t), -(-n // t))[:, :m, :n]

    def vector(self, h: Tensor, n: int) -> Tensor:
        check_positive(n=n)
        _check_h(h, self.hid)
        block = self.mlp_1d(h).view(-1, 2, self.tile)
        return block.repeat(1, 1, -(-n // self.tile))[:, :, :n]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(tile={self.tile})"


def normalize_predicted(w: Tensor, role: str, op: str) -> Tensor:
    r"""GHN-3's per-tensor normalisation of a predicted tensor.

    Matrices and kernels: :math:`w \sqrt{2 / \text{fan\_in}}` with :math:`\text{fan\_in}` the
    size of one output slice; 1-D ``"weight"`` (normalisation scales): :math:`2\sigma(w/2)`;
    1-D ``"bias"`` and any other 1-D role (a parameter named by its own last name):
    :math:`\tanh(w/5)`. Tensors of ``"param"`` and ``"embedding"`` nodes
    (positional embeddings, class tokens, lookup tables) are returned unchanged.
    """
    if op in _NO_NORM:
        return w
    if w.dim() > 1:
        return w * math.sqrt(2.0 / w[0].numel())
    return 2 * torch.sigmoid(0.5 * w) if role == "weight" else torch.tanh(0.2 * w)


class GraphHyperNetwork(nn.Module):
    r"""A GHN-3-style graph hypernetwork with a pluggable decoder (see the module docstring).

    .. math::
        h_v^{(0)} = E_{op}(v) + E_{shape}(v) + E_{in}(\deg^-_v) + E_{out}(\deg^+_v)
        + E_{dist}(d(\text{input}, v)), \quad
        B_h = \mathrm{MLP}\big([E_e(d_{uv}), E_e(d_{vu})]\big)_h,

    then ``layers`` :class:`GraphormerLayer` with bias :math:`B`, a LayerNorm, and the decoder
    applied to the nodes that own parameters.

    Args:
        decoder (nn.Module): a :class:`LowRankDecoder` or :class:`TiledDecoder` (anything with
            ``matrix(h, m, n)`` and ``vector(h, n)``).
        hid (int, optional): node width, divisible by 4 and by ``heads``. (default: ``32``)
        layers (int, optional): Graphormer layers. (default: ``3``)
        heads (int, optional): attention heads. (default: ``4``)
        max_degree (int, optional): degrees are clipped here. (default: ``100``)
        max_dist (int, optional): distances are clipped here. (default: ``255``)

    Shapes:
        - **input:** an :class:`ArchGraph`
        - **output:** ``{parameter name: tensor of its shape}``
    """

    spec = GHN_SPEC

    def __init__(self, decoder: nn.Module, hid: int = 32, layers: int = 3, heads: int = 4,
                 max_degree: int = 100, max_dist: int = 255) -> None:
        super().__init__()
        check_positive(hid=hid, layers=layers, heads=heads, max_degree=max_degree,
                       max_dist=max_dist)
        if getattr(decoder, "hid", hid) != hid:
            raise ValueError(f"the decoder reads node embeddings of width {decoder.hid}, but "
                             f"hid={hid}")
        self.hid, self.max_degree, self.max_dist = hid, max_degree, max_dist
        self.op_embed = nn.Embedding(len(OP_TYPES), hid)
        self.shape_enc = ShapeEncoder(hid)
        self.centrality_in = nn.Embedding(max_degree + 1, hid)
        self.centrality_out = nn.Embedding(max_degree + 1, hid)
        self.input_dist = nn.Embedding(max_dist + 1, hid)
        self.edge_embed = nn.Embedding(max_dist + 1, hid)
        self.edge_proj = _mlp([2 * hid, hid, heads])
        self.layers = nn.ModuleList(GraphormerLayer(hid, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(hid)
        self.decoder = decoder
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for e in (self.op_embed, self.centrality_in, self.centrality_out, self.input_dist,
                  self.edge_embed):
            nn.init.trunc_normal_(e.weight, std=self.hid ** -0.5)
        for m in (self.shape_enc, *self.layers, self.ln, self.decoder):
            m.reset_parameters()
        for m in self.edge_proj:
            if isinstance(m, nn.Linear):
                m.reset_parameters()

    def embed(self, graph: ArchGraph) -> Tensor:
        """``(N, hid)`` node embeddings after the Graphormer layers."""
        if not isinstance(graph, ArchGraph):
            raise ValueError(f"expected an ArchGraph, got {type(graph).__name__}")
        if graph.num_nodes == 0 or not graph.param_nodes:
            raise ValueError("the graph is empty or has no parameters to predict")
        graph.validate()
        dev = self.op_embed.weight.device
        d = graph.distances().to(dev).clamp(max=self.max_dist)
        one_hop = (d == 1).long()
        deg_in = one_hop.sum(0).clamp(max=self.max_degree)
        deg_out = one_hop.sum(1).clamp(max=self.max_degree)
        x = (self.op_embed(graph.op_ids.to(dev)) + self.shape_enc(graph.shapes)
             + self.centrality_in(deg_in) + self.centrality_out(deg_out)
             + self.input_dist(d[0]))
        e = torch.cat([self.edge_embed(d), self.edge_embed(d.t())], dim=-1)
        bias = self.edge_proj(e).permute(2, 0, 1)  # (heads, N, N)
        for layer in self.layers:
            x = layer(x, bias)
        return self.ln(x)

    def forward(self, graph: ArchGraph) -> dict[str, Tensor]:
        h = self.embed(graph)
        out: dict[str, Tensor] = {}
        for v in graph.param_nodes:
            hv, op = h[v : v + 1], graph.ops[v]
            pair = None
            for role, name in graph.params[v].items():
                shape = graph.param_shapes[name]
                if len(shape) == 1:
                    if pair is None:
                        pair = self.decoder.vector(hv, shape[0])[0]
                    w = pair[1 if role == "bias" else 0, : shape[0]]
                elif len(shape) == 4:
                    o, i, kh, kw = shape
                    w = self.decoder.matrix(hv, o * kh, i * kw)[0]
                    w = w.reshape(o, kh, i, kw).transpose(1, 2)
                else:
                    w = self.decoder.matrix(hv, math.prod(shape[:-1]), shape[-1])[0]
                    w = w.reshape(shape)
                out[name] = normalize_predicted(w, role, op)
        return out


@register_model("logah", family="hypernetwork", paper=_PAPER)
def logah(hid: int = 32, layers: int = 3, heads: int = 4, rank: int = 16,
          max_shape: int = 2048) -> GraphHyperNetwork:
    """LoGAH: a :class:`GraphHyperNetwork` with a :class:`LowRankDecoder` of rank ``rank`` for
    widths up to ``max_shape`` (defaults sized for CPU; the paper's ViT model used hid 128,
    5 layers, 16 heads, rank 90)."""
    return GraphHyperNetwork(LowRankDecoder(hid, rank, max_shape), hid, layers, heads)


def ghn3_tiled(hid: int = 32, layers: int = 3, heads: int = 4,
               tile: int = 32) -> GraphHyperNetwork:
    """The GHN-3 peer: the same network with a :class:`TiledDecoder` of ``tile`` x ``tile``
    blocks."""
    return GraphHyperNetwork(TiledDecoder(hid, tile), hid, layers, heads)


# ----------------------------------------------------------------------------- using it
@torch.no_grad()
def apply_predicted(model: nn.Module, ghn: GraphHyperNetwork,
                    graph: ArchGraph | None = None,
                    example: Tensor | None = None) -> list[str]:
    """Write ``ghn``'s prediction for ``model`` into ``model``'s parameters (its
    initialisation before fine-tuning).

    Args:
        model (torch.nn.Module): the target.
        ghn (GraphHyperNetwork): the hypernetwork.
        graph (ArchGraph, optional): ``model``'s traced graph; traced on ``example`` (or on
            ``model.example_input()``) when :obj:`None`. (default: :obj:`None`)
        example (Tensor, optional): an example input for tracing. (default: :obj:`None`)

    Returns:
        The names of the parameters written; parameters outside the graph keep their values.
    """
    if graph is None:
        if example is None:
            if not hasattr(model, "example_input"):
                raise ValueError("pass graph= or example= for a model without example_input()")
            example = model.example_input()
        graph = trace_architecture(model, example)
    params = dict(model.named_parameters())
    missing = [n for n in graph.param_shapes if n not in params]
    if missing:
        raise ValueError(f"the graph names parameters the model lacks: {missing[:3]}")
    with eval_mode(ghn):
        predicted = ghn(graph)
    for name, w in predicted.items():
        if w.shape != params[name].shape:
            raise ValueError(f"{name}: predicted {tuple(w.shape)}, model has "
                             f"{tuple(params[name].shape)}")
        params[name].copy_(w)
    return list(predicted)


def meta_train(ghn: GraphHyperNetwork, models: Sequence[nn.Module], graphs: Sequence[ArchGraph],
               images: Tensor, labels: Tensor, steps: int = 300, batch_size: int = 64,
               lr: float = 3e-4, weight_decay: float = 1e-2, warmup: int = 20,
               grad_clip: float = 5.0, seed: int = 0) -> list[float]:
    """Train ``ghn`` so that its predicted parameters classify ``images`` (GHN-3's loop, one
    architecture per step): each step draws a model, predicts all of its parameters, runs it on
    a batch through :func:`torch.func.functional_call` and steps AdamW on the cross-entropy
    (linear warm-up, cosine decay, gradient-norm clipping).

    Args:
        ghn (GraphHyperNetwork): the hypernetwork, trained in place.
        models (Sequence[nn.Module]): the training architectures (their own parameters are not
            used).
        graphs (Sequence[ArchGraph]): their traced graphs, in the same order.
        images (Tensor): ``(n, C, S, S)`` training images; labels ``(n,)`` int64.
        steps (int, optional): optimisation steps. (default: ``300``)
        batch_size (int, optional): images per step. (default: ``64``)
        lr (float, optional): peak learning rate. (default: ``3e-4``, the paper's)
        weight_decay (float, optional): AdamW weight decay. (default: ``1e-2``, the paper's)
        warmup (int, optional): warm-up steps. (default: ``20``)
        grad_clip (float, optional): gradient-norm clip. (default: ``5.0``)
        seed (int, optional): seeds the architecture and batch draws. (default: ``0``)

    Returns:
        The training loss of every step.
    """
    check_positive(steps=steps, batch_size=batch_size)
    if not models or len(models) != len(graphs):
        raise ValueError(f"need one graph per model, got {len(models)} models and "
                         f"{len(graphs)} graphs")
    if images.size(0) != labels.size(0) or images.size(0) == 0:
        raise ValueError(f"images and labels must be non-empty and of one length, got "
                         f"{images.size(0)} and {labels.size(0)}")
    if not torch.isfinite(images).all():
        raise ValueError("images have NaN or infinite entries")
    if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() \
            or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D tensor of class ids, got shape "
                         f"{tuple(labels.shape)} and dtype {labels.dtype}")
    if bool((labels < 0).any()):
        raise ValueError(f"labels hold a negative class id ({int(labels.min())})")
    if isinstance(warmup, bool) or int(warmup) != warmup or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    if not (math.isfinite(grad_clip) and grad_clip > 0):
        raise ValueError(f"grad_clip must be a positive number, got {grad_clip}")
    for k, (model, graph) in enumerate(zip(models, graphs, strict=True)):
        own = dict(model.named_parameters())
        bad = [n for n, s in graph.param_shapes.items()
               if n not in own or tuple(own[n].shape) != tuple(s)]
        if bad:
            raise ValueError(f"graphs[{k}] does not match models[{k}]: its parameters "
                             f"{bad[:3]} are missing from the model or differ in shape")
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(ghn.parameters(), lr=lr, weight_decay=weight_decay)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    ghn.train()
    losses = []
    for _ in range(steps):
        k = rng.randrange(len(models))
        idx = torch.randint(images.size(0), (batch_size,), generator=gen).to(images.device)
        params = ghn(graphs[k])
        logits = functional_call(models[k], params, (images[idx],))
        loss = F.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(ghn.parameters(), grad_clip)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses
