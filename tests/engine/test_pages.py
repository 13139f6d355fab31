"""Enrollment-only weights hand their pages back to the model file, and nothing else is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from voicecloning.engine.fastload import WEIGHTS
from voicecloning.engine.pages import file_mappings, file_page_spans, release_file_pages

MAPS = """\
7f0000000000-7f0000004000 r--p 00000000 fd:01 123 /models/x/model.safetensors
7f0000004000-7f0000008000 rw-p 00000000 00:00 0
7f0000010000-7f0000012000 r--p 00004000 fd:01 123 /models/x/model.safetensors
"""


def test_only_the_named_file_s_mappings_are_found() -> None:
    """Mappings of the weights file are listed; anonymous memory is not."""
    assert file_mappings(Path("/models/x/model.safetensors"), MAPS) == [
        (0x7F0000000000, 0x7F0000004000),
        (0x7F0000010000, 0x7F0000012000),
    ]


def test_a_tensor_in_ordinary_memory_is_never_released() -> None:
    """A copied tensor (anonymous memory, where DONTNEED would zero it) yields no span and keeps its values."""
    module = torch.nn.Linear(1024, 1024)
    before = module.weight.detach().clone()
    assert file_page_spans([module.weight], [(0, 4096)]) == []
    assert release_file_pages([module], Path(__file__)) == 0
    assert torch.equal(module.weight, before)


def test_enrolling_releases_the_enrollment_weights_and_enrolls_the_same_again(converted_dir: Path) -> None:
    """After an enrollment its weights' pages are released; the next enrollment reads them back unchanged."""
    from voicecloning.engine.xtts import EngineConfig, XttsEngine

    engine = XttsEngine(EngineConfig(model_dir=converted_dir, precision="fast", threads=1))
    clip = (0.3 * np.sin(np.arange(3 * 22050) * 0.0627)).astype(np.float32)
    first = engine.compute_latents(clip)
    model: Any = engine.model()
    modules = (model.gpt.conditioning_encoder, model.gpt.conditioning_perceiver, model.hifigan_decoder.speaker_encoder)
    assert release_file_pages(modules, converted_dir / WEIGHTS) > 1 << 20  # the speaker encoder alone is ~30 MB
    again = engine.compute_latents(clip)
    assert torch.equal(first.gpt_cond_latent, again.gpt_cond_latent)
    assert torch.equal(first.speaker_embedding, again.speaker_embedding)
