"""One flat exception hierarchy.

The split between the two families is the retry policy:

* ``InputError`` -- permanent; the user must change something. Handlers record
  ``failed`` with ``str(exc)`` as the reason and acknowledge the event.
* ``TransientError`` -- the platform should redeliver the event. Handlers
  raise it (HTTP 500) after recording the attempt.

Messages of ``InputError`` are shown to users verbatim: write them as a
sentence that says what is wrong and what to do.
"""

from __future__ import annotations


class VoiceCloningError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(VoiceCloningError):
    """Bad input: permanent, user-actionable, never retried."""


class InvalidId(InputError):
    """An id in an object name is not 1-64 letters, digits, '-' or '_'."""


class InvalidRequest(InputError):
    """A synthesis request is not valid JSON of the documented schema."""


class UnsupportedLanguage(InputError):
    """The loaded model does not support the requested language."""


class UnsupportedFormat(InputError):
    """An audio format (input extension or requested output) is not supported."""


class ClipRejected(InputError):
    """A reference clip cannot be used (undecodable, too short, silent, too big...)."""


class VoiceUnavailable(InputError):
    """The requested voice does not exist, failed enrollment, or is not the user's."""


class ConsentMissing(InputError):
    """Consent is required by configuration and the clip carries none."""


class TransientError(VoiceCloningError):
    """Temporary trouble: raise so the platform redelivers the event."""


class VoiceNotReady(TransientError):
    """The voice is still being enrolled; the request should be retried later."""


class JobBusy(TransientError):
    """Another worker holds a live lease on this job; retry later."""


class Overtaken(VoiceCloningError):
    """This run no longer holds its lease (taken over, or superseded by a newer upload): stop, change nothing."""


class PreconditionFailed(VoiceCloningError):
    """An object changed between reading its facts and writing or deleting it (a generation precondition)."""


class ConfigurationError(VoiceCloningError):
    """The service is misconfigured (no model, licence not accepted, bad setting).

    Not the user's fault and not fixed by retrying the same event soon: the
    operator must act. Startup fails loudly with it.
    """


class LicenseNotAccepted(ConfigurationError):
    """XTTS-v2 weights would have to be downloaded without licence acceptance."""
