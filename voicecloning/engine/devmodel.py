"""A random-weight XTTS-v2 checkpoint of the real architecture, for tests and wiring checks.

Its audio is noise: random weights never learned to speak (nor to emit the
stop token, so cap generated tokens when you use it). It exists because the
real weights cannot be downloaded on every machine, and the real loading and
inference code must still be exercised.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from voicecloning.engine.manifest import Manifest, write_manifest

LANGUAGES = ("en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi")

WARNING = (
    "DEVELOPMENT MODEL WITH RANDOM WEIGHTS: it runs the real XTTS-v2 code but its audio is noise. "
    "Use it for tests and wiring checks only, never for users."
)

# XTTS-v2's released architecture (config.json of coqui/XTTS-v2).
FULL_ARGS = {
    "gpt_layers": 30,
    "gpt_n_model_channels": 1024,
    "gpt_n_heads": 16,
    "gpt_number_text_tokens": 6681,
    "gpt_num_audio_tokens": 1026,
    "gpt_start_audio_token": 1024,
    "gpt_stop_audio_token": 1025,
    "gpt_use_perceiver_resampler": True,
    "gpt_max_audio_tokens": 605,
    "gpt_max_text_tokens": 402,
    "gpt_max_prompt_tokens": 70,
    "decoder_input_dim": 1024,
}
TINY_ARGS = {**FULL_ARGS, "gpt_layers": 2, "gpt_n_model_channels": 128, "gpt_n_heads": 4, "decoder_input_dim": 128}
# The released config's generation settings (the defaults this service documents).
GENERATION = {
    "temperature": 0.75,
    "length_penalty": 1.0,
    "repetition_penalty": 5.0,
    "top_k": 50,
    "top_p": 0.85,
    "gpt_cond_len": 30,
    "gpt_cond_chunk_len": 4,
    "max_ref_len": 30,
    "sound_norm_refs": False,
}

_CHAR_RANGES = ((0x21, 0x7E), (0xA1, 0x24F), (0x300, 0x36F), (0x400, 0x4FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F))


def build_vocab(number_of_tokens: int, languages: tuple[str, ...] = LANGUAGES) -> dict:
    """A tokenizers-format BPE vocab: specials, one token per language, then characters.

    Characters cover what XTTS's text cleaners emit for its languages (Latin,
    Cyrillic, Arabic, Devanagari; ja/zh/ko are romanised by the cleaners).
    Padding tokens bring the vocabulary to ``number_of_tokens`` so the
    embedding has the released shape.
    """
    specials = ["[STOP]", "[UNK]", "[SPACE]"] + [f"[{lang}]" for lang in languages] + ["[START]"]
    chars = [chr(c) for lo, hi in _CHAR_RANGES for c in range(lo, hi + 1) if chr(c).isprintable()]
    tokens = specials + chars
    if len(tokens) > number_of_tokens:
        raise ValueError(f"vocab needs {len(tokens)} tokens but the model has only {number_of_tokens}")
    tokens += [f"[PAD{i}]" for i in range(number_of_tokens - len(tokens))]
    vocab = {tok: i for i, tok in enumerate(tokens)}
    added = [
        {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for t in specials
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": None,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": [],
        },
    }


def build_dev_model(out_dir: Path, *, full: bool = False, seed: int = 0, languages: tuple[str, ...] = LANGUAGES) -> Path:
    """Write ``config.json``, ``vocab.json``, ``model.pth`` and a manifest to ``out_dir``."""
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    out_dir.mkdir(parents=True, exist_ok=True)
    args = FULL_ARGS if full else TINY_ARGS
    vocab = build_vocab(args["gpt_number_text_tokens"], languages)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))

    config = XttsConfig()
    config.languages = list(languages)
    for key, value in args.items():
        setattr(config.model_args, key, value)
    for key, value in GENERATION.items():
        setattr(config, key, value)
    config.model_args.tokenizer_file = str(out_dir / "vocab.json")
    config.save_json(str(out_dir / "config.json"))

    torch.manual_seed(seed)
    model = Xtts(config)
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    model.tokenizer = VoiceBpeTokenizer(vocab_file=str(out_dir / "vocab.json"))
    model.init_models()
    torch.save({"model": model.state_dict()}, out_dir / "model.pth")
    size = "full" if full else "tiny"
    write_manifest(
        out_dir,
        Manifest(
            model_name=f"xtts_v2-dev-random-{size}",
            model_version=f"dev-{size}-seed{seed}",
            license="none (random weights, for development only)",
            dev=True,
        ),
    )
    (out_dir / "README.txt").write_text(WARNING + "\n")
    return out_dir
