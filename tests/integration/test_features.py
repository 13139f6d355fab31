"""What users of voice-cloning services expect, through the real handler path:
output formats, voice settings, long text with progress, dialogue, clip checks, multi-clip voices, consent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import TEST_THREADS
from tests.support.clips import silence, speech_clip, speech_samples
from tests.support.harness import Harness, audio_of
from voicecloning import records
from voicecloning.engine.xtts import EngineConfig, XttsEngine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_clip(tmp_path_factory.mktemp("clips") / "ref.wav", seconds=7).read_bytes()


@pytest.fixture(scope="module")
def fast_engine(dev_model_dir: Path) -> XttsEngine:
    """The dev model with very few tokens per segment, for long texts."""
    return XttsEngine(EngineConfig(model_dir=dev_model_dir, max_audio_tokens=3, precision="fp32", threads=TEST_THREADS))


@pytest.fixture
def h(tmp_path: Path, engine: XttsEngine, clip: bytes) -> Harness:
    harness = Harness(tmp_path, engine)
    harness.put("voices/v1.wav", clip)
    assert harness.doc("voices/v1")["status"] == "ready"
    return harness


@pytest.mark.parametrize(
    ("fmt", "rate", "content_type", "expected_rate"),
    [
        ("wav", None, "audio/wav", 24000),
        ("flac", None, "audio/flac", 24000),
        ("mp3", None, "audio/mpeg", 24000),
        ("ogg", None, "audio/ogg", 24000),
        ("wav", 16000, "audio/wav", 16000),
        ("flac", 44100, "audio/flac", 44100),
        ("mp3", 48000, "audio/mpeg", 48000),
    ],
)
def test_output_formats_decode_back_with_the_right_rate_and_type(
    h: Harness, fmt: str, rate: int | None, content_type: str, expected_rate: int
) -> None:
    body: dict[str, Any] = {"text": "Format check.", "voice_id": "v1", "format": fmt}
    if rate:
        body["sample_rate"] = rate
    doc = h.request("fmt", **body)
    assert doc["status"] == "done", doc
    assert doc["output_object"] == f"outputs/fmt.{fmt}"
    assert doc["content_type"] == content_type == h.output_info(doc).content_type
    audio, sr = audio_of(h.output(doc))
    assert sr == expected_rate == doc["sample_rate"]
    assert abs(len(audio) / sr - doc["duration_s"]) < 0.08
    assert np.abs(audio).max() > 0


def test_model_licence_and_settings_are_recorded(h: Harness) -> None:
    doc = h.request("meta", text="Record me.", voice_id="v1", temperature=0.6, top_p=0.9, seed=5)
    assert doc["status"] == "done"
    assert doc["settings"]["temperature"] == 0.6 and doc["settings"]["top_p"] == 0.9 and doc["settings"]["seed"] == 5
    assert doc["model_name"].startswith("xtts_v2-dev-random") and doc["license"]
    meta = h.output_info(doc).metadata
    assert meta["model_name"] == doc["model_name"] and meta["license"] == doc["license"]
    assert "'temperature': 0.6" in meta["settings"]


def test_the_same_seed_and_text_give_identical_audio(h: Harness) -> None:
    a = h.request("seed-a", text="Deterministic speech.", voice_id="v1", seed=1234)
    b = h.request("seed-b", text="Deterministic speech.", voice_id="v1", seed=1234)
    c = h.request("seed-c", text="Deterministic speech.", voice_id="v1", seed=99)
    assert a["status"] == b["status"] == c["status"] == "done"
    audio_a, audio_b, audio_c = (audio_of(h.output(d))[0] for d in (a, b, c))
    assert np.array_equal(audio_a, audio_b)
    assert audio_a.shape != audio_c.shape or not np.array_equal(audio_a, audio_c)


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [("temperature", 0, "'temperature' is 0"), ("top_k", 0, "'top_k' is 0"), ("top_p", 1.5, "'top_p' is 1.5"),
     ("repetition_penalty", 50, "'repetition_penalty' is 50"), ("speed", 3, "'speed' is 3"), ("seed", -1, "'seed' is -1")],
)
def test_out_of_range_settings_fail_with_the_allowed_range(h: Harness, field: str, value: Any, fragment: str) -> None:
    doc = h.request("bad-setting", text="x", voice_id="v1", **{field: value})
    assert doc["status"] == "failed" and fragment in doc["error"] and "between" in doc["error"]


@dataclass
class ProgressWrites:
    """Every progress write of one job, as ``record(progress)``: per part document (the renewals of
    the worker rendering it) and on the job document (its aggregate of the parts)."""

    parts: dict[str, list[Any]] = field(default_factory=dict)
    job: list[Any] = field(default_factory=list)


def spy_progress(h: Harness, monkeypatch: pytest.MonkeyPatch, job_path: str, record: Any) -> ProgressWrites:
    """Record the progress writes of ``job_path`` and its parts (the writes still happen)."""
    writes = ProgressWrites()
    real_renew, real_transact = records.renew, h.services.docs.transact

    def renew(docs: Any, path: str, **kwargs: Any) -> bool:
        ours = real_renew(docs, path, **kwargs)
        progress = (kwargs.get("fields") or {}).get("progress")
        if ours and progress is not None and path.startswith(job_path + "/parts/"):
            writes.parts.setdefault(path, []).append(record(progress))
        return ours

    def transact(path: str, fn: Any) -> Any:
        if path != job_path:
            return real_transact(path, fn)
        before = (h.services.docs.get(path) or {}).get("aggregated_at")
        result = real_transact(path, fn)
        after = h.services.docs.get(path) or {}
        if after.get("aggregated_at") != before:
            writes.job.append(record(after["progress"]))
        return result

    monkeypatch.setattr(records, "renew", renew)
    h.services.docs.transact = transact  # type: ignore[method-assign]
    return writes


def test_a_20000_character_request_completes_with_progress(
    tmp_path: Path, fast_engine: XttsEngine, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long request is planned into parts; each part reports its progress while it renders, the job
    document's progress rises with the parts done, and the output holds every segment."""
    h = Harness(tmp_path, fast_engine)
    h.put("voices/long.wav", clip)
    writes = spy_progress(h, monkeypatch, "jobs/novel", lambda progress: progress)
    h.with_settings(reliability=replace(h.services.settings.reliability, progress_interval_seconds=0.0),
                    parts=replace(h.services.settings.parts, aggregate_interval_seconds=0.0))
    sentence = "The quick brown fox jumps over the lazy dog, and then it rests for a while. "
    text = (sentence * (20_000 // len(sentence) + 1))[:20_000]
    doc = h.request("novel", text=text, voice_id="long")
    assert doc["status"] == "done", doc.get("error")
    assert doc["progress"] == 1.0 and doc["characters"] == len(text.strip())
    assert doc["parts_total"] > 10 and doc["parts_done"] == doc["parts_total"]
    parts = [h.doc(f"jobs/novel/parts/{n}") for n in range(doc["parts_total"])]
    assert all(p["status"] == "done" and p["progress"] == 1.0 for p in parts)
    assert sum(p["chars"] for p in parts) > 0.98 * len(text)  # all the text (less the spaces between segments)
    part_writes = [w for path in sorted(writes.parts) for w in writes.parts[path]]
    assert len(part_writes) > 50
    for progress in writes.parts.values():  # within a part: rising, never 0 nor complete before its write
        assert progress == sorted(progress) and progress[0] > 0 and progress[-1] < 1.0
    assert len(writes.job) >= doc["parts_total"] - 1  # an aggregate after (nearly) every part
    assert writes.job == sorted(writes.job) and writes.job[0] > 0 and writes.job[-1] < 1.0
    audio, _sr = audio_of(h.output(doc))
    segments = sum(len(p["segments"]) for p in parts)
    assert segments > 50
    assert len(audio) / 24000 > 0.2 * (segments - 1)  # every segment is in the output, with pauses


def test_progress_is_written_at_most_about_once_a_second(
    tmp_path: Path, fast_engine: XttsEngine, clip: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Progress writes to one document (a part's, the job's aggregate) are at least a second apart,
    but for the job's first audio and its completion; Firestore sustains about one write a second."""
    import time

    h = Harness(tmp_path, fast_engine)
    h.put("voices/p.wav", clip)
    writes = spy_progress(h, monkeypatch, "jobs/throttle", lambda _progress: time.monotonic())
    # one part of every segment: its renewals are throttled by the interval, not by the part size
    h.with_settings(parts=replace(h.services.settings.parts, part_audio_seconds=600.0))
    started = time.monotonic()
    doc = h.request("throttle", text="Short sentence here. " * 300, voice_id="p")
    elapsed = time.monotonic() - started
    assert doc["status"] == "done"
    for progress in writes.parts.values():
        assert len(progress) <= elapsed + 1
        assert all(b - a >= 0.99 for a, b in zip(progress, progress[1:], strict=False))
    throttled = writes.job[1:-1]  # the first (part 0's first audio) and the last (all done) are forced
    assert all(b - a >= 0.99 for a, b in zip(throttled, throttled[1:], strict=False))
    assert len(writes.job) <= elapsed + 2


def test_items_render_a_multi_voice_dialogue_in_one_file(h: Harness, clip: bytes) -> None:
    h.put("voices/v2.wav", clip)
    items = [{"text": "Hello, how are you?", "voice_id": "v1"}, {"text": "Bien, merci.", "voice_id": "v2", "language": "fr"}]
    doc = h.request("dialogue", items=items)
    assert doc["status"] == "done", doc
    assert doc["voice_ids"] == ["v1", "v2"] and doc["items"] == 2
    single = h.request("single", text="Hello, how are you?", voice_id="v1")
    assert doc["duration_s"] > single["duration_s"] + 0.3  # a second turn and a pause


def test_a_silent_clip_is_rejected_with_a_reason(tmp_path: Path, engine: XttsEngine) -> None:
    h = Harness(tmp_path, engine)
    h.put("voices/quiet.wav", silence(tmp_path / "s.wav", 6).read_bytes())
    doc = h.doc("voices/quiet")
    assert doc["status"] == "failed" and "speech" in doc["error"]


def test_a_too_short_clip_names_the_speech_it_found(tmp_path: Path, engine: XttsEngine) -> None:
    h = Harness(tmp_path, engine)
    h.put("voices/short.wav", speech_clip(tmp_path / "short.wav", seconds=1.5).read_bytes())
    doc = h.doc("voices/short")
    assert doc["status"] == "failed"
    assert " s of speech" in doc["error"] and "at least 3" in doc["error"]


def test_a_clipped_clip_is_accepted_with_a_warning_on_the_voice(tmp_path: Path, engine: XttsEngine) -> None:
    import io

    import soundfile as sf

    h = Harness(tmp_path, engine)
    samples, rate = speech_samples(8.0)
    loud = np.clip(samples * 10.0, -1.0, 1.0)
    buf = io.BytesIO()
    sf.write(buf, loud, rate, format="WAV")
    h.put("voices/loud.wav", buf.getvalue())
    doc = h.doc("voices/loud")
    assert doc["status"] == "ready", doc
    assert any("clip" in w.lower() for w in doc["warnings"]) and doc["clip"]["clipping_ratio"] > 0.001


def test_several_clips_enroll_one_voice(tmp_path: Path, engine: XttsEngine, clip: bytes) -> None:
    h = Harness(tmp_path, engine)
    h.put("voices/duo/1.wav", clip)
    h.put("voices/duo/2.flac", speech_clip(tmp_path / "b.flac", seconds=5).read_bytes())
    doc = h.doc("voices/duo")
    assert doc["status"] == "ready"
    assert doc["clips"] == ["voices/duo/1.wav", "voices/duo/2.flac"]
    assert doc["clip"]["duration_s"] > 10
    assert h.request("duo-job", text="Two clips, one voice.", voice_id="duo")["status"] == "done"


def test_required_consent_is_enforced_with_instructions(tmp_path: Path, engine: XttsEngine, clip: bytes) -> None:
    h = Harness(tmp_path, engine, {"VOICECLONING_REQUIRE_CONSENT": "true"})
    h.put("voices/nc.wav", clip)
    doc = h.doc("voices/nc")
    assert doc["status"] == "failed" and "voices/nc.consent.json" in doc["error"] and "consent" in doc["error"]


def test_a_consent_sidecar_is_stored_on_the_voice(tmp_path: Path, engine: XttsEngine, clip: bytes) -> None:
    h = Harness(tmp_path, engine, {"VOICECLONING_REQUIRE_CONSENT": "true"})
    statement = {"statement": "I, Ada, agree that my voice may be cloned for audiobooks.", "signed_by": "Ada"}
    h.put("voices/ada.consent.json", json.dumps(statement).encode())
    h.put("voices/ada.wav", clip)
    doc = h.doc("voices/ada")
    assert doc["status"] == "ready"
    assert doc["consent"]["statement"] == statement["statement"] and doc["consent"]["signed_by"] == "Ada"
    assert doc["consent"]["source"] == "voices/ada.consent.json"


def test_consent_in_object_metadata_is_stored_on_the_voice(tmp_path: Path, engine: XttsEngine, clip: bytes) -> None:
    h = Harness(tmp_path, engine, {"VOICECLONING_REQUIRE_CONSENT": "true"})
    h.put("voices/meta.wav", clip, metadata={"consent": "Recorded with my consent - Bo"})
    doc = h.doc("voices/meta")
    assert doc["status"] == "ready" and doc["consent"] == {"statement": "Recorded with my consent - Bo",
                                                           "source": "object metadata"}


def test_re_enrolling_a_voice_replaces_its_latents(tmp_path: Path, engine: XttsEngine, clip: bytes) -> None:
    """A new clip under the same name re-enrolls the voice. The latents of the enrollment just before
    are kept (a job planned with them may still be rendering its parts); earlier ones are removed."""
    h = Harness(tmp_path, engine)
    h.put("voices/again.wav", clip)
    first = h.doc("voices/again")["latents_object"]
    h.put("voices/again.wav", speech_clip(tmp_path / "second.wav", seconds=6).read_bytes())
    second = h.doc("voices/again")
    assert second["status"] == "ready" and second["latents_object"] != first
    assert h.services.outputs.stat(first) is not None  # the previous enrollment's: kept, for planned jobs
    h.put("voices/again.wav", speech_clip(tmp_path / "third.wav", seconds=5).read_bytes())
    third = h.doc("voices/again")
    assert third["status"] == "ready" and third["latents_object"] not in (first, second["latents_object"])
    assert h.services.outputs.stat(first) is None  # two enrollments back: removed, not left behind
    assert h.services.outputs.stat(second["latents_object"]) is not None
    assert h.services.outputs.stat(third["latents_object"]) is not None
    latents = [i.name for i in h.services.outputs.list("voices/again.")]
    assert sorted(latents) == sorted([second["latents_object"], third["latents_object"]])
    job = h.request("after", text="New voice.", voice_id="again")
    assert job["status"] == "done" and job["voices"] == {"again": third["latents_object"]}
