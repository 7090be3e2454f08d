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
from graphkit.extras.sparsity.methods.lapp import BypassConv2d, LAPPPruner
from graphkit.extras.sparsity.methods.layer_lottery import (
    LayerGate,
    LayerTicketPruner,
    grasp_saliency,
    hessian_gradient_product,
    snip_saliency,
)
from graphkit.extras.sparsity.methods.lpvit import LPViTPruner, block_sums
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
from graphkit.extras.sparsity.methods.ssvi import (
    SparseBayesConv2d,
    SparseBayesLinear,
    SSVITrainer,
    expected_calibration_error,
    gaussian_kl,
)
from graphkit.extras.sparsity.methods.tas import (
    TASResNet,
    TASSearch,
    channel_wise_interpolation,
    gumbel_select,
    tas_distill_loss,
    teacher_copy,
)

__all__ = [
    "BDWPConv2d",
    "BDWPLinear",
    "BypassConv2d",
    "FTWTGate",
    "GradualMagnitudePruner",
    "ISSPPruner",
    "LAPPPruner",
    "LPViTPruner",
    "LayerGate",
    "LayerTicketPruner",
    "RandomPruning",
    "SSVITrainer",
    "SparseBayesConv2d",
    "SparseBayesLinear",
    "SparseDoped",
    "SparseFactorized",
    "SparseParallel",
    "SparseWide",
    "TASResNet",
    "TASSearch",
    "block_sums",
    "channel_wise_interpolation",
    "expected_calibration_error",
    "ftwt_loss",
    "ftwt_reduction",
    "ftwt_wrap",
    "gaussian_kl",
    "grasp_saliency",
    "gumbel_select",
    "hessian_gradient_product",
    "layer_roles",
    "nm_training_macs",
    "regrow_set",
    "set_ftwt_masks",
    "small_dense_equivalent",
    "snip_saliency",
    "sparse_ift",
    "sparsify_mobilenet",
    "tas_distill_loss",
    "teacher_copy",
    "to_bdwp",
    "to_sparse_kernels",
    "topk_mass_labels",
    "wide_factor",
]
