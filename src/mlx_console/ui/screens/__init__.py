"""Screens pushed over the dashboard: help, doctor, model swap, settings."""
