"""The quality gate on real parts: Whisper (the packaged tiny.en) hearing espeak-ng speech and
the dev model's audio rendered through ``engine.render``."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from tests.support.clips import espeak_wav, speech_samples
from voicecloning.audio.resample import resample
from voicecloning.generation import GenerationOptions
from voicecloning.quality import QualityGate, derive_seed
from voicecloning.quality import asr as asr_module
from voicecloning.quality.gate import rerender_with
from voicecloning.settings import Quality

pytestmark = pytest.mark.integration

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "On the 3rd of May, 42 people paid $15 each for their tickets.",
    "Please call me back before noon tomorrow, if you have the time.",
    "We read this sentence slowly so that the clip is long enough.",
)
RATE = 24000


def spoken(text: str) -> np.ndarray:
    """``text`` said by espeak-ng, at the 24 kHz that engine.render returns."""
    with tempfile.TemporaryDirectory() as folder:
        samples, rate = sf.read(espeak_wav(Path(folder) / "s.wav", text), dtype="float32")
    return resample(samples, rate, RATE)


@pytest.fixture(scope="module")
def speech() -> dict[str, np.ndarray]:
    return {text: spoken(text) for text in SENTENCES}


@pytest.fixture(scope="module")
def checker() -> QualityGate:
    return QualityGate(Quality(gate="check"))


@pytest.mark.parametrize("text", SENTENCES)
def test_a_sentence_scored_against_its_own_text_passes(checker: QualityGate, speech: dict, text: str) -> None:
    """espeak-ng saying the text: no flag, a low error rate, and one timed word per word said."""
    score = checker.score(text, speech[text], "en")
    assert score.flags == ()
    assert score.cer < 0.3
    assert len(score.words) >= len(text.split()) - 2
    assert all(0.0 <= w.start_s <= w.end_s <= len(speech[text]) / RATE + 0.1 for w in score.words)
    assert [w.start_s for w in score.words] == sorted(w.start_s for w in score.words)


@pytest.mark.parametrize("index", range(len(SENTENCES)))
def test_the_same_audio_against_another_text_has_a_high_error_rate(checker: QualityGate, speech: dict, index: int) -> None:
    """Speech that says something else is flagged for its error rate, not as cut off, babbling or silent."""
    said, meant = SENTENCES[index], SENTENCES[(index + 1) % len(SENTENCES)]
    score = checker.score(meant, speech[said], "en")
    assert score.flags == ("high_cer",)
    assert score.cer > 0.6


@pytest.mark.parametrize("text", SENTENCES)
def test_a_take_cut_off_halfway_is_truncated(checker: QualityGate, speech: dict, text: str) -> None:
    """The first half of the audio: the missing tail is named (the error rate is high too), no babble."""
    audio = speech[text]
    score = checker.score(text, audio[: len(audio) // 2], "en")
    assert "truncated" in score.flags
    assert "babble" not in score.flags and "silent" not in score.flags


@pytest.mark.parametrize("text", SENTENCES)
def test_a_doubled_sentence_is_babble(checker: QualityGate, speech: dict, text: str) -> None:
    """The sentence said twice: far more speech than the text needs, and not called truncated."""
    audio = speech[text]
    score = checker.score(text, np.concatenate([audio, np.zeros(RATE // 5, np.float32), audio]), "en")
    assert "babble" in score.flags
    assert "truncated" not in score.flags and "silent" not in score.flags


def test_silence_is_silent(checker: QualityGate) -> None:
    """Three seconds of nothing: flagged silent (by the VAD, before any transcription), error rate 1."""
    score = checker.score(SENTENCES[0], np.zeros(3 * RATE, np.float32), "en")
    assert score.flags == ("silent",)
    assert score.cer == 1.0


def test_a_language_the_model_does_not_cover_is_not_checked(speech: dict) -> None:
    """The packaged model is English-only: a German job is recorded as not checked, its audio untouched."""
    audio = [speech[SENTENCES[0]]]
    result = QualityGate(Quality(gate="repair")).review(["Guten Tag."], audio, "de", rerender=None, seed=1)
    assert result.audio[0] is audio[0]
    summary = result.summary()
    assert summary["checked"] == 0
    assert "not covered" in summary["not_checked_reason"] and "English only" in summary["not_checked_reason"]


# ---- through engine.render with the dev model (its audio is noise) ------------------------

TEXTS = ["The first segment of this part.", "And here is the second one."]


@pytest.fixture(scope="module")
def latents(engine: Any) -> Any:
    samples, rate = speech_samples(7)
    return engine.compute_latents(samples, rate)


@pytest.fixture(scope="module")
def rendered(engine: Any, latents: Any) -> list[np.ndarray]:
    return engine.render(latents, TEXTS, "en", GenerationOptions(seed=7))


class CountingRerender:
    def __init__(self, engine: Any, latents: Any) -> None:
        self.inner = rerender_with(engine, latents, TEXTS, "en", GenerationOptions(seed=7))
        self.calls: list[tuple[int, int]] = []

    def __call__(self, index: int, seed: int) -> np.ndarray:
        self.calls.append((index, seed))
        return self.inner(index, seed)


def test_check_flags_noise_and_re_renders_nothing(engine: Any, latents: Any, rendered: list[np.ndarray]) -> None:
    """check: every dev-model segment is flagged, none re-rendered, the audio is what was rendered."""
    rerender = CountingRerender(engine, latents)
    result = QualityGate(Quality(gate="check")).review(TEXTS, rendered, "en", rerender, seed=7)
    assert rerender.calls == []
    assert all(a is b for a, b in zip(result.audio, rendered, strict=True))
    assert all(s["flags"] and s["rerenders"] == 0 for s in result.segments)
    summary = result.summary()
    assert summary == {**summary, "checked": 2, "flagged": 2, "rerendered": 0, "not_checked_reason": None}
    assert summary["cer_max"] >= summary["cer_mean"] > 0.35


def test_repair_re_renders_each_flagged_segment_up_to_its_limit(engine: Any, latents: Any, rendered: list[np.ndarray]) -> None:
    """repair: noise never passes, so each segment gets exactly max_rerenders new takes, with derived seeds."""
    rerender = CountingRerender(engine, latents)
    gate = QualityGate(Quality(gate="repair", max_rerenders=2, fail_flagged=True))
    result = gate.review(TEXTS, rendered, "en", rerender, seed=7)
    assert rerender.calls == [(i, derive_seed(7, i, a)) for i in range(2) for a in (1, 2)]
    assert [s["rerenders"] for s in result.segments] == [2, 2]
    assert result.summary()["rerendered"] == 2 and result.summary()["flagged"] == 2
    assert result.failure is not None and "2 of 2 segments" in result.failure


def test_re_rendering_with_a_derived_seed_is_deterministic(engine: Any, latents: Any) -> None:
    """The same job seed gives the same take, sample for sample; another attempt gives another take."""
    options = GenerationOptions(seed=7)
    first = rerender_with(engine, latents, TEXTS, "en", options)(1, derive_seed(7, 1, 1))
    again = rerender_with(engine, latents, TEXTS, "en", replace(options))(1, derive_seed(7, 1, 1))
    other = rerender_with(engine, latents, TEXTS, "en", options)(1, derive_seed(7, 1, 2))
    assert first.size > 0 and np.array_equal(first, again)
    assert not np.array_equal(first[: other.size], other[: first.size])


def test_off_never_loads_the_speech_model(rendered: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """off: audio back untouched, nothing checked, and the model loader is never reached."""

    def no_loading(model_dir: Path) -> Any:
        raise AssertionError("the ASR model was loaded with the gate off")

    monkeypatch.setattr(asr_module, "_model", no_loading)
    loads = asr_module.load_calls
    result = QualityGate(Quality(gate="off")).review(TEXTS, rendered, "en", rerender=None, seed=7)
    assert all(a is b for a, b in zip(result.audio, rendered, strict=True))
    assert result.summary()["checked"] == 0 and result.summary()["not_checked_reason"] == "the quality gate is off"
    assert asr_module.load_calls == loads
