"""The quality gate on one part: each run of segments heard back right after it is rendered.

``PartReview`` wraps ``QualityGate.review`` (docs/QUALITY.md) for ``handlers/render_part.py``:
one gate per process and ``Quality`` settings (``gate_for``: built lazily, the ASR model
loads on the first segment with speech, and never while the gate is off); a re-render
callback that keeps the part's lease alive; and the part document's fields:
``quality`` (the part's summary) and ``segment_scores`` (per segment, in the part's order:
``cer``, ``flags``, ``rerenders``, ``speech_s``, ``words`` timed from the segment's start).
``fail_flagged`` turns a run's ``GateResult.failure`` into an ``InputError``: the part and
its job fail with that reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from voicecloning.errors import InputError
from voicecloning.quality import GateResult, QualityGate, merge_summaries
from voicecloning.quality.gate import rerender_with
from voicecloning.settings import Quality

METADATA_KEY = "quality"  # the part's summary, as JSON, on its audio object (for a redelivery)
SCORE_KEYS = ("cer", "flags", "rerenders", "speech_s", "words")  # ``heard`` stays out of documents


@cache
def gate_for(settings: Quality) -> QualityGate:
    """The process's gate for these settings (cheap: nothing is loaded until a segment is scored)."""
    return QualityGate(settings)


class PartReview:
    """The gate over one part's runs of segments, in order."""

    def __init__(self, settings: Quality) -> None:
        self.gate = gate_for(settings)
        self.results: list[GateResult] = []

    def run(self, rendered: Sequence[np.ndarray], texts: Sequence[str], language: str, *, engine: Any,
            latents: Any, options: Any, heartbeat: Callable[[], None]) -> list[np.ndarray]:
        """The kept audio of one run (``rendered`` by ``engine.render`` with ``options``)."""
        inner = rerender_with(engine, latents, texts, language, options)

        def rerender(index: int, seed: int) -> np.ndarray:
            take = inner(index, seed)
            heartbeat()  # a repair can take as long as the run itself: keep the lease
            return take

        result = self.gate.review(texts, rendered, language, rerender=rerender, seed=options.seed)
        self.results.append(result)
        if result.failure:
            raise InputError(result.failure)
        return result.audio

    def summary(self) -> dict[str, Any]:
        return merge_summaries(r.summary() for r in self.results)

    def facts(self) -> dict[str, Any]:
        """The part document's ``quality`` and ``segment_scores``."""
        scores = [{k: s.get(k) for k in SCORE_KEYS} for r in self.results for s in r.segments]
        return {"quality": self.summary(), "segment_scores": scores}

    def metadata(self) -> dict[str, str]:
        return {METADATA_KEY: json.dumps(self.summary(), separators=(",", ":"))}


def recorded_facts(metadata: dict[str, str]) -> dict[str, Any]:
    """What an already written part's audio object says of its quality (the summary only)."""
    raw = metadata.get(METADATA_KEY)
    if not raw:
        return {}
    try:
        summary = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return {"quality": summary, "segment_scores": None} if isinstance(summary, dict) else {}
