"""The part plan: whole segments, nothing dropped or doubled, a short first part, pauses designed once."""

from __future__ import annotations

from voicecloning.parts import (
    PAUSE_BETWEEN_ITEMS_S,
    PAUSE_BETWEEN_SEGMENTS_S,
    Piece,
    estimate_seconds,
    job_seed,
    part_seed,
    plan_parts,
    segments_of,
)

TEXT = " ".join(f"Sentence {i} of the chapter is read aloud here, slowly and clearly." for i in range(200))


def _plan(pieces: list[Piece], part_s: float = 60, first_s: float = 8):  # type: ignore[no-untyped-def]
    return plan_parts(segments_of(pieces, lambda _lang: 250), part_seconds=part_s, first_part_seconds=first_s)


def test_every_word_is_in_exactly_one_part_in_order() -> None:
    parts = _plan([Piece(TEXT, "v", "en", 0.0)])
    assert " ".join(s.text for p in parts for s in p.segments).split() == TEXT.split()
    assert [p.index for p in parts] == list(range(len(parts)))


def test_the_first_part_is_a_sentence_or_two_and_the_rest_about_a_minute() -> None:
    parts = _plan([Piece(TEXT, "v", "en", 0.0)])
    assert parts[0].estimated_seconds <= 8 and len(parts[0].segments) == 1
    assert all(p.estimated_seconds <= 60 + 20 for p in parts[1:])
    assert sum(p.estimated_seconds for p in parts[1:-1]) / len(parts[1:-1]) > 40


def test_pauses_are_designed_once_across_parts_and_items() -> None:
    parts = _plan([Piece(TEXT[:2000], "a", "en", 0.0), Piece(TEXT[:500], "b", "en", PAUSE_BETWEEN_ITEMS_S)])
    segments = [s for p in parts for s in p.segments]
    assert segments[0].pause_before_s == 0.0
    first_of_b = next(i for i, s in enumerate(segments) if s.voice_id == "b")
    assert segments[first_of_b].pause_before_s == PAUSE_BETWEEN_ITEMS_S
    assert {s.pause_before_s for i, s in enumerate(segments) if i not in (0, first_of_b)} == {PAUSE_BETWEEN_SEGMENTS_S}
    assert all(p.pause_before_s == p.segments[0].pause_before_s for p in parts)


def test_a_short_request_is_one_part() -> None:
    parts = _plan([Piece("Hello there.", "v", "en", 0.0)])
    assert len(parts) == 1 and parts[0].segments[0].text == "Hello there." and parts[0].pause_before_s == 0.0


def test_part_seeds_are_fixed_by_the_job_seed_and_index() -> None:
    assert part_seed(7, 3) == part_seed(7, 3) != part_seed(7, 4)
    assert job_seed(42, "jobs/j", 1) == 42
    assert job_seed(None, "jobs/j", 1) == job_seed(None, "jobs/j", 1) != job_seed(None, "jobs/j", 2)
    assert estimate_seconds("x" * 140, "en") == 10.0
