"""The convert, bench and eval commands: arguments, errors, and a run on the tiny dev model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicecloning.bench.driver import cost_per_audio_hour, memory_shape_gib, table
from voicecloning.cli import main
from voicecloning.engine.precision import resolve_precision


def test_precision_auto_is_fast_on_cpu_and_fp16_on_cuda() -> None:
    """auto -> fast on CPU, fp16 on CUDA; fast on CUDA -> fp16; unknown names are refused."""
    assert resolve_precision("auto", "cpu") == "fast"
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision("fast", "cuda:0") == "fp16"
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("int4", "cpu")


def test_convert_refuses_a_folder_without_model_pth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """convert exits 2 and says why when SRC holds no model.pth."""
    assert main(["convert", str(tmp_path), str(tmp_path / "out")]) == 2
    assert "model.pth" in capsys.readouterr().err


def test_eval_requires_its_arguments() -> None:
    """eval without --model-dir/--clips is a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--clips", "x"])
    assert exc.value.code == 2


def test_eval_rejects_a_missing_clip_folder(
    dev_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """eval exits 2 when the clip folder is missing or holds no audio."""
    assert main(["eval", "--model-dir", str(dev_model_dir), "--clips", str(tmp_path / "none")]) == 2
    assert main(["eval", "--model-dir", str(dev_model_dir), "--clips", str(tmp_path)]) == 2
    assert "no audio clips" in capsys.readouterr().err


def test_eval_reports_similarity_for_both_precisions(
    converted_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the tiny dev model eval prints fp32 and fast speaker similarities and names its scorer."""
    from tests.support.clips import speech_clip

    speech_clip(tmp_path / "ref.wav", seconds=2.0)
    code = main(["eval", "--model-dir", str(converted_dir), "--clips", str(tmp_path), "--max-tokens", "4"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert result["scorer"] in ("resemblyzer", "xtts-speaker-encoder")
    assert result["clips"] == 1 and result["dev_model"] is True
    assert -1.0 <= result["fp32_similarity"] <= 1.0 and -1.0 <= result["fast_similarity"] <= 1.0


def test_bench_help_lists_its_options() -> None:
    """bench is registered with --quick, --model-dir and --threads."""
    out = subprocess.run(
        [sys.executable, "-m", "voicecloning", "bench", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--quick" in out and "--model-dir" in out and "--threads" in out


def test_cloud_run_cost_uses_the_smallest_shape_that_fits() -> None:
    """Memory is rounded up (with headroom) to a Cloud Run size; cost = RTF x 1 h x shape price."""
    assert memory_shape_gib(1500) == 2
    assert memory_shape_gib(4100) == 8
    assert cost_per_audio_hour(0.5, 2, 2) == round(0.5 * 3600 * (2 * 0.000018 + 2 * 0.000002), 4)


def test_bench_table_shows_both_columns() -> None:
    """The summary table has the engine's and stock's figures side by side."""
    text = table({"rtf_single": 0.6, "stock_rtf_single": 2.6, "gpt_latent_cosine": 0.999, "decoder_snr_db": 40.0})
    assert "0.6" in text and "2.6" in text and "40.0 dB" in text
