"""The int8 default on a checkpoint with outlier activation channels, as trained transformers have them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tests.engine.conftest import load
from voicecloning.engine.fidelity import compare_choices, projection_inputs, random_inputs
from voicecloning.engine.int8_choices import CHOICES
from voicecloning.engine.outliers import DEFAULT_FACTOR, build_outlier_model, outlier_channels
from voicecloning.engine.quantize import REDUCE_RANGE, Int8Linear, cpu_has_vnni

COSINE_GATE = 0.98  # the fidelity gate of docs/PERFORMANCE.md
PROJECTION_GATE_DB = 20.0


@pytest.fixture(scope="module")
def outlier_dir(dev_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with outlier LayerNorm channels, converted (SmoothQuant calibrated on it)."""
    from voicecloning.engine.convert import convert_checkpoint

    base = tmp_path_factory.mktemp("outliers")
    source = build_outlier_model(dev_model_dir, base / "xtts-tiny-outliers")
    return convert_checkpoint(source, base / "xtts-tiny-outliers-fast")


@pytest.fixture(scope="module")
def outlier_fp32(outlier_dir: Path) -> Any:
    """The reference: the outlier checkpoint's own fp32."""
    return load(outlier_dir, "fp32")


@pytest.fixture(scope="module")
def results(outlier_fp32: Any) -> dict[str, dict[str, float]]:
    return compare_choices(outlier_fp32, random_inputs(outlier_fp32, codes=60), CHOICES)


def test_the_checkpoint_feeds_outlier_channels_to_the_projections(outlier_fp32: Any) -> None:
    """The inputs of ``c_attn`` and ``c_fc`` have a few channels far larger than the median channel."""
    captured = projection_inputs(outlier_fp32, random_inputs(outlier_fp32, codes=20))
    channels = outlier_channels(outlier_fp32.args.gpt_n_model_channels)
    for name in ("h.0.attn.c_attn", "h.1.mlp.c_fc"):
        peak = torch.cat([x.reshape(-1, x.shape[-1]) for x, _ in captured[name]]).abs().amax(dim=0)
        assert float(peak[channels].min()) > DEFAULT_FACTOR / 4 * float(peak.median())


def test_a_wider_activation_range_is_never_worse(results: dict[str, dict[str, float]]) -> None:
    """8-bit activations beat 7-bit (on VNNI CPUs, where 8 bits cannot saturate); weight-only beats both."""
    order = ("dynamic_7bit", "dynamic_8bit", "weight_only") if cpu_has_vnni() else ("dynamic_7bit", "weight_only")
    cosines = [results[name]["latent_cosine"] for name in order]
    snrs = [results[name]["proj_snr_min_db"] for name in order]
    assert cosines == sorted(cosines)
    assert snrs == sorted(snrs)


def test_the_default_passes_the_gates_on_outlier_channels(results: dict[str, dict[str, float]]) -> None:
    """The ``fast`` default's projections stay above 20 dB and its latents above the 0.98 cosine gate."""
    default = results["dynamic_7bit" if REDUCE_RANGE else "dynamic_8bit"]
    assert default["proj_snr_min_db"] >= PROJECTION_GATE_DB
    assert default["latent_cosine"] >= COSINE_GATE


def test_the_fast_mode_uses_the_full_8_bit_range_where_the_cpu_has_vnni(fast_int8: Any) -> None:
    """Every int8 projection of a ``fast`` model quantizes activations to 7 bits only without VNNI."""
    layers = [m for m in fast_int8.gpt.gpt.modules() if isinstance(m, Int8Linear)]
    assert layers and all(layer.reduce_range is (not cpu_has_vnni()) for layer in layers)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [("fpu sse avx2 avx512f avx512_vnni", True), ("fpu avx2 avx_vnni", True), ("fpu sse avx2 fma", False), ("", False)],
)
def test_vnni_is_read_from_the_cpu_flags(flags: str, expected: bool) -> None:
    """VNNI (int8 products summed in 32 bits) is what makes the full 8-bit range safe."""
    assert cpu_has_vnni(f"processor\t: 0\nflags\t\t: {flags}\n") is expected


def test_smoothquant_brings_the_fast_mode_closer_to_fp32(outlier_dir: Path, outlier_fp32: Any, results: dict[str, dict[str, float]]) -> None:
    """The converted ``fast`` model (smoothed at convert) beats the same int8 kernel without smoothing."""
    from voicecloning.engine.fidelity import compare

    fast = load(outlier_dir, "fast")
    smoothed = compare(outlier_fp32, fast, random_inputs(outlier_fp32, codes=60))["gpt_latent_cosine"]
    unsmoothed = results["dynamic_7bit" if REDUCE_RANGE else "dynamic_8bit"]["latent_cosine"]
    assert smoothed >= COSINE_GATE
    assert smoothed > unsmoothed


def test_smoothing_folded_into_the_layernorms_leaves_fp32_unchanged(outlier_dir: Path, outlier_fp32: Any) -> None:
    """LayerNorm divided by s and the reader's rows multiplied by s compute the same latents, unquantized."""
    from safetensors.torch import load_file

    from voicecloning.engine.fastload import GPT2_PREFIX
    from voicecloning.engine.fidelity import gpt_latents
    from voicecloning.engine.smoothing import activation_peaks, smoothed_state

    inputs = random_inputs(outlier_fp32, codes=30)
    expected = gpt_latents(outlier_fp32, inputs)
    state = {f"gpt.{k}": v for k, v in outlier_fp32.gpt.state_dict().items()}
    changed = smoothed_state(state, activation_peaks(outlier_fp32), GPT2_PREFIX)
    smoothed = load(outlier_dir, "fp32")
    smoothed.load_state_dict(changed, strict=False)
    assert not torch.equal(smoothed.gpt.gpt.h[0].ln_1.weight, outlier_fp32.gpt.gpt.h[0].ln_1.weight)
    torch.testing.assert_close(gpt_latents(smoothed, inputs), expected, rtol=1e-4, atol=1e-4)
    stored = load_file(str(outlier_dir / "gpt-int8.safetensors"))
    assert f"{GPT2_PREFIX}h.0.ln_1.weight" in stored
