"""oMLX per-model settings (model_settings.json): schema, conflict-safe store, apply to a running oMLX."""
