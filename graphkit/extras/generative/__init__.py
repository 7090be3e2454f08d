"""Generative and energy-based models of the catalogue."""
