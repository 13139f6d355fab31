"""Configuration, read once from the environment into a frozen object.

This is the only module that reads ``os.environ`` (apart from libraries that
read their own variables, such as the Google clients' emulator hosts, which
we also record here so they are visible and documented).
Every variable is documented in README.md ("Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from voicecloning.errors import ConfigurationError
from voicecloning.web_settings import WebSettings

BACKENDS = ("local", "gcp")
PRECISIONS = ("auto", "fp32", "fast", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")
QUALITY_GATES = ("off", "check", "repair")


@dataclass(frozen=True)
class Limits:
    """Input limits; each is a setting with a documented default."""

    max_clip_bytes: int = 50 * 1024 * 1024
    max_clip_seconds: float = 600.0  # longer clips are rejected before full decoding
    max_source_rate: int = 48000  # above this rate a clip may hold only max_clip_seconds x this many samples
    min_speech_seconds: float = 3.0
    max_reference_seconds: float = 30.0  # only this much of a clip conditions the voice
    max_request_bytes: int = 4 * 1024 * 1024  # 500,000 characters of any script, as JSON
    max_text_chars: int = 500_000  # a book
    max_json_depth: int = 8
    max_items: int = 20_000  # dialogue turns; a dialogue may be as long as a book


@dataclass(frozen=True)
class Reliability:
    """Retry, lease and age policy (see README "Reliability")."""

    max_attempts: int = 5
    lease_seconds: float = 180.0  # renewed every third of it while work progresses; a dead worker blocks this long
    max_event_age_seconds: float = 24 * 3600.0
    voice_wait_seconds: float = 600.0
    voice_poll_seconds: float = 2.0  # then redelivery backs off: a waiting request never holds a worker long
    progress_interval_seconds: float = 1.0


@dataclass(frozen=True)
class Parts:
    """How jobs are cut into parts that many workers render at once (docs/REQUEST.md "Parts")."""

    part_audio_seconds: float = 60.0  # ~30-60 s of compute on the reference shape: a tenth of a delivery
    first_part_audio_seconds: float = 8.0  # the first sentence or two: first audio after seconds
    aggregate_interval_seconds: float = 1.0  # at most one aggregate write per job document per interval


@dataclass(frozen=True)
class Settings:
    backend: str = "local"
    data_dir: Path = Path("data")
    input_bucket: str = "input"
    output_bucket: str = "output"
    project: str | None = None
    firestore_database: str = "(default)"
    firestore_emulator_host: str | None = None
    storage_emulator_host: str | None = None
    model_dir: Path | None = None
    tos_agreed: bool = False
    precision: str = "auto"
    device: str = "auto"
    threads: int | None = None
    max_audio_tokens: int | None = None  # cap per segment; tests and benchmarks only
    require_consent: bool = False
    log_level: str = "INFO"
    limits: Limits = field(default_factory=Limits)
    reliability: Reliability = field(default_factory=Reliability)
    parts: Parts = field(default_factory=Parts)
    tasks_topic: str | None = None  # Pub/Sub topic of part tasks (gcp); unset: parts run in the same delivery
    keep_parts: bool = False  # keep each part's audio object after the final file is assembled
    web: WebSettings = field(default_factory=WebSettings)
    quality: Quality = field(default_factory=lambda: Quality())
    product: Product = field(default_factory=lambda: Product())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        backend = _choice(env, "VOICECLONING_BACKEND", BACKENDS, "local")
        output_bucket = env.get("VOICECLONING_OUTPUT_BUCKET", "output" if backend == "local" else "")
        if backend == "gcp" and not output_bucket:
            raise ConfigurationError(
                "VOICECLONING_OUTPUT_BUCKET must name the output bucket when VOICECLONING_BACKEND=gcp."
            )
        input_bucket = env.get("VOICECLONING_INPUT_BUCKET", "input" if backend == "local" else "")
        if backend == "gcp" and not input_bucket:
            raise ConfigurationError(
                "VOICECLONING_INPUT_BUCKET must name the bucket that triggers the service when VOICECLONING_BACKEND=gcp."
            )
        if input_bucket == output_bucket:
            raise ConfigurationError(
                "VOICECLONING_OUTPUT_BUCKET must differ from VOICECLONING_INPUT_BUCKET: "
                "outputs written to the trigger bucket would trigger the service again."
            )
        model_dir = env.get("VOICECLONING_MODEL_DIR")
        threads = _int(env, "VOICECLONING_THREADS", 0)
        max_tokens = _int(env, "VOICECLONING_MAX_AUDIO_TOKENS", 0)
        return cls(
            backend=backend,
            data_dir=Path(env.get("VOICECLONING_DATA_DIR", "data")),
            input_bucket=input_bucket,
            output_bucket=output_bucket,
            project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT") or None,
            firestore_database=env.get("VOICECLONING_FIRESTORE_DATABASE", "(default)"),
            firestore_emulator_host=env.get("FIRESTORE_EMULATOR_HOST") or None,
            storage_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
            model_dir=Path(model_dir).expanduser() if model_dir else None,
            tos_agreed=env.get("COQUI_TOS_AGREED", "") == "1",
            precision=_choice(env, "VOICECLONING_PRECISION", PRECISIONS, "auto"),
            device=_choice(env, "VOICECLONING_DEVICE", DEVICES, "auto"),
            threads=threads or None,
            max_audio_tokens=max_tokens or None,
            require_consent=_bool(env, "VOICECLONING_REQUIRE_CONSENT"),
            log_level=env.get("VOICECLONING_LOG_LEVEL", "INFO").upper(),
            limits=_section(Limits, env, "VOICECLONING_"),
            reliability=_section(Reliability, env, "VOICECLONING_"),
            parts=_section(Parts, env, "VOICECLONING_"),
            tasks_topic=env.get("VOICECLONING_TASKS_TOPIC") or None,
            keep_parts=_bool(env, "VOICECLONING_KEEP_PARTS"),
            web=WebSettings.from_env(env, backend=backend),
            quality=Quality.from_env(env),
            product=Product.from_env(env),
        )


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name, default).strip().lower() or default
    if value not in allowed:
        raise ConfigurationError(f"{name}={value!r} is not one of {', '.join(allowed)}.")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name}={value!r} is not a boolean (use true or false).")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number.") from None
    if value < 0:
        raise ConfigurationError(f"{name}={raw!r} must not be negative.")
    return value


def _section(cls: type, env: Mapping[str, str], prefix: str):  # type: ignore[no-untyped-def]
    """Read each field of a limits dataclass from ``PREFIX<FIELD_NAME>``."""
    values = {}
    for f in fields(cls):
        name = prefix + f.name.upper()
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        kind = type(f.default)
        try:
            value = kind(raw)
        except ValueError:
            raise ConfigurationError(f"{name}={raw!r} is not a {kind.__name__}.") from None
        if value <= 0:
            raise ConfigurationError(f"{name}={raw!r} must be positive.")
        values[f.name] = value
    return cls(**values)


@dataclass(frozen=True)
class Quality:
    """The ASR quality gate (docs/QUALITY.md): off, check (score and flag) or repair (also re-render)."""

    gate: str = "check"
    max_rerenders: int = 2  # new takes of one flagged segment in repair mode
    max_cer: float = 0.35  # character error rate above which a segment is flagged
    fail_flagged: bool = False  # fail the job (instead of finishing with warnings) if segments stay flagged

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Quality:
        raw_cer = env.get("VOICECLONING_QUALITY_MAX_CER", "").strip()
        try:
            max_cer = float(raw_cer) if raw_cer else cls.max_cer
        except ValueError:
            raise ConfigurationError(f"VOICECLONING_QUALITY_MAX_CER={raw_cer!r} is not a number.") from None
        if not 0.0 < max_cer <= 1.0:
            raise ConfigurationError(f"VOICECLONING_QUALITY_MAX_CER={raw_cer!r} must be above 0 and at most 1.")
        return cls(
            gate=_choice(env, "VOICECLONING_QUALITY_GATE", QUALITY_GATES, cls.gate),
            max_rerenders=_int(env, "VOICECLONING_QUALITY_MAX_RERENDERS", cls.max_rerenders),
            max_cer=max_cer,
            fail_flagged=_bool(env, "VOICECLONING_QUALITY_FAIL_FLAGGED"),
        )


@dataclass(frozen=True)
class Product:
    """Callbacks, quotas, retention, events and batches (docs/PRODUCT.md). 0 / empty means "off"."""

    webhook_secret: str = ""  # HMAC key of X-Voicecloning-Signature; callbacks fail without it
    webhook_allow_hosts: tuple[str, ...] = ()  # hosts that may resolve to private addresses (and use http)
    quota_chars_per_day: int = 0  # per owner and UTC day; 0: no quota
    quota_audio_seconds_per_day: float = 0.0
    retention_days: int = 0  # outputs and job documents expire after this; 0: kept
    events_topic: str = ""  # Pub/Sub topic id (or projects/P/topics/T) for terminal events
    batch_max_lines: int = 1000
    batch_max_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Product:
        hosts = env.get("VOICECLONING_WEBHOOK_ALLOW_HOSTS", "")
        audio = env.get("VOICECLONING_QUOTA_AUDIO_SECONDS_PER_DAY", "").strip() or "0"
        try:
            audio_s = float(audio)
        except ValueError:
            raise ConfigurationError(f"VOICECLONING_QUOTA_AUDIO_SECONDS_PER_DAY={audio!r} is not a number.") from None
        if audio_s < 0 or audio_s != audio_s:
            raise ConfigurationError(f"VOICECLONING_QUOTA_AUDIO_SECONDS_PER_DAY={audio!r} must not be negative.")
        return cls(
            webhook_secret=env.get("VOICECLONING_WEBHOOK_SECRET", ""),
            webhook_allow_hosts=tuple(dict.fromkeys(h.strip().lower() for h in hosts.split(",") if h.strip())),
            quota_chars_per_day=_int(env, "VOICECLONING_QUOTA_CHARS_PER_DAY", 0),
            quota_audio_seconds_per_day=audio_s,
            retention_days=_int(env, "VOICECLONING_RETENTION_DAYS", 0),
            events_topic=env.get("VOICECLONING_EVENTS_TOPIC", "").strip(),
            batch_max_lines=_int(env, "VOICECLONING_BATCH_MAX_LINES", 0) or cls.batch_max_lines,
            batch_max_bytes=_int(env, "VOICECLONING_BATCH_MAX_BYTES", 0) or cls.batch_max_bytes,
        )
