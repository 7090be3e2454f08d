"""The pruning papers, each a pruner or layer on the shared mask API of
:mod:`graphkit.extras.sparsity` (importing this registers them)."""

from graphkit.extras.sparsity.methods.bdwp import BDWPConv2d, BDWPLinear, nm_training_macs, to_bdwp
from graphkit.extras.sparsity.methods.fast_sparse import (
    layer_roles,
    sparsify_mobilenet,
    to_sparse_kernels,
)
from graphkit.extras.sparsity.methods.ftwt import (
    FTWTGate,
    ftwt_loss,
    ftwt_reduction,
    ftwt_wrap,
    set_ftwt_masks,
    topk_mass_labels,
)
from graphkit.extras.sparsity.methods.gmp import GradualMagnitudePruner, small_dense_equivalent
from graphkit.extras.sparsity.methods.iss_p import ISSPPruner
from graphkit.extras.sparsity.methods.layer_lottery import (
    LayerGate,
    LayerTicketPruner,
    grasp_saliency,
    hessian_gradient_product,
    snip_saliency,
)
from graphkit.extras.sparsity.methods.random_pruning import RandomPruning
from graphkit.extras.sparsity.methods.sparse_ift import (
    SparseDoped,
    SparseFactorized,
    SparseParallel,
    SparseWide,
    regrow_set,
    sparse_ift,
    wide_factor,
)

__all__ = [
    "BDWPConv2d",
    "BDWPLinear",
    "FTWTGate",
    "GradualMagnitudePruner",
    "ISSPPruner",
    "LayerGate",
    "LayerTicketPruner",
    "RandomPruning",
    "SparseDoped",
    "SparseFactorized",
    "SparseParallel",
    "SparseWide",
    "ftwt_loss",
    "ftwt_reduction",
    "ftwt_wrap",
    "grasp_saliency",
    "hessian_gradient_product",
    "layer_roles",
    "nm_training_macs",
    "regrow_set",
    "set_ftwt_masks",
    "small_dense_equivalent",
    "snip_saliency",
    "sparse_ift",
    "sparsify_mobilenet",
    "to_bdwp",
    "to_sparse_kernels",
    "topk_mass_labels",
    "wide_factor",
]
