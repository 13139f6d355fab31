"""The HiFiGAN decoder as channels-last 2-D convolutions computes what coqui's generator computes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch

from voicecloning.engine.fidelity import snr_db
from voicecloning.engine.precision import cpu_has_fast_bf16, fold_weight_norm
from voicecloning.engine.vocoder import CONTEXT, WINDOW, ChannelsLastGenerator, windows


@pytest.fixture(scope="module")
def generator(stock_fp32: Any) -> Any:
    """coqui's waveform generator of the tiny model, weight norm folded (as every CPU mode uses it)."""
    folded = copy.deepcopy(stock_fp32.hifigan_decoder.waveform_decoder)
    fold_weight_norm(folded)
    return folded


def inputs(channels: int, length: int = 40, rows: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return torch.randn(rows, channels, length, generator=gen), torch.randn(rows, 512, 1, generator=gen)


@pytest.mark.parametrize("length", [WINDOW + CONTEXT, WINDOW + 2 * CONTEXT + 3, 3 * WINDOW + 17])
def test_windows_cover_every_position_once_in_two_shapes(length: int) -> None:
    """Kept spans tile [0, length) in order; decoded spans have one of two sizes and enough context."""
    spans = windows(length)
    assert [start for _, _, start, _ in spans] == list(range(0, length, WINDOW))
    assert spans[-1][3] == length
    assert {hi - lo for lo, hi, _, _ in spans} <= {WINDOW + CONTEXT, WINDOW + 2 * CONTEXT}
    for lo, hi, start, end in spans:
        assert 0 <= lo <= start < end <= hi <= length
        assert lo == 0 or start - lo >= CONTEXT
        assert hi == length or hi - end >= CONTEXT


@torch.inference_mode()
def test_channels_last_fp32_in_windows_matches_the_whole_generator(generator: Any) -> None:
    """In fp32 a long input decoded window by window gives coqui's samples, to float rounding.

    The context each window carries (16 input frames) is more than HiFiGAN's
    receptive field (~11.6 frames each side, measured on the full model).
    """
    x, g = inputs(generator.conv_pre.in_channels, length=2 * WINDOW + 40, rows=1)
    expected = generator(x, g=g)
    got = ChannelsLastGenerator(generator, torch.float32)(x, g=g)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@torch.inference_mode()
def test_a_short_input_padded_to_the_window_differs_only_near_its_end(generator: Any) -> None:
    """A short input is zero-padded to one window: identical but for the last receptive field."""
    x, g = inputs(generator.conv_pre.in_channels)
    expected = generator(x, g=g)
    got = ChannelsLastGenerator(generator, torch.float32)(x, g=g)
    assert got.shape == expected.shape
    tail = 16 * 256  # one context's worth of output samples
    torch.testing.assert_close(got[..., :-tail], expected[..., :-tail], rtol=0, atol=1e-5)
    assert snr_db(expected, got) >= 25.0


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
