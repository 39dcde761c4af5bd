"""HTTP edge: routes, guards and the mapping of meshgate errors to HTTP responses."""
