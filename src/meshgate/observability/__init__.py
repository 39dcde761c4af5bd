"""Observability: OpenTelemetry traces, Prometheus metrics and structured logs."""
