"""Audio in and out: decoding uploads, preparing voice references, encoding results.

* ``decode``: uploaded bytes -> ``DecodedAudio`` (bounded, with user-facing rejections).
* ``reference``: ``DecodedAudio`` -> ``PreparedClip`` for XTTS conditioning.
* ``encode``: synthesised samples -> ``EncodedAudio`` in the requested format.

The names below are importable from here; each module is imported on first
use, so ``decode`` and ``encode`` do not pull in torch (only ``reference``,
through the VAD, does).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "INPUT_EXTENSIONS": "decode",
    "DecodedAudio": "decode",
    "decode_audio": "decode",
    "probe_duration": "decode",
    "OUTPUT_FORMATS": "encode",
    "OUTPUT_SAMPLE_RATES": "encode",
    "EncodedAudio": "encode",
    "encode_audio": "encode",
    "ClipChecks": "reference",
    "PreparedClip": "reference",
    "combine_clips": "reference",
    "prepare_reference": "reference",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
