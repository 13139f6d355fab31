"""The Product settings section: callbacks, quotas, retention, events and batch limits from the environment."""

from __future__ import annotations

import pytest

from voicecloning.errors import ConfigurationError
from voicecloning.settings import Product, Settings


def test_everything_is_off_by_default() -> None:
    assert Settings.from_env({}).product == Product()
    assert (Product().quota_chars_per_day, Product().retention_days, Product().webhook_secret) == (0, 0, "")


def test_each_variable_is_read() -> None:
    product = Settings.from_env({
        "VOICECLONING_WEBHOOK_SECRET": "s3cret",
        "VOICECLONING_WEBHOOK_ALLOW_HOSTS": " 127.0.0.1, Receiver.Local ,,127.0.0.1",
        "VOICECLONING_QUOTA_CHARS_PER_DAY": "50000",
        "VOICECLONING_QUOTA_AUDIO_SECONDS_PER_DAY": "3600.5",
        "VOICECLONING_RETENTION_DAYS": "30",
        "VOICECLONING_EVENTS_TOPIC": "job-events",
        "VOICECLONING_BATCH_MAX_LINES": "10",
        "VOICECLONING_BATCH_MAX_BYTES": "2048",
    }).product
    assert product == Product("s3cret", ("127.0.0.1", "receiver.local"), 50000, 3600.5, 30, "job-events", 10, 2048)


@pytest.mark.parametrize(("name", "value"), [
    ("VOICECLONING_QUOTA_CHARS_PER_DAY", "lots"), ("VOICECLONING_QUOTA_CHARS_PER_DAY", "-1"),
    ("VOICECLONING_QUOTA_AUDIO_SECONDS_PER_DAY", "an hour"), ("VOICECLONING_QUOTA_AUDIO_SECONDS_PER_DAY", "-5"),
    ("VOICECLONING_RETENTION_DAYS", "1.5"),
])
def test_bad_values_fail_at_start_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env({name: value})
