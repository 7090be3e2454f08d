"""Backend dispatch for compiled kernels: C++ (graphkit._cpp), then Numba, then a Python oracle."""
