"""Voice-activity detection with silero-vad, fast enough to run on every upload.

silero-vad's model is a small encoder (STFT + 4 convolutions) applied to each
32 ms window, followed by an LSTM cell that carries state from window to
window. Its reference loop (``get_speech_timestamps``) calls the whole model
once per window from Python -- about 0.3 s for 30 s of audio, and far slower
with more than one torch thread. Here the package's own TorchScript model is
used unchanged but batched: its encoder runs on all windows in one call and a
``torch.nn.LSTM`` holding the model's LSTM weights runs the recurrence in C++.
The speech probabilities match the reference loop to within 1e-4 (a test pins
this), and segments come from silero-vad's own ``get_speech_timestamps_from_probs``.

The model is loaded once per process, lazily, from the weights that ship in
the silero-vad wheel (no network). Inference runs on one torch thread; the
process-wide thread count is restored afterwards.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

VAD_SAMPLE_RATE = 16000
_WINDOW = 512  # samples per window at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous window the model sees
_HIDDEN = 128
_threads_lock = threading.Lock()


@dataclass(frozen=True)
class SpeechSegment:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@contextmanager
def _single_torch_thread() -> Iterator[None]:
    """Run the block on one intra-op thread, then restore the process setting."""
    with _threads_lock:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


@dataclass(frozen=True)
class _SileroModel:
    jit: Any  # the 16 kHz TorchScript sub-model (stft, encoder, decoder)
    lstm: torch.nn.LSTM
    timestamps_from_probs: Any


@lru_cache(maxsize=1)
def _model() -> _SileroModel:
    with _single_torch_thread(), warnings.catch_warnings():  # importing silero_vad sets 1 thread
        warnings.simplefilter("ignore", DeprecationWarning)  # its importlib.resources and torch.jit.load use
        import silero_vad

        jit = silero_vad.load_silero_vad(onnx=False)._model
    weights = jit.state_dict()
    lstm = torch.nn.LSTM(_HIDDEN, _HIDDEN, batch_first=True)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(weights["decoder.rnn.weight_ih"])
        lstm.weight_hh_l0.copy_(weights["decoder.rnn.weight_hh"])
        lstm.bias_ih_l0.copy_(weights["decoder.rnn.bias_ih"])
        lstm.bias_hh_l0.copy_(weights["decoder.rnn.bias_hh"])
    lstm.eval()
    return _SileroModel(jit=jit, lstm=lstm, timestamps_from_probs=silero_vad.get_speech_timestamps_from_probs)


def speech_probabilities(samples_16k: np.ndarray) -> np.ndarray:
    """Speech probability of each 32 ms window of 16 kHz mono audio (last window zero-padded)."""
    model = _model()
    audio = torch.from_numpy(np.ascontiguousarray(samples_16k, dtype=np.float32))
    windows = -(-len(audio) // _WINDOW)
    if windows == 0:
        return np.zeros(0, dtype=np.float32)
    padded = F.pad(audio, (_CONTEXT, windows * _WINDOW - len(audio)))
    frames = padded.unfold(0, _CONTEXT + _WINDOW, _WINDOW)  # (windows, 576), zeros before the first
    with _single_torch_thread(), torch.inference_mode():
        features = model.jit.encoder(model.jit.stft(frames)).squeeze(-1)  # (windows, 128)
        hidden, _ = model.lstm(features.unsqueeze(0))
        out = model.jit.decoder.decoder(hidden[0].unsqueeze(-1))  # dropout, relu, 1x1 conv, sigmoid
    return out.squeeze(1).mean(dim=1).numpy().astype(np.float32)


def speech_segments(samples_16k: np.ndarray) -> list[SpeechSegment]:
    """Speech regions of 16 kHz mono audio, with silero-vad's default thresholds and padding."""
    probabilities = speech_probabilities(samples_16k)
    if probabilities.size == 0:
        return []
    stamps = _model().timestamps_from_probs(
        probabilities.tolist(), sampling_rate=VAD_SAMPLE_RATE, audio_length_samples=len(samples_16k)
    )
    return [SpeechSegment(s["start"] / VAD_SAMPLE_RATE, s["end"] / VAD_SAMPLE_RATE) for s in stamps]
