"""Training-free node embeddings.

* :func:`fastrp`: FastRP (Chen et al., CIKM 2019), the official formula and defaults.
* :func:`fastrp_gds`: the Neo4j GDS variant (per-iteration L2, self influence, node properties).
* :mod:`graphkit.embed.projection`: the random projection matrices both draw.
"""

from graphkit.embed.fastrp import fastrp
from graphkit.embed.gds import fastrp_gds
from graphkit.embed.projection import gaussian_random_projection, sparse_random_projection

__all__ = ["fastrp", "fastrp_gds", "sparse_random_projection", "gaussian_random_projection"]
