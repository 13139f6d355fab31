"""A fidelity checkpoint with outlier activation channels, as trained transformers have them.

Random Gaussian weights give every channel of a layer's input the same
scale, so quantizing activations with one scale per tensor loses almost
nothing on them (cosine 0.9999): a best case, not evidence for the real
model. Trained transformers, GPT-2 among them, have a few fixed channels
whose LayerNorm outputs are one to two orders of magnitude larger than the
rest, because the LayerNorm gain of those channels is large (Kovaleva et
al. 2021, "BERT busters"; Wei et al. 2022, "Outlier suppression"; Dettmers
et al. 2022, "LLM.int8()"). A per-tensor int8 scale is then set by the
outliers, and every other channel is left a few levels.

The construction: in every GPT-2 block, the LayerNorm gain and bias of a few
channels (the same channels in every block, as in trained models) are
multiplied by ``factor``; the weights that read them (``attn.c_attn`` after
``ln_1``, ``mlp.c_fc`` after ``ln_2``) are left as they are, as in trained
models (large gains, ordinary weights). The activations entering those int8
matmuls then have outlier channels ``factor`` times the rest. It is another
function than the plain checkpoint's, so its own fp32 is the reference.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

DEFAULT_CHANNELS = 4
DEFAULT_FACTOR = 40.0
BLOCKS = "gpt.gpt.h."
NORMS = ("ln_1", "ln_2")


def outlier_channels(width: int, count: int = DEFAULT_CHANNELS, seed: int = 0) -> list[int]:
    """``count`` fixed channel indices of a ``width``-wide residual stream (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(width, generator=gen)[:count].tolist())


def with_outliers(
    state: dict[str, torch.Tensor], *, count: int = DEFAULT_CHANNELS, factor: float = DEFAULT_FACTOR
) -> dict[str, torch.Tensor]:
    """A copy of a coqui XTTS state dict whose LayerNorms feed outlier channels to the block projections."""
    out = dict(state)
    blocks = sorted({int(key[len(BLOCKS) :].split(".")[0]) for key in state if key.startswith(BLOCKS)})
    width = state[f"{BLOCKS}{blocks[0]}.ln_1.weight"].shape[0]
    channels = outlier_channels(width, count)
    for index in blocks:
        for norm in NORMS:
            for name in ("weight", "bias"):
                key = f"{BLOCKS}{index}.{norm}.{name}"
                tensor = state[key].clone()
                tensor[channels] *= factor
                out[key] = tensor
    return out


def build_outlier_model(src: Path, dst: Path, *, count: int = DEFAULT_CHANNELS, factor: float = DEFAULT_FACTOR) -> Path:
    """Copy the coqui-format folder ``src`` to ``dst`` with :func:`with_outliers` applied to ``model.pth``."""
    if src.resolve() == dst.resolve():
        raise ValueError("SRC and DST must differ")
    dst.mkdir(parents=True, exist_ok=True)
    checkpoint = torch.load(src / "model.pth", map_location="cpu", weights_only=True)
    state = checkpoint.get("model", checkpoint)
    changed = with_outliers(state, count=count, factor=factor)
    torch.save({"model": changed} if "model" in checkpoint else changed, dst / "model.pth")
    for item in src.iterdir():
        if item.name != "model.pth" and item.is_file():
            shutil.copyfile(item, dst / item.name)
    return dst
