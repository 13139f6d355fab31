"""The gate's decisions with a scripted recognizer: modes, repair, seeds, summaries, settings.

The recognizer here is a stand-in so these run in milliseconds; the real
Whisper model is exercised in tests/integration/test_quality_gate.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from voicecloning.errors import ConfigurationError
from voicecloning.quality import QualityGate, derive_seed, merge_summaries
from voicecloning.quality.asr import Transcript, Word
from voicecloning.settings import Quality, Settings

RATE = 24000
ROOT = Path(__file__).resolve().parents[2]


def tone(seconds: float = 1.0) -> np.ndarray:
    """A loud vowel-like signal the VAD takes for speech; its content is what the script says."""
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 4 * t))).astype(np.float32)


class ScriptedRecognizer:
    """Hears, for each call in turn, the next line of its script."""

    def __init__(self, *heard: str, english_only: bool = True) -> None:
        self.heard = list(heard)
        self.english_only = english_only
        self.calls = 0

    def covers(self, language: str) -> bool:
        return language == "en" or not self.english_only

    def languages_note(self) -> str:
        return "English only"

    def transcribe(self, samples_16k: np.ndarray, language: str) -> Transcript:
        text = self.heard[self.calls]
        self.calls += 1
        return Transcript(text, tuple(Word(w, 0.1 * i, 0.1 * i + 0.08) for i, w in enumerate(text.split())))


@pytest.fixture(autouse=True)
def speech_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """The VAD hears speech in any non-empty take (the real VAD is used in the integration tests)."""
    from voicecloning.audio.vad import SpeechSegment

    monkeypatch.setattr(
        "voicecloning.quality.gate.speech_segments",
        lambda s: [SpeechSegment(0.0, len(s) / 16000)] if np.abs(s).max(initial=0) > 0 else [],
    )


TEXT = "Please call me back before noon."


def test_check_scores_without_re_rendering() -> None:
    """check: each segment is scored (with word timings) and flagged; rerender is never called."""
    gate = QualityGate(Quality(gate="check"), ScriptedRecognizer("please call me back before noon", "nothing alike"))
    calls: list = []
    result = gate.review([TEXT, TEXT], [tone(), tone()], "en", lambda i, s: calls.append(i) or tone(), seed=3)
    assert calls == []
    assert [s["flags"] for s in result.segments] == [[], ["high_cer"]]
    assert result.segments[0]["words"][0] == {"word": "please", "start_s": 0.0, "end_s": 0.08}
    assert result.summary()["checked"] == 2 and result.summary()["flagged"] == 1


def test_repair_stops_at_the_first_good_take_and_keeps_it() -> None:
    """The second take passes: no third take is asked for, and the audio is the second take."""
    recognizer = ScriptedRecognizer("garbled words", "still garbled", "please call me back before noon")
    takes = {1: tone(1.1), 2: tone(1.2)}
    seeds: list[int] = []

    def rerender(index: int, seed: int) -> np.ndarray:
        seeds.append(seed)
        return takes[len(seeds)]

    result = QualityGate(Quality(gate="repair", max_rerenders=3), recognizer).review(
        [TEXT], [tone()], "en", rerender, seed=11
    )
    assert seeds == [derive_seed(11, 0, 1), derive_seed(11, 0, 2)]
    assert result.audio[0] is takes[2]
    assert result.segments[0]["flags"] == [] and result.segments[0]["rerenders"] == 2
    assert result.summary() == {**result.summary(), "flagged": 0, "rerendered": 1}


def test_repair_keeps_the_best_take_when_none_passes() -> None:
    """Two failing takes: the one with the lower error rate is kept, even if it is the original."""
    recognizer = ScriptedRecognizer("please call me back", "xyz", "qqq")
    original = tone()
    result = QualityGate(Quality(gate="repair", max_rerenders=2), recognizer).review(
        [TEXT], [original], "en", lambda i, s: tone(0.5), seed=0
    )
    assert result.audio[0] is original
    assert result.segments[0]["rerenders"] == 2 and result.segments[0]["flags"]


def test_the_job_can_be_failed_when_segments_stay_flagged() -> None:
    """fail_flagged gives a reason naming the first flagged segment; without it there is no failure."""
    result = QualityGate(Quality(gate="check", fail_flagged=True), ScriptedRecognizer("", "fine")).review(
        [TEXT, "fine"], [tone(), tone()], "en"
    )
    assert result.failure == "1 of 2 segments failed the quality check (first: segment 1, high_cer)."
    lenient = QualityGate(Quality(gate="check"), ScriptedRecognizer("")).review([TEXT], [tone()], "en")
    assert lenient.failure is None


def test_silence_is_not_sent_to_the_recognizer() -> None:
    """No speech by the VAD: flagged silent without transcribing."""
    recognizer = ScriptedRecognizer()
    result = QualityGate(Quality(gate="check"), recognizer).review([TEXT], [np.zeros(RATE, np.float32)], "en")
    assert recognizer.calls == 0 and result.segments[0]["flags"] == ["silent"]


def test_an_uncovered_language_is_recorded_not_guessed() -> None:
    """A language the model does not know: nothing transcribed, nothing re-rendered, the reason recorded."""
    recognizer = ScriptedRecognizer()
    result = QualityGate(Quality(gate="repair"), recognizer).review(["Hallo."], [tone()], "de", lambda i, s: tone())
    assert recognizer.calls == 0
    assert result.summary()["not_checked_reason"].startswith("language 'de' is not covered")


def test_derived_seeds_are_stable_distinct_and_in_range() -> None:
    """Seeds depend only on (job seed, segment, attempt), differ between takes and fit GenerationOptions.seed."""
    seeds = {derive_seed(5, i, a) for i in range(20) for a in range(1, 4)}
    assert len(seeds) == 60 and all(0 <= s < 2**32 for s in seeds)
    assert derive_seed(5, 3, 1) == derive_seed(5, 3, 1) != derive_seed(6, 3, 1)


def test_summaries_of_parts_merge_into_the_job_quality() -> None:
    """Counts add up, the mean is weighted by segments checked, the maximum is the maximum."""
    a = {"checked": 2, "flagged": 1, "rerendered": 1, "cer_mean": 0.1, "cer_max": 0.15, "not_checked_reason": None}
    b = {"checked": 6, "flagged": 0, "rerendered": 0, "cer_mean": 0.02, "cer_max": 0.05, "not_checked_reason": None}
    off = {"checked": 0, "flagged": 0, "rerendered": 0, "cer_mean": None, "cer_max": None,
           "not_checked_reason": "the quality gate is off"}
    assert merge_summaries([a, b]) == {"checked": 8, "flagged": 1, "rerendered": 1, "cer_mean": 0.04,
                                       "cer_max": 0.15, "not_checked_reason": None}
    assert merge_summaries([off, off])["not_checked_reason"] == "the quality gate is off"
    assert merge_summaries([])["cer_mean"] is None


def test_settings_read_the_quality_variables() -> None:
    """Each VOICECLONING_QUALITY_* variable lands in settings.quality; none set gives the defaults."""
    quality = Settings.from_env({"VOICECLONING_QUALITY_GATE": "Repair", "VOICECLONING_QUALITY_MAX_RERENDERS": "4",
                                 "VOICECLONING_QUALITY_MAX_CER": "0.2", "VOICECLONING_QUALITY_FAIL_FLAGGED": "true"}).quality
    assert quality == Quality(gate="repair", max_rerenders=4, max_cer=0.2, fail_flagged=True)
    assert Settings.from_env({}).quality == Quality()


@pytest.mark.parametrize(("name", "value"), [("GATE", "loud"), ("MAX_CER", "high"), ("MAX_CER", "0"),
                                             ("MAX_RERENDERS", "-1"), ("FAIL_FLAGGED", "perhaps")])
def test_bad_quality_settings_are_refused(name: str, value: str) -> None:
    """A bad value names its variable."""
    with pytest.raises(ConfigurationError, match=f"VOICECLONING_QUALITY_{name}"):
        Settings.from_env({f"VOICECLONING_QUALITY_{name}": value})


def test_off_loads_no_speech_recognition_in_a_fresh_process() -> None:
    """A process that reviews with the gate off never imports faster-whisper nor loads a model."""
    code = (
        "import json, sys, numpy as np\n"
        "from voicecloning.quality import QualityGate\n"
        "from voicecloning.quality import asr\n"
        "from voicecloning.settings import Quality\n"
        "r = QualityGate(Quality(gate='off')).review(['Hi.'], [np.ones(24000, np.float32)], 'en', None, 1)\n"
        "print(json.dumps({'loaded': asr.is_loaded(), 'calls': asr.load_calls,"
        " 'imported': 'faster_whisper' in sys.modules, 'reason': r.summary()['not_checked_reason']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "loaded": False, "calls": 0, "imported": False, "reason": "the quality gate is off"}
