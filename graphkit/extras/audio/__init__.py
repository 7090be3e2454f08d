"""Audio separation and enhancement models of the catalogue, with their losses."""
