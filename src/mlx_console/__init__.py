"""mlx-console: a keyboard-first terminal operations console for MLX serving."""

__version__ = "0.1.0"
