"""Log engine: read files (document, tail), group events (events), recognise bugs (patterns, evidence, scan).

One pipeline: `document.LogDocument` is the one reader of a log file (paged, followed; rotation, truncation
and partial lines decided there), `tail.LogTail` follows a path across rotations (the supervising daemon and
the metrics sampler read through it), `live.LiveTriage` adds waiting and triage (the console's log pane and
`triage --follow`), `live.Reactions` is what the daemon does on a line (catalogue entries with an action).
Batch triage: `triage.triage_file/triage_text/triage_lines` → `TriagedEvent` (first_line, last_line,
categories, severity, title, cause, first_move, references, event), `triage.Triager` (incremental),
`patterns.Catalog.load(extra_paths)`.
"""
