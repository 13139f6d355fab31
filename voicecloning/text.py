"""Split long text into XTTS segments on sentence boundaries, within a character limit.

XTTS conditions one generation on at most ~400 text tokens and ~28 s of
audio; its tokenizer warns past a per-language character limit. A segment is
one or more whole sentences under that limit; a sentence longer than the
limit is cut at clause punctuation, then between words, never inside a word
(except for scripts written without spaces, cut between characters).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# Languages pysbd segments with its own rules (abbreviations, numbers, quotes).
_PYSBD = {"en", "es", "fr", "de", "it", "pl", "ru", "nl", "ar", "hi", "ja", "zh"}
_NO_SPACES = {"zh", "ja"}
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？؟।…])\s+|(?<=[。！？])")
_CLAUSE_END = re.compile(r"(?<=[,;:،、，；：—])\s*")
_SPACE = re.compile(r"\s+")


def base_language(language: str) -> str:
    """``zh-cn`` -> ``zh``; XTTS's tokenizer and rules are keyed on the base language."""
    return language.split("-")[0].lower()


def normalise(text: str) -> str:
    """NFC, no control characters, single spaces."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return _SPACE.sub(" ", text).strip()


def has_speakable_content(text: str) -> bool:
    """True if ``text`` has at least one letter or digit (not only punctuation/emoji)."""
    return any(unicodedata.category(ch)[0] in ("L", "N") for ch in text)


@cache
def _segmenter(lang: str):  # type: ignore[no-untyped-def]
    import pysbd

    return pysbd.Segmenter(language=lang, clean=False)


BLOCK_CHARS = 2000  # pysbd's cost grows faster than the text: a book is segmented in blocks


def _blocks(text: str) -> list[str]:
    """``text`` cut at sentence-looking ends into blocks of about ``BLOCK_CHARS`` (never inside a sentence
    that the simple rule sees; pysbd then applies its own rules inside each block)."""
    if len(text) <= BLOCK_CHARS:
        return [text]
    blocks: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _SENTENCE_END.split(text):
        if current and size + len(piece) > BLOCK_CHARS:
            blocks.append(" ".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece) + 1
    if current:
        blocks.append(" ".join(current))
    return blocks


def sentences(text: str, language: str) -> list[str]:
    """Sentences of ``text`` by the language's own rules where we have them."""
    lang = base_language(language)
    if lang not in _PYSBD:
        parts = _SENTENCE_END.split(text)
    else:
        parts = [p for block in _blocks(text) for p in _segmenter(lang).segment(block)]
    return [p.strip() for p in parts if p and p.strip()]


def _cut(piece: str, limit: int, no_spaces: bool) -> list[str]:
    """Cut one over-long sentence: at clause marks, then words, then characters."""
    if len(piece) <= limit:
        return [piece]
    out: list[str] = []
    for unit_split, joiner in ((_CLAUSE_END.split, " "), (str.split, " ")):
        units = [u for u in unit_split(piece) if u]
        if len(units) > 1:
            current = ""
            for unit in units:
                candidate = f"{current}{joiner}{unit}" if current else unit
                if no_spaces and joiner == " " and current:
                    candidate = current + unit
                if len(candidate) <= limit:
                    current = candidate
                    continue
                if current:
                    out.append(current)
                current = unit
            if current:
                out.append(current)
            return [seg for part in out for seg in _cut(part, limit, no_spaces)]
    # A single unit longer than the limit: a word (or unspaced run) cut by characters.
    return [piece[i : i + limit] for i in range(0, len(piece), limit)]


def split_text(text: str, language: str, limit: int) -> list[str]:
    """Segments of ``text``, each at most ``limit`` characters, in order, nothing dropped."""
    text = normalise(text)
    if not text:
        return []
    no_spaces = base_language(language) in _NO_SPACES
    segments: list[str] = []
    current = ""
    for sentence in sentences(text, language):
        for piece in _cut(sentence, limit, no_spaces):
            sep = "" if no_spaces else " "
            candidate = f"{current}{sep}{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                segments.append(current)
                current = piece
    if current:
        segments.append(current)
    return segments
