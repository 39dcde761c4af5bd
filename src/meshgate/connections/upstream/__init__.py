"""Clients that reach upstream MCP servers: one pooled client per connection."""

from meshgate.connections.upstream.breaker import CircuitBreaker
from meshgate.connections.upstream.client import UpstreamClient, shared_ssl_context

__all__ = ["CircuitBreaker", "UpstreamClient", "shared_ssl_context"]
