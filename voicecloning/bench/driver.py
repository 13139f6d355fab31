"""Run the benchmark workers one after another, each in a fresh process, and summarise them.

The last stdout line is one JSON object (see ``docs/PERFORMANCE.md`` for its fields).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from voicecloning.engine.manifest import read_manifest

DEFAULT_MODEL_DIR = Path("models/dev-full")
VCPU_SECOND_USD = 0.000018  # Cloud Run, CPU-only, instance-based billing (public list price, tier 1)
GIB_SECOND_USD = 0.000002
MEMORY_SHAPES_GIB = (0.5, 1, 2, 4, 8, 16, 32)
MEMORY_HEADROOM = 1.15


class BenchError(RuntimeError):
    """A benchmark worker failed."""


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def ensure_models(model_dir: Path) -> tuple[Path, Path]:
    """(coqui-format folder, converted folder): builds the full random model and converts it if needed."""
    if model_dir.is_dir() and read_manifest(model_dir).format == "fast":
        raise BenchError(f"{model_dir} is already converted; pass the coqui-format folder (model.pth)")
    if not (model_dir / "model.pth").is_file():
        subprocess.run(_python("voicecloning", "dev-model", str(model_dir), "--full"), check=True)
    fast_dir = model_dir.with_name(model_dir.name + "-fast")
    weights = fast_dir / "model.safetensors"
    if not weights.is_file() or weights.stat().st_mtime < (model_dir / "model.pth").stat().st_mtime:
        subprocess.run(_python("voicecloning", "convert", str(model_dir), str(fast_dir)), check=True)
    return model_dir, fast_dir


def ensure_outlier_model(source: Path) -> Path:
    """The converted outlier checkpoint (``engine.outliers``) built from ``source``, made once and reused."""
    from voicecloning.engine.convert import convert_checkpoint
    from voicecloning.engine.outliers import build_outlier_model

    coqui_dir = source.with_name(source.name + "-outliers")
    fast_dir = coqui_dir.with_name(coqui_dir.name + "-fast")
    if not (fast_dir / "model.safetensors").is_file() or not (coqui_dir / "model.pth").is_file():
        print(f"building the outlier fidelity checkpoint {fast_dir}", file=sys.stderr, flush=True)
        convert_checkpoint(build_outlier_model(source, coqui_dir), fast_dir)
    return fast_dir


def run_worker(module: str, *args: str) -> dict[str, Any]:
    """Run one worker process; its last stdout line is its JSON result."""
    print(f"running {module} {' '.join(args)}", file=sys.stderr, flush=True)
    proc = subprocess.run(
        _python(f"voicecloning.bench.{module}", *args),
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise BenchError(f"{module} failed with exit status {proc.returncode}")
    return dict(json.loads(lines[-1]))


def memory_shape_gib(peak_rss_mb: float) -> float:
    need = peak_rss_mb * MEMORY_HEADROOM / 1024
    return next(size for size in MEMORY_SHAPES_GIB if size >= need)


def cost_per_audio_hour(rtf: float, vcpus: int, memory_gib: float) -> float:
    """USD for the instance time one hour of audio takes (instance-based billing, one request at a time)."""
    return round(rtf * 3600 * (vcpus * VCPU_SECOND_USD + memory_gib * GIB_SECOND_USD), 4)


def costs(result: dict[str, Any], threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prefix in ("", "fp32_", "stock_"):
        peak = result.get(f"{prefix}peak_rss_mb")
        rtf = result.get(f"{prefix}rtf_long") or result.get(f"{prefix}rtf_single")
        if peak and rtf:
            shape = memory_shape_gib(peak)
            out[f"{prefix}cloud_run_memory_gib"] = shape
            out[f"{prefix}usd_per_audio_hour"] = cost_per_audio_hour(rtf, threads, shape)
    return out


def _ratio(stock: Any, engine: Any) -> float | None:
    return round(stock / engine, 2) if stock and engine else None


def speedups(result: dict[str, Any]) -> dict[str, Any]:
    """Stock's figure / the engine's, same run: for the engine (``speedup_*``) and the engine in fp32.

    Long form compares with stock's long form when it ran, else (``--quick``)
    with stock's one-sentence RTF: stock decodes segment by segment, so its
    long-form rate is its one-sentence rate (``speedup_long_basis`` says which).
    """
    basis = "stock_rtf_long" if result.get("stock_rtf_long") else "stock_rtf_single"
    out: dict[str, Any] = {"speedup_long_basis": basis}
    for prefix, name in (("", "speedup"), ("fp32_", "speedup_fp32")):
        out[f"{name}_single"] = _ratio(result.get("stock_rtf_single"), result.get(f"{prefix}rtf_single"))
        out[f"{name}_long"] = _ratio(result.get(basis), result.get(f"{prefix}rtf_long"))
        out[f"{name}_ready"] = _ratio(result.get("stock_ready_s"), result.get(f"{prefix}ready_s"))
        out[f"{name}_enroll"] = _ratio(result.get("stock_enroll_s"), result.get(f"{prefix}enroll_s"))
    return out


ROWS = (
    ("ready (s)", "ready_s"),
    ("peak RSS (MB)", "peak_rss_mb"),
    ("enroll 10 s clip, 1st call (s)", "enroll_s"),
    ("RTF one sentence, 200 tok", "rtf_single"),
    ("RTF long form, ragged >= 60 s", "rtf_long"),
    ("USD per audio hour", "usd_per_audio_hour"),
)


def table(result: dict[str, Any]) -> str:
    lines = [f"{'':30} {'engine (fast)':>14} {'engine fp32':>12} {'stock coqui':>12}"]
    for label, key in ROWS:
        cells = (result.get(key, "-"), result.get("fp32_" + key, "-"), result.get("stock_" + key, "-"))
        lines.append(f"{label:30} {cells[0]!s:>14} {cells[1]!s:>12} {cells[2]!s:>12}")
    lines.append(
        "stock / engine: single {speedup_single}x, long {speedup_long}x (vs {speedup_long_basis}), "
        "ready {speedup_ready}x; engine fp32: {speedup_fp32_single}x / {speedup_fp32_long}x / "
        "{speedup_fp32_ready}x".format_map({k: result.get(k, "-") for k in SPEEDUP_KEYS})
    )
    lines.append(
        f"fidelity: GPT latent cosine {result['gpt_latent_cosine']}, decoder SNR {result['decoder_snr_db']} dB"
    )
    return "\n".join(lines)


SPEEDUP_KEYS = (
    "speedup_single", "speedup_long", "speedup_long_basis", "speedup_ready",
    "speedup_fp32_single", "speedup_fp32_long", "speedup_fp32_ready",
)


def run_bench(
    model_dir: Path = DEFAULT_MODEL_DIR, *, quick: bool = False, threads: int | None = None
) -> dict[str, Any]:
    from voicecloning.engine.threads import available_cpus

    threads = threads or available_cpus()
    source, fast_dir = ensure_models(model_dir)
    common = ("--threads", str(threads))
    result: dict[str, Any] = {"threads": threads, "quick": quick, "model_dir": str(source)}
    result |= run_worker("engine_worker", "--model-dir", str(fast_dir), *common)
    result |= run_worker("engine_worker", "--model-dir", str(fast_dir), *common, "--precision", "fp32", "--prefix", "fp32_")
    result |= run_worker("stock_worker", "--model-dir", str(source), *common, *(("--skip-long",) if quick else ()))
    outliers = ensure_outlier_model(source)
    result |= run_worker("fidelity_worker", "--model-dir", str(fast_dir), "--outlier-dir", str(outliers), *common)
    result |= costs(result, threads)
    result |= speedups(result)
    return result


def main(model_dir: Path, quick: bool, threads: int | None) -> int:
    result = run_bench(model_dir, quick=quick, threads=threads)
    print(table(result))
    print(json.dumps(result))
    return 0
