"""``voicecloning.json``: what a model folder holds, written by ``dev-model`` and ``convert``.

A folder without a manifest (a stock XTTS-v2 download, a community
fine-tune) is described from its folder name and config.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "voicecloning.json"
XTTS_V2_LICENSE = "Coqui Public Model License 1.0.0 (non-commercial)"


@dataclass(frozen=True)
class Manifest:
    model_name: str
    model_version: str
    license: str = XTTS_V2_LICENSE
    dev: bool = False
    format: str = "coqui"  # "coqui": model.pth as coqui writes it; "fast": see engine.convert


def write_manifest(model_dir: Path, manifest: Manifest) -> None:
    (model_dir / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")


def read_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST
    if path.is_file():
        data = json.loads(path.read_text())
        known = {k: data[k] for k in Manifest.__dataclass_fields__ if k in data}
        return Manifest(**known)
    name = "xtts_v2" if "xtts_v2" in model_dir.name else model_dir.name
    return Manifest(model_name=name, model_version="unknown")
