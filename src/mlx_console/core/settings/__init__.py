"""oMLX per-model settings (model_settings.json): schema, conflict-safe store, apply to a running oMLX.

Entry points: `schema.KEYS` / `schema.form_fields()` / `form.model_form(store, model)` (what a form shows),
`store.SettingsStore.load(path)` → `.set/.set_text/.unset/.diff()/.changes()/.issues()/.save(if_hash=…)`
(`errors.ConflictError.conflict` carries base, ours and theirs; `.rebased()` replays an edit on the new file),
`apply.apply(store, config, reload=…, dry_run=…)` / `apply.apply_values(config, model, values, exact=…)`,
`baseline.load(name)` + `baseline.compare(models, baseline)`, `watch.SettingsWatcher` / `watch.watch_hashes`,
`locate.default_path(config)`.
"""
