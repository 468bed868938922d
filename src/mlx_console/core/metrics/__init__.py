"""Observability: a sampler in each backend's supervising process writes series to one SQLite database
(store.py); the CLI (`ps`, `metrics`), the Prometheus endpoint and the console read it (query.py)."""
