"""The gate: hear each rendered segment back, flag the bad ones, re-render them in ``repair`` mode.

The caller renders; the gate only listens. In ``repair`` mode it asks the
caller for another take of a flagged segment through
``rerender(index, seed) -> audio``, with seeds derived from the job's seed,
the segment and the attempt, so a job re-run renders the same takes.
The best take (a passing one, else the lowest CER) is kept.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from voicecloning.audio.resample import resample
from voicecloning.audio.vad import speech_segments
from voicecloning.quality.asr import ASR_RATE, Recognizer
from voicecloning.quality.normalise import model_language, normalise
from voicecloning.quality.score import Score, Thresholds, score_text, silent_score

log = logging.getLogger(__name__)

OUTPUT_RATE = 24000  # what engine.render returns
MODES = ("off", "check", "repair")
Rerender = Callable[[int, int], np.ndarray]


def derive_seed(seed: int | None, index: int, attempt: int) -> int:
    """A seed in [0, 2**32) for take ``attempt`` (1, 2, ...) of segment ``index``; the same inputs give the same seed."""
    digest = hashlib.sha256(f"quality:{seed or 0}:{index}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass
class GateResult:
    audio: list[np.ndarray]
    segments: list[dict[str, Any]]
    not_checked_reason: str | None = None
    failure: str | None = None  # set when settings ask to fail a job whose segments stay flagged

    def summary(self) -> dict[str, Any]:
        """The part's contribution to the job document's ``quality`` field."""
        checked = [s for s in self.segments if s.get("cer") is not None]
        cers = [s["cer"] for s in checked]
        return {
            "checked": len(checked),
            "flagged": sum(1 for s in checked if s["flags"]),
            "rerendered": sum(1 for s in checked if s["rerenders"]),
            "cer_mean": round(sum(cers) / len(cers), 4) if cers else None,
            "cer_max": round(max(cers), 4) if cers else None,
            "not_checked_reason": self.not_checked_reason,
        }


def merge_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One job's ``quality`` from its parts' summaries (the mean weighted by segments checked)."""
    parts = list(summaries)
    checked = sum(p["checked"] for p in parts)
    weighted = sum(p["cer_mean"] * p["checked"] for p in parts if p["cer_mean"] is not None)
    maxima = [p["cer_max"] for p in parts if p["cer_max"] is not None]
    reasons = list(dict.fromkeys(p["not_checked_reason"] for p in parts if p["not_checked_reason"]))
    return {
        "checked": checked,
        "flagged": sum(p["flagged"] for p in parts),
        "rerendered": sum(p["rerendered"] for p in parts),
        "cer_mean": round(weighted / checked, 4) if checked else None,
        "cer_max": max(maxima) if maxima else None,
        "not_checked_reason": "; ".join(reasons) or None,
    }


@dataclass
class QualityGate:
    """Built once per process from ``settings.quality``; cheap (the ASR model loads on first use)."""

    settings: Any  # voicecloning.settings.Quality
    recognizer: Recognizer = field(default_factory=Recognizer)

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(max_cer=self.settings.max_cer)

    def review(
        self,
        segments: Sequence[str],
        audio: Sequence[np.ndarray],
        language: str,
        rerender: Rerender | None = None,
        seed: int | None = None,
    ) -> GateResult:
        """Score each segment's audio against its text; in ``repair`` mode replace flagged ones by better takes."""
        audio = list(audio)
        mode = self.settings.gate
        if mode == "off":
            return GateResult(audio, [_unchecked() for _ in segments], "the quality gate is off")
        lang = model_language(language)
        if not self.recognizer.covers(lang):
            reason = (f"language '{language}' is not covered by the installed speech-recognition model "
                      f"({self.recognizer.languages_note()})")
            return GateResult(audio, [_unchecked() for _ in segments], reason)
        limit = self.settings.max_rerenders if mode == "repair" and rerender is not None else 0
        reports = []
        for index, text in enumerate(segments):
            best, takes = self.score(text, audio[index], lang), 0
            while not best.ok and takes < limit:
                takes += 1
                take = rerender(index, derive_seed(seed, index, takes))  # type: ignore[misc]
                candidate = self.score(text, take, lang)
                if candidate.rank() < best.rank():
                    best, audio[index] = candidate, take
            reports.append({**best.to_dict(), "rerenders": takes})
        result = GateResult(audio, reports)
        result.failure = self._failure(reports)
        log.info("quality gate", extra={"json_fields": {"mode": mode, **result.summary()}})
        return result

    def score(self, text: str, samples: np.ndarray, language: str) -> Score:
        """One segment's score (``samples`` at 24 kHz, ``language`` a base code the recognizer covers)."""
        samples_16k = resample(samples, OUTPUT_RATE, ASR_RATE)  # Whisper and the VAD both take 16 kHz
        speech = speech_segments(samples_16k)
        if not speech:
            return silent_score()
        transcript = self.recognizer.transcribe(samples_16k, language)
        reference = normalise(text, language)
        scored = score_text(reference, normalise(transcript.text, language),
                            speech[-1].end_s - speech[0].start_s, self.thresholds)
        return replace(scored, heard=transcript.text, words=transcript.words)

    def _failure(self, reports: list[dict[str, Any]]) -> str | None:
        flagged = [(i, r["flags"]) for i, r in enumerate(reports) if r["flags"]]
        if not self.settings.fail_flagged or not flagged:
            return None
        first, flags = flagged[0]
        return (f"{len(flagged)} of {len(reports)} segments failed the quality check "
                f"(first: segment {first + 1}, {', '.join(flags)}).")


def _unchecked() -> dict[str, Any]:
    return {"cer": None, "flags": [], "heard": None, "speech_s": None, "words": [], "rerenders": 0}


def rerender_with(engine: Any, latents: Any, segments: Sequence[str], language: str, options: Any) -> Rerender:
    """A ``rerender`` callback that renders one segment again through ``engine.render`` with a new seed."""

    def rerender(index: int, seed: int) -> np.ndarray:
        return engine.render(latents, [segments[index]], language, replace(options, seed=seed))[0]

    return rerender
