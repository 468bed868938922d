"""backends (core)."""
