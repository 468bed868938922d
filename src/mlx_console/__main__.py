"""`python -m mlx_console` is the same as the `mlx-console` command."""

from mlx_console.cli import main

raise SystemExit(main())
