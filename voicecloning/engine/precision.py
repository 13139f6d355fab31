"""Precision modes: ``fp32`` (the exact reference), ``fast`` (CPU: int8 GPT blocks, bf16 HiFiGAN and cache), fp16/bf16.

``auto`` is ``fast`` on CPU and ``fp16`` on CUDA. On CUDA ``fast`` means
``fp16`` too (the int8 kernels are CPU kernels). Only the parts used per
request change precision; the conditioning encoder, perceiver and speaker
encoder (enrollment) stay fp32.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "fast", "fp16", "bf16")
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_precision(precision: str, device: str) -> str:
    """The concrete mode (fp32, fast, fp16 or bf16) for ``precision`` on ``device``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    cuda = device.startswith("cuda")
    if precision == "auto":
        return "fp16" if cuda else "fast"
    if precision == "fast" and cuda:
        return "fp16"
    return precision


class CastDecoder(nn.Module):
    """Runs a waveform decoder in ``dtype`` and hands back float32."""

    def __init__(self, inner: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = inner.to(dtype)
        self.dtype = dtype

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(x.to(self.dtype), g=None if g is None else g.to(self.dtype)).float()


class NullPositions:
    """XTTS disables GPT-2's position embeddings with zeros; these zeros come in the model's dtype."""

    def __init__(self, dim: int, dtype: torch.dtype) -> None:
        self.dim, self.dtype = dim, dtype

    def __call__(self, position_ids: torch.Tensor) -> torch.Tensor:
        shape = (position_ids.shape[0], position_ids.shape[1], self.dim)
        return torch.zeros(shape, dtype=self.dtype, device=position_ids.device)


def fold_weight_norm(module: nn.Module) -> None:
    """Bake weight-norm parametrizations into plain weights (no per-call ``g * v / |v|``)."""
    for sub in module.modules():
        if parametrize.is_parametrized(sub, "weight"):
            parametrize.remove_parametrizations(sub, "weight", leave_parametrized=True)


def fuse_gelu(gpt2: nn.Module) -> None:
    """GPT-2's ``gelu_new`` (five Python-level ops) -> the one fused tanh-GELU kernel (same formula).

    ``gelu_new`` is ``gpt2.TanhGelu`` in the converted form's skeleton and
    transformers' ``NewGELUActivation`` in coqui's model; that one is matched
    by its class name, so transformers is never imported here.
    """
    from voicecloning.engine.gpt2 import TanhGelu

    for block in gpt2.h:
        act = block.mlp.act
        if isinstance(act, TanhGelu) or type(act).__name__ == "NewGELUActivation":
            block.mlp.act = nn.GELU(approximate="tanh")


def cpu_has_fast_bf16() -> bool:
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def cpu_decoder(generator: nn.Module, bf16: bool) -> nn.Module:
    """The folded HiFiGAN as channels-last 2-D convolutions (``vocoder``), in bf16 if ``bf16``."""
    from voicecloning.engine.vocoder import ChannelsLastGenerator

    if not bf16:
        log.info("this CPU has no native bf16: the HiFiGAN decoder stays fp32")
    return ChannelsLastGenerator(generator, torch.bfloat16 if bf16 else torch.float32)


def gpt_request_modules(gpt: Any) -> list[nn.Module]:
    """The GPT parts used per request (not the enrollment-only conditioning encoder/perceiver)."""
    return [
        gpt.gpt,
        gpt.text_embedding,
        gpt.mel_embedding,
        gpt.text_pos_embedding,
        gpt.mel_pos_embedding,
        gpt.final_norm,
        gpt.mel_head,
        gpt.text_head,
    ]


def is_int8(model: Any) -> bool:
    from voicecloning.engine.quantize import Int8Linear

    return any(isinstance(m, Int8Linear) for m in model.gpt.gpt.modules())


def apply_precision(model: Any, mode: str) -> Any:
    """Put ``model`` (fp32, possibly with int8 GPT blocks already installed) in ``mode``."""
    decoder = model.hifigan_decoder
    if mode == "fast":
        if not is_int8(model):
            from voicecloning.engine.quantize import quantize_gpt2

            quantize_gpt2(model.gpt.gpt)
        fuse_gelu(model.gpt.gpt)
        fold_weight_norm(decoder.waveform_decoder)
        bf16 = cpu_has_fast_bf16()
        decoder.waveform_decoder = cpu_decoder(decoder.waveform_decoder, bf16)
        if bf16:
            model.gpt.cache_dtype = torch.bfloat16  # the key/value cache and attention (kvdecode)
    elif mode in DTYPES:
        for module in gpt_request_modules(model.gpt):
            module.to(DTYPES[mode])
        model.gpt.gpt.wpe = NullPositions(model.gpt.model_dim, DTYPES[mode])  # zeros would promote to fp32
        fold_weight_norm(decoder.waveform_decoder)
        decoder.waveform_decoder = CastDecoder(decoder.waveform_decoder, DTYPES[mode])
    model.voicecloning_precision = mode
    return model
