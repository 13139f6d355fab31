"""Parse and validate a synthesis request (the JSON a user uploads to requests/<job_id>.json).

Schema: docs/REQUEST.md. Every rejection is an ``InvalidRequest`` whose message
names the field and what to do.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from voicecloning import webhooks
from voicecloning.audio import encode
from voicecloning.errors import InvalidRequest
from voicecloning.generation import RANGES, GenerationOptions
from voicecloning.lexicon import MAX_LEXICONS
from voicecloning.routes import ID_RULE, valid_id
from voicecloning.settings import Limits
from voicecloning.text import has_speakable_content, normalise

OUTPUT_FORMATS = tuple(encode.OUTPUT_FORMATS)  # what the encoder writes, in its order
OUTPUT_SAMPLE_RATES = encode.OUTPUT_SAMPLE_RATES
PRODUCT_FIELDS = {"captions", "callback_url", "lexicons", "retain_text"}
TOP_FIELDS = {"text", "voice_id", "language", "format", "sample_rate", "items", *RANGES, *PRODUCT_FIELDS}
CAPTION_FORMATS = ("vtt", "srt")
ITEM_FIELDS = {"text", "voice_id", "language"}


@dataclass(frozen=True)
class Item:
    text: str
    voice_id: str
    language: str


@dataclass(frozen=True)
class SynthesisRequest:
    items: tuple[Item, ...]
    format: str
    sample_rate: int
    options: GenerationOptions
    captions: tuple[str, ...] = ()  # caption files beside the audio ("vtt", "srt"); timings.json always
    callback_url: str | None = None  # syntax checked here; address policy checked by webhooks.check_url
    lexicons: tuple[str, ...] = ()  # lexicon names, in the order their rules apply
    retain_text: bool = True  # false: the text is removed from the job's documents once it is done

    @property
    def voice_ids(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.voice_id for item in self.items))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(item.language for item in self.items))

    @property
    def characters(self) -> int:
        return sum(len(item.text) for item in self.items)

    def summary(self) -> dict[str, Any]:
        """What the job document records about the request."""
        first = self.items[0]
        return {
            "voice_id": first.voice_id,
            "voice_ids": list(self.voice_ids),
            "language": first.language,
            "format": self.format,
            "sample_rate": self.sample_rate,
            "characters": self.characters,
            "items": len(self.items),
            "settings": self.options.to_dict(),
            "captions": list(self.captions),
            "callback_url": self.callback_url,
            "lexicons": list(self.lexicons),
            "retain_text": self.retain_text,
        }


def parse_request(data: bytes, limits: Limits) -> SynthesisRequest:
    """A validated request from the uploaded bytes, or ``InvalidRequest`` saying what is wrong."""
    if len(data) > limits.max_request_bytes:
        raise InvalidRequest(
            f"the request file is {len(data):,} bytes; the limit is {limits.max_request_bytes:,} bytes. "
            "Send shorter text or split it into several requests."
        )
    if not data.strip():
        raise InvalidRequest("the request file is empty; upload a JSON object with 'text' and 'voice_id'.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"the request file is not UTF-8 text (bad byte at position {exc.start}); save it as UTF-8.") from None
    depth = _max_depth(text)
    if depth > limits.max_json_depth:
        raise InvalidRequest(f"the request JSON is nested {depth} levels deep; at most {limits.max_json_depth} are allowed.")
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"the request is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest(f"the request must be a JSON object, not {_json_type(body)}.")
    _reject_unknown(body, TOP_FIELDS, "")
    return SynthesisRequest(
        items=_items(body, limits),
        format=_format(body),
        sample_rate=_sample_rate(body),
        options=GenerationOptions.from_request(body),
        captions=_captions(body),
        callback_url=webhooks.check_syntax(body["callback_url"]) if body.get("callback_url") is not None else None,
        lexicons=_lexicons(body),
        retain_text=_retain_text(body),
    )


def _captions(body: dict[str, Any]) -> tuple[str, ...]:
    raw = body.get("captions", [])
    allowed = ", ".join(f'"{f}"' for f in CAPTION_FORMATS)
    if not isinstance(raw, list) or not all(isinstance(f, str) for f in raw):
        raise InvalidRequest(f"'captions' must be a list of caption formats, e.g. [{allowed}].")
    for fmt in raw:
        if fmt.lower() not in CAPTION_FORMATS:
            raise InvalidRequest(f"'captions' format {fmt[:20]!r} is not supported; use {allowed}.")
    return tuple(dict.fromkeys(f.lower() for f in raw))


def _lexicons(body: dict[str, Any]) -> tuple[str, ...]:
    raw = body.get("lexicons", [])
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise InvalidRequest("'lexicons' must be a list of lexicon names, e.g. [\"tech\"].")
    names = tuple(dict.fromkeys(raw))
    if len(names) > MAX_LEXICONS:
        raise InvalidRequest(f"'lexicons' names {len(names)} lexicons; at most {MAX_LEXICONS} are allowed.")
    for name in names:
        if not valid_id(name):
            raise InvalidRequest(f"'lexicons' entry {name[:64]!r} is not a valid lexicon name; {ID_RULE}.")
    return names


def _retain_text(body: dict[str, Any]) -> bool:
    value = body.get("retain_text", True)
    if not isinstance(value, bool):
        raise InvalidRequest("'retain_text' must be true or false.")
    return value


def _items(body: dict[str, Any], limits: Limits) -> tuple[Item, ...]:
    if "items" in body:
        if "text" in body:
            raise InvalidRequest("give either 'text' or 'items', not both.")
        raw = body["items"]
        if not isinstance(raw, list) or not raw:
            raise InvalidRequest("'items' must be a non-empty list of objects with 'text' and 'voice_id'.")
        if len(raw) > limits.max_items:
            raise InvalidRequest(f"'items' has {len(raw)} entries; at most {limits.max_items} are allowed.")
        default_voice = body.get("voice_id")
        default_language = body.get("language", "en")
        items = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise InvalidRequest(f"items[{i}] must be an object with 'text' and 'voice_id'.")
            _reject_unknown(entry, ITEM_FIELDS, f"items[{i}].")
            merged = {"voice_id": default_voice, "language": default_language, **entry}
            items.append(_item(merged, f"items[{i}]."))
        result = tuple(items)
    else:
        result = (_item({"language": "en", **body}, ""),)
    total = sum(len(item.text) for item in result)
    if total > limits.max_text_chars:
        raise InvalidRequest(
            f"the text is {total:,} characters; the limit is {limits.max_text_chars:,}. Split it into several requests."
        )
    return result


def _item(entry: dict[str, Any], where: str) -> Item:
    text = entry.get("text")
    if text is None:
        raise InvalidRequest(f"'{where}text' is missing; give the text to speak.")
    if not isinstance(text, str):
        raise InvalidRequest(f"'{where}text' must be a string, not {_json_type(text)}.")
    text = normalise(text)
    if not text:
        raise InvalidRequest(f"'{where}text' is empty; give the text to speak.")
    if not has_speakable_content(text):
        raise InvalidRequest(f"'{where}text' has no words to speak (only punctuation, symbols or emoji).")
    voice_id = entry.get("voice_id")
    if voice_id is None:
        raise InvalidRequest(f"'{where}voice_id' is missing; name an enrolled voice.")
    if not isinstance(voice_id, str) or not valid_id(voice_id):
        raise InvalidRequest(f"'{where}voice_id' is not a valid voice id; {ID_RULE}.")
    language = entry.get("language")
    if not isinstance(language, str) or not language.strip():
        raise InvalidRequest(f"'{where}language' must be a language code such as \"en\".")
    return Item(text=text, voice_id=voice_id, language=language.strip().lower())


def _format(body: dict[str, Any]) -> str:
    fmt = body.get("format", "wav")
    if not isinstance(fmt, str) or fmt.lower() not in OUTPUT_FORMATS:
        raise InvalidRequest(f"'format' {fmt!r} is not supported; use one of: {', '.join(OUTPUT_FORMATS)}.")
    return fmt.lower()


def _sample_rate(body: dict[str, Any]) -> int:
    rate = body.get("sample_rate", 24000)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate not in OUTPUT_SAMPLE_RATES:
        allowed = ", ".join(str(r) for r in OUTPUT_SAMPLE_RATES)
        raise InvalidRequest(f"'sample_rate' {rate!r} is not supported; use one of: {allowed}.")
    return int(rate)


def _reject_unknown(body: dict[str, Any], known: set[str], where: str) -> None:
    for key in body:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else f" Known fields: {', '.join(sorted(known))}."
            raise InvalidRequest(f"unknown field '{where}{str(key)[:64]}'.{hint}")


def _max_depth(text: str) -> int:
    """Bracket nesting depth outside strings, without building the object."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )
