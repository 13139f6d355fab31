"""Build an XTTS model from a checkpoint folder, in the precision asked for.

A folder in converted form (manifest ``format: "fast"``, written by
``python -m voicecloning convert``) is built without random initialisation
and loaded by assignment from memory-mapped safetensors (see ``fastload``).
Any other folder goes through coqui's own ``Xtts(config)`` +
``load_checkpoint``: the reference path, and what ``fp32`` reproduces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voicecloning.engine.manifest import read_manifest
from voicecloning.engine.precision import apply_precision, resolve_precision


def load_model(model_dir: Path, xtts_config: Any, *, device: str = "cpu", precision: str = "auto") -> Any:
    """An eval-mode ``Xtts`` on ``device`` in ``precision`` (auto, fp32, fast, fp16 or bf16).

    coqui-tts rewrites an original ``model.pth`` in place on its first load;
    convert checkpoints at build time (``python -m voicecloning convert``)
    so nothing is rewritten on a read-only image.
    """
    mode = resolve_precision(precision, device)
    if read_manifest(model_dir).format != "fast":
        model = load_stock(model_dir, xtts_config)
        model.to(device)
        return apply_precision(model, mode)
    from voicecloning.engine.fastload import has_int8, load_fast
    from voicecloning.engine.quantize import release_freed_memory

    model = load_fast(model_dir, xtts_config, int8=mode == "fast" and has_int8(model_dir))
    model.to(device)
    model = apply_precision(model, mode)
    release_freed_memory()  # the int8 source copies and the init-free skeleton's replaced tensors
    return model


def load_stock(model_dir: Path, xtts_config: Any) -> Any:
    """``Xtts(config)`` + ``load_checkpoint``: coqui's own loading path."""
    from TTS.tts.models.xtts import Xtts

    model = Xtts(xtts_config)
    model.load_checkpoint(xtts_config, checkpoint_dir=str(model_dir), eval=True)
    model.eval()
    return model
