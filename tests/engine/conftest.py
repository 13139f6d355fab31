"""The tiny dev model in both forms, loaded once per session in each precision the tests compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch


def load(model_dir: Path, precision: str) -> Any:
    from TTS.tts.configs.xtts_config import XttsConfig

    from voicecloning.engine.loader import load_model

    config = XttsConfig()
    config.load_json(str(model_dir / "config.json"))
    return load_model(model_dir, config, precision=precision)


@pytest.fixture(scope="session")
def converted_dir(dev_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from voicecloning.engine.convert import convert_checkpoint

    return convert_checkpoint(dev_model_dir, tmp_path_factory.mktemp("converted") / "xtts-tiny-fast")


@pytest.fixture(scope="session")
def stock_fp32(dev_model_dir: Path) -> Any:
    """The reference: coqui's own ``Xtts`` + ``load_checkpoint``, fp32."""
    return load(dev_model_dir, "fp32")


@pytest.fixture(scope="session")
def fast_fp32(converted_dir: Path) -> Any:
    return load(converted_dir, "fp32")


@pytest.fixture(scope="session")
def fast_int8(converted_dir: Path) -> Any:
    return load(converted_dir, "fast")


@pytest.fixture()
def voice(stock_fp32: Any) -> Any:
    from voicecloning.engine.latents import VoiceLatents

    gen = torch.Generator().manual_seed(7)
    return VoiceLatents(
        gpt_cond_latent=torch.randn(1, 32, stock_fp32.args.gpt_n_model_channels, generator=gen) * 0.5,
        speaker_embedding=torch.randn(1, stock_fp32.args.d_vector_dim, 1, generator=gen),
        model_name="tiny",
        model_version="test",
    )
