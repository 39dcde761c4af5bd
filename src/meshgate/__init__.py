"""meshgate: a self-hostable MCP gateway."""

__version__ = "0.1.0"
