"""Reference clips for tests, spoken by espeak-ng (speech-like, not noise)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCES = (
    "The quick brown fox jumps over the lazy dog. "
    "A voice sample should be a few seconds of one person speaking clearly. "
    "We read this sentence slowly so that the clip is long enough."
)


def espeak_wav(path: Path, text: str = SENTENCES, voice: str = "en", speed: int = 150) -> Path:
    """Write ``text`` spoken by espeak-ng to ``path`` (WAV, 22.05 kHz mono)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (make setup installs it)")
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return path


def speech_clip(path: Path, seconds: float = 8.0, fmt: str | None = None) -> Path:
    """A speech clip of about ``seconds`` seconds in the format of ``path``'s suffix."""
    tmp = path.with_suffix(".espeak.wav")
    espeak_wav(tmp, " ".join([SENTENCES] * max(1, int(seconds // 8) + 1)))
    audio, rate = sf.read(tmp, dtype="float32")
    tmp.unlink()
    audio = audio[: int(seconds * rate)]
    fmt = fmt or path.suffix.lstrip(".").upper()
    if fmt.lower() == "ogg":
        sf.write(path, audio, rate, format="OGG", subtype="VORBIS")
    elif fmt.lower() == "mp3":
        sf.write(path, audio, rate, format="MP3")
    else:
        sf.write(path, audio, rate, format=fmt.upper())
    return path


def silence(path: Path, seconds: float = 5.0, rate: int = 22050) -> Path:
    sf.write(path, np.zeros(int(seconds * rate), dtype=np.float32), rate)
    return path


def speech_samples(seconds: float = 8.0) -> tuple[np.ndarray, int]:
    """About ``seconds`` of espeak-ng speech as float32 mono samples and their rate (22050 Hz)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = speech_clip(Path(folder) / "speech.wav", seconds)
        audio, rate = sf.read(path, dtype="float32")
    return audio, rate


def pyav_clip(path: Path, samples: np.ndarray, rate: int, fmt: str) -> Path:
    """``samples`` (float mono) encoded by FFmpeg through PyAV: ``m4a`` (AAC), ``aac`` (ADTS) or ``webm`` (Opus)."""
    import av

    container_format, codec, codec_rate = {
        "m4a": ("ipod", "aac", 44100),
        "aac": ("adts", "aac", 44100),
        "webm": ("webm", "libopus", 48000),
    }[fmt]
    frame = av.AudioFrame.from_ndarray(np.asarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono")
    frame.sample_rate = rate
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=codec_rate, layout="mono")
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=codec_rate)
        for converted in resampler.resample(frame) + resampler.resample(None):
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return path
