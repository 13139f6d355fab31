"""Encoding results: each output format and rate, decoded back and measured."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from voicecloning.audio.encode import OUTPUT_FORMATS, encode_audio
from voicecloning.errors import UnsupportedFormat

MODEL_RATE = 24000  # XTTS output
SECONDS = 2.0
TONE_HZ = 440.0


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    t = np.arange(int(SECONDS * MODEL_RATE)) / MODEL_RATE
    return (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def decode(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("fmt", list(OUTPUT_FORMATS))
def test_each_format_decodes_back_to_the_same_tone(fmt, tone):
    """wav, flac, mp3 and ogg (Opus) decode back at 24 kHz, 2 s long, still a 440 Hz tone."""
    encoded = encode_audio(tone, MODEL_RATE, fmt)

    samples, rate = decode(encoded.data)
    assert encoded.content_type == OUTPUT_FORMATS[fmt]
    assert encoded.extension == fmt
    assert encoded.sample_rate == rate == MODEL_RATE
    assert encoded.duration_s == pytest.approx(SECONDS, abs=0.001)
    assert len(samples) / rate == pytest.approx(SECONDS, abs=0.05)
    assert dominant_frequency(samples, rate) == pytest.approx(TONE_HZ, abs=2)


def test_content_types():
    assert OUTPUT_FORMATS == {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg"}


def test_wav_is_16_bit_pcm_and_flac_16_bit(tone):
    assert sf.info(io.BytesIO(encode_audio(tone, MODEL_RATE, "wav").data)).subtype == "PCM_16"
    assert sf.info(io.BytesIO(encode_audio(tone, MODEL_RATE, "flac").data)).subtype == "PCM_16"
    assert sf.info(io.BytesIO(encode_audio(tone, MODEL_RATE, "ogg").data)).subtype == "OPUS"


@pytest.mark.parametrize("fmt", ["wav", "mp3"])
@pytest.mark.parametrize("out_rate", [16000, 22050, 44100, 48000])
def test_output_is_resampled_to_the_requested_rate(fmt, out_rate, tone):
    """The file holds the requested rate, the same duration and the same pitch."""
    encoded = encode_audio(tone, MODEL_RATE, fmt, out_rate=out_rate)

    samples, rate = decode(encoded.data)
    assert encoded.sample_rate == rate == out_rate
    assert len(samples) / rate == pytest.approx(SECONDS, abs=0.05)
    assert dominant_frequency(samples, rate) == pytest.approx(TONE_HZ, abs=2)


@pytest.mark.parametrize(("out_rate", "file_rate"), [(16000, 16000), (22050, 48000), (44100, 48000), (48000, 48000)])
def test_ogg_opus_uses_48_khz_for_rates_opus_cannot_code(out_rate, file_rate, tone):
    """Opus has no 22.05/44.1 kHz mode: those requests are encoded at 48 kHz, and sample_rate says so."""
    encoded = encode_audio(tone, MODEL_RATE, "ogg", out_rate=out_rate)

    samples, rate = decode(encoded.data)
    assert encoded.sample_rate == rate == file_rate
    assert len(samples) / rate == pytest.approx(SECONDS, abs=0.05)


def test_samples_beyond_full_scale_are_clipped_not_wrapped():
    """1.5 becomes full positive scale in 16-bit PCM, never a negative wrap-around."""
    encoded = encode_audio(np.array([1.5, -1.5, 0.25] * 100, dtype=np.float32), MODEL_RATE, "wav")

    samples, _ = decode(encoded.data)
    np.testing.assert_allclose(samples[:3], [32767 / 32768, -1.0, 0.25], atol=1e-4)


def test_format_name_is_matched_without_case():
    encoded = encode_audio(np.zeros(2400, dtype=np.float32), MODEL_RATE, "WAV")

    assert encoded.extension == "wav" and encoded.content_type == "audio/wav"


def test_unknown_format_is_refused_naming_the_allowed_ones(tone):
    with pytest.raises(UnsupportedFormat) as caught:
        encode_audio(tone, MODEL_RATE, "aiff")
    assert "'aiff'" in str(caught.value) and "wav, flac, mp3, ogg" in str(caught.value)


def test_unsupported_rate_is_refused_naming_the_allowed_ones(tone):
    with pytest.raises(UnsupportedFormat) as caught:
        encode_audio(tone, MODEL_RATE, "wav", out_rate=8000)
    assert "8000 Hz" in str(caught.value) and "16000, 22050, 24000, 44100, 48000 Hz" in str(caught.value)


def test_empty_samples_are_a_programming_error():
    with pytest.raises(ValueError):
        encode_audio(np.zeros(0, dtype=np.float32), MODEL_RATE, "wav")
