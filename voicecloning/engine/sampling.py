"""Drawing audio codes: transformers' sampling processors for XTTS, one random stream per row.

Each row of a batch draws from its own ``torch.Generator``, seeded from the
request's seed and the segment's index in the request, so a segment's codes
do not depend on which other segments share its batch, nor on when they
finish (finished rows leave the batch; see ``batching``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.75
    top_k: int = 50
    top_p: float = 0.85
    repetition_penalty: float = 5.0


def row_generators(seed: int | None, indices: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One random stream per segment: seeded from (``seed``, segment index).

    With ``seed`` None the base seed is drawn from torch's global generator
    (so ``torch.manual_seed`` before the call still makes the run repeatable).
    """
    base = int(torch.randint(0, 2**62, (1,)).item()) if seed is None else seed
    streams = []
    for index in indices:
        state = np.random.SeedSequence([base % 2**63, index]).generate_state(2, dtype=np.uint32)
        streams.append(torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1])))
    return streams


def sample(
    logits: torch.Tensor, seen: torch.Tensor, sampling: Sampling, generators: Sequence[torch.Generator]
) -> torch.Tensor:
    """One token per row, drawn as transformers' sampling processors would; row i from ``generators[i]``."""
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
    probs = logits.softmax(dim=-1)
    drawn = [torch.multinomial(probs[i], num_samples=1, generator=g) for i, g in enumerate(generators)]
    return torch.cat(drawn)
