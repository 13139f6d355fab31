"""The XTTS engine: one object per process that owns the model's lifecycle.

Nothing is loaded at import or construction. ``languages()`` reads only the
checkpoint's config; the weights load on the first enrollment or synthesis,
once, under a lock.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voicecloning.engine import synthesis
from voicecloning.engine.latents import VoiceLatents
from voicecloning.engine.manifest import Manifest, read_manifest
from voicecloning.engine.resolve import resolve_model_dir
from voicecloning.engine.threads import available_cpus
from voicecloning.errors import UnsupportedLanguage, VoiceUnavailable
from voicecloning.generation import GenerationOptions

log = logging.getLogger(__name__)

CONDITIONING_RATE = 22050
OUTPUT_RATE = 24000
DEFAULT_CHAR_LIMIT = 250


@dataclass(frozen=True)
class EngineConfig:
    model_dir: Path | None
    tos_agreed: bool = False
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    max_audio_tokens: int | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> EngineConfig:
        return cls(
            model_dir=settings.model_dir,
            tos_agreed=settings.tos_agreed,
            device=settings.device,
            precision=settings.precision,
            threads=settings.threads,
            max_audio_tokens=settings.max_audio_tokens,
        )


@functools.cache
def _char_limits() -> dict[str, int]:
    """The model code's own per-language character limits."""
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer

    return dict(VoiceBpeTokenizer().char_limits)


class XttsEngine:
    """Enrollment (latents once per voice) and synthesis (per request) with XTTS-v2."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._model: Any = None
        self._model_dir: Path | None = None
        self._xtts_config: Any = None
        self._manifest: Manifest | None = None
        self.load_seconds: float | None = None

    # ---- cheap facts (no weights) -------------------------------------------------
    @property
    def model_dir(self) -> Path:
        if self._model_dir is None:
            self._model_dir = resolve_model_dir(self.config.model_dir, self.config.tos_agreed)
        return self._model_dir

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            self._manifest = read_manifest(self.model_dir)
        return self._manifest

    @property
    def xtts_config(self) -> Any:
        if self._xtts_config is None:
            if self.manifest.format == "fast":
                from voicecloning.engine.coqui import register_package

                register_package()  # the skeleton needs only submodules: skip TTS/__init__'s install checks
            from TTS.tts.configs.xtts_config import XttsConfig

            config = XttsConfig()
            config.load_json(str(self.model_dir / "config.json"))
            self._xtts_config = config
        return self._xtts_config

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def device(self) -> str:
        if self.config.device != "auto":
            return self.config.device
        return "cuda" if torch.cuda.is_available() else "cpu"

    def languages(self) -> tuple[str, ...]:
        """Languages of the checkpoint, read from its config (never a hand-written list)."""
        return tuple(self.xtts_config.languages)

    def check_language(self, language: str) -> str:
        supported = self.languages()
        if language not in supported:
            raise UnsupportedLanguage(
                f"language '{language}' is not supported by model {self.manifest.model_name}; "
                f"use one of: {', '.join(supported)}."
            )
        return language

    def char_limit(self, language: str) -> int:
        return int(_char_limits().get(language.split("-")[0], DEFAULT_CHAR_LIMIT))

    def describe(self) -> dict[str, Any]:
        return {
            "model_name": self.manifest.model_name,
            "model_version": self.manifest.model_version,
            "model_type": "xtts",
            "license": self.manifest.license,
            "dev_model": self.manifest.dev,
            "languages": list(self.languages()),
            "loaded": self.loaded,
            "device": self.device,
            "precision": self.config.precision,
            "sample_rate": OUTPUT_RATE,
        }

    # ---- the model ------------------------------------------------------------------
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from voicecloning.engine.loader import load_model

        if self.manifest.format != "fast":  # coqui's own Xtts builds transformers' GPT-2 (the converted form does not)
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()  # its config warnings about XTTS's GPT-2 are noise to operators
        threads = self.config.threads or available_cpus()
        torch.set_num_threads(threads)
        started = time.perf_counter()
        model = load_model(self.model_dir, self.xtts_config, device=self.device, precision=self.config.precision)
        self.load_seconds = time.perf_counter() - started
        log.info(
            "model loaded",
            extra={"json_fields": {"model_dir": str(self.model_dir), "seconds": round(self.load_seconds, 2),
                                   "threads": threads, "device": self.device}},
        )
        if self.manifest.dev:
            log.warning("DEVELOPMENT MODEL WITH RANDOM WEIGHTS: its audio is noise")
        return model

    # ---- enrollment -------------------------------------------------------------------
    @torch.inference_mode()
    def compute_latents(self, samples: np.ndarray, sample_rate: int = CONDITIONING_RATE) -> VoiceLatents:
        """Conditioning latents of a prepared reference clip (mono float32)."""
        model = self.model()
        audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).unsqueeze(0).to(model.device)
        cfg = self.xtts_config
        max_samples = int(cfg.max_ref_len * sample_rate)
        audio = audio[:, :max_samples]
        speaker_embedding = model.get_speaker_embedding(audio, sample_rate)
        gpt_cond_latent = model.get_gpt_cond_latents(
            audio, sample_rate, length=cfg.gpt_cond_len, chunk_length=cfg.gpt_cond_chunk_len
        )
        self._release_enrollment_pages(model)
        return VoiceLatents(
            gpt_cond_latent=gpt_cond_latent.float().cpu(),
            speaker_embedding=speaker_embedding.float().cpu(),
            model_name=self.manifest.model_name,
            model_version=self.manifest.model_version,
        )

    def _release_enrollment_pages(self, model: Any) -> None:
        """The enrollment-only weights' pages go back to the file they are mapped from (``engine.pages``)."""
        if self.manifest.format != "fast":
            return
        from voicecloning.engine.fastload import WEIGHTS
        from voicecloning.engine.pages import release_file_pages

        modules = (model.gpt.conditioning_encoder, model.gpt.conditioning_perceiver, model.hifigan_decoder.speaker_encoder)
        release_file_pages(modules, self.model_dir / WEIGHTS)

    # ---- synthesis -------------------------------------------------------------------
    def synthesize(
        self,
        latents: VoiceLatents,
        segments: Sequence[str],
        language: str,
        options: GenerationOptions,
        on_segment: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """24 kHz float32 audio of ``segments`` spoken in the voice of ``latents``, levelled, with pauses."""
        return synthesis.join_with_pauses(self.render(latents, segments, language, options, on_segment))

    def render(
        self,
        latents: VoiceLatents,
        segments: Sequence[str],
        language: str,
        options: GenerationOptions,
        on_segment: Callable[[int, int], None] | None = None,
    ) -> list[np.ndarray]:
        """24 kHz float32 audio of each segment, in order, unlevelled and without pauses (parts, captions)."""
        self.check_language(language)
        model = self.model()
        self._check_latents(model, latents)
        return synthesis.render_segments(
            model,
            latents,
            list(segments),
            language,
            options,
            max_new_tokens=self.config.max_audio_tokens,
            on_segment=on_segment,
        )

    def _check_latents(self, model: Any, latents: VoiceLatents) -> None:
        channels = model.args.gpt_n_model_channels
        if latents.gpt_cond_latent.shape[-1] != channels or latents.speaker_embedding.shape[1] != model.args.d_vector_dim:
            raise VoiceUnavailable(
                f"this voice was enrolled with a different model ({latents.model_name}); "
                "upload its reference clip again to re-enroll it."
            )
