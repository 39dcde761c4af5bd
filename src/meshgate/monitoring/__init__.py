"""The audit log: capture on the hot path, redaction and batched writes off it, queries and stats."""
