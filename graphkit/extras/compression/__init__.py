"""Learned image compression: entropy models and the catalogue's codecs."""
