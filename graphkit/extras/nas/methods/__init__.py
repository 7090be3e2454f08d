"""The catalogue's search methods, built on the search-space, supernet and searcher APIs
(importing this registers them)."""

from graphkit.extras.nas.methods.deps import DEpSSchedule, DEpSTrainer
from graphkit.extras.nas.methods.linas import LINASSearch, MOTrial, NSGA2Search, pareto_front
from graphkit.extras.nas.methods.nasnet import (
    NASNET_A,
    NASNET_OPERATIONS,
    CellGenotype,
    NASNetA,
    NASNetCell,
    NASNetGenotype,
    NASNetSearchSpace,
    ScheduledDropPath,
    nasnet_a_cifar,
    nasnet_a_large,
    nasnet_a_mobile,
)
from graphkit.extras.nas.methods.ofa import (
    ElasticSqueezeExcite,
    OFAMBConv,
    OFASupernet,
    ProgressiveShrinking,
)
from graphkit.extras.nas.methods.proxyless import (
    ProxylessSupernet,
    expected_latency,
    latency_loss,
    macs_table,
    proxyless_cpu,
    proxyless_gpu,
    proxyless_mobile,
    proxyless_net,
    reinforce_loss,
)
from graphkit.extras.nas.methods.random_sparse_search import (
    RandomSparseSearch,
    removed_count,
    searched_vs_random,
)

__all__ = [
    "CellGenotype",
    "DEpSSchedule",
    "DEpSTrainer",
    "ElasticSqueezeExcite",
    "LINASSearch",
    "MOTrial",
    "NASNET_A",
    "NASNET_OPERATIONS",
    "NASNetA",
    "NASNetCell",
    "NASNetGenotype",
    "NASNetSearchSpace",
    "NSGA2Search",
    "OFAMBConv",
    "OFASupernet",
    "ProgressiveShrinking",
    "ProxylessSupernet",
    "RandomSparseSearch",
    "ScheduledDropPath",
    "expected_latency",
    "latency_loss",
    "macs_table",
    "nasnet_a_cifar",
    "nasnet_a_large",
    "nasnet_a_mobile",
    "pareto_front",
    "proxyless_cpu",
    "proxyless_gpu",
    "proxyless_mobile",
    "proxyless_net",
    "reinforce_loss",
    "removed_count",
    "searched_vs_random",
]
