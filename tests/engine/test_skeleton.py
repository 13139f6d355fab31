"""The converted form's transformers-free XTTS computes exactly what coqui's ``Xtts`` computes."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from torch import nn

from tests.support.servers import ROOT
from voicecloning.engine.fidelity import decoder_audio, gpt_latents, random_inputs

RATE = 22050
HEAVY_IMPORTS = (
    "transformers",
    "TTS.tts.models.xtts",
    "TTS.tts.layers.xtts.gpt",
    "TTS.tts.layers.tortoise.autoregressive",
    "TTS.tts.layers.tortoise.arch_utils",
)
ALIASES = ("gpt.gpt_inference.", "gpt.gpt.wte.")  # coqui's views of the GPT for transformers' ``generate``


def _clip(seconds: float = 5.0) -> torch.Tensor:
    """A seeded 22.05 kHz [1, N] clip: two tones and a little noise."""
    t = torch.arange(int(RATE * seconds)) / RATE
    noise = torch.randn(t.shape, generator=torch.Generator().manual_seed(5))
    return (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.1 * torch.sin(2 * math.pi * 1330 * t) + 0.05 * noise)[None]


def _config(model_dir: Path) -> Any:
    from TTS.tts.configs.xtts_config import XttsConfig

    config = XttsConfig()
    config.load_json(str(model_dir / "config.json"))
    return config


def test_the_converted_form_loads_the_skeleton(fast_fp32: Any) -> None:
    """A converted folder is built as the transformers-free skeleton, not as coqui's ``Xtts``."""
    from voicecloning.engine.skeleton import XttsSkeleton

    assert isinstance(fast_fp32, XttsSkeleton)


def test_skeleton_holds_exactly_the_checkpoint_weights(converted_dir: Path, stock_fp32: Any, fast_fp32: Any) -> None:
    """The skeleton's state dict has the checkpoint's names, each tensor equal to coqui's of that name.

    coqui's model also lists aliases of the same tensors that it adds for
    transformers' ``generate`` (``gpt.gpt_inference.*``, ``gpt.gpt.wte``); the skeleton has none.
    """
    with safe_open(str(converted_dir / "model.safetensors"), framework="pt") as handle:
        names = set(handle.keys())
    ours, theirs = fast_fp32.state_dict(), stock_fp32.state_dict()
    assert set(ours) == names
    assert all(name.startswith(ALIASES) for name in set(theirs) - names)
    assert all(torch.equal(ours[name], theirs[name]) for name in names)


def test_teacher_forced_latents_equal_coqui_exactly(stock_fp32: Any, fast_fp32: Any) -> None:
    """Teacher-forced GPT latents from the skeleton equal coqui's bit for bit."""
    inputs = random_inputs(stock_fp32, codes=40)
    assert torch.equal(gpt_latents(fast_fp32, inputs), gpt_latents(stock_fp32, inputs))


def test_left_padded_rows_equal_coqui_exactly(stock_fp32: Any, fast_fp32: Any) -> None:
    """With left padding and an attention mask, each row's hidden states equal transformers' GPT-2."""
    from voicecloning.engine.batching import teacher_forced_latents

    inputs = random_inputs(stock_fp32, codes=40)
    tokens, codes = [inputs.tokens, inputs.tokens[:17]], [inputs.codes, inputs.codes[:25]]
    with torch.inference_mode():
        ours = teacher_forced_latents(fast_fp32.gpt, inputs.cond, tokens, codes)
        theirs = teacher_forced_latents(stock_fp32.gpt, inputs.cond, tokens, codes)
    for mine, reference in zip(ours, theirs, strict=True):
        assert torch.equal(mine, reference)


def test_speaker_embedding_equals_coqui_exactly(stock_fp32: Any, fast_fp32: Any) -> None:
    """The speaker embedding of a clip is coqui's, bit for bit: [1, 512, 1]."""
    ours, theirs = fast_fp32.get_speaker_embedding(_clip(), RATE), stock_fp32.get_speaker_embedding(_clip(), RATE)
    assert ours.shape == (1, stock_fp32.args.d_vector_dim, 1)
    assert torch.equal(ours, theirs)


def test_gpt_conditioning_latents_equal_coqui_exactly(stock_fp32: Any, fast_fp32: Any) -> None:
    """The GPT conditioning latents of a clip (in 2-second chunks, the last one short) are coqui's, bit for bit."""
    ours = fast_fp32.get_gpt_cond_latents(_clip(), RATE, length=30, chunk_length=2)
    theirs = stock_fp32.get_gpt_cond_latents(_clip(), RATE, length=30, chunk_length=2)
    assert ours.shape == (1, 32, stock_fp32.args.gpt_n_model_channels)
    assert torch.equal(ours, theirs)


def test_too_short_a_clip_is_refused_as_coqui_refuses_it(fast_fp32: Any) -> None:
    """A clip shorter than a third of a second gives no conditioning chunk: an error, not empty latents."""
    with pytest.raises(RuntimeError, match="too short"):
        fast_fp32.get_gpt_cond_latents(_clip(0.2), RATE, length=30, chunk_length=4)


def test_hifigan_audio_equals_coqui_exactly(stock_fp32: Any, fast_fp32: Any) -> None:
    """The waveform decoded from the same latents and speaker is coqui's, bit for bit."""
    inputs = random_inputs(stock_fp32, codes=12)
    latents = gpt_latents(stock_fp32, inputs)
    assert torch.equal(decoder_audio(fast_fp32, latents, inputs.speaker), decoder_audio(stock_fp32, latents, inputs.speaker))


def test_fp32_keeps_gelu_new_and_fast_fuses_it(fast_fp32: Any, fast_int8: Any) -> None:
    """fp32 runs GPT-2's tanh GELU op for op (exactness); the fast mode runs the fused kernel."""
    from voicecloning.engine.gpt2 import TanhGelu

    assert all(isinstance(block.mlp.act, TanhGelu) for block in fast_fp32.gpt.gpt.h)
    assert all(isinstance(block.mlp.act, nn.GELU) for block in fast_int8.gpt.gpt.h)


def test_the_vocabulary_sizes_the_text_embedding(converted_dir: Path) -> None:
    """When the config's text token count differs from vocab.json, the vocabulary wins (as coqui's load does)."""
    from voicecloning.engine.fastload import build_skeleton

    config = _config(converted_dir)
    config.model_args.gpt_number_text_tokens = 100
    model = build_skeleton(converted_dir, config)
    vocab = model.tokenizer.tokenizer
    assert model.gpt.text_embedding.num_embeddings == model.gpt.text_head.out_features == vocab.get_vocab_size()
    assert (model.gpt.start_text_token, model.gpt.stop_text_token) == (
        vocab.token_to_id("[START]"),
        vocab.token_to_id("[STOP]"),
    )


def test_no_random_init_skips_initialisation_only_while_building() -> None:
    """Inside ``no_random_init`` torch's init functions do nothing; afterwards they work again."""
    from voicecloning.engine.fastload import no_random_init

    with no_random_init():
        assert torch.nn.init.normal_(torch.zeros(3), mean=5.0).eq(0).all()
        assert nn.Linear(2, 2).bias is not None
    assert torch.nn.init.normal_(torch.zeros(3), mean=5.0).ne(0).all()


def test_every_tensor_of_the_init_free_skeleton_comes_from_the_checkpoint(converted_dir: Path) -> None:
    """No parameter or buffer (window, filter bank) lies outside the state dict: loading sets every tensor.

    A non-persistent buffer would keep whatever the init-free build left in it.
    """
    from voicecloning.engine.fastload import build_skeleton

    model = build_skeleton(converted_dir, _config(converted_dir))
    names = set(model.state_dict())
    tensors = [name for name, _ in model.named_parameters()] + [name for name, _ in model.named_buffers()]
    assert tensors and set(tensors) <= names


def test_enrolling_and_synthesizing_from_a_converted_folder_never_imports_transformers(converted_dir: Path) -> None:
    """Load (fast and fp32), enroll a clip and render a segment: neither transformers, coqui's GPT nor its package checks."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path

        import numpy as np

        from voicecloning.engine import synthesis
        from voicecloning.engine.xtts import EngineConfig, XttsEngine
        from voicecloning.generation import GenerationOptions

        clip = (0.3 * np.sin(np.arange(3 * 22050) * 0.0627)).astype(np.float32)
        for precision in ("fast", "fp32"):
            engine = XttsEngine(EngineConfig(model_dir=Path({str(converted_dir)!r}), precision=precision, threads=1))
            latents = engine.compute_latents(clip)
            [audio] = synthesis.render_segments(
                engine.model(), latents, ["Hello world."], "en", GenerationOptions(seed=1),
                max_new_tokens=3, min_new_tokens=3,
            )
            assert audio.size > 0 and np.isfinite(audio).all(), precision
        print("TTS/__init__ ran" if hasattr(sys.modules["TTS"], "is_torchcodec_available") else "package checks skipped")
        print(",".join(name for name in {HEAVY_IMPORTS!r} if name in sys.modules) or "none")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-2:] == ["package checks skipped", "none"]


def test_registering_coqui_does_nothing_once_it_is_imported() -> None:
    """In a process that imported ``TTS`` normally, the package is left as it is."""
    import TTS

    from voicecloning.engine.coqui import register_package

    assert register_package() is False
    assert sys.modules["TTS"] is TTS
