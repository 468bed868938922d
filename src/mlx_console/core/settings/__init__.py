"""settings (core)."""
