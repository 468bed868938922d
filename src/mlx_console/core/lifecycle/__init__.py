"""The backend lifecycle: console-side control, the per-backend supervising daemon, and its files."""
