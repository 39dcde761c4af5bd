"""OAuth 2.1: meshgate as authorization server for MCP clients, and as client of OAuth-protected upstreams."""
