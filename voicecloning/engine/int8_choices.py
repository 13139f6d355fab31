"""The candidates for the GPT block projections on CPU, compared on the same inputs (``fidelity``).

- ``dynamic_7bit``: int8 weights per output channel, activations quantized per
  call with one scale per tensor and a 7-bit range (fbgemm ``reduce_range``):
  the default before VNNI was checked for;
- ``dynamic_8bit``: the same with the full 8-bit range: the ``fast`` default
  where the CPU has VNNI (``quantize.REDUCE_RANGE``);
- ``weight_only``: int8 weights per output channel, activations in bf16
  (``torch._weight_int8pack_mm``): no activation quantization at all;
- ``bf16``: bf16 weights and activations.

Each is built from an fp32 projection (``nn.Linear`` or GPT-2 ``Conv1D``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from voicecloning.engine.quantize import Int8Linear, linear_weight, quantize_weight


class WeightOnlyInt8(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        values, scales = quantize_weight(linear_weight(module))
        self.values, self.scales = values.contiguous(), scales.to(torch.bfloat16)
        self.bias = module.bias.detach().float().clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        out = torch._weight_int8pack_mm(flat, self.values, self.scales).float() + self.bias
        return out.reshape(*x.shape[:-1], -1)


class Bf16Linear(nn.Module):
    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.weight = linear_weight(module).detach().to(torch.bfloat16).contiguous()
        self.bias = module.bias.detach().to(torch.bfloat16).clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x.to(torch.bfloat16), self.weight, self.bias).float()


def dynamic(reduce_range: bool) -> Callable[[nn.Module], nn.Module]:
    def build(module: nn.Module) -> nn.Module:
        layer = Int8Linear.from_module(module)
        layer.reduce_range = reduce_range
        return layer

    return build


CHOICES: dict[str, Callable[[nn.Module], nn.Module]] = {
    "dynamic_7bit": dynamic(True),
    "dynamic_8bit": dynamic(False),
    "weight_only": WeightOnlyInt8,
    "bf16": Bf16Linear,
}
