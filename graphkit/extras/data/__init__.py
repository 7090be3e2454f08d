"""Datasets, benchmarks and data curation of the catalogue (local files only, never a download)."""
