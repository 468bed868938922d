"""bench (core)."""
