"""The web helpers' settings: CORS origins, the Firebase project and the upload limit, read from env."""

from __future__ import annotations

import pytest

from voicecloning.errors import ConfigurationError
from voicecloning.web_settings import CLOUD_RUN_REQUEST_LIMIT, WebSettings


def test_defaults_allow_no_cross_origin_calls() -> None:
    """With nothing set, no origin gets CORS headers and uploads are capped at Cloud Run's 32 MiB."""
    web = WebSettings.from_env({})
    assert web.allowed_origin("https://anywhere.example") is None
    assert web.max_upload_bytes == CLOUD_RUN_REQUEST_LIMIT and web.firebase_project is None


def test_only_listed_origins_are_allowed() -> None:
    """Origins are compared exactly (a trailing slash in the setting is ignored)."""
    web = WebSettings.from_env({"VOICECLONING_CORS_ORIGINS": "https://a.example/, http://127.0.0.1:5000",
                                "GOOGLE_CLOUD_PROJECT": "p1"})
    assert web.allowed_origin("https://a.example") == "https://a.example"
    assert web.allowed_origin("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert web.allowed_origin("https://b.example") is None
    assert web.firebase_project == "p1"


@pytest.mark.parametrize("env", [{"VOICECLONING_CORS_ORIGINS": "a.example"},
                                 {"VOICECLONING_MAX_UPLOAD_BYTES": "lots"},
                                 {"VOICECLONING_MAX_UPLOAD_BYTES": "0"}])
def test_bad_values_are_refused_with_the_variable_named(env: dict[str, str]) -> None:
    """A malformed value stops start-up with a message naming the variable."""
    with pytest.raises(ConfigurationError, match=next(iter(env))):
        WebSettings.from_env(env)
