"""``python -m voicecloning convert SRC DST``: a checkpoint folder in the engine's fast-loading form.

DST gets ``config.json``, ``vocab.json`` (and ``speakers_xtts.pth`` if SRC has
one), ``model.safetensors`` (every weight, fp32: the exact reference, memory-
mappable), unless ``precision`` is ``fp32`` ``gpt-int8.safetensors`` (the GPT
blocks' projections pre-quantized to int8 after SmoothQuant, calibrated on
the fp32 model here, with the smoothed LayerNorm values: see ``smoothing``;
so the fast mode neither reads nor quantizes fp32 GPT weights at start), and a manifest with
``format: "fast"``. SRC is never written to.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from voicecloning.engine.fastload import GPT2_PREFIX, INT8_WEIGHTS, WEIGHTS
from voicecloning.engine.manifest import read_manifest, write_manifest

COPIED = ("vocab.json", "speakers_xtts.pth")
CONVERT_PRECISIONS = ("all", "fp32", "fast")


def coqui_state(src: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, memory-mapped, with coqui's own key clean-up applied."""
    checkpoint = torch.load(src / "model.pth", map_location="cpu", mmap=True, weights_only=True)
    state = checkpoint.get("model", checkpoint)
    ignored = ("torch_mel_spectrogram_style_encoder", "torch_mel_spectrogram_dvae", "dvae")
    cleaned = {}
    for key, tensor in state.items():
        key = key.removeprefix("xtts.")
        if key.split(".")[0] not in ignored:
            cleaned[key] = tensor
    return cleaned


def unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous tensors, each with its own storage (safetensors refuses shared ones)."""
    seen: set[int] = set()
    out = {}
    for key, tensor in state.items():
        tensor = tensor.contiguous()
        ptr = tensor.untyped_storage().data_ptr()
        out[key] = tensor.clone() if ptr in seen else tensor
        seen.add(ptr)
    return out


def write_config(src: Path, dst: Path) -> None:
    config = json.loads((src / "config.json").read_text())
    if config.get("model_args", {}).get("tokenizer_file"):
        config["model_args"]["tokenizer_file"] = str(dst / "vocab.json")
    (dst / "config.json").write_text(json.dumps(config, indent=4) + "\n")


def smoothed_int8(dst: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The int8 file's tensors: block projections quantized after SmoothQuant, calibrated on ``dst`` in fp32."""
    from TTS.tts.configs.xtts_config import XttsConfig

    from voicecloning.engine.fastload import load_fast
    from voicecloning.engine.quantize import quantize_state
    from voicecloning.engine.smoothing import activation_peaks, smoothed_state

    config = XttsConfig()
    config.load_json(str(dst / "config.json"))
    peaks = activation_peaks(load_fast(dst, config, int8=False))
    smoothed = smoothed_state(state, peaks, GPT2_PREFIX)
    norms = {key: value for key, value in smoothed.items() if ".ln_" in key}
    return quantize_state({**state, **smoothed}, GPT2_PREFIX) | norms


def convert_checkpoint(src: Path, dst: Path, precision: str = "all") -> Path:
    """Write the fast-loading form of the coqui checkpoint folder ``src`` into ``dst``."""
    if precision not in CONVERT_PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(CONVERT_PRECISIONS)}")
    if src.resolve() == dst.resolve():
        raise ValueError("convert writes a new folder; SRC and DST must differ")
    dst.mkdir(parents=True, exist_ok=True)
    state = coqui_state(src)
    save_file(unshared(state), str(dst / WEIGHTS), metadata={"format": "pt"})
    if (dst / INT8_WEIGHTS).exists():
        (dst / INT8_WEIGHTS).unlink()
    write_config(src, dst)
    for name in COPIED:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    if precision != "fp32":
        save_file(smoothed_int8(dst, state), str(dst / INT8_WEIGHTS), metadata={"format": "pt"})
    for written in (WEIGHTS, INT8_WEIGHTS):
        if (dst / written).exists():
            (dst / written).chmod(0o644)  # safetensors writes 0600; a non-root runtime user must read it
    write_manifest(dst, replace(read_manifest(src), format="fast"))
    return dst
