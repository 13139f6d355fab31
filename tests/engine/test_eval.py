"""eval's scoring on a known answer: a synthesis that is the reference itself must score near 1, one that is
noise must score lower, and the delta must say which precision lost. On random weights the real synthesis
is noise for both precisions, so only a planted answer shows that the figures mean what they say.

The dev model's speaker encoder has random weights too: it tells noise from speech only barely (cosine
about 0.994 against 1.0 here), so the margin asserted is small; it is deterministic (fixed weights, seeded
noise), and it fails if eval pairs the wrong clips, swaps the precisions or reports a constant."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.clips import speech_clip
from voicecloning import eval as evaluation


def test_eval_scores_the_reference_itself_high_and_noise_low(
    converted_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fp32 'speaks' the reference clip back, fast speaks white noise: fp32 ~1, fast lower, delta < 0."""
    clips = tmp_path / "clips"
    clips.mkdir()
    speech_clip(clips / "ref.wav", seconds=4.0)
    noise = np.random.default_rng(0).normal(0, 0.1, 4 * evaluation.OUTPUT_RATE).astype(np.float32)

    def planted(engine: Any, paths: list[Path], _args: argparse.Namespace) -> list[np.ndarray]:
        if engine.config.precision == "fp32":
            return [evaluation.read_clip(p, evaluation.OUTPUT_RATE) for p in paths]
        return [noise for _ in paths]

    monkeypatch.setattr(evaluation, "synthesize_all", planted)
    result = evaluation.evaluate(argparse.Namespace(clips=clips, model_dir=converted_dir, threads=1, text=None,
                                                    language="en", max_tokens=4))
    assert result["clips"] == 1 and result["per_clip"][0]["clip"] == "ref.wav"
    assert result["fp32_similarity"] >= 0.999, result
    assert result["fast_similarity"] < result["fp32_similarity"] - 0.001, result
    assert result["delta"] < 0 and result["delta"] == pytest.approx(
        result["fast_similarity"] - result["fp32_similarity"], abs=1e-3)
