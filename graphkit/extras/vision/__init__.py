"""Vision backbones of the catalogue, with the parameter counts of their papers."""
