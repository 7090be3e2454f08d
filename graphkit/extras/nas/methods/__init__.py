"""The catalogue's search methods, built on the search-space, supernet and searcher APIs."""
