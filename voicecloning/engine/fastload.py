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


@contextmanager
def no_random_init() -> Iterator[None]:
    """Module constructors allocate their tensors but skip every ``torch.nn.init`` call."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        yield


def build_skeleton(model_dir: Path, xtts_config: Any) -> Any:
    """An ``Xtts`` with the checkpoint's architecture and tokenizer, weights uninitialised."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    with no_random_init():
        model = Xtts(xtts_config)  # builds its modules from the config's text token count
        model.tokenizer = VoiceBpeTokenizer(vocab_file=str(model_dir / "vocab.json"))
        if not adopt_text_tokens(model):
            model.init_models()  # sizes differ: rebuild from the vocabulary, as coqui's load_checkpoint does
    return model


def adopt_text_tokens(model: Any) -> bool:
    """Give the already built modules the vocabulary's start/stop text ids, if the sizes already match.

    coqui's ``init_models`` with the real tokenizer sets three values from
    the vocabulary and builds every module a second time (~0.3-0.5 s; the
    weight-norm setup even reads the uninitialised HiFiGAN weights). Only
    the text token count sizes anything (the embedding and head); the start
    and stop ids are plain attributes of the GPT. Returns False (nothing
    changed) when the count differs and a rebuild is needed.
    """
    vocab = model.tokenizer.tokenizer
    if vocab is None or model.gpt is None or model.args.gpt_number_text_tokens != model.tokenizer.get_number_tokens():
        return False
    start, stop = vocab.token_to_id("[START]"), vocab.token_to_id("[STOP]")
    model.args.gpt_start_text_token = model.gpt.start_text_token = start
    model.args.gpt_stop_text_token = model.gpt.stop_text_token = stop
    return True


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

    # pack the int8 blocks (fbgemm, outside the GIL) while this thread imports coqui and builds the skeleton
    packing = pack_int8(read_tensors(model_dir / INT8_WEIGHTS), GPT2_PREFIX) if int8 else None
    model = build_skeleton(model_dir, xtts_config)
    if packing is not None:
        install_modules(model.gpt.gpt, packing.result())
    state = read_tensors(model_dir / WEIGHTS, skip=is_block_projection if int8 else None)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or missing:
        raise RuntimeError(f"checkpoint does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.eval()
    return model


def has_int8(model_dir: Path) -> bool:
    return (model_dir / INT8_WEIGHTS).is_file()
