"""Widgets of the console: backends table, log view, triage card, bench pane, command line, key bar."""
