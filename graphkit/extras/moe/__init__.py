"""Mixture of experts: routers, expert containers, balancing losses and the papers' models."""
