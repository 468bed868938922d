"""Log engine: follow files (source), index huge ones (index), group events (events), recognise bugs (patterns).

For the UI and the CLI: `live.LiveTriage` (a file as it is, then as it grows: `initial()`, `step(timeout)`),
`triage.triage_file/triage_text/triage_lines` → `TriagedEvent` (first_line, last_line, categories, severity,
title, cause, first_move, references, event), `triage.Triager` (incremental), `source.LogFollower` (poll/wait),
`index.LineIndex` (newest lines first over mmap), `patterns.Catalog.load(extra_paths)`.
"""
