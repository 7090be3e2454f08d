"""Backend dispatch for compiled kernels: C++ (graphkit._cpp), then Numba, then a Python oracle;
and CPU kernels standing in for a torch operation (:func:`graphkit.ops.dropout.dropout`)."""
