"""Discrete-event simulation of one book fanned out over Cloud Run instances, from measured inputs.

The inputs are what ``voicecloning.bench.fanout`` measures: part render seconds per second of
audio, cold start, assembly rate and planning time per part. The model of the platform:

- t = 0: the request's storage event starts instance 0 (a cold start), which plans the job:
  part i is published ``planning_s_per_part`` after part i - 1, part 0 the first.
- Instance k >= 1 is asked for when part k - 1 is published (a delivery is waiting and every
  instance is busy) and is ready ``cold_start_s`` later; at most ``max_instances`` instances.
  Instance 0 takes parts once planning is done; ``split_s`` (cutting the text into
  segments) comes before part 0 is published.
- Parts are taken in index order by the instance free first (concurrency 1 per instance);
  rendering a part takes ``part_overhead_s + render_s_per_audio_s * its audio seconds``.
- When the last part is done, the instance that finished it assembles the whole book,
  sequentially, at ``assembly_audio_s_per_s``. Wall time ends when assembly does.
- Billing: each instance from the moment it is asked for (its cold start counts) to its last
  busy moment (idle gaps in between included, the idle tail before scale-down not, unless
  ``idle_tail_s``). Instance-based billing prices are the default; request-based prices are
  applied to busy seconds (cold start and tasks) for comparison.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from voicecloning.parts import PAUSE_BETWEEN_SEGMENTS_S, Segment, plan_parts
from voicecloning.settings import Parts
from voicecloning.text import split_text

BOOK_CHARS = 500_000
INSTANCES = (1, 10, 100, 300)
EN_CHAR_LIMIT = 250  # XTTS-v2's character limit for English segments
# Cloud Run, Tier 1 regions (e.g. us-central1), list prices without free tier or discounts, as
# published on https://cloud.google.com/run/pricing (checked 2026-12-03).
INSTANCE_BILLING_USD = (0.000018, 0.000002)  # per vCPU-second, per GiB-second
REQUEST_BILLING_USD = (0.000024, 0.0000025)
# What this session measured (docs/PERFORMANCE.md "Fan-out"); used when no --measured file is given.
MEASURED_DEFAULTS = {"render_s_per_audio_s": 2.527, "cold_start_s": 14.76, "assembly_audio_s_per_s": 1296.0,
                     "planning_s_per_part": 0.0221}  # 1 worker, 1 thread, 2026-12-03, a contended machine


# Sentences of very different lengths, drawn at random: segments and parts come out ragged.
SENTENCES = (
    "Yes.",
    "He waited.",
    "The rain had stopped by the time they reached the bridge.",
    "Nobody in the village could remember when the old mill had last turned.",
    "She folded the letter twice, put it in her coat pocket, and walked out into the cold morning air.",
    "What would you have done?",
    "For three days the wind came down from the hills, rattling the shutters and driving the sheep into "
    "the lee of the stone walls, and on the fourth day it dropped as suddenly as it had risen.",
    "The station clock said twenty past nine.",
    "It was not, he thought, the kind of house that people left willingly; it was the kind they were "
    "carried out of, feet first, after a long life spent complaining about the draughts.",
    "Listen to me.",
    "By evening the harbour was full of boats, their lamps swaying on the black water like slow fireflies.",
    "Margaret laughed, though she did not find it funny at all.",
)


def book_text(chars: int, seed: int = 0) -> str:
    """About ``chars`` characters of prose: paragraphs of sentences of ragged lengths (deterministic)."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    total = 0
    while total < chars:
        paragraph = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 7)))
        paragraphs.append(paragraph)
        total += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:chars].rsplit(" ", 1)[0]


@dataclass(frozen=True)
class Measured:
    render_s_per_audio_s: float
    cold_start_s: float
    assembly_audio_s_per_s: float
    planning_s_per_part: float
    part_overhead_s: float = 0.0
    split_s: float = 0.0  # cutting the whole text into segments, before part 0 is published


@dataclass(frozen=True)
class Shape:
    """The worker instance (terraform/variables.tf: worker_cpu "2", worker_memory "4Gi") and its prices."""

    vcpu: float = 2.0
    memory_gib: float = 4.0
    usd_per_vcpu_s: float = INSTANCE_BILLING_USD[0]
    usd_per_gib_s: float = INSTANCE_BILLING_USD[1]

    @property
    def usd_per_instance_s(self) -> float:
        return self.vcpu * self.usd_per_vcpu_s + self.memory_gib * self.usd_per_gib_s


@dataclass(frozen=True)
class SimResult:
    max_instances: int
    instances: int
    parts: int
    audio_s: float
    first_audio_s: float
    renders_done_s: float
    wall_s: float
    instance_s: float
    busy_s: float
    cost_usd: float
    request_billing_usd: float


def book_parts(chars: int = BOOK_CHARS, *, part_seconds: float | None = None,
               first_part_seconds: float | None = None, seed: int = 0) -> list[tuple[float, float]]:
    """(pause before, audio seconds) of each part of a ``chars``-character book, planned as jobs are."""
    defaults = Parts()
    texts = split_text(book_text(chars, seed), "en", EN_CHAR_LIMIT)
    segments = [Segment(text, "v", "en", 0.0 if n == 0 else PAUSE_BETWEEN_SEGMENTS_S) for n, text in enumerate(texts)]
    parts = plan_parts(segments, part_seconds=part_seconds or defaults.part_audio_seconds,
                       first_part_seconds=first_part_seconds or defaults.first_part_audio_seconds)
    return [(p.pause_before_s, p.estimated_seconds + sum(s.pause_before_s for s in p.segments[1:])) for p in parts]


def simulate(parts_audio_s: Sequence[float], measured: Measured, max_instances: int, shape: Shape = Shape(), *,
             pauses_s: float = 0.0, idle_tail_s: float = 0.0) -> SimResult:
    """One job of parts with these audio lengths on at most ``max_instances`` instances."""
    if max_instances < 1 or not parts_audio_s:
        raise ValueError("need at least one instance and one part")
    m = measured
    n = len(parts_audio_s)
    published = [m.cold_start_s + m.split_s + (i + 1) * m.planning_s_per_part for i in range(n)]
    count = min(max_instances, n)
    asked = [0.0] + [published[k - 1] for k in range(1, count)]
    free = [(published[-1], 0)] + [(asked[k] + m.cold_start_s, k) for k in range(1, count)]
    heapq.heapify(free)
    last_busy = [published[-1]] + [asked[k] + m.cold_start_s for k in range(1, count)]
    busy = [published[-1]] + [m.cold_start_s] * (count - 1)
    finished = [0.0] * n
    for i, audio in enumerate(parts_audio_s):
        ready, k = heapq.heappop(free)
        render = m.part_overhead_s + m.render_s_per_audio_s * audio
        end = max(ready, published[i]) + render
        finished[i] = end
        last_busy[k] = end
        busy[k] += render
        heapq.heappush(free, (end, k))
    renders_done = max(finished)
    assembler = max(range(count), key=lambda k: last_busy[k])
    audio_total = sum(parts_audio_s) + pauses_s
    assembly = audio_total / m.assembly_audio_s_per_s
    wall = renders_done + assembly
    last_busy[assembler] = wall
    busy[assembler] += assembly
    instance_s = sum(last_busy[k] - asked[k] + idle_tail_s for k in range(count))
    request_rate = shape.vcpu * REQUEST_BILLING_USD[0] + shape.memory_gib * REQUEST_BILLING_USD[1]
    return SimResult(max_instances, count, n, round(audio_total, 1), round(finished[0], 2), round(renders_done, 1),
                     round(wall, 1), round(instance_s, 1), round(sum(busy), 1),
                     round(instance_s * shape.usd_per_instance_s, 4), round(sum(busy) * request_rate, 4))


def timed_book_parts(chars: int = BOOK_CHARS) -> tuple[list[tuple[float, float]], float]:
    """``book_parts(chars)`` and the seconds it took here (the job handler's split and plan)."""
    started = time.perf_counter()
    plan = book_parts(chars)
    return plan, time.perf_counter() - started


def run_simulation(measured: Measured, instances: Sequence[int] = INSTANCES, chars: int = BOOK_CHARS,
                   shape: Shape = Shape(), *, idle_tail_s: float = 0.0,
                   plan: Sequence[tuple[float, float]] | None = None) -> list[SimResult]:
    """One simulation per ``max_instances``, of the ``chars``-character book (or ``plan``)."""
    plan = plan if plan is not None else book_parts(chars)
    audio = [a for _p, a in plan]
    pauses = sum(p for p, _a in plan)
    return [simulate(audio, measured, m, shape, pauses_s=pauses, idle_tail_s=idle_tail_s) for m in instances]


def measured_from(path: Path, workers: int = 1) -> Measured:
    """The inputs from a fan-out output (its JSON lines), from the run with ``workers`` workers."""
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            run = json.loads(line)
            if run.get("workers") == workers:
                return Measured(*(float(run[key]) for key in MEASURED_DEFAULTS))
    raise ValueError(f"no run with {workers} worker(s) in {path}")


def table(results: Sequence[SimResult], measured: Measured, shape: Shape) -> str:
    head = (f"book: {results[0].parts} parts, {results[0].audio_s / 3600:.2f} h of audio; inputs: {asdict(measured)}; "
            f"shape {shape.vcpu:g} vCPU / {shape.memory_gib:g} GiB at ${shape.usd_per_instance_s:.6f}/instance-s")
    lines = [head, f"{'max_instances':>13} {'first audio s':>13} {'wall s':>8} {'wall min':>8} {'instance-s':>11} "
             f"{'USD (instance)':>14} {'USD (request)':>13}"]
    for r in results:
        lines.append(f"{r.max_instances:>13} {r.first_audio_s:>13} {r.wall_s:>8} {r.wall_s / 60:>8.1f} "
                     f"{r.instance_s:>11} {r.cost_usd:>14.4f} {r.request_billing_usd:>13.4f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voicecloning.bench.simulate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measured", type=Path, help="fan-out output (JSON lines) to take the inputs from")
    parser.add_argument("--from-workers", type=int, default=1, help="which fan-out run (its worker count)")
    for key, value in MEASURED_DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=float, help=f"override (default measured: {value})")
    parser.add_argument("--part-overhead-s", type=float, default=0.0)
    parser.add_argument("--split-s", type=float,
                        help="seconds to cut the book into segments and plan it (default: timed here)")
    parser.add_argument("--chars", type=int, default=BOOK_CHARS)
    parser.add_argument("--instances", type=int, nargs="+", default=list(INSTANCES))
    parser.add_argument("--vcpu", type=float, default=Shape.vcpu)
    parser.add_argument("--memory-gib", type=float, default=Shape.memory_gib)
    parser.add_argument("--idle-tail-s", type=float, default=0.0, help="idle seconds billed per instance at the end")
    args = parser.parse_args(argv)
    base = asdict(measured_from(args.measured, args.from_workers)) if args.measured else dict(MEASURED_DEFAULTS)
    values: dict[str, Any] = {k: getattr(args, k) if getattr(args, k) is not None else base[k] for k in MEASURED_DEFAULTS}
    plan, split_s = timed_book_parts(args.chars)
    measured = Measured(**values, part_overhead_s=args.part_overhead_s,
                        split_s=round(split_s, 2) if args.split_s is None else args.split_s)
    shape = Shape(vcpu=args.vcpu, memory_gib=args.memory_gib)
    results = run_simulation(measured, args.instances, args.chars, shape, idle_tail_s=args.idle_tail_s, plan=plan)
    for result in results:
        print(json.dumps(asdict(result)))
    print(table(results, measured, shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
