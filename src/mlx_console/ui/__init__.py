"""The Textual UI: thin widgets and screens over the core."""
