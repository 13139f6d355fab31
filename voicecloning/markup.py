"""Inline markup in a request's ``text``: the subset XTTS can honour.

Supported:

* ``<break time="700ms"/>`` or ``<break time="1.5s"/>`` -- a pause of that length,
  more than 0 and at most ``MAX_BREAK_S`` (10 s) each, at most ``MAX_TOTAL_BREAK_S``
  (120 s) per text. Single or double quotes; ``<break time="1s">`` without the slash too.
* ``<sub alias="World Health Organization">WHO</sub>`` -- the alias is spoken
  instead of the enclosed text (which must be plain text).
* An optional ``<speak>...</speak>`` around the whole text (SSML habit) is accepted and removed.
* ``&lt;`` ``&gt;`` ``&amp;`` ``&quot;`` ``&apos;`` are the literal characters.

Anything else that looks like a tag (``<`` + a letter or ``/`` ... ``>``, e.g.
``<prosody rate="slow">`` or ``<emphasis>``) is **refused** with an
``InvalidRequest`` naming the tag: speaking it aloud would read the markup to the
listener, and silently dropping it would ignore what the user asked for.
A ``<`` that does not start a tag (``3 < 4``, ``a<b``) is ordinary text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from voicecloning.errors import InvalidRequest

MAX_BREAK_S = 10.0
MAX_TOTAL_BREAK_S = 120.0
SUPPORTED = "<break time=\"700ms\"/>, <sub alias=\"…\">…</sub>"

_TAG = re.compile(r"<\s*(/?)\s*([A-Za-z][\w:.-]*)([^<>]*?)(/?)\s*>")
_ATTR = re.compile(r"""\s*([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_TIME = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s)\s*", re.IGNORECASE)
_SPEAK = re.compile(r"^\s*<speak\s*>(.*)</speak\s*>\s*$", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Break:
    seconds: float


Chunk = Text | Break


def parse(text: str) -> list[Chunk]:
    """The text as spoken pieces and pauses, in order; ``InvalidRequest`` for unsupported markup.

    Adjacent text is merged, surrounding spaces trimmed; a text that is only
    pauses is refused (there is nothing to speak).
    """
    if m := _SPEAK.match(text):
        text = m[1]
    chunks: list[Chunk] = []
    pos = 0
    open_sub: tuple[str, int] | None = None  # (alias, where its content starts)
    total_break = 0.0
    for m in _TAG.finditer(text):
        closing, name, attrs, self_closing = m[1] == "/", m[2].lower(), m[3], m[4] == "/"
        tag = _show(m[0])
        if open_sub is not None:
            if name != "sub" or not closing:
                raise InvalidRequest(f"markup {tag} inside <sub> is not supported; <sub> may only enclose plain text.")
            alias, _start = open_sub
            chunks.append(Text(alias))
            open_sub, pos = None, m.end()
            continue
        _add_text(chunks, text[pos : m.start()])
        pos = m.end()
        if name == "break" and not closing:
            seconds = _break_seconds(_attrs(attrs, tag, {"time"}), tag)
            total_break += seconds
            if total_break > MAX_TOTAL_BREAK_S:
                raise InvalidRequest(f"the pauses add up to more than {MAX_TOTAL_BREAK_S:g} s; use fewer or shorter <break> tags.")
            chunks.append(Break(seconds))
        elif name == "sub" and not closing and not self_closing:
            alias = html.unescape(_attrs(attrs, tag, {"alias"}).get("alias", "")).strip()
            if not alias:
                raise InvalidRequest(f"{tag} needs a non-empty alias, e.g. <sub alias=\"World Health Organization\">WHO</sub>.")
            open_sub = (alias, m.end())
        elif name == "sub":
            raise InvalidRequest(f"{tag} must enclose the text it replaces: <sub alias=\"…\">…</sub>.")
        else:
            raise InvalidRequest(
                f"markup {tag} is not supported; only {SUPPORTED} are. Write '<' as &lt; to speak it as text."
            )
    if open_sub is not None:
        raise InvalidRequest("a <sub> tag is not closed; write <sub alias=\"…\">…</sub>.")
    _add_text(chunks, text[pos:])
    result = _trimmed(chunks)
    if not any(isinstance(c, Text) for c in result):
        raise InvalidRequest("the text has only pauses and no words to speak.")
    return result


def spoken_text(chunks: list[Chunk]) -> str:
    """The words alone (for character counts and quotas)."""
    return " ".join(c.text for c in chunks if isinstance(c, Text))


def pause_seconds(chunks: list[Chunk]) -> float:
    return sum(c.seconds for c in chunks if isinstance(c, Break))


def _add_text(chunks: list[Chunk], raw: str) -> None:
    if not raw:
        return
    piece = html.unescape(raw)
    if chunks and isinstance(chunks[-1], Text):
        chunks[-1] = Text(chunks[-1].text + piece)
    else:
        chunks.append(Text(piece))


def _trimmed(chunks: list[Chunk]) -> list[Chunk]:
    out: list[Chunk] = []
    for chunk in chunks:
        if isinstance(chunk, Text):
            words = " ".join(chunk.text.split())
            if not words:
                continue
            if out and isinstance(out[-1], Text):  # a <sub> alias next to text
                out[-1] = Text(f"{out[-1].text} {words}")
                continue
            out.append(Text(words))
        else:
            out.append(chunk)
    return out


def _attrs(raw: str, tag: str, allowed: set[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    pos = 0
    for m in _ATTR.finditer(raw):
        if raw[pos : m.start()].strip():
            break
        key = m[1].lower()
        if key not in allowed:
            raise InvalidRequest(f"attribute '{key}' of {tag} is not supported; use {SUPPORTED}.")
        values[key] = m[2] if m[2] is not None else m[3]
        pos = m.end()
    if raw[pos:].strip():
        raise InvalidRequest(f"{tag} is not well-formed; write attributes as name=\"value\", e.g. {SUPPORTED}.")
    return values


def _break_seconds(attrs: dict[str, str], tag: str) -> float:
    raw = attrs.get("time")
    m = _TIME.fullmatch(raw or "")
    if m is None:
        raise InvalidRequest(f"{tag} needs a time such as time=\"700ms\" or time=\"1.5s\".")
    seconds = float(m[1]) / (1000.0 if m[2].lower() == "ms" else 1.0)
    if not 0 < seconds <= MAX_BREAK_S:
        raise InvalidRequest(f"{tag} asks for {seconds:g} s; a pause must be more than 0 and at most {MAX_BREAK_S:g} s.")
    return seconds


def _show(tag: str, limit: int = 60) -> str:
    shown = "".join(ch if ch.isprintable() else "?" for ch in tag)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
