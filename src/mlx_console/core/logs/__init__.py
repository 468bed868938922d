"""logs (core)."""
