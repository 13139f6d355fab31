"""Long-form XTTS decoding in batches: text tokens -> GPT codes -> latents -> HiFiGAN audio.

Segments are grouped into batches of similar text length; each batch shares
one GPT decoding loop (see ``batching``), which also yields each code's GPT
latent (no second, teacher-forced pass), and, for rows whose latents have
equal length, one HiFiGAN call. Audio comes back
in the segments' order with a short pause between them; ``on_segment`` is
called once per finished segment.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from voicecloning.audio.level import level
from voicecloning.engine.batching import Sampling, decode_rows
from voicecloning.engine.latents import VoiceLatents
from voicecloning.engine.sampling import row_generators
from voicecloning.errors import InvalidRequest
from voicecloning.generation import GenerationOptions

OUTPUT_RATE = 24000
PAUSE_SECONDS = 0.2  # a short natural pause between segments
DEFAULT_BATCH_SIZE = 6  # segments per GPT step; measurements in docs/PERFORMANCE.md
DECODER_MAX_FRAMES = 256  # latent frames per HiFiGAN call (~12 s of audio): bounds its activation memory


def encode_text(tokenizer: Any, text: str, language: str) -> list[int]:
    """Token ids for one segment, with the model tokenizer's own cleaning rules.

    Languages the checkpoint's config adds but coqui's cleaners do not know
    (a fine-tune adding Thai, say) get Unicode-safe basic cleaning instead.
    """
    base = language.split("-")[0]
    try:
        cleaned = tokenizer.preprocess_text(text, base)
    except NotImplementedError:
        cleaned = re.sub(r"\s+", " ", text.lower()).strip()
    tag = "zh-cn" if base == "zh" else language
    return tokenizer.tokenizer.encode(f"[{tag}]{cleaned}".replace(" ", "[SPACE]")).ids


def segment_tokens(model: Any, segments: list[str], language: str) -> list[list[int]]:
    """Token ids of every segment, checked against the model's text limit before any decoding."""
    token_lists = []
    for segment in segments:
        ids = encode_text(model.tokenizer, segment.strip(), language)
        if len(ids) >= model.args.gpt_max_text_tokens:
            raise InvalidRequest(
                f"a sentence is too long for the model ({len(ids)} tokens); split it with punctuation."
            )
        token_lists.append(ids)
    return token_lists


def plan_batches(token_lists: list[list[int]], batch_size: int) -> list[list[int]]:
    """Segment indices in balanced batches of at most ``batch_size``, similar text lengths together.

    Six segments at batch size 4 make two batches of three, not four and two.
    """
    order = sorted(range(len(token_lists)), key=lambda i: (len(token_lists[i]), i))
    if not order:
        return []
    count = -(-len(order) // max(1, batch_size))
    size = -(-len(order) // count)
    return [order[i : i + size] for i in range(0, len(order), size)]


def decode_audio(model: Any, latents: list[torch.Tensor], speaker: torch.Tensor) -> list[np.ndarray]:
    """HiFiGAN audio of each latent sequence.

    Sequences of equal length share one call (padding would change the
    convolutions' output near the end), up to ``DECODER_MAX_FRAMES`` frames per call.
    """
    wavs: list[np.ndarray | None] = [None] * len(latents)
    by_length: dict[int, list[int]] = {}
    for index, lat in enumerate(latents):
        by_length.setdefault(lat.shape[1], []).append(index)
    groups = []
    for length, same in by_length.items():
        per_call = max(1, DECODER_MAX_FRAMES // max(1, length))
        groups += [same[i : i + per_call] for i in range(0, len(same), per_call)]
    for indices in groups:
        batch = torch.cat([latents[i] for i in indices])
        out = model.hifigan_decoder(batch, g=speaker.expand(len(indices), -1, -1))
        out = out.float().reshape(len(indices), -1).cpu().numpy()
        for row, index in enumerate(indices):
            wavs[index] = out[row].astype(np.float32)
    return [w for w in wavs if w is not None]


def synthesize_batch(
    model: Any,
    latents: VoiceLatents,
    token_lists: list[list[int]],
    options: GenerationOptions,
    *,
    max_new_tokens: int | Sequence[int] | None,
    min_new_tokens: int | Sequence[int],
    generators: Sequence[torch.Generator] | None = None,
) -> list[np.ndarray]:
    """Audio of each segment of one batch (token limits: one value or one per segment)."""
    device = model.device
    cond = latents.gpt_cond_latent.to(device)
    speaker = latents.speaker_embedding.to(device)
    sampling = Sampling(options.temperature, options.top_k, options.top_p, options.repetition_penalty)
    rows = decode_rows(
        model.gpt, cond, token_lists, sampling,
        max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, generators=generators,
    )
    gpt_latents = [row.latents for row in rows]
    length_scale = 1.0 / max(options.speed, 0.05)
    if length_scale != 1.0:
        gpt_latents = [
            F.interpolate(lat.transpose(1, 2), scale_factor=length_scale, mode="linear").transpose(1, 2)
            for lat in gpt_latents
        ]
    return decode_audio(model, gpt_latents, speaker)


@torch.inference_mode()
def render_segments(
    model: Any,
    latents: VoiceLatents,
    segments: list[str],
    language: str,
    options: GenerationOptions,
    *,
    max_new_tokens: int | None = None,
    on_segment: Callable[[int, int], None] | None = None,
    min_new_tokens: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
    forced_tokens: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """24 kHz float32 audio of each segment, in order, as the model made it (no levelling, no pauses).

    ``options.seed`` makes the result reproducible: each segment samples from
    its own stream, seeded from the seed and the segment's index, so the same
    seed and text give identical audio, and a segment's codes do not depend
    on the batch it shares (in fp32; see docs/PERFORMANCE.md for int8).
    ``min_new_tokens`` forces a token count; ``forced_tokens`` forces one per
    segment (benchmarks: random weights never stop on their own).
    ``on_segment(done, total)`` runs after each finished segment; if it raises,
    rendering stops there and the exception propagates (an overtaken run).
    """
    token_lists = segment_tokens(model, segments, language)
    if forced_tokens is not None and len(forced_tokens) != len(segments):
        raise ValueError(f"{len(forced_tokens)} token counts for {len(segments)} segments")
    if options.seed is not None:
        torch.manual_seed(options.seed)
    streams = row_generators(options.seed, range(len(segments)), model.device)
    audio: list[np.ndarray | None] = [None] * len(segments)
    done = 0
    for batch in plan_batches(token_lists, batch_size):
        limits: int | list[int] | None = max_new_tokens
        minimums: int | list[int] = min_new_tokens
        if forced_tokens is not None:
            limits = minimums = [forced_tokens[i] for i in batch]
        wavs = synthesize_batch(
            model,
            latents,
            [token_lists[i] for i in batch],
            options,
            max_new_tokens=limits,
            min_new_tokens=minimums,
            generators=[streams[i] for i in batch],
        )
        for index, wav in zip(batch, wavs, strict=True):
            audio[index] = wav
            done += 1
            if on_segment is not None:
                on_segment(done, len(segments))
    return [a for a in audio if a is not None]


def synthesize_segments(
    model: Any,
    latents: VoiceLatents,
    segments: list[str],
    language: str,
    options: GenerationOptions,
    **kwargs: Any,
) -> np.ndarray:
    """24 kHz float32 audio of ``segments`` at an even loudness, with a pause between them."""
    return join_with_pauses(render_segments(model, latents, segments, language, options, **kwargs))


def join_with_pauses(pieces: list[np.ndarray]) -> np.ndarray:
    """The segments at an even loudness, in order, with a short pause between them."""
    if not pieces:
        return np.zeros(0, dtype=np.float32)
    pieces = level(pieces)
    pause = np.zeros(int(PAUSE_SECONDS * OUTPUT_RATE), dtype=np.float32)
    joined: list[np.ndarray] = []
    for piece in pieces:
        if joined:
            joined.append(pause)
        joined.append(piece)
    return np.concatenate(joined)
