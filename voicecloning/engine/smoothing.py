"""SmoothQuant at convert time: outlier activation channels moved into the int8 weights.

The ``fast`` mode quantizes each projection's activations with one scale per
tensor. A few input channels that are much larger than the rest (trained
transformers have them after LayerNorm; see ``outliers``) set that scale and
leave every other channel a few levels. SmoothQuant (Xiao et al. 2022)
divides input channel j by s_j and multiplies the weight's row j by s_j: the
product is unchanged in exact arithmetic, and with s_j = max|X_j|^a /
max|W_j|^(1-a) (a = 0.5) the activations' range is evened out at the cost of
a slightly wider weight range (weights are quantized per output channel, so
they absorb it well).

For ``attn.c_attn`` (reads ``ln_1``) and ``mlp.c_fc`` (reads ``ln_2``) the
division folds into the LayerNorm's gain and bias, so it costs nothing at
run time. ``attn.c_proj`` and ``mlp.c_proj`` are not smoothed (their inputs
come from attention and GELU; SmoothQuant leaves OPT's FC2 alone likewise).

max|X_j| is calibrated on the fp32 model, once, when a checkpoint is
converted: teacher-forced passes over a few seeded prompts (conditioning
latents, text tokens and audio codes of the model's shapes; the outlier
channels of trained models are fixed channels, so any input shows them).
The smoothed LayerNorm values go into the int8 file beside the int8
weights; ``model.safetensors`` stays the exact fp32 reference.
"""

from __future__ import annotations

from typing import Any

import torch

ALPHA = 0.5  # SmoothQuant's default migration strength
SEEDS = (0, 1, 2)
CALIBRATION_CODES = 120
READERS = (("ln_1", "attn.c_attn"), ("ln_2", "mlp.c_fc"))
FLOOR = 1e-5


@torch.inference_mode()
def activation_peaks(model: Any) -> dict[str, torch.Tensor]:
    """Per block reader (``h.{i}.attn.c_attn``...): the max |input| of each input channel over the calibration passes."""
    from voicecloning.engine.fidelity import gpt_latents, random_inputs

    peaks: dict[str, torch.Tensor] = {}
    hooks = []
    for index, block in enumerate(model.gpt.gpt.h):
        for _, reader in READERS:
            name = f"h.{index}.{reader}"
            parent, attr = reader.split(".")

            def record(_: Any, args: Any, name: str = name) -> None:
                peak = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(dim=0).float()
                peaks[name] = torch.maximum(peaks[name], peak) if name in peaks else peak

            hooks.append(getattr(getattr(block, parent), attr).register_forward_pre_hook(record))
    try:
        for seed in SEEDS:
            gpt_latents(model, random_inputs(model, codes=CALIBRATION_CODES, seed=seed))
    finally:
        for hook in hooks:
            hook.remove()
    return peaks


def smoothing_scales(activation_peak: torch.Tensor, weight: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """s_j = max|X_j|^alpha / max|W_j|^(1-alpha) for a GPT-2 ``Conv1D`` weight [in, out] (row j = input j)."""
    weight_peak = weight.detach().abs().amax(dim=1).float().clamp(min=FLOOR)
    return (activation_peak.clamp(min=FLOOR) ** alpha / weight_peak ** (1 - alpha)).clamp(min=FLOOR)


def smoothed_state(state: dict[str, torch.Tensor], peaks: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The LayerNorm gains/biases and reader weights (``prefix``-named, fp32) with the smoothing folded in."""
    out: dict[str, torch.Tensor] = {}
    for name, peak in peaks.items():
        index, reader = name.split(".", 2)[1], name.split(".", 2)[2]
        norm = next(n for n, r in READERS if r == reader)
        weight = state[f"{prefix}{name}.weight"].float()
        scales = smoothing_scales(peak, weight)
        out[f"{prefix}{name}.weight"] = (weight * scales[:, None]).contiguous()
        for param in ("weight", "bias"):
            key = f"{prefix}h.{index}.{norm}.{param}"
            out[key] = (state[key].float() / scales).contiguous()
    return out


def is_norm_override(name: str) -> bool:
    """True for the smoothed LayerNorm values stored in the int8 file."""
    return ".ln_1." in name or ".ln_2." in name
