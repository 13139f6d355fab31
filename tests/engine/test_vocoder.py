"""The HiFiGAN decoder as channels-last 2-D convolutions computes what coqui's generator computes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from voicecloning.engine.fidelity import snr_db
from voicecloning.engine.precision import cpu_has_fast_bf16, fold_weight_norm
from voicecloning.engine.vocoder import ChannelsLastGenerator


@pytest.fixture(scope="module")
def generator(stock_fp32: Any) -> Any:
    """coqui's waveform generator of the tiny model, weight norm folded (as every CPU mode uses it)."""
    folded = copy.deepcopy(stock_fp32.hifigan_decoder.waveform_decoder)
    fold_weight_norm(folded)
    return folded


def inputs(channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(2, channels, 40, generator=gen), torch.randn(2, 512, 1, generator=gen)


@torch.inference_mode()
def test_channels_last_fp32_matches_the_generator(generator: Any) -> None:
    """In fp32 the channels-last decoder gives coqui's samples, to float rounding."""
    x, g = inputs(generator.conv_pre.in_channels)
    expected = generator(x, g=g)
    got = ChannelsLastGenerator(generator, torch.float32)(x, g=g)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@torch.inference_mode()
def test_channels_last_bf16_is_within_the_decoder_gate(generator: Any) -> None:
    """In bf16 the channels-last decoder stays far above the 25 dB fidelity gate against fp32."""
    x, g = inputs(generator.conv_pre.in_channels)
    got = ChannelsLastGenerator(generator, torch.bfloat16)(x, g=g)
    assert got.dtype == torch.float32
    assert snr_db(generator(x, g=g), got) >= 30.0


def test_the_fast_mode_decodes_through_the_channels_last_generator(fast_int8: Any) -> None:
    """``fast`` swaps in the channels-last decoder, bf16 where the CPU has native bf16."""
    decoder = fast_int8.hifigan_decoder.waveform_decoder
    assert isinstance(decoder, ChannelsLastGenerator)
    assert decoder.dtype == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
