"""Build XTTS without random initialisation and load its weights by assignment from a memory map.

coqui's ``Xtts(config)`` + ``load_checkpoint`` initialises every weight at
random (twice: ``__init__`` and ``init_models``), then reads the whole
checkpoint into memory and copies it over: 12-20 s and two copies of the
weights. Here the modules are built with initialisation disabled (their
tensors are allocated but never touched, so they cost no resident memory)
and ``load_state_dict(assign=True)`` swaps in tensors that point into the
memory-mapped safetensors file: pages are read when first used, and only
the weights that are used are ever read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

WEIGHTS = "model.safetensors"
INT8_WEIGHTS = "gpt-int8.safetensors"
GPT2_PREFIX = "gpt.gpt."


# Modules that bind torch's init functions under their own names (``from torch.nn.init import ...``).
INIT_USERS = ("torch.nn.modules.activation", "torch.nn.modules.transformer")


@contextmanager
def no_random_init() -> Iterator[None]:
    """Module constructors allocate their tensors but skip every ``torch.nn.init`` call.

    As transformers' ``no_init_weights``: the init functions are swapped for
    no-ops while the modules are built. Buffers (windows, filter banks) are
    still computed: the state dict does not carry the non-persistent ones.
    """
    import sys

    def skip(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return tensor

    namespaces = [torch.nn.init, *(sys.modules[name] for name in INIT_USERS if name in sys.modules)]
    saved = [
        (namespace, name, getattr(namespace, name))
        for namespace in namespaces
        for name in dir(torch.nn.init)
        if name.endswith("_") and not name.startswith("_") and callable(getattr(namespace, name, None))
    ]
    try:
        for namespace, name, _ in saved:
            setattr(namespace, name, skip)
        yield
    finally:
        for namespace, name, function in saved:
            setattr(namespace, name, function)


def build_skeleton(model_dir: Path, xtts_config: Any) -> Any:
    """An ``XttsSkeleton`` with the checkpoint's architecture and tokenizer, weights uninitialised.

    The vocabulary sets the text token count and the [START]/[STOP] ids before
    anything is built, as coqui's ``load_checkpoint`` does (it then builds
    every module a second time); the modules are built once.
    """
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    from voicecloning.engine.skeleton import build_xtts

    tokenizer = VoiceBpeTokenizer(vocab_file=str(model_dir / "vocab.json"))
    with no_random_init():
        return build_xtts(xtts_config.model_args, tokenizer)


def read_tensors(path: Path, skip: Any = None) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (memory-mapped); names for which ``skip(name)`` is true are left out."""
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys() if not (skip and skip(name))}  # noqa: SIM118 -- safe_open is not iterable


def is_block_projection(name: str) -> bool:
    """True for the fp32 weights and biases that the int8 file replaces."""
    from voicecloning.engine.quantize import PROJECTIONS

    parts = name.split(".")
    return name.startswith(GPT2_PREFIX + "h.") and parts[-2] in PROJECTIONS


def load_fast(model_dir: Path, xtts_config: Any, *, int8: bool) -> Any:
    """An eval-mode ``Xtts`` loaded from a converted folder; with ``int8``, its GPT blocks pre-quantized."""
    from voicecloning.engine.quantize import install_modules, pack_int8  # noqa: PLC0415 -- torch.ao only when asked
    from voicecloning.engine.smoothing import is_norm_override

    # pack the int8 blocks (fbgemm, outside the GIL) while this thread imports coqui and builds the skeleton
    norms: dict[str, torch.Tensor] = {}
    packing = None
    if int8:
        tensors = read_tensors(model_dir / INT8_WEIGHTS)
        # copies: a view would keep the whole int8 file mapped (and resident) for the process's life
        norms = {name: tensors.pop(name).clone() for name in [n for n in tensors if is_norm_override(n)]}
        packing = pack_int8(tensors, GPT2_PREFIX)
    model = build_skeleton(model_dir, xtts_config)
    if packing is not None:
        install_modules(model.gpt.gpt, packing.result())
    state = read_tensors(model_dir / WEIGHTS, skip=is_block_projection if int8 else None)
    state.update(norms)  # SmoothQuant's LayerNorm values belong to the int8 weights (engine.smoothing)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or missing:
        raise RuntimeError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return model


def has_int8(model_dir: Path) -> bool:
    return (model_dir / INT8_WEIGHTS).is_file()
