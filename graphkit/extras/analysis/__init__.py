"""Theory-to-code and analysis tools: measures papers compute on trained networks."""
