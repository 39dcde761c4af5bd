"""The management MCP server, built from every package's `tools.py` registry."""
