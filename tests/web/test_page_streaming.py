"""User C's long job in the browser session (web/tests/streaming.mjs): written straight into the emulators
by pytest (tests/web/pagekit.py, StreamedJob), it plays part by part while it renders, hands over to the
final file, and shows that file's WebVTT captions under the player.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.pagekit import CUES, PART_SECONDS, PAUSES

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture
def run(browser_session: dict[str, Any]) -> dict[str, Any]:
    return browser_session


def test_a_long_job_plays_its_first_part_while_processing(run: dict[str, Any]) -> None:
    """C's job is still `processing` with 1 of 4 parts done: the player holds part 0 and plays it."""
    s = run["stream"]
    assert s["before"]["parts"] == "1 / 4 parts done" and s["before"]["download"] is None, s["before"]
    now = s["playingPart0"]
    assert now["status"] == "processing" and now["src"] == f"{s['jobId']}/parts/0.wav", now
    assert now["currentTime"] > 0.3 and not now["paused"], now


def test_the_player_waits_for_a_part_not_rendered_yet(run: dict[str, Any]) -> None:
    """Part 0 has ended and part 1 is not done: the player waits at the end of part 0 and says so."""
    waiting = run["stream"]["waiting"]
    assert waiting["paused"] and waiting["src"].endswith("/parts/0.wav"), waiting
    assert abs(waiting["currentTime"] - PART_SECONDS) < 0.05, waiting
    assert "waiting for part 2 of 4" in waiting["player"].lower(), waiting


def test_parts_play_in_order_with_the_designed_pauses(run: dict[str, Any]) -> None:
    """Parts 0, 1, 2 play in order, then the final file; between parts the player leaves at least the next
    part's pause_before_s (counted from the end of the previous part; the gaps are recorded, not timed)."""
    s = run["stream"]
    job = s["jobId"]
    events = s["events"]
    order = [e["src"] for e in events if e["type"] == "playing"]
    assert [k for n, k in enumerate(order) if n == 0 or order[n - 1] != k] == [
        f"{job}/parts/0.wav", f"{job}/parts/1.wav", f"{job}/parts/2.wav", f"{job}.wav"], order
    ended = {e["src"]: e["t"] for e in events if e["type"] == "ended"}
    started = {}
    for e in events:
        if e["type"] == "playing":
            started.setdefault(e["src"], e["t"])
    gap_2 = started[f"{job}/parts/2.wav"] - ended[f"{job}/parts/1.wav"]
    assert gap_2 >= PAUSES[2] * 1000 - 20, gap_2
    assert started[f"{job}/parts/1.wav"] - ended[f"{job}/parts/0.wav"] >= PAUSES[1] * 1000 - 20
    assert s["playingPart1"]["parts"] == "3 / 4 parts done" and s["playingPart1"]["status"] == "processing"


def test_the_final_file_takes_over_where_the_listener_is(run: dict[str, Any]) -> None:
    """C paused in part 2 when the job finished: the final file is loaded at the same place in the text
    (part 2's offset in it + the time into part 2), stays paused, plays on through part 3, and is offered
    for download; the part objects were deleted meanwhile."""
    s = run["stream"]
    paused, handed, final = s["pausedInPart2"], s["handedOver"], s["final"]
    assert paused["paused"] and paused["src"].endswith("/parts/2.wav"), paused
    assert handed["src"] == f"{s['jobId']}.wav" and handed["paused"], handed
    assert abs(handed["currentTime"] - (s["starts"][2] + paused["currentTime"])) < 0.02, (handed, paused)
    assert final["currentTime"] > s["starts"][3] and not final["paused"], final
    assert final["status"] == "done" and final["parts"] == "4 / 4 parts done", final
    assert final["download"] == f"{s['jobId']}.wav", final


def shown_at(samples: list[dict[str, Any]], t: float) -> str | None:
    """The caption line's text at audio time `t` (the samples are its changes, each with the time it changed)."""
    before = [s for s in samples if s["at"] <= t]
    return before[-1]["text"] if before else None


def test_a_finished_job_gets_its_webvtt_captions_as_a_hidden_track(run: dict[str, Any]) -> None:
    """C's finished job names `captions.vtt` on its document: the WebVTT object is fetched and becomes a hidden
    captions <track> of the row's player with the file's cues; a caption line follows the player's status line."""
    c = run["stream"]["captions"]
    track = c["track"]["track"]
    assert c["loaded"] and track is not None, c
    assert track["kind"] == "captions" and track["mode"] == "hidden" and track["readyState"] == 2, track
    assert [(round(q["start"], 3), round(q["end"], 3), q["text"]) for q in track["cues"]] == [
        (round(q["start"], 3), round(q["end"], 3), q["vtt"]) for q in CUES], track["cues"]
    assert c["track"]["line"] == {"live": "polite", "afterPlayer": True}, c["track"]


def test_the_caption_line_shows_the_cue_being_spoken(run: dict[str, Any]) -> None:
    """While the final file plays over a cue, the line under the player shows that cue's text (entities
    decoded), a `<v alice>` cue as `alice: text`; before the first cue and after the last the line is empty."""
    c = run["stream"]["captions"]
    samples = c["samples"]
    assert c["ended"] and samples, c
    assert shown_at(samples, CUES[0]["start"] - 0.1) == "", samples
    for cue in CUES:
        assert shown_at(samples, (cue["start"] + cue["end"]) / 2) == cue["shown"], (cue, samples)
    assert samples[-1]["text"] == "" and samples[-1]["at"] >= CUES[-1]["end"] - 0.05, samples
