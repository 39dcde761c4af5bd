"""The hot path: forwarding MCP messages to upstreams with meshgate's credentials."""
