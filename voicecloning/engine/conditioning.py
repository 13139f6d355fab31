"""XTTS's voice conditioning: the reference clip's mel spectrogram and the attention encoder that reads it.

Inference-only equivalents of coqui's ``wav_to_mel_cloning`` (``TTS.tts.models.xtts``)
and ``ConditioningEncoder`` / ``AttentionBlock`` (``TTS.tts.layers.tortoise``),
whose modules import ``transformers``. Same parameter names and shapes, same
operations in the same order: the same checkpoint gives the same latents.
"""

from __future__ import annotations

import math

import torch
import torchaudio
from torch import nn

CONDITIONING_RATE = 22050
MEL_CHANNELS = 80


def cloning_mel(wav: torch.Tensor, mel_norms: torch.Tensor, *, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """Normalised log-mel spectrogram [B, 80, T] of 22.05 kHz audio, computed on the CPU as coqui does."""
    mel_stft = torchaudio.transforms.MelSpectrogram(
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        power=2,
        normalized=False,
        sample_rate=CONDITIONING_RATE,
        f_min=0,
        f_max=8000,
        n_mels=MEL_CHANNELS,
        norm="slaney",
    )
    mel = torch.log(torch.clamp(mel_stft(wav.cpu()), min=1e-5))
    return mel / mel_norms.cpu().unsqueeze(0).unsqueeze(-1)


class GroupNorm32(nn.GroupNorm):
    """Group norm computed in float32 whatever the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).type(x.dtype)


def normalization(channels: int) -> GroupNorm32:
    """tortoise's group count for ``channels``: 32 groups, fewer for narrow layers."""
    groups = 32
    if channels <= 16:
        groups = 8
    elif channels <= 64:
        groups = 16
    while channels % groups != 0:
        groups //= 2
    return GroupNorm32(groups, channels)


def qkv_attention(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """tortoise's ``QKVAttentionLegacy`` without mask: [N, H*3*C, T] -> [N, H*C, T]."""
    bs, width, length = qkv.shape
    ch = width // (3 * heads)
    q, k, v = qkv.reshape(bs * heads, ch * 3, length).split(ch, dim=1)
    scale = 1 / math.sqrt(math.sqrt(ch))
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
    weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
    return torch.einsum("bts,bcs->bct", weight, v).reshape(bs, -1, length)


class AttentionBlock(nn.Module):
    """Self-attention over time; the residual adds the *normalised* input (XTTS's ``tortoise_norm=False``)."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = normalization(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        x_norm = self.norm(x.reshape(b, c, -1))
        h = self.proj_out(qkv_attention(self.qkv(x_norm), self.heads))
        return (x_norm + h).reshape(b, c, *spatial)


class ConditioningEncoder(nn.Module):
    """Mel spectrogram [B, 80, T] -> conditioning features [B, D, T]: a 1x1 convolution, then attention blocks."""

    def __init__(self, spec_dim: int, embedding_dim: int, attn_blocks: int = 6, num_attn_heads: int = 4) -> None:
        super().__init__()
        self.init = nn.Conv1d(spec_dim, embedding_dim, kernel_size=1)
        self.attn = nn.Sequential(*(AttentionBlock(embedding_dim, num_attn_heads) for _ in range(attn_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.init(x))
