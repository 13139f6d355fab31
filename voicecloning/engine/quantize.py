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
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch import nn

PROJECTIONS = ("c_attn", "c_proj", "c_fc")

# quantized tensors are deprecated in favour of torchao (see PERFORMANCE.md). A process-wide filter for
# that one message: ``warnings.catch_warnings`` is not thread-safe and the weights are packed on threads.
warnings.filterwarnings(
    "ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel", category=UserWarning
)
QUANT_MAX = 127.5  # symmetric qint8 range, as torch's per-channel symmetric observer
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """True when the CPU multiplies int8 with int32 accumulation (VNNI): no 16-bit intermediate to overflow."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}
    return any(flag in flags for flag in VNNI_FLAGS)


# fbgemm's reduce_range quantizes activations to 7 bits so that the 16-bit intermediate sums of
# AVX2/AVX-512 int8 dot products (vpmaddubsw) cannot saturate. VNNI (vpdpbusd) accumulates in 32 bits,
# so there the full 8-bit range is safe: half the activation rounding error, and faster here.
REDUCE_RANGE = not cpu_has_vnni()


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
        qweight = torch._make_per_channel_quantized_tensor(values, scales.double(), zero_points, 0)
        # A private copy of the bias: fbgemm keeps the bias tensor it is given, and a view into the
        # memory-mapped int8 file would keep the whole file mapped, with every page that packing read
        # resident (~380 MB for the full model) beside the packed weights.
        bias = None if bias is None else bias.detach().to(torch.float32, copy=True).contiguous()
        self._packed = torch.ops.quantized.linear_prepack(qweight, bias)
        self.reduce_range = REDUCE_RANGE

    @classmethod
    def from_module(cls, module: nn.Module) -> Int8Linear:
        """The int8 form of an fp32 projection (``nn.Linear`` or GPT-2 ``Conv1D``)."""
        values, scales = quantize_weight(linear_weight(module))
        return cls(values, scales, module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.ops.quantized.linear_dynamic(x.float(), self._packed, self.reduce_range)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them otherwise: ~100 MB after a fast load).

    No ``gc.collect()``: measured after a full load it frees nothing more
    (the tensors go by reference counting) and costs ~0.2 s of start-up.
    A no-op where there is no glibc.
    """
    import contextlib
    import ctypes
    import ctypes.util

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


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
        setattr(parent, attr, Int8Linear.from_module(getattr(parent, attr)))


def pack_int8(
    tensors: dict[str, torch.Tensor], prefix: str, workers: int | None = None
) -> Future[dict[str, Int8Linear]]:
    """Start packing every pre-quantized projection in ``tensors`` on background threads.

    ``tensors`` holds ``{prefix}{name}.int8``, ``.scale`` and ``.bias`` per projection
    (as written by :func:`int8_state`); the result maps each ``name`` (relative to
    the GPT-2 stack) to its :class:`Int8Linear`. fbgemm's packing runs outside the
    GIL, so it overlaps with whatever the caller does meanwhile (importing and
    building the rest of the model). The tensors are released as they are
    packed, so the memory map of their file goes once the last one is done.
    """
    names = [key[len(prefix) : -len(".int8")] for key in tensors if key.endswith(".int8")]

    def build(name: str) -> Int8Linear:
        key = f"{prefix}{name}"
        return Int8Linear(tensors.pop(f"{key}.int8"), tensors.pop(f"{key}.scale"), tensors.pop(f"{key}.bias"))

    def build_all() -> dict[str, Int8Linear]:
        # fbgemm's packing of one weight runs on one core: pack on every core the process may use
        with ThreadPoolExecutor(max_workers=workers or torch.get_num_threads()) as pool:
            modules = dict(zip(names, pool.map(build, names), strict=True))
        tensors.clear()
        return modules

    runner = ThreadPoolExecutor(max_workers=1)
    future = runner.submit(build_all)
    runner.shutdown(wait=False)
    return future


def install_modules(gpt2: nn.Module, modules: dict[str, Int8Linear]) -> None:
    """Put packed projections (names relative to ``gpt2``) in place of the block projections."""
    targets = list(block_projections(gpt2))
    missing = [name for name, _, _ in targets if name not in modules]
    if missing:
        raise RuntimeError(f"int8 weights are missing for {missing[:5]}")
    for name, parent, attr in targets:
        setattr(parent, attr, modules[name])


def install_int8(gpt2: nn.Module, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Replace block projections by :class:`Int8Linear` built from pre-quantized ``tensors``; fp32 weights never read."""
    install_modules(gpt2, pack_int8(tensors, prefix).result())


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
