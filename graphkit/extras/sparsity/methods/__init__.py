"""The pruning papers, each a pruner or layer on the shared mask API of
:mod:`graphkit.extras.sparsity` (importing this registers them)."""

from graphkit.extras.sparsity.methods.bdwp import (
    BDWPConv2d,
    BDWPLinear,
    nm_training_macs,
    to_bdwp,
)
from graphkit.extras.sparsity.methods.gmp import GradualMagnitudePruner, small_dense_equivalent
from graphkit.extras.sparsity.methods.iss_p import ISSPPruner
from graphkit.extras.sparsity.methods.random_pruning import RandomPruning

__all__ = [
    "BDWPConv2d",
    "BDWPLinear",
    "GradualMagnitudePruner",
    "ISSPPruner",
    "RandomPruning",
    "nm_training_macs",
    "small_dense_equivalent",
    "to_bdwp",
]
