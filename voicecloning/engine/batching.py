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
prompt ids; then temperature, top-k, top-p; multinomial draw), each row from
its own random stream (``sampling``). A row that has finished (stop token, or
its own token limit) leaves the batch: its keys and values are dropped from
the cache, so later steps run on the rows still speaking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from voicecloning.engine.kvdecode import CachedGPT2
from voicecloning.engine.sampling import Sampling, row_generators, sample

__all__ = ["Decoded", "Sampling", "decode_rows", "generate_codes", "teacher_forced_latents"]

AUDIO_TAIL = 4  # stop tokens XTTS appends after the codes in its teacher-forced pass
LATENT_TRIM = 5  # ... and the trailing positions it drops from the latents ("sub = -5")
PROMPT_PLACEHOLDER = 1  # the fake prompt id coqui feeds ``generate`` (the repetition penalty sees it)


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


@dataclass(frozen=True)
class Decoded:
    codes: list[int]  # up to and including the stop token, if the row stopped
    latents: torch.Tensor  # [1, len(codes), D]: what the teacher-forced pass would compute


def _per_row(value: int | Sequence[int] | None, rows: int, default: int) -> list[int]:
    if value is None:
        return [default] * rows
    if isinstance(value, int):
        return [value] * rows
    if len(value) != rows:
        raise ValueError(f"{len(value)} per-row values for {rows} rows")
    return [int(v) for v in value]


def decode_rows(
    gpt: Any,
    cond: torch.Tensor,
    token_lists: list[list[int]],
    sampling: Sampling,
    *,
    max_new_tokens: int | Sequence[int] | None = None,
    min_new_tokens: int | Sequence[int] = 0,
    generators: Sequence[torch.Generator] | None = None,
) -> list[Decoded]:
    """Sample every row's audio codes; keep the hidden state of each step as that code's GPT latent.

    ``max_new_tokens`` / ``min_new_tokens`` may be one value or one per row;
    ``generators`` gives each row its random stream (default: seeded from
    torch's global generator, one per row). A row stops at its stop token or
    its limit, and then leaves the batch.

    coqui runs a second, teacher-forced pass over ``[prompt][start, codes, stop x4]``
    for the latents. Attention is causal, so the latent of position k depends
    only on positions <= k: exactly what the decoding step that consumed
    that position computed. Keeping it saves the second pass.
    """
    device = cond.device
    rows, stop = len(token_lists), gpt.stop_audio_token
    limits = _per_row(max_new_tokens or None, rows, gpt.max_gen_mel_tokens)
    minimums = _per_row(min_new_tokens, rows, 0)
    streams = list(generators) if generators is not None else row_generators(None, range(rows), device)
    start_emb = audio_embedding(gpt, [gpt.start_audio_token], device)
    emb, mask = left_pad([torch.cat([prompt_row(gpt, cond, ids), start_emb]) for ids in token_lists])
    seen = torch.zeros(rows, gpt.mel_head.out_features, dtype=torch.bool, device=device)
    seen[:, [PROMPT_PLACEHOLDER, gpt.start_audio_token]] = True
    cache_dtype = getattr(gpt, "cache_dtype", None)  # set by ``precision.apply_precision``
    stack = CachedGPT2(gpt.gpt, rows, emb.shape[1] + max(limits), emb.dtype, device, cache_dtype)
    hidden = stack(emb, mask)[:, -1]
    active = list(range(rows))  # the original row of each row still in the batch
    codes: list[list[int]] = [[] for _ in range(rows)]
    states: list[list[torch.Tensor]] = [[] for _ in range(rows)]
    for step in range(max(limits)):
        state = gpt.final_norm(hidden)
        logits = gpt.mel_head(state).float()
        for j, row in enumerate(active):
            if step < minimums[row]:
                logits[j, stop] = float("-inf")
        token = sample(logits, seen, sampling, [streams[row] for row in active])
        seen[torch.arange(len(active), device=device), token] = True
        keep = []
        for j, (row, value) in enumerate(zip(active, token.tolist(), strict=True)):
            codes[row].append(value)
            states[row].append(state[j])
            if value != stop and len(codes[row]) < limits[row]:
                keep.append(j)
        if not keep:
            break
        if len(keep) < len(active):
            active = [active[j] for j in keep]
            mask, seen, token = mask[keep], seen[keep], token[keep]
            stack.keep(keep, mask)
        next_emb = gpt.mel_embedding(token[:, None]) + gpt.mel_pos_embedding.get_fixed_embedding(step + 1, device)
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        hidden = stack(next_emb, mask)[:, -1]
    return [Decoded(c, torch.stack(s)[None].float()) for c, s in zip(codes, states, strict=True)]


def generate_codes(
    gpt: Any,
    cond: torch.Tensor,
    token_lists: list[list[int]],
    sampling: Sampling,
    *,
    max_new_tokens: int | Sequence[int] | None = None,
    min_new_tokens: int | Sequence[int] = 0,
    generators: Sequence[torch.Generator] | None = None,
) -> list[list[int]]:
    """Audio codes of every row, each up to and including its stop token (if it stopped)."""
    rows = decode_rows(
        gpt, cond, token_lists, sampling,
        max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens, generators=generators,
    )
    return [row.codes for row in rows]


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
