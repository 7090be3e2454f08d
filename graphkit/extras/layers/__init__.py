"""Reusable blocks and operators of the catalogue (usable outside any one paper)."""
