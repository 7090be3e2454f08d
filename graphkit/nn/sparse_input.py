"""Dropout that keeps sparse feature matrices sparse.

Bag-of-words features (Cora, CiteSeer) are about 99% zeros. Dense dropout on them costs as much
as the dense matrix; dropping the stored values of a sparse CSR/COO tensor is the same random
map (zeros stay zero, survivors are scaled by :math:`1/(1-p)`) at a fraction of the cost, and
:class:`torch.nn.Linear` accepts the sparse result, gradients included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["feature_dropout"]


def feature_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """:func:`torch.nn.functional.dropout` for dense, sparse CSR and sparse COO ``x``."""
    if not training or p == 0.0:
        return x
    if x.layout == torch.sparse_csr:
        return torch.sparse_csr_tensor(x.crow_indices(), x.col_indices(),
                                       F.dropout(x.values(), p, True), x.shape)
    if x.layout == torch.sparse_coo:
        x = x.coalesce()
        return torch.sparse_coo_tensor(x.indices(), F.dropout(x.values(), p, True), x.shape,
                                       is_coalesced=True)
    return F.dropout(x, p, True)
