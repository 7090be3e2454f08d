"""Dense prediction and restoration models of the catalogue (segmentation, counting)."""
