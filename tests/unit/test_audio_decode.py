"""Decoding uploads: every input format, and every way an upload is refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support.clips import pyav_clip, speech_samples
from voicecloning.audio.decode import INPUT_EXTENSIONS, decode_audio, probe_duration
from voicecloning.audio.resample import resample
from voicecloning.errors import ClipRejected, UnsupportedFormat

SECONDS = 5.0
LIMIT = 600.0


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, int]:
    audio, rate = speech_samples(SECONDS)
    return audio[: int(SECONDS * rate)], rate


def soundfile_bytes(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def encode_upload(ext: str, speech: tuple[np.ndarray, int], tmp_path: Path) -> tuple[bytes, int]:
    """The clip as an upload in format ``ext``, and the sample rate the file holds."""
    audio, rate = speech
    if ext == "wav":
        return soundfile_bytes(audio, rate, "WAV", "PCM_16"), rate
    if ext == "flac":
        return soundfile_bytes(audio, rate, "FLAC"), rate
    if ext == "ogg":
        return soundfile_bytes(audio, rate, "OGG", "VORBIS"), rate
    if ext == "opus":
        return soundfile_bytes(resample(audio, rate, 48000), 48000, "OGG", "OPUS"), 48000
    if ext == "mp3":
        return soundfile_bytes(audio, rate, "MP3"), rate
    codec_rate = 48000 if ext == "webm" else 44100
    return pyav_clip(tmp_path / f"clip.{ext}", audio, rate, ext).read_bytes(), codec_rate


@pytest.mark.parametrize("ext", INPUT_EXTENSIONS)
def test_each_input_format_decodes_to_mono_float_at_its_own_rate(ext, speech, tmp_path):
    """Every supported format decodes to float32 mono speech of the clip's length at the file's rate."""
    data, rate = encode_upload(ext, speech, tmp_path)

    audio = decode_audio(data, ext, max_seconds=LIMIT)

    assert audio.sample_rate == rate
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration_s == pytest.approx(SECONDS, abs=0.1)
    assert np.max(np.abs(audio.samples)) <= 1.0
    assert np.sqrt(np.mean(audio.samples**2)) > 0.01  # speech, not silence


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a", "webm"])
def test_probe_duration_reads_the_length_from_the_header(ext, speech, tmp_path):
    """probe_duration announces the clip's length without decoding it."""
    data, _ = encode_upload(ext, speech, tmp_path)

    assert probe_duration(data, ext) == pytest.approx(SECONDS, abs=0.1)


def test_probe_duration_is_none_for_what_it_cannot_read():
    """Unknown data, empty data and unsupported extensions have no duration."""
    assert probe_duration(np.random.default_rng(0).bytes(4000), "wav") is None
    assert probe_duration(b"", "mp3") is None
    assert probe_duration(b"RIFF", "txt") is None


def test_stereo_is_averaged_to_mono(speech):
    """A stereo clip with the voice on the left only decodes to half the voice."""
    audio, rate = speech
    stereo = np.stack([audio, np.zeros_like(audio)], axis=1)

    decoded = decode_audio(soundfile_bytes(stereo, rate, "WAV", "FLOAT"), "wav", max_seconds=LIMIT)

    np.testing.assert_allclose(decoded.samples, audio / 2, atol=1e-6)


def test_extension_is_matched_without_case_or_dot(speech):
    """'.WAV' is the same format as 'wav'."""
    audio, rate = speech

    decoded = decode_audio(soundfile_bytes(audio, rate, "WAV"), ".WAV", max_seconds=LIMIT)

    assert decoded.duration_s == pytest.approx(SECONDS, abs=0.01)


def test_a_mislabelled_file_is_decoded_by_its_content(speech, tmp_path):
    """An M4A uploaded as '.mp3' still decodes (FFmpeg is the fallback)."""
    data, _ = encode_upload("m4a", speech, tmp_path)

    decoded = decode_audio(data, "mp3", max_seconds=LIMIT)

    assert decoded.duration_s == pytest.approx(SECONDS, abs=0.1)


def test_unsupported_extension_is_refused_with_the_supported_list():
    with pytest.raises(UnsupportedFormat) as caught:
        decode_audio(b"data", "txt", max_seconds=LIMIT)
    assert "'.txt'" in str(caught.value)
    assert "wav, flac, ogg, opus, mp3, m4a, aac, webm" in str(caught.value)


def test_empty_file_is_refused():
    with pytest.raises(ClipRejected, match="empty"):
        decode_audio(b"", "wav", max_seconds=LIMIT)


@pytest.mark.parametrize(("ext", "name"), [("wav", "WAV"), ("mp3", "MP3"), ("m4a", "M4A"), ("webm", "WebM")])
def test_random_bytes_are_refused_as_undecodable(ext, name):
    """Bytes that are not audio are refused, naming the format they claimed to be."""
    data = np.random.default_rng(1).bytes(20_000)

    with pytest.raises(ClipRejected) as caught:
        decode_audio(data, ext, max_seconds=LIMIT)
    assert f"could not be decoded as {name} audio" in str(caught.value)


def test_truncated_wav_is_refused(speech):
    """Half a WAV file is refused as truncated, with both lengths in the message."""
    audio, rate = speech
    data = soundfile_bytes(audio, rate, "WAV", "PCM_16")

    with pytest.raises(ClipRejected) as caught:
        decode_audio(data[: len(data) // 2], "wav", max_seconds=LIMIT)
    message = str(caught.value)
    assert "truncated" in message and "announces 5 s" in message and "2.5 s" in message


def test_wav_header_claiming_hours_in_a_small_file_is_refused_as_damaged(speech):
    """A header announcing 2 h of audio in a 5 s file is called damaged, not too long."""
    audio, rate = speech
    data = bytearray(soundfile_bytes(audio, rate, "WAV", "PCM_16"))
    assert data[36:40] == b"data"
    struct.pack_into("<I", data, 40, rate * 2 * 7200)  # data chunk size: 2 h of 16-bit mono

    with pytest.raises(ClipRejected) as caught:
        decode_audio(bytes(data), "wav", max_seconds=LIMIT)
    message = str(caught.value)
    assert "damaged or truncated" in message and "2 h 0 min" in message


def test_wav_without_its_data_chunk_is_refused(speech):
    """A file that ends inside the header is damaged."""
    audio, rate = speech

    with pytest.raises(ClipRejected, match="damaged or truncated"):
        decode_audio(soundfile_bytes(audio, rate, "WAV")[:30], "wav", max_seconds=LIMIT)


def test_truncated_flac_is_refused(speech):
    audio, rate = speech
    data = soundfile_bytes(audio, rate, "FLAC")

    with pytest.raises(ClipRejected, match="FLAC file is damaged or truncated"):
        decode_audio(data[: len(data) // 2], "flac", max_seconds=LIMIT)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3", "m4a", "aac", "webm"])
def test_clip_longer_than_the_limit_is_refused(ext, speech, tmp_path):
    """A 5 s clip with a 2 s limit is refused in every format, headers or not (MP3, AAC are stream-decoded)."""
    data, _ = encode_upload(ext, speech, tmp_path)

    with pytest.raises(ClipRejected) as caught:
        decode_audio(data, ext, max_seconds=2.0)
    assert "upload at most 2 s" in str(caught.value)


def test_too_long_message_gives_the_clip_length_in_hours_and_minutes():
    """A WAV that really holds 2 h is refused from its header alone, with its length.

    (1 kHz, 8-bit, so that the 2 h file is only 7 MB.)
    """
    rate, seconds = 1000, 7200
    header = bytearray(soundfile_bytes(np.zeros(rate, dtype=np.float32), rate, "WAV", "PCM_U8")[:44])
    struct.pack_into("<I", header, 40, rate * seconds)
    data = bytes(header) + bytes(rate * seconds)

    with pytest.raises(ClipRejected) as caught:
        decode_audio(data, "wav", max_seconds=600)
    assert str(caught.value) == "the clip is 2 h 0 min long; upload at most 10 min."


def test_a_clip_within_the_slack_of_the_limit_is_accepted(speech):
    """Half a second over the limit is tolerated (encoder padding)."""
    audio, rate = speech

    decoded = decode_audio(soundfile_bytes(audio, rate, "WAV"), "wav", max_seconds=SECONDS - 0.4)

    assert decoded.duration_s == pytest.approx(SECONDS, abs=0.01)


def test_very_low_sample_rate_is_refused(speech):
    audio, rate = speech

    with pytest.raises(ClipRejected, match="4000 Hz"):
        decode_audio(soundfile_bytes(resample(audio, rate, 4000), 4000, "WAV"), "wav", max_seconds=LIMIT)


@pytest.mark.parametrize("ext", INPUT_EXTENSIONS)
def test_damaged_uploads_decode_or_are_refused_never_crash(ext, speech, tmp_path):
    """Cut-off and byte-flipped files either decode to valid samples or raise ClipRejected."""
    data, _ = encode_upload(ext, speech, tmp_path)
    rng = np.random.default_rng(5)
    for attempt in range(24):
        damaged = bytearray(data[: rng.integers(1, len(data))] if attempt % 2 else data)
        for _ in range(rng.integers(1, 30)):
            damaged[rng.integers(0, min(len(damaged), 600 if attempt % 4 else len(damaged)))] = rng.integers(0, 256)
        try:
            decoded = decode_audio(bytes(damaged), ext, max_seconds=LIMIT)
        except ClipRejected:
            continue
        assert decoded.samples.size > 0 and np.all(np.isfinite(decoded.samples))
        assert np.max(np.abs(decoded.samples)) <= 1.0
