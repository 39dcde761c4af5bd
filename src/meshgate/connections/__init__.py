"""Connections: the registry of downstream MCP servers and the clients that reach them."""
