"""The fast mode computes the same function as fp32 (the issue's acceptance thresholds)."""

from __future__ import annotations

from typing import Any

import pytest

from voicecloning.engine.fidelity import compare, random_inputs

MIN_COSINE = 0.98
MIN_SNR_DB = 25.0


@pytest.fixture(scope="module")
def scores(stock_fp32: Any, fast_int8: Any) -> dict[str, float]:
    return compare(stock_fp32, fast_int8, random_inputs(stock_fp32, codes=48))


def test_fast_gpt_latents_match_fp32(scores: dict[str, float]) -> None:
    """Teacher-forced GPT latents of int8 vs fp32 have cosine similarity >= 0.98."""
    assert scores["gpt_latent_cosine"] >= MIN_COSINE


def test_fast_decoder_matches_fp32(scores: dict[str, float]) -> None:
    """The bf16 HiFiGAN decoder's audio from the same latents is >= 25 dB SNR against fp32."""
    assert scores["decoder_snr_db"] >= MIN_SNR_DB


def test_fast_mode_on_an_unconverted_folder_quantizes_at_load(dev_model_dir: Any, stock_fp32: Any) -> None:
    """A coqui-format folder in fast mode is quantized after coqui's load and meets the same thresholds."""
    from tests.engine.conftest import load

    scores = compare(stock_fp32, load(dev_model_dir, "fast"), random_inputs(stock_fp32, codes=16))
    assert scores["gpt_latent_cosine"] >= MIN_COSINE
    assert scores["decoder_snr_db"] >= MIN_SNR_DB
