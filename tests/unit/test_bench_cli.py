"""``bench --fanout`` and the benchmark's honest workload and ratios, without running a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from voicecloning.bench import workload as w
from voicecloning.bench.driver import speedups, table
from voicecloning.cli import main


def test_bench_fanout_runs_the_fanout_bench_then_the_simulation_on_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The fan-out bench's lines land in --fanout-out, and the simulation reads that file as --measured."""
    from voicecloning.bench import fanout, simulate

    calls: dict[str, Any] = {}

    def fake_fanout(argv: list[str]) -> int:
        calls["fanout"] = argv
        print('{"workers": 1, "render_s_per_audio_s": 0.5}')
        return 0

    def fake_simulate(argv: list[str]) -> int:
        calls["simulate"] = argv
        calls["measured_text"] = Path(argv[1]).read_text()
        return 0

    monkeypatch.setattr(fanout, "main", fake_fanout)
    monkeypatch.setattr(simulate, "main", fake_simulate)
    out = tmp_path / "fan.jsonl"
    code = main(["bench", "--fanout", "--fanout-out", str(out), "--model-dir", str(tmp_path / "m")])
    assert code == 0
    assert calls["fanout"] == ["--model-dir", str(tmp_path / "m")]
    assert calls["simulate"] == ["--measured", str(out)]
    assert calls["measured_text"] == '{"workers": 1, "render_s_per_audio_s": 0.5}\n'
    assert '"workers": 1' in capsys.readouterr().out


def test_long_form_is_ragged_real_sentences_of_at_least_a_minute() -> None:
    """Long form: pool sentences in a fixed-seed order, token counts following their lengths, >= 60 s."""
    assert w.long_form() == (w.LONG_SEGMENTS, w.LONG_TOKENS)  # deterministic
    assert set(w.LONG_SEGMENTS) <= set(w.SENTENCE_POOL)
    assert sum(w.LONG_TOKENS) / w.TOKENS_PER_SECOND >= w.LONG_MIN_AUDIO_S
    assert len(set(w.LONG_TOKENS)) == len(w.LONG_TOKENS)  # no two rows of equal length
    assert all(n == w.tokens_for(text) for text, n in zip(w.LONG_SEGMENTS, w.LONG_TOKENS, strict=True))
    assert all(len(text) <= 250 for text in w.SENTENCE_POOL)  # XTTS's English character limit


def test_speedups_compare_stock_with_the_engine_in_the_same_run() -> None:
    """Each ratio is stock's figure over the engine's; long form falls back to stock's one-sentence RTF."""
    result = {"rtf_single": 0.5, "rtf_long": 0.25, "ready_s": 4.0, "enroll_s": 0.5,
              "fp32_rtf_single": 1.0, "fp32_rtf_long": 1.0, "fp32_ready_s": 8.0, "fp32_enroll_s": 0.5,
              "stock_rtf_single": 3.0, "stock_ready_s": 20.0, "stock_enroll_s": 1.0}
    out = speedups(result)
    assert (out["speedup_single"], out["speedup_long"], out["speedup_ready"]) == (6.0, 12.0, 5.0)
    assert out["speedup_long_basis"] == "stock_rtf_single"
    assert (out["speedup_fp32_single"], out["speedup_fp32_long"], out["speedup_fp32_ready"]) == (3.0, 3.0, 2.5)
    assert speedups({**result, "stock_rtf_long": 2.0})["speedup_long"] == 8.0


def test_bench_table_has_an_engine_fp32_column() -> None:
    """The summary puts engine (fast), engine fp32 and stock side by side, with the ratios."""
    result = {"rtf_single": 0.6, "fp32_rtf_single": 1.4, "stock_rtf_single": 2.6, "speedup_single": 4.33,
              "gpt_latent_cosine": 0.999, "decoder_snr_db": 40.0}
    text = table(result)
    assert "engine fp32" in text and "1.4" in text and "4.33x" in text
