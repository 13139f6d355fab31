"""The fan-out simulation's arithmetic and the fan-out bench's summary, on tiny inputs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from voicecloning.bench.fanout import summarise
from voicecloning.bench.simulate import Measured, Shape, book_parts, book_text, simulate

NO_OVERHEAD = Measured(render_s_per_audio_s=0.5, cold_start_s=0.0, assembly_audio_s_per_s=10.0,
                       planning_s_per_part=0.0)


def test_one_instance_takes_the_sum_of_the_parts_plus_assembly() -> None:
    """With one instance and no cold start or planning, wall time is every render plus the assembly."""
    parts = [4.0, 10.0, 6.0, 20.0]
    result = simulate(parts, NO_OVERHEAD, 1)
    assert result.wall_s == pytest.approx(0.5 * sum(parts) + sum(parts) / 10.0)
    assert result.first_audio_s == pytest.approx(2.0)
    assert result.instances == 1


def test_a_small_worked_example_with_cold_starts_and_planning() -> None:
    """Instance 0 plans (parts published at 6, 7, 8 s); instance 1 is asked for at 6 s, ready at 11 s."""
    measured = Measured(render_s_per_audio_s=1.0, cold_start_s=5.0, assembly_audio_s_per_s=6.0,
                        planning_s_per_part=1.0)
    result = simulate([2.0, 2.0, 2.0], measured, 2)
    assert result.first_audio_s == pytest.approx(10.0)  # instance 0 after planning, 8 + 2
    assert result.renders_done_s == pytest.approx(13.0)  # part 1 on instance 1: 11 + 2
    assert result.wall_s == pytest.approx(14.0)  # + 6 s of audio at 6 audio-s per s
    assert result.instance_s == pytest.approx(12.0 + 8.0)  # 0..12 and 6..14
    assert result.busy_s == pytest.approx(20.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_more_instances_are_never_slower(seed: int) -> None:
    """Wall time and first audio never grow with max_instances, cold starts included."""
    rng = random.Random(seed)
    parts = [rng.uniform(1.0, 60.0) for _ in range(40)]
    measured = Measured(render_s_per_audio_s=0.7, cold_start_s=8.0, assembly_audio_s_per_s=100.0,
                        planning_s_per_part=0.05)
    results = [simulate(parts, measured, m) for m in range(1, 45)]
    walls = [r.wall_s for r in results]
    assert all(later <= earlier for earlier, later in zip(walls, walls[1:], strict=False))
    assert results[-1].instances == 40  # never more instances than parts


def test_cost_is_instance_seconds_times_the_price() -> None:
    """Cost = instance-seconds x (vCPU x price per vCPU-s + GiB x price per GiB-s)."""
    shape = Shape(vcpu=2, memory_gib=4, usd_per_vcpu_s=0.000018, usd_per_gib_s=0.000002)
    result = simulate([30.0] * 12, Measured(0.5, 10.0, 200.0, 0.01), 5, shape)
    assert shape.usd_per_instance_s == pytest.approx(0.000044)
    assert result.cost_usd == pytest.approx(result.instance_s * 0.000044, abs=1e-4)


def test_an_idle_tail_is_billed_per_instance() -> None:
    """``idle_tail_s`` adds that many billed seconds for every instance."""
    parts = [10.0] * 6
    plain = simulate(parts, NO_OVERHEAD, 3)
    tailed = simulate(parts, NO_OVERHEAD, 3, idle_tail_s=100.0)
    assert tailed.instance_s == pytest.approx(plain.instance_s + 300.0)
    assert tailed.wall_s == plain.wall_s


def test_the_simulated_book_is_planned_like_a_job() -> None:
    """The first part is the short one; every other part is about the part size."""
    plan = book_parts(20_000)
    audio = [a for _pause, a in plan]
    assert plan[0][0] == 0.0
    assert audio[0] < min(audio[1:-1])
    assert max(audio) < 60.0 + 20.0  # a part is closed before it passes the size by a segment


def test_book_text_is_deterministic_and_as_long_as_asked() -> None:
    assert book_text(5000) == book_text(5000)
    assert 4800 < len(book_text(5000)) <= 5000


def test_summarise_takes_a_lazy_model_load_out_of_the_part_that_waited_for_it() -> None:
    """Figures come from the documents; a model load inside a part's interval is not render time."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    job = {"created_at": at(0), "first_audio_at": at(3), "finished_at": at(21), "duration_s": 40.0}
    parts = [
        {"index": 0, "created_at": at(0.1), "started_at": at(1), "finished_at": at(3), "duration_s": 5.0,
         "chars": 100, "worker": "a"},
        {"index": 1, "created_at": at(0.2), "started_at": at(1), "finished_at": at(15), "duration_s": 20.0,
         "chars": 800, "worker": "b"},  # includes a 6 s model load that ended at 7 s
        {"index": 2, "created_at": at(0.3), "started_at": at(3), "finished_at": at(20), "duration_s": 15.0,
         "chars": 700, "worker": "a"},
    ]
    loads = [(at(7).timestamp(), 6.0)]
    out = summarise(job, parts, loads, dropped_at=at(-1).timestamp(), workers=2)
    assert out["wall_s"] == 22.0
    assert out["first_audio_s"] == 3.0
    assert out["part0_render_s"] == 2.0
    assert out["parts_with_model_load"] == 1
    assert out["part_render_median_s"] == 8.0  # 2, 14 - 6, 17
    assert out["render_s_per_audio_s"] == round(27.0 / 40.0, 3)
    assert out["assembly_s"] == 1.0
    assert out["parts_per_min"] == round(3 / 20 * 60, 2)
    assert out["planning_s_per_part"] == 0.1
    assert out["parts_by_worker"] == {"a": 2, "b": 1}
