"""The machine: memory, chip, listening ports and their owners, model discovery and fit."""
