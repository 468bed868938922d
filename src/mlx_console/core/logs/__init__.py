"""Log engine: follow files (source), index huge ones (index), group events (events), recognise bugs (patterns).

Entry points for the UI and the CLI: `triage.triage_file/triage_text/triage_lines`, `triage.Triager`
(incremental), `source.LogFollower`, `index.LineIndex`, `patterns.Catalog.load(extra_paths)`.
"""
