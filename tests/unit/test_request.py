"""Parsing synthesis requests: valid ones become typed requests, bad ones say what to fix."""

from __future__ import annotations

import json

import pytest

from voicecloning.errors import InvalidRequest
from voicecloning.generation import GenerationOptions
from voicecloning.request import parse_request
from voicecloning.settings import Limits

LIMITS = Limits()


def parse(body: object) -> object:
    return parse_request(json.dumps(body).encode(), LIMITS)


def test_a_minimal_request_gets_documented_defaults() -> None:
    req = parse({"text": "Hello", "voice_id": "alice"})
    assert len(req.items) == 1 and req.items[0].language == "en"
    assert (req.format, req.sample_rate) == ("wav", 24000)
    assert req.options == GenerationOptions()


def test_settings_and_format_are_read() -> None:
    req = parse({"text": "Hi", "voice_id": "a", "language": "de", "format": "MP3", "sample_rate": 48000,
                 "temperature": 0.5, "top_k": 10, "seed": 42, "speed": 1.5})
    assert (req.format, req.sample_rate, req.items[0].language) == ("mp3", 48000, "de")
    assert (req.options.temperature, req.options.top_k, req.options.seed, req.options.speed) == (0.5, 10, 42, 1.5)


def test_items_make_a_multi_voice_dialogue() -> None:
    req = parse({"items": [{"text": "Hi", "voice_id": "a"}, {"text": "Hallo", "voice_id": "b", "language": "de"}]})
    assert req.voice_ids == ("a", "b") and req.languages == ("en", "de")


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not a list"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 50 + b"]" * 50, "nested 50 levels"),
        (json.dumps({"voice_id": "a"}).encode(), "'text' is missing"),
        (json.dumps({"text": 5, "voice_id": "a"}).encode(), "'text' must be a string"),
        (json.dumps({"text": "   ", "voice_id": "a"}).encode(), "'text' is empty"),
        (json.dumps({"text": "?!... 🎉🎉", "voice_id": "a"}).encode(), "no words to speak"),
        (json.dumps({"text": "hi"}).encode(), "'voice_id' is missing"),
        (json.dumps({"text": "hi", "voice_id": "../x"}).encode(), "not a valid voice id"),
        (json.dumps({"text": "hi", "voice_id": "a", "format": "aiff"}).encode(), "'format' 'aiff' is not supported"),
        (json.dumps({"text": "hi", "voice_id": "a", "sample_rate": 8000}).encode(), "'sample_rate' 8000"),
        (json.dumps({"text": "hi", "voice_id": "a", "temperature": 9}).encode(), "'temperature' is 9"),
        (json.dumps({"text": "hi", "voice_id": "a", "top_k": 1.5}).encode(), "whole number"),
        (json.dumps({"text": "hi", "voice_id": "a", "seed": "x"}).encode(), "'seed' must be a number"),
        (json.dumps({"text": "hi", "voice_id": "a", "temprature": 1}).encode(), "Did you mean 'temperature'"),
        (json.dumps({"text": "hi", "voice_id": "a", "language": 3}).encode(), "'language' must be a language code"),
        (json.dumps({"text": "x" * 500_001, "voice_id": "a"}).encode(), "the limit is 500,000"),
        (json.dumps({"items": [{"text": "x" * 25_001, "voice_id": "a"}] * 20}).encode(), "the text is 500,020 characters"),
        (json.dumps({"items": [{"text": "a", "voice_id": "a"}] * 20_001}).encode(),
         "'items' has 20001 entries; at most 20000 are allowed"),
        (json.dumps({"items": []}).encode(), "non-empty list"),
        (json.dumps({"items": [{"text": "a"}], "text": "b"}).encode(), "either 'text' or 'items'"),
        (b"{" + b" " * (4 * 1024 * 1024) + b"}", "the limit is 4,194,304 bytes"),
    ],
)
def test_bad_requests_say_what_to_fix(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_request(raw, LIMITS)
    assert fragment in str(info.value)


def test_a_book_length_request_within_the_limits_is_accepted() -> None:
    """The limits are a book: 500,000 characters, 20,000 dialogue turns, in a request file under 4 MiB."""
    req = parse({"text": "x" * 500_000, "voice_id": "a"})
    assert req.characters == 500_000
    turns = parse({"items": [{"text": "Hi.", "voice_id": f"v{i % 2}"} for i in range(20_000)]})
    assert len(turns.items) == 20_000 and turns.voice_ids == ("v0", "v1")


def test_a_utf8_bom_is_accepted() -> None:
    req = parse_request(b"\xef\xbb\xbf" + json.dumps({"text": "Hi", "voice_id": "a"}).encode(), LIMITS)
    assert req.items[0].text == "Hi"


def test_product_fields_default_to_off() -> None:
    req = parse({"text": "Hi", "voice_id": "a"})
    assert (req.captions, req.callback_url, req.lexicons, req.retain_text) == ((), None, (), True)
    summary = req.summary()
    assert (summary["captions"], summary["callback_url"], summary["lexicons"], summary["retain_text"]) == (
        [], None, [], True)


def test_product_fields_are_read_and_kept_in_the_summary() -> None:
    req = parse({"text": "Hi", "voice_id": "a", "captions": ["VTT", "srt", "vtt"],
                 "callback_url": "https://hooks.example.com/tts", "lexicons": ["tech", "names", "tech"],
                 "retain_text": False})
    assert req.captions == ("vtt", "srt") and req.lexicons == ("tech", "names")
    assert req.callback_url == "https://hooks.example.com/tts" and req.retain_text is False
    assert {k: req.summary()[k] for k in ("captions", "callback_url", "lexicons", "retain_text")} == {
        "captions": ["vtt", "srt"], "callback_url": "https://hooks.example.com/tts", "lexicons": ["tech", "names"],
        "retain_text": False}


@pytest.mark.parametrize(("extra", "fragment"), [
    ({"captions": "vtt"}, "'captions' must be a list of caption formats"),
    ({"captions": ["ass"]}, "'captions' format 'ass' is not supported; use \"vtt\", \"srt\""),
    ({"callback_url": "ftp://x.example/"}, "'callback_url' must be an https:// URL"),
    ({"callback_url": 7}, "'callback_url' must be a URL string"),
    ({"callback_url": "https://u:p@example.com/"}, "must not carry a user name"),
    ({"lexicons": "tech"}, "'lexicons' must be a list of lexicon names"),
    ({"lexicons": ["../etc"]}, "'lexicons' entry '../etc' is not a valid lexicon name"),
    ({"lexicons": [f"l{i}" for i in range(9)]}, "at most 8 are allowed"),
    ({"retain_text": "no"}, "'retain_text' must be true or false"),
    ({"caption": ["vtt"]}, "Did you mean 'captions'?"),
])
def test_bad_product_fields_are_refused_with_the_field_named(extra: dict[str, object], fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse({"text": "Hi", "voice_id": "a", **extra})
    assert fragment in str(info.value)
