"""An inference-only XTTS-v2 with the state-dict names of coqui's ``Xtts``, built without ``transformers``.

coqui's ``Xtts`` reaches ``transformers`` (~2 s and ~200 MB of imports) through
its GPT layer. This model holds what the engine uses of it: the tokenizer,
the config's ``args``, the GPT (embeddings, heads, GPT-2 stack, conditioning
encoder and perceiver) and coqui's own HiFiGAN decoder and speaker encoder,
with the same parameter names and shapes, so a converted checkpoint loads
unchanged (``fastload``), and the same arithmetic, so fp32 computes exactly
what coqui's model computes. coqui's ``Xtts`` stays the reference (``loader.load_stock``).
"""

from __future__ import annotations

from typing import Any

import torch
import torchaudio
from torch import nn

from voicecloning.engine.conditioning import CONDITIONING_RATE, MEL_CHANNELS, ConditioningEncoder, cloning_mel
from voicecloning.engine.gpt2 import GPT2Settings, GPT2Stack

MIN_CHUNK_SECONDS = 0.33  # coqui ignores shorter conditioning chunks
SPEAKER_RATE = 16000
CONDITIONING_INPUTS = 1  # coqui's ``max_conditioning_inputs``


class LearnedPositionEmbeddings(nn.Module):
    """Positions 0..L-1 of a text or audio stream, learned (XTTS disables GPT-2's own)."""

    def __init__(self, seq_len: int, model_dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(seq_len, model_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(torch.arange(0, x.shape[1], device=x.device))

    def get_fixed_embedding(self, ind: int, dev: torch.device | str) -> torch.Tensor:
        return self.emb(torch.tensor([ind], device=dev)).unsqueeze(0)


class XttsGPT(nn.Module):
    """coqui's ``GPT`` for XTTS-v2 (perceiver conditioning), the parts inference uses."""

    def __init__(self, args: Any) -> None:
        super().__init__()
        from TTS.tts.layers.xtts.perceiver_encoder import PerceiverResampler

        if not args.gpt_use_perceiver_resampler:
            raise ValueError("converted checkpoints must be XTTS-v2 (perceiver conditioning); load XTTS-v1 in coqui format")
        dim = self.model_dim = args.gpt_n_model_channels
        self.layers, self.heads = args.gpt_layers, args.gpt_n_heads
        self.number_text_tokens, self.num_audio_tokens = args.gpt_number_text_tokens, args.gpt_num_audio_tokens
        self.start_text_token, self.stop_text_token = args.gpt_start_text_token, args.gpt_stop_text_token
        self.start_audio_token, self.stop_audio_token = args.gpt_start_audio_token, args.gpt_stop_audio_token
        self.code_stride_len = args.gpt_code_stride_len
        self.max_gen_mel_tokens = args.gpt_max_audio_tokens - CONDITIONING_INPUTS - 2
        self.max_mel_tokens = args.gpt_max_audio_tokens + 2 + CONDITIONING_INPUTS
        self.max_text_tokens = args.gpt_max_text_tokens + 2

        self.conditioning_encoder = ConditioningEncoder(MEL_CHANNELS, dim, num_attn_heads=self.heads)
        self.text_embedding = nn.Embedding(self.number_text_tokens, dim)
        self.mel_embedding = nn.Embedding(self.num_audio_tokens, dim)
        self.gpt = GPT2Stack(GPT2Settings(n_layer=self.layers, n_head=self.heads, n_embd=dim))
        self.mel_pos_embedding = LearnedPositionEmbeddings(self.max_mel_tokens, dim)
        self.text_pos_embedding = LearnedPositionEmbeddings(self.max_text_tokens, dim)
        self.final_norm = nn.LayerNorm(dim)
        self.text_head = nn.Linear(dim, self.number_text_tokens)
        self.mel_head = nn.Linear(dim, self.num_audio_tokens)
        self.conditioning_perceiver = PerceiverResampler(
            dim=dim, depth=2, dim_context=dim, num_latents=32, dim_head=64, heads=8, ff_mult=4, use_flash_attn=False
        )

    def get_style_emb(self, cond_input: torch.Tensor) -> torch.Tensor:
        """Mel spectrogram [B, 80, T] (or [B, 1, 80, T]) -> conditioning latents [B, D, 32]."""
        if cond_input.ndim == 4:
            cond_input = cond_input.squeeze(1)
        conds = self.conditioning_encoder(cond_input)
        return self.conditioning_perceiver(conds.permute(0, 2, 1)).transpose(1, 2)


class XttsSkeleton(nn.Module):
    """The XTTS-v2 model the engine drives: enrollment (``get_*``) and the parts synthesis calls."""

    def __init__(self, args: Any, tokenizer: Any) -> None:
        super().__init__()
        from TTS.tts.layers.xtts.hifigan_decoder import HifiDecoder

        self.args = args
        self.tokenizer = tokenizer
        self.gpt = XttsGPT(args)
        self.hifigan_decoder = HifiDecoder(
            input_sample_rate=args.input_sample_rate,
            output_sample_rate=args.output_sample_rate,
            output_hop_length=args.output_hop_length,
            ar_mel_length_compression=args.gpt_code_stride_len,
            decoder_input_dim=args.decoder_input_dim,
            d_vector_dim=args.d_vector_dim,
            cond_d_vector_in_each_upsampling_layer=args.cond_d_vector_in_each_upsampling_layer,
        )
        self.register_buffer("mel_stats", torch.ones(MEL_CHANNELS))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.inference_mode()
    def get_gpt_cond_latents(
        self, audio: torch.Tensor, sr: int, length: int = 30, chunk_length: int = 6
    ) -> torch.Tensor:
        """GPT conditioning latents [1, 32, D]: the mean over ``chunk_length``-second chunks of the first ``length`` s."""
        if sr != CONDITIONING_RATE:
            audio = torchaudio.functional.resample(audio, sr, CONDITIONING_RATE)
        if length > 0:
            audio = audio[:, : CONDITIONING_RATE * length]
        step = CONDITIONING_RATE * chunk_length
        style_embs = []
        for start in range(0, audio.shape[1], step):
            chunk = audio[:, start : start + step]
            if chunk.size(-1) < CONDITIONING_RATE * MIN_CHUNK_SECONDS:
                continue
            mel = cloning_mel(chunk, self.mel_stats, n_fft=2048, hop_length=256, win_length=1024)
            style_embs.append(self.gpt.get_style_emb(mel.to(self.device)))
        if not style_embs:
            raise RuntimeError(f"Provided reference audio too short (minimum length: {MIN_CHUNK_SECONDS:.2f} seconds).")
        return torch.stack(style_embs).mean(dim=0).transpose(1, 2)

    @torch.inference_mode()
    def get_speaker_embedding(self, audio: torch.Tensor, sr: int) -> torch.Tensor:
        """The speaker encoder's L2-normalised embedding [1, 512, 1] of the clip."""
        audio_16k = torchaudio.functional.resample(audio, sr, SPEAKER_RATE)
        embedding = self.hifigan_decoder.speaker_encoder.forward(audio_16k.to(self.device), l2_norm=True)
        return embedding.unsqueeze(-1).to(self.device)


def adopt_vocabulary(args: Any, tokenizer: Any) -> None:
    """The vocabulary's size and [START]/[STOP] ids into ``args``, as coqui's ``init_models`` does with its tokenizer."""
    vocab = tokenizer.tokenizer
    if vocab is None:
        return
    args.gpt_number_text_tokens = tokenizer.get_number_tokens()
    args.gpt_start_text_token = vocab.token_to_id("[START]")
    args.gpt_stop_text_token = vocab.token_to_id("[STOP]")


def build_xtts(args: Any, tokenizer: Any) -> XttsSkeleton:
    """An ``XttsSkeleton`` for ``args`` (the config's ``model_args``, updated from ``tokenizer``'s vocabulary)."""
    adopt_vocabulary(args, tokenizer)
    return XttsSkeleton(args, tokenizer)
