"""A key/value cache in bf16 (``fast`` mode) computes what the fp32 cache computes, to bf16 rounding."""

from __future__ import annotations

from typing import Any

import torch

from voicecloning.engine.fidelity import latent_cosine
from voicecloning.engine.kvdecode import CachedGPT2


@torch.inference_mode()
def run(gpt2: Any, cache_dtype: torch.dtype, steps: int = 12) -> tuple[torch.Tensor, CachedGPT2]:
    """Hidden states of a left-padded prefill of two rows and ``steps`` decoding steps."""
    gen = torch.Generator().manual_seed(5)
    width = gpt2.config.n_embd
    emb = torch.randn(2, 20, width, generator=gen)
    mask = torch.ones(2, 20, dtype=torch.long)
    mask[1, :6] = 0  # row 1 is six positions shorter
    stack = CachedGPT2(gpt2, 2, 20 + steps, torch.float32, torch.device("cpu"), cache_dtype)
    states = [stack(emb, mask)]
    for _ in range(steps):
        mask = torch.cat([mask, mask.new_ones(2, 1)], dim=1)
        states.append(stack(torch.randn(2, 1, width, generator=gen), mask))
    return torch.cat(states, dim=1), stack


def test_a_bf16_cache_gives_the_fp32_cache_hidden_states(fast_fp32: Any) -> None:
    """Every position of a padded two-row decode agrees with the fp32 cache's (cosine >= 0.999)."""
    reference, _ = run(fast_fp32.gpt.gpt, torch.float32)
    narrow, stack = run(fast_fp32.gpt.gpt, torch.bfloat16)
    assert stack.keys[0].dtype == torch.bfloat16
    assert narrow.dtype == torch.float32
    assert latent_cosine(reference, narrow) >= 0.999


def test_the_fast_mode_caches_in_bf16_where_the_cpu_has_it(fast_int8: Any) -> None:
    """``fast`` sets the cache type the decoding loop uses: bf16 on CPUs with native bf16, else the default."""
    from voicecloning.engine.precision import cpu_has_fast_bf16

    expected = torch.bfloat16 if cpu_has_fast_bf16() else None
    assert getattr(fast_int8.gpt, "cache_dtype", None) == expected
