"""Several segments per GPT step: left-padded prompts, per-row attention masks, one KV cache.

XTTS's GPT reads ``[cond latents][start text, text tokens, stop text][start audio, codes...]``.
Text lengths differ per segment, so rows are padded on the LEFT and the
padding is masked out of attention: every row then sees exactly the
sequence it would see alone, and all rows reach their audio tokens at the
same step, so one audio position embedding serves the whole batch. GPT-2's
own position embeddings are disabled in XTTS (its positions are learned
per text/audio stream), so left padding shifts nothing.

Sampling follows what ``transformers``' ``generate`` does for XTTS (repetition
penalty over everything the row has seen, including coqui's placeholder
prompt ids; then temperature, top-k, top-p; multinomial draw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from voicecloning.engine.kvdecode import CachedGPT2

AUDIO_TAIL = 4  # stop tokens XTTS appends after the codes in its teacher-forced pass
LATENT_TRIM = 5  # ... and the trailing positions it drops from the latents ("sub = -5")
PROMPT_PLACEHOLDER = 1  # the fake prompt id coqui feeds ``generate`` (the repetition penalty sees it)


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 5.0


def left_pad(rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L, D] embeddings padded on the left with zeros, and the [B, L] mask of real positions."""
    length = max(row.shape[0] for row in rows)
    emb = rows[0].new_zeros(len(rows), length, rows[0].shape[1])
    mask = torch.zeros(len(rows), length, dtype=torch.long, device=rows[0].device)
    for index, row in enumerate(rows):
        emb[index, length - row.shape[0] :] = row
        mask[index, length - row.shape[0] :] = 1
    return emb, mask


def _ids(values: list[int], device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.long, device=device).unsqueeze(0)


def prompt_row(gpt: Any, cond: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """``[cond latents][start text, ids, stop text]`` embedded, as coqui's ``compute_embeddings``: [L, D]."""
    text = _ids([gpt.start_text_token, *ids, gpt.stop_text_token], cond.device)
    text_emb = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
    return torch.cat([cond[0].to(text_emb.dtype), text_emb[0]], dim=0)


def audio_embedding(gpt: Any, codes: list[int], device: torch.device) -> torch.Tensor:
    """Audio codes embedded with their positions from 0: [N, D]."""
    mel = _ids(codes, device)
    return (gpt.mel_embedding(mel) + gpt.mel_pos_embedding(mel))[0]


def sample(logits: torch.Tensor, seen: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """One token per row, drawn as transformers' sampling processors would."""
    if sampling.repetition_penalty != 1.0:
        p = sampling.repetition_penalty
        logits = torch.where(seen, torch.where(logits < 0, logits * p, logits / p), logits)
    if sampling.temperature != 1.0:
        logits = logits / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(logits, min(max(sampling.top_k, 1), logits.shape[-1])).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=False)
        remove = sorted_logits.softmax(dim=-1).cumsum(dim=-1) <= (1 - sampling.top_p)
        remove[:, -1] = False
        logits = logits.masked_fill(remove.scatter(1, order, remove), float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), num_samples=1).squeeze(1)


@dataclass(frozen=True)
class Decoded:
    codes: list[int]  # up to and including the stop token, if the row stopped
    latents: torch.Tensor  # [1, len(codes), D]: what the teacher-forced pass would compute


def decode_rows(
    gpt: Any,
    cond: torch.Tensor,
    token_lists: list[list[int]],
    sampling: Sampling,
    *,
    max_new_tokens: int | None = None,
    min_new_tokens: int = 0,
) -> list[Decoded]:
    """Sample every row's audio codes; keep the hidden state of each step as that code's GPT latent.

    coqui runs a second, teacher-forced pass over ``[prompt][start, codes, stop x4]``
    for the latents. Attention is causal, so the latent of position k depends
    only on positions <= k: exactly what the decoding step that consumed
    that position computed. Keeping it saves the second pass.
    """
    device = cond.device
    stop, limit = gpt.stop_audio_token, max_new_tokens or gpt.max_gen_mel_tokens
    start_emb = audio_embedding(gpt, [gpt.start_audio_token], device)
    emb, mask = left_pad([torch.cat([prompt_row(gpt, cond, ids), start_emb]) for ids in token_lists])
    rows = len(token_lists)
    seen = torch.zeros(rows, gpt.mel_head.out_features, dtype=torch.bool, device=device)
    seen[:, [PROMPT_PLACEHOLDER, gpt.start_audio_token]] = True
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    stack = CachedGPT2(gpt.gpt, rows, emb.shape[1] + limit, emb.dtype, device)
    hidden = stack(emb, mask)[:, -1]
    steps: list[torch.Tensor] = []
    states: list[torch.Tensor] = []
    for step in range(limit):
        states.append(gpt.final_norm(hidden))
        logits = gpt.mel_head(states[-1]).float()
        if step < min_new_tokens:
            logits[:, stop] = float("-inf")
        token = torch.where(finished, stop, sample(logits, seen, sampling))
        steps.append(token)
        seen[torch.arange(rows, device=device), token] = True
        finished |= token == stop
        if bool(finished.all()) or step + 1 == limit:
            break
        next_emb = gpt.mel_embedding(token[:, None]) + gpt.mel_pos_embedding.get_fixed_embedding(step + 1, device)
        mask = torch.cat([mask, mask.new_ones(rows, 1)], dim=1)
        hidden = stack(next_emb, mask)[:, -1]
    codes = [_until_stop(row, stop) for row in torch.stack(steps, dim=1).tolist()]
    latents = torch.stack(states, dim=1).float()
    return [Decoded(row, latents[i : i + 1, : len(row)]) for i, row in enumerate(codes)]


def generate_codes(
    gpt: Any,
    cond: torch.Tensor,
    token_lists: list[list[int]],
    sampling: Sampling,
    *,
    max_new_tokens: int | None = None,
    min_new_tokens: int = 0,
) -> list[list[int]]:
    """Audio codes of every row, each up to and including its stop token (if it stopped)."""
    rows = decode_rows(gpt, cond, token_lists, sampling, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens)
    return [row.codes for row in rows]


def _until_stop(codes: list[int], stop: int) -> list[int]:
    return codes[: codes.index(stop) + 1] if stop in codes else codes


def teacher_forced_latents(
    gpt: Any, cond: torch.Tensor, token_lists: list[list[int]], code_lists: list[list[int]]
) -> list[torch.Tensor]:
    """GPT latents [1, N_i, D] of each row's codes, as coqui's ``GPT.forward(return_latent=True)``."""
    device = cond.device
    rows, tails = [], []
    for ids, codes in zip(token_lists, code_lists, strict=True):
        mel = [gpt.start_audio_token, *codes] + [gpt.stop_audio_token] * AUDIO_TAIL
        rows.append(torch.cat([prompt_row(gpt, cond, ids), audio_embedding(gpt, mel, device)]))
        tails.append(len(mel))
    emb, mask = left_pad(rows)
    hidden = gpt.final_norm(gpt.gpt(inputs_embeds=emb, attention_mask=mask, return_dict=True).last_hidden_state)
    return [hidden[i : i + 1, -tail:-LATENT_TRIM].float() for i, tail in enumerate(tails)]
