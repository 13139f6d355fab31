"""Does the fast path compute the same function as fp32? Measured on the same inputs.

Weights may be random (the dev models), so "sounds right" cannot be judged;
instead both precisions get identical inputs: teacher-forced GPT latents
are compared by cosine similarity, and the HiFiGAN decoder's output from the
same (fp32) latents by signal-to-noise ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from voicecloning.engine.batching import teacher_forced_latents


@dataclass(frozen=True)
class FidelityInputs:
    cond: torch.Tensor  # [1, 32, D]
    speaker: torch.Tensor  # [1, 512, 1]
    tokens: list[int]
    codes: list[int]


def random_inputs(model: Any, *, codes: int = 200, seed: int = 0, text_tokens: int = 60) -> FidelityInputs:
    """Seeded conditioning latents, text tokens and audio codes of the model's shapes."""
    gen = torch.Generator().manual_seed(seed)
    dim = model.args.gpt_n_model_channels
    return FidelityInputs(
        cond=torch.randn(1, 32, dim, generator=gen) * 0.5,
        speaker=torch.randn(1, model.args.d_vector_dim, 1, generator=gen),
        tokens=torch.randint(20, 200, (text_tokens,), generator=gen).tolist(),
        codes=torch.randint(0, model.gpt.start_audio_token, (codes,), generator=gen).tolist(),
    )


def latent_cosine(reference: torch.Tensor, test: torch.Tensor) -> float:
    """Mean over frames of the cosine similarity of two [1, N, D] latent sequences."""
    return float(torch.nn.functional.cosine_similarity(reference.float(), test.float(), dim=-1).mean())


def snr_db(reference: torch.Tensor, test: torch.Tensor) -> float:
    """10 log10(|ref|^2 / |ref - test|^2) over the whole signal."""
    noise = float(((reference.float() - test.float()) ** 2).sum())
    signal = float((reference.float() ** 2).sum())
    return math.inf if noise == 0 else 10.0 * math.log10(signal / noise)


@torch.inference_mode()
def gpt_latents(model: Any, inputs: FidelityInputs) -> torch.Tensor:
    return teacher_forced_latents(model.gpt, inputs.cond, [inputs.tokens], [inputs.codes])[0]


@torch.inference_mode()
def decoder_audio(model: Any, latents: torch.Tensor, speaker: torch.Tensor) -> torch.Tensor:
    return model.hifigan_decoder(latents, g=speaker).float().reshape(-1)


def compare(reference: Any, fast: Any, inputs: FidelityInputs) -> dict[str, float]:
    """``gpt_latent_cosine`` and ``decoder_snr_db`` of ``fast`` against ``reference`` on ``inputs``."""
    ref_latents = gpt_latents(reference, inputs)
    cosine = latent_cosine(ref_latents, gpt_latents(fast, inputs))
    snr = snr_db(
        decoder_audio(reference, ref_latents, inputs.speaker), decoder_audio(fast, ref_latents, inputs.speaker)
    )
    return {"gpt_latent_cosine": round(cosine, 5), "decoder_snr_db": round(snr, 2)}


@torch.inference_mode()
def projection_inputs(model: Any, inputs: FidelityInputs) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """(input, fp32 output) of every GPT-2 block projection during ``model``'s teacher-forced pass."""
    from voicecloning.engine.quantize import block_projections

    captured: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    hooks = []
    for name, parent, attr in block_projections(model.gpt.gpt):

        def keep(_: Any, args: Any, out: torch.Tensor, name: str = name) -> None:
            captured.setdefault(name, []).append((args[0].detach().clone(), out.detach().clone()))

        hooks.append(getattr(parent, attr).register_forward_hook(keep))
    try:
        gpt_latents(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


@torch.inference_mode()
def compare_choices(reference: Any, inputs: FidelityInputs, choices: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per choice: min and median SNR (dB) of each block projection's output on its captured fp32 input, and the
    teacher-forced latent cosine with every projection replaced. ``reference`` (fp32) is restored afterwards."""
    from voicecloning.engine.quantize import block_projections

    captured = projection_inputs(reference, inputs)
    ref_latents = gpt_latents(reference, inputs)
    targets = list(block_projections(reference.gpt.gpt))
    originals = {name: getattr(parent, attr) for name, parent, attr in targets}
    results = {}
    for label, build in choices.items():
        built = {name: build(module) for name, module in originals.items()}
        snrs = sorted(snr_db(out, built[name](x)) for name, pairs in captured.items() for x, out in pairs)
        try:
            for name, parent, attr in targets:
                setattr(parent, attr, built[name])
            cosine = latent_cosine(ref_latents, gpt_latents(reference, inputs))
        finally:
            for name, parent, attr in targets:
                setattr(parent, attr, originals[name])
        results[label] = {
            "proj_snr_min_db": round(snrs[0], 2),
            "proj_snr_median_db": round(snrs[len(snrs) // 2], 2),
            "latent_cosine": round(cosine, 5),
        }
    return results
