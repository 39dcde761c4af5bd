"""Isolated JavaScript runs (QuickJS in worker processes) and code mode for virtual MCPs."""
