"""Fan-out benchmark: one long job through ``serve --workers N`` for each N, timed from its documents.

For each worker count it starts ``python -m voicecloning serve --workers N`` (its own process
group, a fresh temporary data folder, ``VOICECLONING_THREADS`` threads per worker), enrolls a
voice from an espeak-ng clip, drops one long request and waits for the job to be ``done``.
The figures come from the job and part documents and from the workers' ``model loaded`` log
lines, never from sleeps. Random-weight checkpoints never emit the stop token, so every
segment is exactly ``tokens_per_segment`` audio tokens long (``VOICECLONING_MAX_AUDIO_TOKENS``):
the audio's length is set by that cap, not by the text. See docs/PERFORMANCE.md ("Fan-out").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from voicecloning.bench.driver import DEFAULT_MODEL_DIR, ensure_models
from voicecloning.bench.simulate import SENTENCES, book_text
from voicecloning.engine.manifest import read_manifest

DEFAULT_CHARS = 6000  # ~8 parts of the default 60 s (estimated) each
DEFAULT_TOKENS = 128  # ~5.9 s of audio per segment; a real 250-character segment is ~380 tokens
DEFAULT_TIMEOUT_S = 1800.0
VOICE = "bench"
POLL_S = 0.25
def espeak_clip(path: Path, seconds: float = 12.0) -> Path:
    """A speech clip spoken by espeak-ng (WAV, 22.05 kHz mono), about ``seconds`` long."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (make setup installs it)")
    words = " ".join(SENTENCES[2:6]) * max(1, round(seconds / 12))
    subprocess.run([exe, "-v", "en", "-s", "150", "-w", str(path), words], check=True, capture_output=True)
    return path


def _converted(model_dir: Path) -> Path:
    """The converted (fast-format) folder for ``model_dir``; builds and converts it when needed."""
    if (model_dir / "voicecloning.json").is_file() and read_manifest(model_dir).format == "fast":
        return model_dir
    return ensure_models(model_dir)[1]


class Serve:
    """``serve --workers N`` in its own process group; ``stop`` ends the whole group."""

    def __init__(self, data: Path, workers: int, env: dict[str, str]) -> None:
        self.data = data
        self.log_path = data / "serve.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "voicecloning", "serve", "--data", str(data), "--workers", str(workers)],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_alive(self.proc.pid):
            self.proc.poll()
            time.sleep(0.2)
        if _group_alive(self.proc.pid):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON log lines of the supervisor and its workers (other lines skipped)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line) if line.startswith("{") else None)
        return [line for line in out if isinstance(line, dict)]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _epoch(value: Any) -> float:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _wait(data: Path, path: str, serve: Serve, deadline: float, until: str) -> dict[str, Any]:
    """The document at ``path`` once its status is ``until`` (raises if it fails, serve dies, or time is up)."""
    from voicecloning.stores.documents import SqliteDocumentStore

    while time.monotonic() < deadline:
        db = data / "documents.sqlite3"
        doc = (SqliteDocumentStore(db).get(path) if db.is_file() else None) or {}
        if doc.get("status") == until:
            return dict(doc)
        if doc.get("status") == "failed":
            raise RuntimeError(f"{path} failed: {doc.get('error')}")
        if not serve.alive():
            raise RuntimeError(f"serve exited with status {serve.proc.returncode}; see {serve.log_path}")
        time.sleep(POLL_S)
    raise TimeoutError(f"{path} not {until} in time")


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


def summarise(job: dict[str, Any], parts: list[dict[str, Any]], loads: list[tuple[float, float]], *,
              dropped_at: float, workers: int) -> dict[str, Any]:
    """The run's figures from its documents; ``loads``: (end epoch, seconds) of each model load."""
    created, finished = _epoch(job["created_at"]), _epoch(job["finished_at"])
    renders, cold_parts = [], 0
    for part in parts:
        start, end = _epoch(part["started_at"]), _epoch(part["finished_at"])
        loading = sum(s for done, s in loads if start <= done - s + 0.5 and done <= end)  # a lazy load inside it
        cold_parts += loading > 0
        renders.append((int(part["index"]), end - start - loading, float(part["duration_s"]), part.get("worker")))
    renders.sort()
    last_part = max(_epoch(p["finished_at"]) for p in parts)
    assembly_s = finished - last_part
    planned = max(_epoch(p["created_at"]) for p in parts) - created
    renders_s, audio = [r[1] for r in renders], float(job.get("duration_s") or 0.0)
    return {
        "workers": workers, "parts_total": len(parts), "chars": sum(int(p.get("chars") or 0) for p in parts),
        "audio_s": round(audio, 2), "wall_s": round(finished - dropped_at, 2), "job_s": round(finished - created, 2),
        "first_audio_s": round(_epoch(job["first_audio_at"]) - created, 2),
        "part0_render_s": round(renders[0][1], 2), "part0_audio_s": round(renders[0][2], 2),
        "parts_per_min": round(len(parts) / max(1e-9, last_part - created) * 60, 2),
        "part_render_median_s": round(statistics.median(renders_s), 2),
        "part_render_p90_s": round(_quantile(renders_s, 0.9), 2),
        "render_s_per_audio_s": round(sum(renders_s) / max(1e-9, sum(r[2] for r in renders)), 3),
        "parts_with_model_load": cold_parts, "assembly_s": round(assembly_s, 2),
        "assembly_audio_s_per_s": round(audio / max(1e-3, assembly_s), 1),
        "planning_s_per_part": round(planned / len(parts), 4),
        "cold_start_s": round(max((s for _e, s in loads), default=0.0), 2),
        "model_loads_s": [round(s, 2) for _e, s in loads],
        "parts_by_worker": dict(Counter(str(r[3]) for r in renders)),
    }


def run_one(fast_dir: Path, workers: int, text: str, *, threads: int, tokens_per_segment: int,
            env_extra: dict[str, str] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """One job of ``text`` through ``serve --workers workers`` on a fresh data folder; its figures."""
    from voicecloning.stores.documents import SqliteDocumentStore

    env = {**os.environ, "PYTHONUNBUFFERED": "1", "VOICECLONING_MODEL_DIR": str(fast_dir),
           "VOICECLONING_PRECISION": "fast", "VOICECLONING_THREADS": str(threads),
           "VOICECLONING_MAX_AUDIO_TOKENS": str(tokens_per_segment), **(env_extra or {})}
    for name in ("VOICECLONING_BACKEND", "VOICECLONING_DATA_DIR", "VOICECLONING_INPUT_BUCKET",
                 "VOICECLONING_OUTPUT_BUCKET", "VOICECLONING_TASKS_TOPIC"):
        env.pop(name, None)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fanout-") as folder:
        data = Path(folder)
        (data / "input" / "voices").mkdir(parents=True)
        (data / "input" / "requests").mkdir(parents=True)
        serve = Serve(data, workers, env)
        try:
            deadline = time.monotonic() + timeout_s
            clip = espeak_clip(data / "clip.wav")
            os.replace(clip, data / "input" / "voices" / f"{VOICE}.wav")
            _wait(data, f"voices/{VOICE}", serve, deadline, "ready")
            job_id = f"fanout-{workers}"
            request = data / f"{job_id}.json"
            request.write_text(json.dumps({"text": text, "voice_id": VOICE, "language": "en", "seed": 1}))
            dropped_at = time.time()
            os.replace(request, data / "input" / "requests" / f"{job_id}.json")
            job = _wait(data, f"jobs/{job_id}", serve, deadline, "done")
            store = SqliteDocumentStore(data / "documents.sqlite3")
            parts = [doc for _key, doc in store.children(f"jobs/{job_id}/parts")]
            loads = [(_epoch(line["time"]), float(line["seconds"])) for line in serve.log_lines()
                     if line.get("message") == "model loaded"]
            cpu_s = worker_cpu_seconds(data)
        finally:
            serve.stop()
        result = summarise(job, parts, loads, dropped_at=dropped_at, workers=workers)
        return {"threads": threads, "tokens_per_segment": tokens_per_segment, **result,
                "worker_cpu_s": round(cpu_s, 1), "cpu_s_per_audio_s": round(cpu_s / max(1e-9, result["audio_s"]), 3),
                "loadavg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)]}


def worker_cpu_seconds(data: Path) -> float:
    """CPU seconds the worker processes (``DATA/workers.pid``) have used so far, user + system."""
    import psutil

    total = 0.0
    for line in (data / "workers.pid").read_text().split():
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(int(line)).cpu_times()
            total += times.user + times.system
    return total


def run_fanout(model_dir: Path = DEFAULT_MODEL_DIR, workers_list: Sequence[int] = (1, 2), chars: int = DEFAULT_CHARS,
               threads: int = 1, tokens_per_segment: int = DEFAULT_TOKENS, *,
               env_extra: dict[str, str] | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> list[dict[str, Any]]:
    """One run per worker count, the same text each time; one result dict per run (see ``summarise``)."""
    fast_dir = _converted(model_dir)
    text = book_text(chars)
    results = []
    for workers in workers_list:
        print(f"fan-out: {workers} worker(s), {len(text)} chars, {tokens_per_segment} tokens a segment",
              file=sys.stderr, flush=True)
        result = run_one(fast_dir, workers, text, threads=threads, tokens_per_segment=tokens_per_segment,
                         env_extra=env_extra, timeout_s=timeout_s)
        results.append({"model_dir": str(model_dir), **result})
    return results


ROWS = (("parts", "parts_total"), ("audio (s)", "audio_s"), ("wall (s)", "wall_s"),
        ("first audio (s)", "first_audio_s"), ("part 0 render (s)", "part0_render_s"),
        ("parts per minute", "parts_per_min"), ("part render median (s)", "part_render_median_s"),
        ("part render p90 (s)", "part_render_p90_s"), ("render s per audio s", "render_s_per_audio_s"),
        ("assembly (s)", "assembly_s"), ("cold start: model load (s)", "cold_start_s"),
        ("worker CPU s per audio s", "cpu_s_per_audio_s"), ("load average (start, end)", "loadavg_1m"))


def table(results: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'workers':28}" + "".join(f"{r['workers']:>10}" for r in results)]
    for label, key in ROWS:
        lines.append(f"{label:28}" + "".join(f"{_cell(r[key]):>10}" for r in results))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return "/".join(str(v) for v in value) if isinstance(value, list) else str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m voicecloning.bench.fanout", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR,
                        help="coqui-format folder (built and converted if missing) or a converted one")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chars", type=int, default=DEFAULT_CHARS)
    parser.add_argument("--threads", type=int, default=1, help="threads per worker")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, help="audio tokens per segment (the cap)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the serve process groups on the way out
    results = run_fanout(args.model_dir, args.workers, args.chars, args.threads, args.tokens)
    for result in results:
        print(json.dumps(result))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
