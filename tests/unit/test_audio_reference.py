"""Preparing reference clips: accepted speech, refused clips, warnings, trimming, joining."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import torch

from tests.support.clips import speech_samples
from voicecloning.audio import vad
from voicecloning.audio.decode import DecodedAudio
from voicecloning.audio.measures import integrated_loudness
from voicecloning.audio.reference import ClipChecks, combine_clips, prepare_reference
from voicecloning.audio.resample import resample
from voicecloning.errors import ClipRejected

RATE = 22050


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """40 s of espeak-ng speech at 22050 Hz; tests slice what they need."""
    audio, rate = speech_samples(40.0)
    assert rate == RATE and len(audio) >= 40 * RATE
    return audio


def clip(samples: np.ndarray, rate: int = RATE) -> DecodedAudio:
    return DecodedAudio(samples=np.asarray(samples, dtype=np.float32), sample_rate=rate)


def seconds(audio: np.ndarray, start: float, end: float) -> np.ndarray:
    return audio[int(start * RATE) : int(end * RATE)]


def with_noise(samples: np.ndarray, snr_db: float) -> np.ndarray:
    """``samples`` between 1.5 s of silence each side, all under white noise ``snr_db`` below the speech."""
    pad = np.zeros(int(1.5 * RATE), dtype=np.float32)
    padded = np.concatenate([pad, samples, pad])
    level = np.sqrt(np.mean(samples**2)) * 10 ** (-snr_db / 20)
    noise = np.random.default_rng(7).standard_normal(len(padded)) * level
    return (padded + noise).astype(np.float32)


def test_clear_speech_is_accepted_at_22050_hz_and_target_loudness(speech):
    """10 s of clean speech: accepted, 22050 Hz, at -23 LUFS, no warnings."""
    prepared = prepare_reference(clip(seconds(speech, 0, 10)))

    assert prepared.sample_rate == RATE and prepared.source_sample_rate == RATE
    assert prepared.speech_s > 3.0
    assert prepared.duration_s == pytest.approx(len(prepared.samples) / RATE)
    assert 3.0 < prepared.duration_s <= 10.0
    assert integrated_loudness(prepared.samples, RATE) == pytest.approx(-23.0, abs=0.5)
    assert np.max(np.abs(prepared.samples)) <= 0.99
    assert prepared.snr_db is None or prepared.snr_db > 40  # None: pauses too short to measure noise
    assert prepared.warnings == ()


def test_facts_are_json_and_match_the_clip(speech):
    prepared = prepare_reference(clip(seconds(speech, 0, 10)))

    facts = json.loads(json.dumps(prepared.facts()))

    assert facts["sample_rate"] == RATE
    assert facts["source_duration_s"] == pytest.approx(10.0, abs=0.001)
    assert facts["duration_s"] == pytest.approx(prepared.duration_s, abs=0.001)
    assert facts["speech_s"] == pytest.approx(prepared.speech_s, abs=0.001)
    assert facts["loudness_lufs"] == pytest.approx(prepared.loudness_lufs, abs=0.05)
    assert facts["warnings"] == []
    assert set(facts) >= {"clipping_ratio", "snr_db", "source_sample_rate"}


def test_a_44_1_khz_source_is_resampled_to_22050_hz(speech):
    source = resample(seconds(speech, 0, 8), RATE, 44100)

    prepared = prepare_reference(clip(source, 44100))

    assert prepared.sample_rate == RATE and prepared.source_sample_rate == 44100
    assert prepared.source_duration_s == pytest.approx(8.0, abs=0.01)
    assert prepared.samples.dtype == np.float32


def test_preparation_is_deterministic(speech):
    audio = clip(seconds(speech, 0, 8))

    first, second = prepare_reference(audio), prepare_reference(audio)

    np.testing.assert_array_equal(first.samples, second.samples)
    assert first.facts() == second.facts()


def test_pure_silence_is_rejected_as_no_speech():
    with pytest.raises(ClipRejected, match="no speech found in the 5 s clip"):
        prepare_reference(clip(np.zeros(5 * RATE)))


def test_too_little_speech_is_rejected_with_the_amount_found(speech):
    """1.5 s of speech is refused; the message says how much speech was found."""
    with pytest.raises(ClipRejected) as caught:
        prepare_reference(clip(seconds(speech, 0, 1.5)))

    found = re.search(r"only (\d+\.\d) s of speech found; upload at least 3 s", str(caught.value))
    assert found is not None, str(caught.value)
    assert 0.5 <= float(found.group(1)) < 3.0


def test_min_speech_threshold_is_configurable(speech):
    prepared = prepare_reference(clip(seconds(speech, 0, 1.5)), ClipChecks(min_speech_seconds=1.0))

    assert 1.0 <= prepared.speech_s < 3.0


def test_heavily_clipped_speech_warns(speech):
    """Speech driven ten times past full scale is accepted with a 'clipped' warning."""
    prepared = prepare_reference(clip(np.clip(seconds(speech, 0, 8) * 10, -1, 1)))

    assert prepared.clipping_ratio > 0.001
    assert any("clipped" in warning for warning in prepared.warnings)
    assert np.max(np.abs(prepared.samples)) <= 0.99


def test_moderate_background_noise_warns(speech):
    """Speech 10 dB above white noise: accepted, SNR measured near 10 dB, a noise warning."""
    prepared = prepare_reference(clip(with_noise(seconds(speech, 0, 8), snr_db=10)))

    assert prepared.snr_db == pytest.approx(10, abs=3)
    assert any("background noise" in warning for warning in prepared.warnings)


def test_noise_as_loud_as_the_voice_is_rejected(speech):
    with pytest.raises(ClipRejected, match="background noise is about as loud as the voice"):
        prepare_reference(clip(with_noise(seconds(speech, 0, 8), snr_db=0)))


def test_leading_and_trailing_silence_is_trimmed(speech):
    """3 s of silence on both sides of 8 s of speech is cut away (0.2 s margins stay)."""
    body = seconds(speech, 0, 8)
    silence = np.zeros(3 * RATE, dtype=np.float32)

    prepared = prepare_reference(clip(np.concatenate([silence, body, silence])))

    assert prepared.source_duration_s == pytest.approx(14.0)
    assert 6.0 < prepared.duration_s < 8.5
    edge = int(0.1 * RATE)
    assert np.max(np.abs(prepared.samples[:edge])) < 1e-3  # margin before the first word
    assert np.max(np.abs(prepared.samples[-edge:])) < 1e-3


def test_a_long_clip_warns_and_keeps_at_most_30_seconds(speech):
    """40 s of speech: cut (at a pause) to no more than 30 s, with a warning saying so."""
    prepared = prepare_reference(clip(speech[: 40 * RATE]))

    assert prepared.source_duration_s == pytest.approx(40.0)
    assert 15.0 <= prepared.duration_s <= 30.0
    assert prepared.speech_s > 30.0  # measured on the whole source
    assert any("only the first" in warning for warning in prepared.warnings)


def test_combined_clips_are_joined_with_short_gaps(speech):
    first = prepare_reference(clip(seconds(speech, 0, 6)))
    second = prepare_reference(clip(seconds(speech, 10, 16)))

    combined = combine_clips([first, second], max_seconds=30)

    assert combined.duration_s == pytest.approx(first.duration_s + 0.3 + second.duration_s, abs=0.001)
    assert combined.speech_s == pytest.approx(first.speech_s + second.speech_s)
    assert combined.source_duration_s == pytest.approx(12.0)
    assert combined.sample_rate == RATE
    assert combined.warnings == ()


def test_combined_clips_are_cut_to_the_limit_with_merged_warnings(speech):
    """A clipped 12 s clip twice under a 20 s limit: cut, its warning once, plus 'only the first'."""
    first = prepare_reference(clip(np.clip(seconds(speech, 0, 12) * 10, -1, 1)))

    combined = combine_clips([first, first], max_seconds=20)

    assert combined.duration_s <= 20.0
    assert combined.duration_s > first.duration_s + 1.0  # part of the second clip is kept
    assert sum("clipped" in warning for warning in combined.warnings) == 1
    assert any("only the first" in warning for warning in combined.warnings)


def test_batched_vad_matches_silero_reference_loop(speech):
    """The batched model gives silero-vad's own per-window probabilities."""
    import silero_vad

    audio = resample(seconds(speech, 0, 4), RATE, vad.VAD_SAMPLE_RATE)
    threads = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # silero's importlib/torch.jit use
            model = silero_vad.load_silero_vad(onnx=False)
        reference = []
        with torch.inference_mode():
            for start in range(0, len(audio), 512):
                window = torch.from_numpy(np.pad(audio[start : start + 512], (0, max(0, start + 512 - len(audio)))))
                reference.append(model(window, vad.VAD_SAMPLE_RATE).item())
    finally:
        torch.set_num_threads(threads)

    np.testing.assert_allclose(vad.speech_probabilities(audio), reference, atol=1e-4)


def test_vad_leaves_torch_thread_count_unchanged(speech):
    before = torch.get_num_threads()

    vad.speech_segments(resample(seconds(speech, 0, 4), RATE, vad.VAD_SAMPLE_RATE))

    assert torch.get_num_threads() == before
