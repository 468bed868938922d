"""Bug shapes added in the eighteenth recall round of issue 10, written from the libraries' own wording (jinja2's
runtime and sandbox errors, swift-jinja's parser, mlx-swift's model factory) and the corpus convention that MLX's
thread-local stream error is no category. Each comes with the near misses that must stay quiet."""

from __future__ import annotations

import pytest

from mlx_console.core.logs.triage import triage_text


def _cats(text: str) -> set[str]:
    return {c for ev in triage_text(text) for c in ev.categories}


@pytest.mark.parametrize(
    ("text", "cat"),
    [
        # jinja2's filters and runtime meeting data of another shape while a chat template renders
        ("TypeError: Can only get item pairs from a mapping.", "chat_template"),
        ("2026-01-01 10:00:00,000 - ERROR - Failed to generate: no items for cycling given", "chat_template"),
        ("TypeError: macro 'render_tool' takes no keyword argument 'strict'", "chat_template"),
        ("TypeError: The loop must have the 'recursive' marker to be called recursively.", "chat_template"),
        ("SecurityError: access to attribute '__class__' of 'str' object is unsafe.", "chat_template"),
        ("FilterArgumentError: map requires a filter argument", "chat_template"),
        # swift-jinja (apps on mlx-swift)
        ('Error: parser("Parser Error: Expected closing statement token. openSquareBracket != closeStatement.")',
         "chat_template"),
        ('Failed to render the prompt: syntax("Expected opening expression token")', "chat_template"),
        # a model type the backend's code has no class for, in other words
        ("ValueError: Model type qwen3_next isn't supported yet", "unsupported_arch"),
        ("ValueError: model_type 'seed_oss' does not supported by this release", "unsupported_arch"),
        ('Failed to load model: unsupportedModelType("gemma3n")', "unsupported_arch"),
    ],
)
def test_round18_shapes(text: str, cat: str) -> None:
    assert cat in _cats(text)


@pytest.mark.parametrize(
    "text",
    [
        # a browser's SecurityError in a web UI's log is not a template sandbox
        "SecurityError: Failed to read the 'localStorage' property from 'Window': Access is denied",
        "2026-01-01 10:00:00,000 - INFO - Model type llama supported natively, loading",
        # MLX's thread-local stream error is a version mismatch, whatever path it was raised on (the draft, the KV
        # quantizer, the batch cache): the corpus's `none` convention
        "Traceback (most recent call last):\n"
        '  File "/opt/omlx/omlx/scheduler.py", line 3201, in step\n    responses.extend(self._step_mtp())\n'
        '  File "/opt/omlx/omlx/speculative/mtp.py", line 88, in _step_mtp\n    mx.eval(draft_tokens)\n'
        "RuntimeError: There is no Stream(gpu, 1) in current thread.",
        "Traceback (most recent call last):\n"
        '  File "/opt/mlx_lm/models/cache.py", line 301, in update_and_fetch\n    self.keys = mx.quantize(keys)\n'
        "RuntimeError: There is no Stream(gpu, 0) in current thread.",
    ],
)
def test_round18_near_misses(text: str) -> None:
    assert _cats(text) == set()
