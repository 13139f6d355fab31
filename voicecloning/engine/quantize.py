"""int8 weights for the GPT-2 stack: GPT-2 ``Conv1D`` -> int8 linear with dynamic activation quantization.

torch's ``quantize_dynamic`` only replaces ``nn.Linear``; GPT-2 uses
transformers' ``Conv1D`` (``y = x @ W + b`` with ``W`` stored [in, out]), so
it is left in fp32 and nothing gets faster. Here each ``Conv1D`` of the
transformer blocks becomes an :class:`Int8Linear`: weights quantized per
output channel (symmetric int8), activations quantized per call by fbgemm's
``quantized::linear_dynamic`` — the same kernel ``quantize_dynamic`` uses,
without the deprecated ``torch.ao`` module wrappers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import nn

PROJECTIONS = ("c_attn", "c_proj", "c_fc")
QUANT_MAX = 127.5  # symmetric qint8 range, as torch's per-channel symmetric observer


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values [out, in], float32 scales [out]) of an [out, in] weight, per output channel."""
    weight = weight.detach().float()
    scales = (weight.abs().amax(dim=1) / QUANT_MAX).clamp(min=1e-8)
    values = torch.clamp(torch.round(weight / scales[:, None]), -128, 127).to(torch.int8)
    return values, scales


class Int8Linear(nn.Module):
    """``y = x @ W.T + b`` with int8 ``W`` packed for fbgemm and activations quantized on the fly."""

    def __init__(self, values: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.out_features, self.in_features = values.shape
        zero_points = torch.zeros(values.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantized tensors are deprecated in favour of torchao; see PERFORMANCE.md
            warnings.simplefilter("ignore", UserWarning)
            qweight = torch._make_per_channel_quantized_tensor(values, scales.double(), zero_points, 0)
        bias = None if bias is None else bias.detach().float().contiguous()
        self._packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.ops.quantized.linear_dynamic(x.float(), self._packed, True)  # reduce_range: safe on non-VNNI CPUs
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def block_projections(gpt2: nn.Module) -> Iterator[tuple[str, nn.Module, str]]:
    """(state-dict name relative to ``gpt2``, parent module, attribute) of every block projection."""
    for index, block in enumerate(gpt2.h):
        for parent_name, parent, attrs in (
            ("attn", block.attn, ("c_attn", "c_proj")),
            ("mlp", block.mlp, ("c_fc", "c_proj")),
        ):
            for attr in attrs:
                yield f"h.{index}.{parent_name}.{attr}", parent, attr


def linear_weight(module: nn.Module) -> torch.Tensor:
    """A projection's weight as [out, in] (GPT-2 ``Conv1D`` stores it transposed)."""
    if isinstance(module, nn.Linear):
        return module.weight
    return module.weight.t()


def quantize_gpt2(gpt2: nn.Module) -> None:
    """Replace, in place, every block projection of an fp32 GPT-2 stack by an :class:`Int8Linear`."""
    for _, parent, attr in block_projections(gpt2):
        module = getattr(parent, attr)
        values, scales = quantize_weight(linear_weight(module))
        setattr(parent, attr, Int8Linear(values, scales, module.bias))


def install_int8(gpt2: nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Replace block projections by :class:`Int8Linear` built from pre-quantized ``tensors``.

    ``tensors`` holds ``{prefix}{name}.int8``, ``.scale`` and ``.bias`` per projection
    (as written by :func:`int8_state`); the fp32 weights are never read.
    """
    targets = list(block_projections(gpt2))

    def build(name: str) -> Int8Linear:
        key = f"{prefix}{name}"
        return Int8Linear(tensors[f"{key}.int8"], tensors[f"{key}.scale"], tensors[f"{key}.bias"])

    # fbgemm's packing runs outside the GIL and on one core: pack on every core the process may use
    with ThreadPoolExecutor(max_workers=torch.get_num_threads()) as pool:
        modules = list(pool.map(build, [name for name, _, _ in targets]))
    for (_, parent, attr), module in zip(targets, modules, strict=True):
        setattr(parent, attr, module)


def quantize_state(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Pre-quantized block projections (``.int8``, ``.scale``, ``.bias``) from an fp32 state dict.

    The checkpoint stores GPT-2 ``Conv1D`` weights as [in, out]; they are quantized as [out, in].
    """
    out: dict[str, torch.Tensor] = {}
    for key, weight in state.items():
        base = key.removesuffix(".weight")
        if not (key.startswith(prefix + "h.") and key.endswith(".weight") and base.split(".")[-1] in PROJECTIONS):
            continue
        values, scales = quantize_weight(weight.t())
        out[f"{base}.int8"], out[f"{base}.scale"] = values.contiguous(), scales.contiguous()
        out[f"{base}.bias"] = state[f"{base}.bias"].detach().float().contiguous()
    return out
