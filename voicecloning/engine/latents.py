"""A voice's conditioning latents: computed once at enrollment, stored, reused per request."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from voicecloning.errors import VoiceUnavailable

FORMAT = "xtts-latents-v1"


@dataclass(frozen=True)
class VoiceLatents:
    gpt_cond_latent: torch.Tensor  # [1, 32, model_channels] with the perceiver resampler
    speaker_embedding: torch.Tensor  # [1, 512, 1]
    model_name: str
    model_version: str

    def to_bytes(self) -> bytes:
        tensors = {
            "gpt_cond_latent": self.gpt_cond_latent.detach().float().cpu().contiguous(),
            "speaker_embedding": self.speaker_embedding.detach().float().cpu().contiguous(),
        }
        meta = {"format": FORMAT, "model_name": self.model_name, "model_version": self.model_version}
        return st_save(tensors, metadata=meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> VoiceLatents:
        try:
            tensors = st_load(data)
            meta = _metadata(data)
            tensors["gpt_cond_latent"], tensors["speaker_embedding"]  # noqa: B018 -- both must exist
        except (SafetensorError, struct.error, ValueError, KeyError) as exc:
            raise VoiceUnavailable(
                "the stored voice data is damaged; upload the reference clip again to re-enroll the voice."
            ) from exc
        return cls(
            gpt_cond_latent=tensors["gpt_cond_latent"],
            speaker_embedding=tensors["speaker_embedding"],
            model_name=meta.get("model_name", "unknown"),
            model_version=meta.get("model_version", "unknown"),
        )


def _metadata(data: bytes) -> dict[str, str]:
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    return dict(header.get("__metadata__", {}))
