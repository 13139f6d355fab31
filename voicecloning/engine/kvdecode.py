"""XTTS's GPT-2 stack run step by step over a preallocated key/value cache.

transformers' ``DynamicCache`` grows by ``torch.cat`` every step (each step
copies the whole cache: ~75 MB per token at batch 1, ~400 MB at batch 3
near the end of a long segment) and rebuilds its attention masks on each
call. Here each layer's keys and values live in one buffer sized for the
whole generation, attention reads a view of the filled part, and the mask is
the row padding mask. The cache may hold its keys and values in a narrower
type than the stack computes in (bf16 in ``fast`` mode): at a batch of six
and a few hundred positions the cache is read at every step as many bytes
as the int8 weights, so halving it halves attention's cost. The arithmetic
is GPT-2's (ln_1 -> attention -> residual -> ln_2 -> MLP -> residual, then
ln_f); XTTS disables GPT-2's position embeddings, so none are added.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


class CachedGPT2:
    """Prefill, then one step at a time, for ``rows`` left-padded sequences."""

    def __init__(
        self,
        gpt2: Any,
        rows: int,
        capacity: int,
        dtype: torch.dtype,
        device: torch.device,
        cache_dtype: torch.dtype | None = None,
    ) -> None:
        """``cache_dtype`` (default ``dtype``) holds the keys and values and runs attention (``fast``: bf16)."""
        config = gpt2.config
        if getattr(config, "scale_attn_by_inverse_layer_idx", False):
            raise ValueError("per-layer attention scaling is not supported")
        self.blocks, self.ln_f = list(gpt2.h), gpt2.ln_f
        self.heads, self.width = config.n_head, config.n_embd
        head_dim = self.width // self.heads
        self.scale = head_dim**-0.5 if config.scale_attn_weights else 1.0
        shape = (rows, self.heads, capacity, head_dim)
        cache_dtype = cache_dtype or dtype
        # torch.empty: pages become resident only as the cache fills
        self.keys = [torch.empty(shape, dtype=cache_dtype, device=device) for _ in self.blocks]
        self.values = [torch.empty(shape, dtype=cache_dtype, device=device) for _ in self.blocks]
        self.length = 0
        self.dtype = cache_dtype  # of the attention mask, the queries and the attention's arithmetic
        self.unpadded = False

    def attention_mask(self, padding: torch.Tensor, new: int) -> torch.Tensor | None:
        """[B, 1, new, end] additive float mask (0 or -inf): causal, padding keys hidden; a padding query sees only itself.

        ``None`` for a one-position step when no row has padding (batch 1, or
        rows of equal prompt length): nothing to hide. The float mask is built
        once per call; a boolean one would be converted again by every layer.
        """
        end = self.length + new
        if new == 1:
            if self.unpadded:
                return None
            allowed = padding.bool()[:, None, None, :end]
        else:
            causal = torch.ones(new, end, dtype=torch.bool, device=padding.device).tril(diagonal=self.length)
            itself = torch.zeros_like(causal)
            itself[torch.arange(new), self.length + torch.arange(new)] = True
            # "itself" keeps fully padded query rows finite
            allowed = (padding.bool()[:, None, None, :end] & causal) | itself
        return torch.zeros(allowed.shape, dtype=self.dtype, device=padding.device).masked_fill_(~allowed, float("-inf"))

    def keep(self, rows: list[int], padding: torch.Tensor) -> None:
        """Keep only ``rows`` (ascending indices into the current batch); later steps run on those alone.

        ``padding`` is the kept rows' padding mask (so far): when none of them
        is padded, later steps need no attention mask.

        Rows move to the front of each buffer in place (a kept row's index is
        never below its new one, so no source is overwritten before it is
        read), and the buffers become views of their first ``len(rows)`` rows:
        no new memory, and the dropped rows stop costing compute.
        """
        end = self.length
        for buffers in (self.keys, self.values):
            for layer, buf in enumerate(buffers):
                for dst, src in enumerate(rows):
                    if dst != src:
                        buf[dst, :, :end].copy_(buf[src, :, :end])
                buffers[layer] = buf[: len(rows)]
        self.unpadded = self.unpadded or bool(padding.all())

    def __call__(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """Hidden states (after ``ln_f``) of ``x`` [B, T, C]; ``padding`` [B, length + T] marks real positions."""
        rows, new, _ = x.shape
        start, end = self.length, self.length + new
        if start == 0:
            self.unpadded = bool(padding.all())  # decoding steps only ever add real positions
        mask = self.attention_mask(padding, new)
        heads, width, dtype = self.heads, self.width, self.dtype
        for block, keys, values in zip(self.blocks, self.keys, self.values, strict=True):
            attn, mlp = block.attn, block.mlp
            q, k, v = attn.c_attn(block.ln_1(x)).view(rows, new, 3 * heads, -1).transpose(1, 2).split(heads, dim=1)
            keys[:, :, start:end] = k
            values[:, :, start:end] = v
            attended = F.scaled_dot_product_attention(
                q.to(dtype), keys[:, :, :end], values[:, :, :end], attn_mask=mask, scale=self.scale
            )
            x = x + attn.c_proj(attended.transpose(1, 2).reshape(rows, new, width).to(x.dtype))
            x = x + mlp.c_proj(mlp.act(mlp.c_fc(block.ln_2(x))))  # GPT2MLP without its (eval: identity) dropout
        self.length = end
        return self.ln_f(x)
