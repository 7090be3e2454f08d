"""Neural architecture search: search spaces, supernets, mixed operations and searchers."""
