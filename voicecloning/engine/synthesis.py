"""Segment-by-segment XTTS decoding: text tokens -> GPT codes -> latents -> HiFiGAN audio."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from voicecloning.engine.latents import VoiceLatents
from voicecloning.errors import InvalidRequest
from voicecloning.generation import GenerationOptions

OUTPUT_RATE = 24000
PAUSE_SECONDS = 0.2  # a short natural pause between segments


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


@torch.inference_mode()
def synthesize_segments(
    model: Any,
    latents: VoiceLatents,
    segments: list[str],
    language: str,
    options: GenerationOptions,
    *,
    max_new_tokens: int | None = None,
    on_segment: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    device = model.device
    cond = latents.gpt_cond_latent.to(device)
    speaker = latents.speaker_embedding.to(device)
    if options.seed is not None:
        torch.manual_seed(options.seed)
    length_scale = 1.0 / max(options.speed, 0.05)
    pause = np.zeros(int(PAUSE_SECONDS * OUTPUT_RATE), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for index, segment in enumerate(segments):
        ids = encode_text(model.tokenizer, segment.strip(), language)
        if len(ids) >= model.args.gpt_max_text_tokens:
            raise InvalidRequest(
                f"a sentence is too long for the model ({len(ids)} tokens); split it with punctuation."
            )
        tokens = torch.IntTensor(ids).unsqueeze(0).to(device)
        extra = {"max_new_tokens": max_new_tokens} if max_new_tokens else {}
        codes = model.gpt.generate(
            cond_latents=cond,
            text_inputs=tokens,
            do_sample=True,
            top_p=options.top_p,
            top_k=options.top_k,
            temperature=options.temperature,
            num_return_sequences=1,
            num_beams=1,
            length_penalty=options.length_penalty,
            repetition_penalty=options.repetition_penalty,
            output_attentions=False,
            **extra,
        )
        expected = torch.tensor([codes.shape[-1] * model.gpt.code_stride_len], device=device)
        text_len = torch.tensor([tokens.shape[-1]], device=device)
        gpt_latents = model.gpt(
            tokens, text_len, codes, expected, cond_latents=cond, return_attentions=False, return_latent=True
        )
        if length_scale != 1.0:
            gpt_latents = F.interpolate(gpt_latents.transpose(1, 2), scale_factor=length_scale, mode="linear").transpose(1, 2)
        wav = model.hifigan_decoder(gpt_latents, g=speaker).float().cpu().squeeze().numpy()
        if pieces:
            pieces.append(pause)
        pieces.append(wav.astype(np.float32))
        if on_segment is not None:
            on_segment(index + 1, len(segments))
    return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
