"""Converting a checkpoint and loading it by assignment from a memory map."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from voicecloning.engine.fidelity import gpt_latents, random_inputs
from voicecloning.engine.manifest import read_manifest


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _mapped_ranges(path: Path) -> list[tuple[int, int]]:
    ranges = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if line.endswith(str(path)):
            start, end = (int(x, 16) for x in line.split()[0].split("-"))
            ranges.append((start, end))
    return ranges


def test_convert_writes_the_fast_form_and_leaves_the_source_untouched(dev_model_dir: Path, tmp_path: Path) -> None:
    """convert writes safetensors weights, int8 GPT blocks and a 'fast' manifest; SRC is byte-for-byte unchanged."""
    from voicecloning.engine.convert import convert_checkpoint

    before = _listing(dev_model_dir)
    dst = convert_checkpoint(dev_model_dir, tmp_path / "out")
    assert _listing(dev_model_dir) == before
    assert {"config.json", "vocab.json", "model.safetensors", "gpt-int8.safetensors"} <= set(_listing(dst))
    assert not (dst / "model.pth").exists()
    assert (dst / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert read_manifest(dst).format == "fast"
    assert read_manifest(dst).model_version == read_manifest(dev_model_dir).model_version
    assert json.loads((dst / "config.json").read_text())["model_args"]["tokenizer_file"] == str(dst / "vocab.json")


def test_convert_fp32_only_writes_no_int8_file(dev_model_dir: Path, tmp_path: Path) -> None:
    """--precision fp32 leaves the int8 file out; the fast mode then quantizes at load."""
    from voicecloning.engine.convert import convert_checkpoint

    dst = convert_checkpoint(dev_model_dir, tmp_path / "out", precision="fp32")
    assert not (dst / "gpt-int8.safetensors").exists()


def test_converted_fp32_has_exactly_the_stock_weights(stock_fp32: Any, fast_fp32: Any) -> None:
    """Every tensor loaded from the converted folder equals coqui's own load of the original.

    coqui's model also lists views of the same tensors that only transformers' ``generate`` uses
    (``gpt.gpt_inference.*``, ``gpt.gpt.wte``); the engine's skeleton has exactly the checkpoint's keys.
    """
    stock = stock_fp32.state_dict()
    fast = fast_fp32.state_dict()
    aliases = ("gpt.gpt_inference.", "gpt.gpt.wte.")
    assert fast.keys() == {k for k in stock if not k.startswith(aliases)}
    assert all(torch.equal(stock[k], fast[k]) for k in fast)


def test_converted_fp32_computes_what_stock_computes(stock_fp32: Any, fast_fp32: Any) -> None:
    """Teacher-forced GPT latents from the converted fp32 model equal the stock model's exactly."""
    inputs = random_inputs(stock_fp32, codes=40)
    assert torch.equal(gpt_latents(stock_fp32, inputs), gpt_latents(fast_fp32, inputs))


def test_fast_load_points_weights_into_the_memory_mapped_file(converted_dir: Path, fast_fp32: Any) -> None:
    """Weights are assigned from the mmap of model.safetensors, not copied into process memory."""
    ranges = _mapped_ranges((converted_dir / "model.safetensors").resolve())
    assert ranges, "model.safetensors is not memory-mapped"
    params = [
        fast_fp32.gpt.text_embedding.weight,
        fast_fp32.gpt.mel_head.weight,
        fast_fp32.hifigan_decoder.speaker_encoder.fc.weight,
    ]
    for param in params:
        assert any(start <= param.data_ptr() < end for start, end in ranges)


def test_fast_mode_loads_pre_quantized_gpt_blocks(fast_int8: Any) -> None:
    """In fast mode every GPT-2 block projection is an int8 linear layer."""
    from voicecloning.engine.quantize import Int8Linear

    block = fast_int8.gpt.gpt.h[0]
    assert all(
        isinstance(m, Int8Linear) for m in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc, block.mlp.c_proj)
    )
    assert fast_int8.voicecloning_precision == "fast"


def test_fast_mode_lets_go_of_the_int8_file_once_packed(converted_dir: Path, fast_int8: Any) -> None:
    """The packed int8 layers keep no view into gpt-int8.safetensors: its memory map (and its pages) is released."""
    assert not _mapped_ranges((converted_dir / "gpt-int8.safetensors").resolve())
    layer = fast_int8.gpt.gpt.h[0].mlp.c_fc
    x = torch.randn(3, 5, layer.in_features, generator=torch.Generator().manual_seed(0))
    assert layer(x).shape == (3, 5, layer.out_features)


def test_fast_load_builds_the_modules_once_with_the_vocabulary_ids(stock_fp32: Any, fast_int8: Any) -> None:
    """The skeleton takes the start/stop text ids from vocab.json, as coqui's load_checkpoint does."""
    for attr in ("start_text_token", "stop_text_token"):
        assert getattr(fast_int8.gpt, attr) == getattr(stock_fp32.gpt, attr)
    assert fast_int8.args.gpt_number_text_tokens == stock_fp32.args.gpt_number_text_tokens
