"""Fast Sparse ConvNets (Elsen et al., "Fast Sparse ConvNets", CVPR 2020,
https://arxiv.org/abs/1911.09723; kernels in google/XNNPACK).

Only the ``1 x 1`` (pointwise) convolutions of a MobileNet-style network are sparsified: they
carry most of its MACs, while the first full convolution, the depthwise convolutions and the
classifier stay dense. Training uses gradual magnitude pruning (the shared
:class:`~graphkit.extras.sparsity.methods.gmp.GradualMagnitudePruner`), optionally with a
small block structure; inference swaps each masked pointwise convolution for the CSR kernel
:class:`~graphkit.extras.sparsity.kernels.SparseConv1x1`.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from graphkit.extras._core.modules import replace_module
from graphkit.extras._core.registry import register_model
from graphkit.extras.sparsity.kernels import SparseConv1x1
from graphkit.extras.sparsity.masks import block as block_granularity
from graphkit.extras.sparsity.masks import get_mask, unstructured
from graphkit.extras.sparsity.methods.gmp import GradualMagnitudePruner

__all__ = ["ROLES", "layer_roles", "sparsify_mobilenet", "to_sparse_kernels"]

#: What a layer of a MobileNet-style network is: the first full convolution, a depthwise
#: (grouped) convolution, a pointwise convolution, another full convolution, the classifier.
ROLES = ("stem", "dw", "pw", "full", "head")


def _is_pointwise(m: nn.Module) -> bool:
    return isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1


def layer_roles(model: nn.Module) -> dict[str, str]:
    """``{module name: role}`` of every ``Conv2d`` / ``Linear``, roles from :data:`ROLES`.

    ``stem`` is the first non-pointwise dense convolution in module order, ``head`` the last
    ``Linear``; other ``Linear`` layers count as ``full``.
    """
    roles: dict[str, str] = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            if m.groups > 1:
                roles[name] = "dw"
            elif _is_pointwise(m):
                roles[name] = "pw"
            else:
                roles[name] = "full" if "stem" in roles.values() else "stem"
        elif isinstance(m, nn.Linear):
            roles[name] = "full"
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        roles[linears[-1]] = "head"
    return roles


@register_model("fast_sparse_convnets", family="pruning", paper="Fast Sparse ConvNets")
def sparsify_mobilenet(
    model: nn.Module,
    density: float,
    keep_dense: Iterable[str] = ("stem", "dw", "head"),
    block: tuple[int, int] = (1, 1),
    t0: int | None = None,
    n: int = 1,
    dt: int = 1,
) -> GradualMagnitudePruner:
    """Mask every layer of ``model`` whose role is not in ``keep_dense`` and prune it.

    Pointwise convolutions are always pruned (``"pw"`` may not be kept dense); the layers of
    the roles in ``keep_dense`` (see :func:`layer_roles`) get no mask at all. Each pruned layer
    ends at ``density`` (uniform, as the paper prunes every pointwise layer alike), in whole
    ``bh x bw`` blocks of the weight viewed as ``(C_out, C_in * kernel)``.

    Args:
        model: a MobileNet-style network (pointwise convs are ``1 x 1``, ``groups=1``).
        density: final density of the pruned layers, in ``[0, 1]``.
        keep_dense: roles left dense. (default: ``("stem", "dw", "head")``)
        block: ``(bh, bw)`` pruning block; ``(1, 1)`` is unstructured. (default: ``(1, 1)``)
        t0: first step of the gradual (cubic) schedule; ``None`` prunes once, now.
            (default: ``None``)
        n: number of pruning intervals of the schedule. (default: ``1``)
        dt: steps between pruning steps. (default: ``1``)

    Returns:
        the :class:`GradualMagnitudePruner` over the pruned layers; call its ``step`` after
        each optimiser step when ``t0`` is given.
    """
    keep_dense = set(keep_dense)
    unknown = keep_dense - set(ROLES)
    if unknown:
        raise ValueError(f"keep_dense names unknown roles {sorted(unknown)}; roles: {ROLES}")
    if "pw" in keep_dense:
        raise ValueError("pointwise convolutions are the layers this method sparsifies")
    if not 0.0 <= float(density) <= 1.0:
        raise ValueError(f"density must lie in [0, 1], got {density}")
    roles = layer_roles(model)
    layers = [name for name, role in roles.items() if role not in keep_dense]
    if not any(roles[name] == "pw" for name in layers):
        raise ValueError("the model has no pointwise (1x1, groups=1) convolution")
    granularity = unstructured() if tuple(block) == (1, 1) else block_granularity(*block)
    pruner = GradualMagnitudePruner(
        model, 1.0 - float(density), 0 if t0 is None else t0, n, dt,
        granularity=granularity, layers=layers,
    )  # fmt: skip
    if t0 is None:
        pruner.prune(float(density))
    return pruner


def to_sparse_kernels(model: nn.Module, block: tuple[int, int] = (1, 1)) -> list[str]:
    """Replace each masked pointwise convolution of ``model`` by its :class:`SparseConv1x1`.

    For inference after training: the CSR layer stores the masked weight and the bias (as
    buffers). ``block`` must be the pruning block, and is checked against each mask.
    Returns the names replaced.
    """
    replaced = []
    for name, m in list(model.named_modules()):
        if _is_pointwise(m) and get_mask(m) is not None:
            if not name:
                raise ValueError("the model itself is a convolution; use SparseConv1x1.from_dense")
            replace_module(model, name, SparseConv1x1.from_dense(m, block))
            replaced.append(name)
    if not replaced:
        raise ValueError("the model has no masked pointwise convolution to convert")
    return replaced
