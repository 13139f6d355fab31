"""``python -m voicecloning eval``: does the fast mode keep the voice? Speaker similarity, fp32 vs fast.

For each reference clip, both precisions enroll the clip and speak the same
text with the same seed; a speaker encoder embeds the reference and each
synthesis, and the cosine similarity of the embeddings is reported. The
encoder is Resemblyzer's when its package is installed, otherwise XTTS's own
speaker encoder (``model.hifigan_decoder.speaker_encoder``, through
``get_speaker_embedding``) — the output says which. Only meaningful with
real XTTS-v2 weights; on a random dev model it just exercises the plumbing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voicecloning.errors import ConfigurationError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
CONDITIONING_RATE = 22050
OUTPUT_RATE = 24000
DEFAULT_TEXT = (
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
)

Embedder = Callable[[np.ndarray, int], np.ndarray]


def reference_clips(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigurationError(f"{folder} is not a folder of reference clips")
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not clips:
        raise ConfigurationError(f"{folder} holds no audio clips ({', '.join(AUDIO_SUFFIXES)})")
    return clips


def read_clip(path: Path, rate: int = CONDITIONING_RATE) -> np.ndarray:
    """Mono float32 samples of ``path`` at ``rate``."""
    import soundfile as sf
    import torch
    import torchaudio.functional as AF

    samples, source_rate = sf.read(str(path), dtype="float32", always_2d=True)
    mono = torch.from_numpy(samples.mean(axis=1))
    return AF.resample(mono, source_rate, rate).numpy() if source_rate != rate else mono.numpy()


def xtts_embedder(model: Any) -> Embedder:
    import torch

    def embed(samples: np.ndarray, rate: int) -> np.ndarray:
        with torch.inference_mode():
            audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0)
            return model.get_speaker_embedding(audio, rate).float().reshape(-1).numpy()

    return embed


def resemblyzer_embedder() -> Embedder:
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder(device="cpu")

    def embed(samples: np.ndarray, rate: int) -> np.ndarray:
        return np.asarray(encoder.embed_utterance(preprocess_wav(samples, source_sr=rate)))

    return embed


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def synthesize_all(engine: Any, clips: list[Path], args: argparse.Namespace) -> list[np.ndarray]:
    from voicecloning.engine import synthesis
    from voicecloning.generation import GenerationOptions

    segments = [args.text] if args.text else list(DEFAULT_TEXT)
    outputs = []
    for clip in clips:
        latents = engine.compute_latents(read_clip(clip))
        outputs.append(
            synthesis.synthesize_segments(
                engine.model(),
                latents,
                segments,
                args.language,
                GenerationOptions(seed=0),
                max_new_tokens=args.max_tokens,
            )
        )
    return outputs


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from voicecloning.engine.xtts import EngineConfig, XttsEngine

    clips = reference_clips(args.clips)
    engines = {
        p: XttsEngine(EngineConfig(model_dir=args.model_dir, precision=p, threads=args.threads))
        for p in ("fp32", "fast")
    }
    audio = {p: synthesize_all(engine, clips, args) for p, engine in engines.items()}
    if importlib.util.find_spec("resemblyzer") is not None:
        scorer, embed = "resemblyzer", resemblyzer_embedder()
    else:
        scorer, embed = "xtts-speaker-encoder", xtts_embedder(engines["fp32"].model())
    per_clip = []
    for index, clip in enumerate(clips):
        reference = embed(read_clip(clip), CONDITIONING_RATE)
        scores = {p: round(cosine(reference, embed(audio[p][index], OUTPUT_RATE)), 4) for p in audio}
        per_clip.append({"clip": clip.name, **scores})
    means = {p: round(float(np.mean([row[p] for row in per_clip])), 4) for p in audio}
    return {
        "scorer": scorer,
        "clips": len(clips),
        "fp32_similarity": means["fp32"],
        "fast_similarity": means["fast"],
        "delta": round(means["fast"] - means["fp32"], 4),
        "dev_model": engines["fp32"].manifest.dev,
        "per_clip": per_clip,
    }


def main(args: argparse.Namespace) -> int:
    try:
        result = evaluate(args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0
