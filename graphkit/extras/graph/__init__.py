"""Graph learning methods of the paper collection beyond graphkit's main list: topological
concentration for link prediction (TC / ATC) and meta-node contrastive graph clustering (PamC)."""
