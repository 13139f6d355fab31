"""Captions and timings: exact from sample counts, readable by real WebVTT / SRT parsers."""

from __future__ import annotations

import io
import json

import pytest
import srt
import webvtt

from voicecloning.captions import TimedSegment, render, timeline, timings_document, to_srt, to_vtt

RATE = 24000
# (text, voice, samples, silence after): a dialogue with a pause between turns
PIECES = [
    ("Hello there, Bob.", "alice", 37_211, 8_400),
    ("Hi Alice & welcome <back>.", "bob", 51_007, 0),
    ("Shall we start --> now?", "bob", 20_001, 8_400),
    ("Yes.", "alice", 9_999, 0),
]
DURATION_S = sum(p[2] + p[3] for p in PIECES) / RATE


def _seconds(stamp: str) -> float:
    h, m, s = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_timeline_places_segments_exactly_from_sample_counts() -> None:
    """Each start is the sum of all earlier samples and silences, divided by the rate."""
    segs = timeline(PIECES)
    assert [round(s.start_s * RATE) for s in segs] == [0, 45_611, 96_618, 125_019]
    assert [round(s.end_s * RATE) for s in segs] == [37_211, 96_618, 116_619, 135_018]
    assert segs[-1].end_s == pytest.approx(DURATION_S)


def test_timings_document_lists_every_segment_with_its_voice() -> None:
    """The timings.json body keeps sample-exact seconds and any extra fields the caller adds."""
    doc = timings_document(timeline(PIECES), DURATION_S, {"job_id": "j1", "sample_rate": RATE})
    assert [s["voice_id"] for s in doc["segments"]] == ["alice", "bob", "bob", "alice"]
    assert doc["segments"][1] == {"text": "Hi Alice & welcome <back>.", "start_s": round(45_611 / RATE, 6),
                                  "end_s": round(96_618 / RATE, 6), "voice_id": "bob"}
    assert round(doc["segments"][1]["start_s"] * RATE) == 45_611
    assert doc["duration_s"] == round(DURATION_S, 6) and doc["job_id"] == "j1"
    json.dumps(doc)  # serialisable as is


def test_webvtt_parses_with_one_ordered_cue_per_segment_ending_at_the_duration() -> None:
    """A real parser reads the file: cue count, order, no overlap, last end within 50 ms."""
    segs = timeline(PIECES)
    cues = list(webvtt.from_buffer(io.StringIO(to_vtt(segs, label_voices=False))))
    assert len(cues) == len(segs)
    starts = [_seconds(c.start) for c in cues]
    ends = [_seconds(c.end) for c in cues]
    assert starts == sorted(starts)
    assert all(ends[i] <= starts[i + 1] for i in range(len(cues) - 1))
    assert abs(ends[-1] - DURATION_S) <= 0.05
    assert cues[0].text == "Hello there, Bob."


def test_dialogue_cues_are_labelled_with_their_voice() -> None:
    """label_voices writes <v alice> spans the parser reports as the cue's voice."""
    cues = list(webvtt.from_buffer(io.StringIO(to_vtt(timeline(PIECES), label_voices=True))))
    assert [c.voice for c in cues] == ["alice", "bob", "bob", "alice"]


def test_cue_text_cannot_break_the_webvtt_structure() -> None:
    """'<', '&' and '-->' in the text are escaped, so each cue stays one cue with its words."""
    text = to_vtt(timeline(PIECES))
    assert "Hi Alice &amp; welcome &lt;back&gt;." in text
    assert text.count("-->") == len(PIECES)  # only the timing lines


def test_srt_parses_with_one_ordered_cue_per_segment_ending_at_the_duration() -> None:
    segs = timeline(PIECES)
    subs = list(srt.parse(to_srt(segs)))
    assert [s.index for s in subs] == [1, 2, 3, 4]
    assert [s.content for s in subs][:2] == ["Hello there, Bob.", "Hi Alice & welcome <back>."]
    assert all(subs[i].end <= subs[i + 1].start for i in range(len(subs) - 1))
    assert abs(subs[-1].end.total_seconds() - DURATION_S) <= 0.05


def test_adjacent_segments_never_overlap_after_rounding_to_milliseconds() -> None:
    """Segments that touch at an odd sample give cues that touch, never overlap."""
    segs = timeline([("a", "v", 1, 0), ("b", "v", 12, 0), ("c", "v", 11_999, 0), ("d", "v", 13, 0)])
    subs = list(srt.parse(to_srt(segs)))
    assert all(subs[i].end <= subs[i + 1].start for i in range(len(subs) - 1))


def test_long_audio_gets_hour_timestamps() -> None:
    seg = TimedSegment("Late.", "v", 3725.25, 3726.5)
    assert "01:02:05.250 --> 01:02:06.500" in to_vtt([seg])
    assert "01:02:05,250 --> 01:02:06,500" in to_srt([seg])


def test_render_picks_the_format_by_name() -> None:
    segs = timeline(PIECES[:1])
    assert render("vtt", segs).startswith("WEBVTT") and render("srt", segs).startswith("1\n")
    with pytest.raises(ValueError, match="unknown caption format"):
        render("ass", segs)


def test_overlapping_or_overlong_segments_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="overlap"):
        to_srt([TimedSegment("a", "v", 0.0, 2.0), TimedSegment("b", "v", 1.0, 3.0)])
    with pytest.raises(ValueError, match="after the audio"):
        timings_document([TimedSegment("a", "v", 0.0, 2.0)], 1.0)
