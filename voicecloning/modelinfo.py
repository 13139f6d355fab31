"""What the configured model can do, read from its folder's files: no weights, no torch.

This is what ``GET /model/info`` reports about the model itself. The HTTP API
runs the same image as the worker, so it reads the same ``config.json`` and
``voicecloning.json`` the worker loads; whether the worker has loaded the
model, and on what, is the worker's own report (``voicecloning.selfreport``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from voicecloning.engine.manifest import read_manifest
from voicecloning.engine.resolve import check_model_dir
from voicecloning.errors import ConfigurationError


def model_facts(model_dir: Path | None) -> dict[str, Any]:
    """The model's name, version, licence, languages and output rate; ``ConfigurationError`` if unreadable."""
    if model_dir is None:
        raise ConfigurationError(
            "VOICECLONING_MODEL_DIR is not set: the HTTP API reads the model's facts from that folder."
        )
    folder = check_model_dir(model_dir)
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{folder / 'config.json'} cannot be read as JSON: {exc}") from None
    languages = config.get("languages")
    if not isinstance(languages, list) or not languages:
        raise ConfigurationError(f"{folder / 'config.json'} lists no languages.")
    manifest = read_manifest(folder)
    return {
        "model_name": manifest.model_name,
        "model_version": manifest.model_version,
        "model_type": config.get("model", "xtts"),
        "license": manifest.license,
        "dev_model": manifest.dev,
        "languages": [str(code) for code in languages],
        "sample_rate": int((config.get("audio") or {}).get("output_sample_rate") or 24000),
    }
