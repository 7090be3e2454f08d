r"""Latency, computational efficiency, waterline bounds and block fusion of convnets.

From `On the Efficiency of Convolutional Neural Networks <https://arxiv.org/abs/2404.03617>`_
(Lavin, 2024). The paper relates latency and arithmetic complexity through computational
efficiency,

.. math::
    \text{latency} = \frac{\text{arithmetic complexity}}
                          {\text{computational efficiency} \times \text{peak throughput}},

studies each layer's efficiency against a roofline-style bound ("waterline analysis": a
sequence of kernels can go no faster than the sum of its layers' compute or memory-traffic
bounds) and fuses all layers of a residual block into one kernel that works on spatial tiles,
so the expanded activations never travel to DRAM. This module gives:

- :class:`HardwareProfile` and :class:`LatencyModel`: the identity above, both ways;
- :func:`layer_costs`: FLOPs (2 per multiply-accumulate), DRAM bytes and workspace of every
  ``Conv2d`` and ``Linear`` for one input;
- :func:`waterline`: per-layer lower bounds :math:`\max(F / P, B / W)` with the bound kind and
  the operational intensity :math:`F / B`;
- :func:`efficiency_gap`: per-layer ideal against measured time and the efficiency achieved;
- :class:`FusedResidualBlock`: an inverted-residual block (:class:`~graphkit.extras._core.
  blocks.MBConv`) computed tile by tile (the algorithm of block fusion, in plain PyTorch), with
  its DRAM traffic fused and unfused.

The paper's fused GPU kernels and its ConvFirst network are not here: the kernels are CUDA
code tied to one GPU, and ConvFirst's configuration is not published with code.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphkit.benchmarking import synchronize
from graphkit.extras._core.blocks import MBConv
from graphkit.extras._core.modules import eval_mode

__all__ = ["HardwareProfile", "LatencyModel", "LayerCost", "layer_costs", "WaterlineRow",
           "waterline", "GapRow", "efficiency_gap", "FusedResidualBlock"]


@dataclass(frozen=True)
class HardwareProfile:
    """A machine for the bounds: peak arithmetic throughput and DRAM bandwidth.

    Args:
        peak_flops: peak throughput in FLOP/s (a multiply-accumulate is 2 FLOPs).
        bandwidth: DRAM bandwidth in bytes/s.
        cache_bytes: on-chip memory; a layer whose workspace (input plus output activations)
            fits here moves only its weights through DRAM (default: ``0``, never).
        name: a label (default: ``""``).
    """

    peak_flops: float
    bandwidth: float
    cache_bytes: int = 0
    name: str = ""

    def __post_init__(self) -> None:
        for field in ("peak_flops", "bandwidth"):
            value = getattr(self, field)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{field} must be a positive finite number, got {value}")
        if self.cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0, got {self.cache_bytes}")

    @property
    def ridge_point(self) -> float:
        """Operational intensity (FLOP/byte) above which a layer is compute-bound."""
        return self.peak_flops / self.bandwidth


class LatencyModel:
    r"""The paper's identity :math:`t = F / (e \cdot P)` between latency :math:`t`,
    arithmetic complexity :math:`F` (FLOPs), computational efficiency :math:`e \in (0, 1]`
    and peak throughput :math:`P` (FLOP/s).

    Args:
        peak_flops: :math:`P`, or a :class:`HardwareProfile`.
    """

    def __init__(self, peak_flops: float | HardwareProfile) -> None:
        if isinstance(peak_flops, HardwareProfile):
            peak_flops = peak_flops.peak_flops
        if not (math.isfinite(peak_flops) and peak_flops > 0):
            raise ValueError(f"peak_flops must be a positive finite number, got {peak_flops}")
        self.peak_flops = float(peak_flops)

    def latency(self, flops: float, efficiency: float) -> float:
        """Seconds for ``flops`` at computational ``efficiency``."""
        if not 0 <= flops < math.inf:  # also rejects NaN
            raise ValueError(f"flops must be >= 0, got {flops}")
        if not 0 < efficiency <= 1:
            raise ValueError(f"efficiency must lie in (0, 1], got {efficiency}")
        return flops / (efficiency * self.peak_flops)

    def efficiency(self, flops: float, latency: float) -> float:
        """Achieved FLOP/s over peak for ``flops`` done in ``latency`` seconds."""
        if not 0 <= flops < math.inf:  # also rejects NaN
            raise ValueError(f"flops must be >= 0, got {flops}")
        if not latency > 0:
            raise ValueError(f"latency must be > 0 seconds, got {latency}")
        return flops / (latency * self.peak_flops)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(peak_flops={self.peak_flops:.4g})"


@dataclass(frozen=True)
class LayerCost:
    """One layer's work for one input: FLOPs and bytes (``elem_bytes`` per element)."""

    name: str
    kind: str
    flops: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int

    @property
    def workspace_bytes(self) -> int:
        """Activations the layer holds at once: its input and output."""
        return self.input_bytes + self.output_bytes

    def dram_bytes(self, hw: HardwareProfile | None = None) -> int:
        """Weights plus, unless the workspace fits in ``hw.cache_bytes``, the activations."""
        if hw is not None and self.workspace_bytes <= hw.cache_bytes:
            return self.weight_bytes
        return self.weight_bytes + self.workspace_bytes


def _layer_flops(module: nn.Module, out: Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        per_output = (module.in_channels // module.groups) * kh * kw
        return 2 * per_output * out.numel()
    # Linear: one in_features-long dot product per output element
    return 2 * module.in_features * out.numel()


@torch.no_grad()
def _trace(model: nn.Module, x: Tensor, elem_bytes: int | None
           ) -> list[tuple[nn.Module, Tensor, LayerCost]]:
    """Every ``Conv2d``/``Linear`` call of one eval forward: the layer, its input, its cost."""
    if elem_bytes is None:
        elem_bytes = x.element_size()
    if isinstance(elem_bytes, bool) or not float(elem_bytes).is_integer() or elem_bytes < 1:
        raise ValueError(f"elem_bytes must be an integer >= 1, got {elem_bytes!r}")
    names = {m: n or type(m).__name__ for n, m in model.named_modules()}
    calls: list[tuple[nn.Module, Tensor, LayerCost]] = []

    def hook(module: nn.Module, args: tuple, out: Tensor) -> None:
        inp = args[0]
        weights = sum(p.numel() for p in module.parameters(recurse=False))
        calls.append((module, inp.detach(), LayerCost(
            names[module], type(module).__name__, _layer_flops(module, out),
            weights * elem_bytes, inp.numel() * elem_bytes, out.numel() * elem_bytes,
        )))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with eval_mode(model):
            model(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def layer_costs(model: nn.Module, x: Tensor, elem_bytes: int | None = None) -> list[LayerCost]:
    """FLOPs and bytes of every ``Conv2d`` and ``Linear`` call of ``model`` on ``x``, in call
    order (one eval-mode forward pass). ``elem_bytes`` defaults to the input's element size.
    """
    return [cost for _, _, cost in _trace(model, x, elem_bytes)]


@dataclass(frozen=True)
class WaterlineRow:
    """A layer's lower bound: ``max(compute_s, memory_s)`` and which side binds."""

    name: str
    flops: int
    dram_bytes: int
    intensity: float
    compute_s: float
    memory_s: float

    @property
    def bound_s(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "memory" if self.memory_s > self.compute_s else "compute"


def _bound(c: LayerCost, hw: HardwareProfile) -> WaterlineRow:
    if not isinstance(hw, HardwareProfile):
        raise TypeError(f"hw must be a HardwareProfile, got {type(hw).__name__}")
    traffic = c.dram_bytes(hw)
    return WaterlineRow(c.name, c.flops, traffic, c.flops / traffic if traffic else math.inf,
                        c.flops / hw.peak_flops, traffic / hw.bandwidth)


def waterline(model: nn.Module, x: Tensor, hw: HardwareProfile,
              elem_bytes: int | None = None) -> list[WaterlineRow]:
    r"""Per-layer roofline bounds; their sum is the lowest latency the layer sequence can
    reach on ``hw`` when every layer is a separate kernel.

    For layer :math:`i` with :math:`F_i` FLOPs and :math:`B_i` DRAM bytes
    (:meth:`LayerCost.dram_bytes`): :math:`t_i = \max(F_i / P, B_i / W)`, operational
    intensity :math:`F_i / B_i`; a layer is memory-bound when its intensity is below
    ``hw.ridge_point``.
    """
    return [_bound(c, hw) for c in layer_costs(model, x, elem_bytes)]


@dataclass(frozen=True)
class GapRow:
    """A layer's ideal time (at peak), waterline bound, measured time and efficiency."""

    name: str
    flops: int
    ideal_s: float
    bound_s: float
    measured_s: float
    efficiency: float


def _time_layer(module: nn.Module, inp: Tensor, repeats: int = 5) -> float:
    best = math.inf
    with torch.no_grad():
        module(inp)  # warm-up
        for _ in range(repeats):
            synchronize(inp.device)
            t0 = time.perf_counter()
            module(inp)
            synchronize(inp.device)
            best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def efficiency_gap(
    model: nn.Module,
    x: Tensor,
    hw: HardwareProfile,
    measure: Callable[[nn.Module, Tensor], float] | None = None,
) -> list[GapRow]:
    """The data of the paper's efficiency-gap plot: per ``Conv2d``/``Linear`` layer, the
    ideal time at peak (``flops / peak``), the waterline bound, the measured time and the
    computational efficiency ``flops / (measured * peak)``.

    Args:
        model: the network (run once in eval mode to capture each layer's input).
        x: its input.
        hw: the machine's peak and bandwidth.
        measure: ``measure(layer, layer_input) -> seconds``; default: the best of 5 timed
            runs after a warm-up (CUDA-synchronised on GPU inputs).
    """
    measure = measure or _time_layer
    rows = []
    for layer, inp, cost in _trace(model, x, None):
        bound = _bound(cost, hw)
        seconds = float(measure(layer, inp))
        if not seconds > 0:
            raise ValueError(f"measure returned {seconds} seconds for {cost.name}")
        rows.append(GapRow(cost.name, cost.flops, cost.flops / hw.peak_flops, bound.bound_s,
                           seconds, cost.flops / (seconds * hw.peak_flops)))
    return rows


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
    t = (v, v) if isinstance(v, (int, float)) else tuple(v)  # a lone 2.5 was a TypeError
    if len(t) != 2 or any(not float(s).is_integer() or s < 1 for s in t):
        raise ValueError(f"tile_size must be a positive int or a pair of them, got {v!r}")
    return int(t[0]), int(t[1])


class FusedResidualBlock(nn.Module):
    r"""Block fusion of an inverted-residual block: the whole block, tile by tile.

    For each output tile of ``tile_size`` pixels the input rows and columns it depends on
    (the tile times the stride, plus the depthwise halo) are expanded by the 1×1 conv, zero
    padded where they leave the map (the padding of the *expanded* map, as in the unfused
    depthwise conv), filtered by the depthwise conv, projected, and added to the residual;
    the expanded activations of one tile are all that exists at a time. The result equals
    the unfused block for any tile size; the arithmetic grows by the recomputed halos.

    BatchNorm runs with its running statistics (fusion is an inference transformation, so the
    module must be in eval mode), and the block must have no squeeze-excitation (its global
    pooling needs the whole map).

    Args:
        block: an :class:`~graphkit.extras._core.blocks.MBConv` (its parameters are shared).
        tile_size: output tile height and width (default: ``8``).

    Shapes:
        as ``block``: input ``(B, C_in, H, W)``, output ``(B, C_out, ceil(H/s), ceil(W/s))``.
    """

    def __init__(self, block: MBConv, tile_size: int | Sequence[int] = 8) -> None:
        super().__init__()
        if not isinstance(block, MBConv):
            raise TypeError(f"block must be an MBConv, got {type(block).__name__}")
        if not isinstance(block.se, nn.Identity):
            raise ValueError("block fusion needs a block without squeeze-excitation "
                             "(its global pooling spans every tile)")
        conv = block.depthwise.conv
        if conv.dilation != (1, 1):
            raise ValueError(f"depthwise dilation must be 1, got {conv.dilation}")
        self.block = block
        self.tile_size = _pair(tile_size)

    def _halo(self, o0: int, o1: int, size: int) -> tuple[int, int, int, int]:
        """Input span [i0, i1) of output span [o0, o1) and its zero padding (before, after)."""
        conv = self.block.depthwise.conv
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        lo, hi = o0 * s - p, (o1 - 1) * s - p + k
        return max(lo, 0), min(hi, size), max(-lo, 0), max(hi - size, 0)

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            raise RuntimeError("FusedResidualBlock computes with BatchNorm running statistics; "
                               "call .eval() first")
        blk = self.block
        if x.dim() != 4 or x.size(1) != blk.in_channels:
            raise ValueError(f"FusedResidualBlock expects (B, {blk.in_channels}, H, W), "
                             f"got shape {tuple(x.shape)}")
        conv = blk.depthwise.conv
        b, _, h, w = x.shape
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        th, tw = self.tile_size
        out = x.new_empty(b, blk.out_channels, ho, wo)
        for r0 in range(0, ho, th):
            r1 = min(r0 + th, ho)
            i0, i1, pt, pb = self._halo(r0, r1, h)
            for c0 in range(0, wo, tw):
                c1 = min(c0 + tw, wo)
                j0, j1, pl, pr = self._halo(c0, c1, w)
                e = blk.expand(x[:, :, i0:i1, j0:j1])
                e = F.pad(e, (pl, pr, pt, pb))  # zeros of the expanded map's padding
                d = F.conv2d(e, conv.weight, conv.bias, stride=s, groups=conv.groups)
                y = blk.project(blk.depthwise.act(blk.depthwise.norm(d)))
                if blk.has_residual:
                    y = y + x[:, :, r0:r1, c0:c1]
                out[:, :, r0:r1, c0:c1] = y
        return out

    def memory_traffic(self, input_shape: Sequence[int], elem_bytes: int = 4
                       ) -> dict[str, int]:
        """DRAM bytes of one forward pass, unfused and fused (weights counted once each).

        Unfused: the input is read (twice with a residual), the expanded and the depthwise
        maps are each written and read back, the output is written. Fused: every tile reads
        its input span (halos re-read) and writes its output; nothing else leaves the chip.
        """
        if len(input_shape) != 4 or any(int(v) < 1 for v in input_shape):
            raise ValueError(f"input_shape must be (B, C, H, W), got {tuple(input_shape)}")
        if isinstance(elem_bytes, bool) or not float(elem_bytes).is_integer() or elem_bytes < 1:
            raise ValueError(f"elem_bytes must be an integer >= 1, got {elem_bytes!r}")
        blk = self.block
        b, c, h, w = (int(v) for v in input_shape)
        conv = blk.depthwise.conv
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        mid = conv.in_channels
        weights = sum(q.numel() for q in blk.parameters()) + sum(
            buf.numel() for buf in blk.buffers() if buf.is_floating_point())
        x_el, y_el = b * c * h * w, b * blk.out_channels * ho * wo
        has_expand = not isinstance(blk.expand, nn.Identity)
        unfused = x_el + y_el + 2 * b * mid * ho * wo  # depthwise output written + read
        if has_expand:
            unfused += 2 * b * mid * h * w  # expanded map written + read
        if blk.has_residual:
            unfused += x_el
        th, tw = self.tile_size
        rows = [self._halo(r0, min(r0 + th, ho), h) for r0 in range(0, ho, th)]
        cols = [self._halo(c0, min(c0 + tw, wo), w) for c0 in range(0, wo, tw)]
        read = sum((i1 - i0) * (j1 - j0) for i0, i1, _, _ in rows for j0, j1, _, _ in cols)
        fused = b * c * read + y_el  # the residual re-uses the tile already on chip
        return {"unfused": (unfused + weights) * elem_bytes,
                "fused": (fused + weights) * elem_bytes}

    def extra_repr(self) -> str:
        return f"tile_size={self.tile_size}"
