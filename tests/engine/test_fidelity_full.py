"""The fidelity thresholds on the released architecture's size (slow: builds and loads ~2 GB).

Run with `make test-slow`; the benchmark (`python -m voicecloning bench`) reports the same figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.conftest import load
from voicecloning.engine.fidelity import compare, random_inputs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from voicecloning.engine.convert import convert_checkpoint
    from voicecloning.engine.devmodel import build_dev_model

    root = tmp_path_factory.mktemp("full")
    source = build_dev_model(root / "xtts-full", full=True)
    return source, convert_checkpoint(source, root / "xtts-full-fast")


def test_full_size_fast_mode_matches_fp32(full_dirs: tuple[Path, Path]) -> None:
    """Full size, 200 teacher-forced codes: GPT latent cosine >= 0.98 and decoder SNR >= 25 dB."""
    source, converted = full_dirs
    reference = load(source, "fp32")
    scores = compare(reference, load(converted, "fast"), random_inputs(reference, codes=200))
    assert scores["gpt_latent_cosine"] >= 0.98, scores
    assert scores["decoder_snr_db"] >= 25.0, scores
