"""A decoded upload -> the reference audio XTTS conditions a voice on.

``prepare_reference`` resamples to 22050 Hz (XTTS's conditioning rate), finds
speech with silero-vad, refuses clips without enough speech or drowned in
noise, trims leading and trailing non-speech (keeping 0.2 s), keeps at most
``max_reference_seconds`` (cut at a pause when there is one), and normalises
loudness. Everything it measured travels with the result as ``facts()`` for
the voice document, with user-readable warnings. Deterministic: the same
input gives the same output, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voicecloning.audio.decode import DecodedAudio
from voicecloning.audio.durations import describe_duration
from voicecloning.audio.measures import clipping_ratio, integrated_loudness, normalise_loudness, snr_db
from voicecloning.audio.resample import resample
from voicecloning.audio.vad import VAD_SAMPLE_RATE, SpeechSegment, speech_segments
from voicecloning.errors import ClipRejected

REFERENCE_SAMPLE_RATE = 22050
TRIM_MARGIN_S = 0.2  # non-speech kept before the first and after the last word
GAP_S = 0.3  # silence between clips joined by combine_clips
_FADE_S = 0.01  # fade-out where a clip is cut
_MIN_PIECE_S = 1.0  # combine_clips drops a cut-off tail shorter than this
_VAD_PEAK = 0.5  # quiet clips are raised towards this peak for the VAD only...
_VAD_MAX_GAIN = 10.0  # ...by at most +20 dB


@dataclass(frozen=True)
class ClipChecks:
    """Thresholds for reference clips.

    * ``min_speech_seconds`` (3.0): less detected speech is rejected; XTTS
      needs a few seconds to capture a voice.
    * ``max_reference_seconds`` (30.0): only this much of the trimmed clip
      is kept (more adds little and costs time); longer clips get a warning.
    * ``target_lufs`` (-23.0): integrated loudness of the result (EBU R128).
    * ``max_clipping_ratio_warn`` (0.001): more samples at full scale than
      this fraction gives a "clipped" warning.
    * ``min_snr_db_warn`` (15.0): a lower speech-to-noise ratio gives a
      "background noise" warning.
    * ``min_snr_db_reject`` (3.0): below this the noise is about as loud as
      the voice and the clip is rejected; the clone would copy the noise.
    """

    min_speech_seconds: float = 3.0
    max_reference_seconds: float = 30.0
    target_lufs: float = -23.0
    max_clipping_ratio_warn: float = 0.001
    min_snr_db_warn: float = 15.0
    min_snr_db_reject: float = 3.0


@dataclass(frozen=True)
class PreparedClip:
    samples: np.ndarray  # float32 mono at 22050 Hz, trimmed, loudness-normalised
    sample_rate: int  # 22050
    source_sample_rate: int
    source_duration_s: float
    duration_s: float  # of ``samples``
    speech_s: float  # VAD speech seconds in the source
    clipping_ratio: float
    snr_db: float | None  # None: no non-speech to measure noise in
    loudness_lufs: float | None  # of the source; None when unmeasurable
    warnings: tuple[str, ...]  # user-readable sentences

    def facts(self) -> dict[str, object]:
        """The measurements and warnings as JSON-able plain values (for the voice document)."""
        return {
            "sample_rate": self.sample_rate,
            "source_sample_rate": self.source_sample_rate,
            "source_duration_s": round(self.source_duration_s, 3),
            "duration_s": round(self.duration_s, 3),
            "speech_s": round(self.speech_s, 3),
            "clipping_ratio": round(self.clipping_ratio, 6),
            "snr_db": None if self.snr_db is None else round(self.snr_db, 1),
            "loudness_lufs": None if self.loudness_lufs is None else round(self.loudness_lufs, 1),
            "warnings": list(self.warnings),
        }


def prepare_reference(audio: DecodedAudio, checks: ClipChecks = ClipChecks()) -> PreparedClip:
    """Check and prepare one decoded clip; ``ClipRejected`` with the reason when it cannot be used."""
    rate = REFERENCE_SAMPLE_RATE
    segments = speech_segments(_vad_input(audio))
    speech_s = float(sum(segment.duration_s for segment in segments))
    _require_speech(speech_s, audio.duration_s, checks)
    clip = resample(audio.samples, audio.sample_rate, rate)
    snr = snr_db(clip, rate, segments)
    if snr is not None and snr < checks.min_snr_db_reject:
        raise ClipRejected(
            f"the background noise is about as loud as the voice (signal-to-noise ratio {snr:.0f} dB); "
            "record again in a quiet room, close to the microphone."
        )
    start_s, end_s = _speech_span(segments, len(clip) / rate)
    kept_end_s = _reference_end(segments, start_s, end_s, checks.max_reference_seconds)
    span = clip[int(start_s * rate) : int(math.ceil(kept_end_s * rate))]
    if kept_end_s < end_s:
        span = _fade_out(span, rate)
    samples = normalise_loudness(span, rate, checks.target_lufs)
    clipped = clipping_ratio(audio.samples)
    warnings = _warnings(clipped, snr, end_s - start_s, len(samples) / rate, checks)
    return PreparedClip(
        samples=samples,
        sample_rate=rate,
        source_sample_rate=audio.sample_rate,
        source_duration_s=audio.duration_s,
        duration_s=len(samples) / rate,
        speech_s=speech_s,
        clipping_ratio=clipped,
        snr_db=snr,
        loudness_lufs=integrated_loudness(clip, rate),
        warnings=warnings,
    )


def _vad_input(audio: DecodedAudio) -> np.ndarray:
    """16 kHz copy for the VAD; a quiet recording is raised (at most +20 dB) so soft speech is found."""
    at_16k = resample(audio.samples, audio.sample_rate, VAD_SAMPLE_RATE)
    peak = float(np.max(np.abs(at_16k))) if at_16k.size else 0.0
    if 0.0 < peak < _VAD_PEAK:
        at_16k *= np.float32(min(_VAD_PEAK / peak, _VAD_MAX_GAIN))
    return at_16k


def _require_speech(speech_s: float, duration_s: float, checks: ClipChecks) -> None:
    wanted = describe_duration(checks.min_speech_seconds)
    if speech_s == 0.0:
        raise ClipRejected(
            f"no speech found in the {describe_duration(duration_s)} clip; "
            f"upload at least {wanted} of one person speaking."
        )
    if speech_s < checks.min_speech_seconds:
        found = math.floor(speech_s * 10) / 10  # never print "3.0 s found" for 2.96 s
        raise ClipRejected(f"only {found:.1f} s of speech found; upload at least {wanted} of one person speaking.")


def _speech_span(segments: Sequence[SpeechSegment], duration_s: float) -> tuple[float, float]:
    """From just before the first speech to just after the last, within the clip."""
    return max(0.0, segments[0].start_s - TRIM_MARGIN_S), min(duration_s, segments[-1].end_s + TRIM_MARGIN_S)


def _reference_end(segments: Sequence[SpeechSegment], start_s: float, end_s: float, max_s: float) -> float:
    """Where the reference ends: ``end_s`` if it fits, else in the last pause that fits, else at the limit.

    A pause only counts when it keeps at least half of ``max_s``.
    """
    limit = start_s + max_s
    if end_s <= limit:
        return end_s
    cut = limit
    for index, segment in enumerate(segments):
        if start_s + max_s / 2 <= segment.end_s <= limit:
            next_start = segments[index + 1].start_s if index + 1 < len(segments) else end_s
            cut = min(segment.end_s + TRIM_MARGIN_S, next_start, limit)
    return cut


def _fade_out(samples: np.ndarray, rate: int) -> np.ndarray:
    out = samples.astype(np.float32, copy=True)
    length = min(len(out), int(_FADE_S * rate))
    if length:
        out[-length:] *= np.linspace(1.0, 0.0, length, dtype=np.float32)
    return out


def _warnings(
    clipped: float, snr: float | None, trimmed_s: float, kept_s: float, checks: ClipChecks
) -> tuple[str, ...]:
    warnings = []
    if clipped > checks.max_clipping_ratio_warn:
        warnings.append(
            f"{clipped:.1%} of the recording is clipped (distorted at full volume); the cloned voice may "
            "sound harsh, so record again with the input level turned down."
        )
    if snr is not None and snr < checks.min_snr_db_warn:
        warnings.append(
            f"the recording has noticeable background noise (signal-to-noise ratio {snr:.0f} dB); "
            "the cloned voice may carry it, so a quieter recording gives better results."
        )
    if kept_s < trimmed_s:
        warnings.append(
            f"the clip holds {describe_duration(trimmed_s)} of audio after trimming silence; "
            f"only the first {describe_duration(kept_s)} are used as the voice reference."
        )
    return tuple(warnings)


def combine_clips(clips: Sequence[PreparedClip], max_seconds: float) -> PreparedClip:
    """One reference from several prepared clips of the same voice, at most ``max_seconds`` long.

    Clips are joined in order with 0.3 s of silence between them; a clip
    that does not fit is cut (with a warning), or dropped if less than 1 s of
    it would fit. Warnings are merged without repeats; numbers are combined:
    durations and speech add up, the clipping ratio and loudness are averaged
    by duration, the SNR is the worst clip's, the source rate the lowest.
    """
    if not clips:
        raise ValueError("combine_clips needs at least one clip")
    rate = clips[0].sample_rate
    if any(clip.sample_rate != rate for clip in clips):
        raise ValueError("combine_clips needs clips at one sample rate")
    gap = np.zeros(int(GAP_S * rate), dtype=np.float32)
    pieces, cut = _fit_pieces([clip.samples for clip in clips], len(gap), int(max_seconds * rate), rate)
    joined = [part for index, piece in enumerate(pieces) for part in ((gap, piece) if index else (piece,))]
    samples = np.concatenate(joined).astype(np.float32, copy=False)
    warnings = list(dict.fromkeys(warning for clip in clips for warning in clip.warnings))
    if cut:
        offered_s = sum(clip.duration_s for clip in clips) + GAP_S * (len(clips) - 1)
        warnings.append(
            f"the clips hold {describe_duration(offered_s)} of audio together; "
            f"only the first {describe_duration(len(samples) / rate)} are used as the voice reference."
        )
    return _combined(clips, samples, rate, tuple(warnings))


def _fit_pieces(bodies: Sequence[np.ndarray], gap: int, limit: int, rate: int) -> tuple[list[np.ndarray], bool]:
    pieces: list[np.ndarray] = []
    used = 0
    for body in bodies:
        room = limit - used - (gap if pieces else 0)
        if len(body) <= room:
            pieces.append(body)
            used += len(body) + (gap if len(pieces) > 1 else 0)
            continue
        if room >= _MIN_PIECE_S * rate or not pieces:
            pieces.append(_fade_out(body[: max(room, 0)], rate))
        return pieces, True
    return pieces, False


def _combined(clips: Sequence[PreparedClip], samples: np.ndarray, rate: int, warnings: tuple[str, ...]) -> PreparedClip:
    durations = np.array([clip.source_duration_s for clip in clips])
    weights = durations / durations.sum() if durations.sum() > 0 else np.full(len(clips), 1 / len(clips))
    snrs = [clip.snr_db for clip in clips if clip.snr_db is not None]
    loudness = [clip.loudness_lufs for clip in clips]
    mean_power = sum(w * 10 ** (lufs / 10) for w, lufs in zip(weights, loudness, strict=True) if lufs is not None)
    return PreparedClip(
        samples=samples,
        sample_rate=rate,
        source_sample_rate=min(clip.source_sample_rate for clip in clips),
        source_duration_s=float(durations.sum()),
        duration_s=len(samples) / rate,
        speech_s=float(sum(clip.speech_s for clip in clips)),
        clipping_ratio=float(sum(w * clip.clipping_ratio for w, clip in zip(weights, clips, strict=True))),
        snr_db=min(snrs) if snrs else None,
        loudness_lufs=None if None in loudness else float(10 * np.log10(mean_power)),
        warnings=warnings,
    )
