"""Build an XTTS model from a checkpoint folder through coqui-tts's real classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_model(model_dir: Path, xtts_config: Any, *, device: str = "cpu", precision: str = "auto") -> Any:
    """``Xtts(config)`` + ``load_checkpoint``: coqui's own loading path.

    coqui-tts rewrites an original ``model.pth`` in place on its first load;
    convert checkpoints at build time (``python -m voicecloning convert``)
    so nothing is rewritten on a read-only image.
    """
    from TTS.tts.models.xtts import Xtts

    model = Xtts(xtts_config)
    model.load_checkpoint(xtts_config, checkpoint_dir=str(model_dir), eval=True)
    model.to(device)
    model.eval()
    return model
