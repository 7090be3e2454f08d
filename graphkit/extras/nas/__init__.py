"""Neural architecture search: search spaces, supernets, mixed operations and searchers."""

from graphkit.extras.nas.elastic import (
    ElasticBatchNorm2d,
    ElasticDepth,
    ElasticDepthwiseConv2d,
    ElasticMBConv,
    ElasticPointConv2d,
    make_divisible,
)
from graphkit.extras.nas.mixed import (
    BinarizedMixedOp,
    MixedOp,
    arch_parameters,
    weight_parameters,
)
from graphkit.extras.nas.net2net import (
    WiderResult,
    apply_deeper,
    apply_wider,
    describe,
    insert_after,
    net2deeper,
    net2wider,
    widen_,
)
from graphkit.extras.nas.searchers import (  # importing it registers "eas"
    DeeperAction,
    EASController,
    LSTMController,
    RandomSearch,
    ReinforceSearch,
    Searcher,
    Trial,
    WiderAction,
    best_trial,
)
from graphkit.extras.nas.space import Choice, SearchSpace
from graphkit.extras.nas.supernet import ChainSupernet, Supernet

__all__ = [
    "BinarizedMixedOp",
    "ChainSupernet",
    "Choice",
    "DeeperAction",
    "EASController",
    "ElasticBatchNorm2d",
    "ElasticDepth",
    "ElasticDepthwiseConv2d",
    "ElasticMBConv",
    "ElasticPointConv2d",
    "LSTMController",
    "MixedOp",
    "RandomSearch",
    "ReinforceSearch",
    "SearchSpace",
    "Searcher",
    "Supernet",
    "Trial",
    "WiderAction",
    "WiderResult",
    "apply_deeper",
    "apply_wider",
    "arch_parameters",
    "best_trial",
    "describe",
    "insert_after",
    "make_divisible",
    "net2deeper",
    "net2wider",
    "weight_parameters",
    "widen_",
]
