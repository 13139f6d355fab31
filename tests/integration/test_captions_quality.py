"""Captions, timings and the quality gate through the real handler path (in-process, embedded
stores, parts rendered inline) on the dev model, whose audio is noise: the gate's VAD hears no
speech, so every segment is flagged ``silent`` and Whisper itself is never needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import srt
import webvtt

from tests.support.clips import speech_clip
from tests.support.harness import Harness, audio_of
from voicecloning.quality import asr as asr_module
from voicecloning.quality import gate as gate_module
from voicecloning.quality.gate import QualityGate

pytestmark = pytest.mark.integration

ITEMS = [{"text": "The first line of the story."}, {"text": "A second line follows it."},
         {"text": "And a third one ends it."}]


class CountingEngine:
    """The real engine, counting the segments it is asked to render (first takes and re-renders)."""

    def __init__(self, engine: Any) -> None:
        self.inner, self.rendered = engine, 0

    def render(self, latents: Any, segments: Any, *args: Any, **kwargs: Any) -> Any:
        self.rendered += len(segments)
        return self.inner.render(latents, segments, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_clip(tmp_path_factory.mktemp("clips") / "ref.wav", seconds=7).read_bytes()


def harness(tmp_path: Path, engine: Any, clip: bytes, voices: tuple[str, ...] = ("v1",), **env: str) -> Harness:
    h = Harness(tmp_path, engine, env=env)
    for voice in voices:
        h.put(f"voices/{voice}.wav", clip)
        assert h.doc(f"voices/{voice}")["status"] == "ready"
    return h


def text_of(h: Harness, name: str) -> str:
    data = h.services.outputs.read(name)
    assert data is not None, f"no object {name}"
    return data.decode("utf-8")


def seconds(t: Any) -> float:
    return t.in_milliseconds() / 1000


def check_cues(spans: list[tuple[float, float]], count: int, duration_s: float) -> None:
    """One cue per segment, in order, none overlapping, the last ending with the audio (+/- 50 ms)."""
    assert len(spans) == count
    assert all(start < end for start, end in spans)
    assert all(spans[n][1] <= spans[n + 1][0] for n in range(len(spans) - 1))
    assert abs(spans[-1][1] - duration_s) <= 0.05


def check_captions(h: Harness, doc: dict[str, Any], *, labelled: bool) -> dict[str, Any]:
    """Parse the job's captions with webvtt-py and srt; check them against timings.json and the audio."""
    audio, rate = audio_of(h.output(doc))
    duration_s = len(audio) / rate
    timings = json.loads(text_of(h, doc["timings_object"]))
    count = len(timings["segments"])
    assert count == sum(len(p["segments"]) for _k, p in h.services.docs.children(f"jobs/{doc['job_id']}/parts"))
    vtt = webvtt.from_string(text_of(h, doc["captions"]["vtt"]))
    check_cues([(seconds(c.start_time), seconds(c.end_time)) for c in vtt.captions], count, duration_s)
    subs = list(srt.parse(text_of(h, doc["captions"]["srt"])))
    check_cues([(s.start.total_seconds(), s.end.total_seconds()) for s in subs], count, duration_s)
    assert [s.content for s in subs] == [c.text for c in vtt.captions] == [s["text"] for s in timings["segments"]]
    voices = [c.voice for c in vtt.captions]
    assert voices == ([s["voice_id"] for s in timings["segments"]] if labelled else [None] * count)
    assert abs(timings["duration_s"] - duration_s) <= 0.05
    return timings


def test_captions_of_one_voice_parse_and_end_with_the_audio(tmp_path: Path, engine: Any, clip: bytes) -> None:
    """vtt + srt of a three-segment job: cues match the segments and the audio; timings.json has the scores."""
    h = harness(tmp_path, engine, clip)
    doc = h.request("story", items=ITEMS, voice_id="v1", captions=["vtt", "srt"])
    assert doc["status"] == "done", doc
    assert doc["captions"] == {"vtt": "outputs/story.vtt", "srt": "outputs/story.srt"}
    assert doc["timings_object"] == "outputs/story.timings.json"
    assert h.services.outputs.stat("outputs/story.vtt").content_type.startswith("text/vtt")
    timings = check_captions(h, doc, labelled=False)
    assert [s["text"] for s in timings["segments"]] == [i["text"] for i in ITEMS]
    for segment in timings["segments"]:
        assert segment["quality"] == {"cer": 1.0, "flags": ["silent"], "rerenders": 0, "speech_s": 0.0}
        assert segment["words"] == []
    assert timings["quality"] == doc["quality"]
    assert doc["quality"] == {"checked": 3, "flagged": 3, "rerendered": 0, "cer_mean": 1.0, "cer_max": 1.0,
                              "not_checked_reason": None}


def test_a_dialogue_labels_each_cue_with_its_voice(tmp_path: Path, engine: Any, clip: bytes) -> None:
    """Two voices, mp3 at 44.1 kHz: <v name> on every cue, times still end with the resampled audio."""
    h = harness(tmp_path, engine, clip, voices=("alice", "bob"))
    items = [{"text": "Hello, how are you today?", "voice_id": "alice"},
             {"text": "Very well, thank you.", "voice_id": "bob"},
             {"text": "Glad to hear it.", "voice_id": "alice"}]
    doc = h.request("talk", items=items, captions=["srt", "vtt"], format="mp3", sample_rate=44100)
    assert doc["status"] == "done", doc
    timings = check_captions(h, doc, labelled=True)
    assert [s["voice_id"] for s in timings["segments"]] == ["alice", "bob", "alice"]
    assert "<v alice>Hello, how are you today?" in text_of(h, doc["captions"]["vtt"])


def test_a_job_of_several_parts_has_one_timeline(tmp_path: Path, engine: Any, clip: bytes) -> None:
    """Parts rendered separately: the cues cross part boundaries with the designed pause, end with the audio."""
    h = harness(tmp_path, engine, clip, VOICECLONING_FIRST_PART_AUDIO_SECONDS="1",
                VOICECLONING_PART_AUDIO_SECONDS="1")
    doc = h.request("parts", items=ITEMS, voice_id="v1", captions=["vtt", "srt"])
    assert doc["status"] == "done", doc
    assert doc["parts_total"] == 3
    timings = check_captions(h, doc, labelled=False)
    parts = [h.doc(f"jobs/parts/parts/{n}") for n in range(3)]
    segments = timings["segments"]
    for n in range(1, 3):
        gap = segments[n]["start_s"] - segments[n - 1]["end_s"]
        assert gap == pytest.approx(parts[n]["pause_before_s"], abs=1 / 24000)
        assert segments[n]["end_s"] - segments[n]["start_s"] == pytest.approx(parts[n]["duration_s"], abs=1e-3)
    assert all(p["quality"]["checked"] == 1 and p["segment_scores"][0]["flags"] == ["silent"] for p in parts)
    assert doc["quality"]["checked"] == 3 and doc["quality"]["flagged"] == 3


def test_check_records_the_flags_without_re_rendering(tmp_path: Path, engine: Any, clip: bytes) -> None:
    """check: each segment rendered once, and the part records every segment flagged."""
    counting = CountingEngine(engine)
    h = harness(tmp_path, counting, clip, VOICECLONING_QUALITY_GATE="check", VOICECLONING_QUALITY_MAX_RERENDERS="2")
    doc = h.request("checked", items=ITEMS[:2], voice_id="v1")
    assert doc["status"] == "done", doc
    assert counting.rendered == 2
    part = h.doc("jobs/checked/parts/0")
    assert [s["rerenders"] for s in part["segment_scores"]] == [0, 0]
    assert [s["flags"] for s in part["segment_scores"]] == [["silent"], ["silent"]]
    assert doc["quality"]["flagged"] == 2 and doc["quality"]["rerendered"] == 0
    assert doc["captions"] == {} and h.services.outputs.stat("outputs/checked.timings.json") is not None


def test_repair_re_renders_each_flagged_segment_up_to_its_limit(tmp_path: Path, engine: Any, clip: bytes) -> None:
    """repair: noise never passes, so each of two segments gets exactly two new takes, and the job records it."""
    counting = CountingEngine(engine)
    h = harness(tmp_path, counting, clip, VOICECLONING_QUALITY_GATE="repair", VOICECLONING_QUALITY_MAX_RERENDERS="2")
    doc = h.request("repaired", items=ITEMS[:2], voice_id="v1")
    assert doc["status"] == "done", doc
    assert counting.rendered == 2 + 2 * 2
    part = h.doc("jobs/repaired/parts/0")
    assert [s["rerenders"] for s in part["segment_scores"]] == [2, 2]
    assert doc["quality"] == {**doc["quality"], "checked": 2, "flagged": 2, "rerendered": 2}
    timings = json.loads(text_of(h, doc["timings_object"]))
    assert [s["quality"]["rerenders"] for s in timings["segments"]] == [2, 2]


def test_fail_flagged_fails_the_job_with_the_gate_reason(tmp_path: Path, engine: Any, clip: bytes) -> None:
    h = harness(tmp_path, engine, clip, VOICECLONING_QUALITY_FAIL_FLAGGED="true")
    doc = h.request("strict", items=ITEMS[:2], voice_id="v1", captions=["vtt"])
    assert doc["status"] == "failed"
    assert "2 of 2 segments failed the quality check" in doc["error"] and "silent" in doc["error"]
    assert h.services.outputs.stat("outputs/strict.vtt") is None


def test_off_never_loads_the_speech_model(tmp_path: Path, engine: Any, clip: bytes,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """off: neither the VAD nor Whisper is reached; the job records why nothing was checked."""

    def never(*_args: Any) -> Any:
        raise AssertionError("the gate listened while it was off")

    monkeypatch.setattr(asr_module, "_model", never)
    monkeypatch.setattr(gate_module, "speech_segments", never)
    loads = asr_module.load_calls
    h = harness(tmp_path, engine, clip, VOICECLONING_QUALITY_GATE="off")
    doc = h.request("quiet", items=ITEMS[:2], voice_id="v1", captions=["vtt"])
    assert doc["status"] == "done", doc
    assert asr_module.load_calls == loads
    assert doc["quality"]["checked"] == 0 and doc["quality"]["not_checked_reason"] == "the quality gate is off"
    timings = json.loads(text_of(h, doc["timings_object"]))
    assert [s["quality"]["cer"] for s in timings["segments"]] == [None, None]
    from handlers.part_quality import gate_for

    assert isinstance(gate_for(h.services.settings.quality), QualityGate)
    assert gate_for(h.services.settings.quality) is gate_for(h.services.settings.quality)
