"""Virtual MCPs: a chosen set of connections behind `/mcp/virtual/{id}`, their lists merged and filtered."""
