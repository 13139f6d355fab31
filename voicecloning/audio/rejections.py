"""The ``ClipRejected`` messages shared by the decoders.

Messages are shown to users verbatim: what is wrong, then what to do.
"""

from __future__ import annotations

from voicecloning.audio.durations import describe_duration
from voicecloning.errors import ClipRejected

# A clip may run this much past the limit: compressed formats add encoder
# padding, and nobody should be refused over a fraction of a second.
LENGTH_SLACK_S = 0.5

FORMAT_NAMES = {
    "wav": "WAV",
    "flac": "FLAC",
    "ogg": "OGG",
    "opus": "Opus",
    "mp3": "MP3",
    "m4a": "M4A",
    "aac": "AAC",
    "webm": "WebM",
}
_ACCEPTED = "a WAV, FLAC, OGG, Opus, MP3, M4A, AAC or WebM recording"


def exceeds(seconds: float, max_seconds: float) -> bool:
    return seconds > max_seconds + LENGTH_SLACK_S


def too_long(seconds: float | None, max_seconds: float, *, estimated: bool = False) -> ClipRejected:
    """``seconds``: the clip's length when known (``estimated`` from a bitrate), None when not."""
    limit = describe_duration(max_seconds)
    if seconds is None:
        return ClipRejected(f"the clip is longer than {limit}; upload at most {limit} of audio.")
    about = "about " if estimated else ""
    return ClipRejected(f"the clip is {about}{describe_duration(seconds)} long; upload at most {limit}.")


def too_long_at_rate(seconds: float | None, rate: int, fits_s: float, max_seconds: float,
                     max_rate: int) -> ClipRejected:
    """A clip whose sample rate is above ``max_rate`` holds more samples than the limit allows."""
    length = f"is {describe_duration(seconds)} long" if seconds is not None else "is too long"
    return ClipRejected(
        f"the clip {length} at a sample rate of {rate:,} Hz; at that rate at most {describe_duration(fits_s)} "
        f"fit (the limit is {describe_duration(max_seconds)} at {max_rate:,} Hz or less). "
        f"Export the recording at {max_rate / 1000:g} kHz or less, or upload a shorter clip."
    )


def undecodable(extension: str) -> ClipRejected:
    name = FORMAT_NAMES[extension]
    return ClipRejected(
        f"the file could not be decoded as {name} audio; upload {_ACCEPTED}, "
        "and check that the file extension matches its format."
    )


def damaged(extension: str) -> ClipRejected:
    name = FORMAT_NAMES[extension]
    return ClipRejected(
        f"the {name} file is damaged or truncated; export the recording again and upload the complete file."
    )


def truncated(extension: str, announced_s: float, present_s: float) -> ClipRejected:
    name = FORMAT_NAMES[extension]
    return ClipRejected(
        f"the {name} file is damaged or truncated: its header announces "
        f"{describe_duration(announced_s)} of audio but the file holds only {describe_duration(present_s)}; "
        "export the recording again and upload the complete file."
    )


def no_audio_track(extension: str) -> ClipRejected:
    name = FORMAT_NAMES[extension]
    return ClipRejected(f"the {name} file has no audio track; upload {_ACCEPTED} with sound in it.")


def no_samples(extension: str) -> ClipRejected:
    name = FORMAT_NAMES[extension]
    return ClipRejected(
        f"the {name} file contains no audio samples; export the recording again and upload the complete file."
    )


def empty_file() -> ClipRejected:
    return ClipRejected(f"the uploaded file is empty; upload {_ACCEPTED}.")


def low_sample_rate(rate: int, min_rate: int) -> ClipRejected:
    return ClipRejected(
        f"the recording's sample rate is {rate} Hz, too low for voice cloning; "
        f"upload a recording made at {min_rate} Hz or more."
    )
