"""Prometheus metrics (`GET /metrics`): one registry of the proxy's own, observed once per finished request
(`observe.py`), never per stream chunk."""
