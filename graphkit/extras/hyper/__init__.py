"""Hypernetworks and weight prediction: generated weights run through the target module."""
