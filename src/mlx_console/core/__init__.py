"""The domain: supervisor, system, logs, settings, bench. Never imports Textual or mlx."""
