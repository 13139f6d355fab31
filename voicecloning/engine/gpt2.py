"""XTTS's GPT-2 stack for inference, without ``transformers``: same parameter names, shapes and arithmetic.

coqui builds the stack with ``transformers.GPT2Model`` (its ``build_hf_gpt_transformer``),
which costs ~2 s and ~200 MB of imports at start-up. This is the inference forward
pass of that model as XTTS uses it: no token embedding (XTTS feeds embeddings),
no position embedding (XTTS replaces it with zeros), no cache (decoding runs
``kvdecode.CachedGPT2`` over these blocks), dropout off. Every operation is the
one ``GPT2Model`` runs with its default ``sdpa`` attention, in the same order,
so a checkpoint gives bit-identical hidden states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPT2Settings:
    """The few ``GPT2Config`` fields the stack (and ``kvdecode``) reads, at XTTS's values."""

    n_layer: int
    n_head: int
    n_embd: int
    layer_norm_epsilon: float = 1e-5
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False


class Conv1D(nn.Module):
    """``y = x @ W + b`` with ``W`` stored [in, out], as GPT-2's ``Conv1D`` (so its checkpoint loads unchanged)."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.empty(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size_out = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class TanhGelu(nn.Module):
    """GPT-2's ``gelu_new``, op for op: what fp32 must compute to equal coqui's model bit for bit.

    ``nn.GELU(approximate="tanh")`` is the same formula in one fused kernel,
    but rounds differently (~1e-7); the fast mode swaps it in (``precision.fuse_gelu``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class GPT2Attention(nn.Module):
    def __init__(self, settings: GPT2Settings) -> None:
        super().__init__()
        self.width, self.heads = settings.n_embd, settings.n_head
        self.head_dim = self.width // self.heads
        self.scaling = self.head_dim**-0.5 if settings.scale_attn_weights else 1.0
        self.c_attn = Conv1D(3 * self.width, self.width)
        self.c_proj = Conv1D(self.width, self.width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        query, key, value = self.c_attn(x).split(self.width, dim=2)
        shape = (*x.shape[:-1], -1, self.head_dim)
        query, key, value = (t.view(shape).transpose(1, 2) for t in (query, key, value))
        # transformers' (empty) DynamicCache hands attention contiguous copies of the keys and values
        key, value = key.contiguous(), value.contiguous()
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, scale=self.scaling, is_causal=mask is None and x.shape[1] > 1
        )
        out = out.transpose(1, 2).contiguous()
        return self.c_proj(out.reshape(*out.shape[:-2], -1).contiguous())


class GPT2MLP(nn.Module):
    def __init__(self, settings: GPT2Settings) -> None:
        super().__init__()
        self.c_fc = Conv1D(4 * settings.n_embd, settings.n_embd)
        self.act: nn.Module = TanhGelu()
        self.c_proj = Conv1D(settings.n_embd, 4 * settings.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.c_fc(x)))


class GPT2Block(nn.Module):
    def __init__(self, settings: GPT2Settings) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(settings.n_embd, eps=settings.layer_norm_epsilon)
        self.attn = GPT2Attention(settings)
        self.ln_2 = nn.LayerNorm(settings.n_embd, eps=settings.layer_norm_epsilon)
        self.mlp = GPT2MLP(settings)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attn(self.ln_1(x), mask) + x
        return x + self.mlp(self.ln_2(x))


class GPT2Output(NamedTuple):
    last_hidden_state: torch.Tensor


def sdpa_mask(attention_mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """The [B, 1, L, L] boolean mask transformers gives SDPA: causal, padding keys hidden.

    ``None`` (SDPA's own causal mask) when no position is padding, as
    transformers does. A padding query sees nothing; its output is never read.
    """
    if attention_mask is None:
        return None
    real = attention_mask.view(attention_mask.shape[0], -1).bool()
    if bool(real.all()):
        return None
    causal = torch.ones(length, length, dtype=torch.bool, device=real.device).tril()
    return causal[None, None] & real[:, None, None, :]


class GPT2Stack(nn.Module):
    """``h`` (the blocks) and ``ln_f``; called as XTTS calls ``GPT2Model``: embeddings in, hidden states out."""

    def __init__(self, settings: GPT2Settings) -> None:
        super().__init__()
        if settings.scale_attn_by_inverse_layer_idx:
            raise ValueError("per-layer attention scaling is not supported (XTTS does not use it)")
        self.config = settings
        self.h = nn.ModuleList(GPT2Block(settings) for _ in range(settings.n_layer))
        self.ln_f = nn.LayerNorm(settings.n_embd, eps=settings.layer_norm_epsilon)

    def forward(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None, return_dict: bool = True
    ) -> GPT2Output:
        """Hidden states [B, L, C] after ``ln_f``; ``attention_mask`` [B, L] is 1 at real (left-padded) positions.

        ``return_dict`` is accepted for ``GPT2Model``'s signature; the result always has ``last_hidden_state``.
        """
        mask = sdpa_mask(attention_mask, inputs_embeds.shape[1])
        x = inputs_embeds
        for block in self.h:
            x = block(x, mask)
        return GPT2Output(self.ln_f(x))
