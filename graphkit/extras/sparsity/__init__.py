"""Pruning and sparsity: one mask API, density allocations, schedules and the papers' pruners."""
