"""Text normalisation before scoring: numbers, case and punctuation, per language.

The reference text goes through the same cleaners XTTS itself applies before
speaking (coqui's ``multilingual_cleaners``: numbers, ordinals, currencies,
abbreviations and symbols written out in the language), and so does the
transcript, which Whisper writes with digits and symbols. Both then lose
their punctuation and case, so only the words are compared.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

_SPACES = re.compile(r"\s+")
_APOSTROPHES = re.compile(r"['’`´]")
_UNSPACED = ("zh", "ja")  # written without spaces between words: compare characters only


def model_language(language: str) -> str:
    """The base language code (``zh-cn`` -> ``zh``), as Whisper and coqui's cleaners name it."""
    return language.strip().lower().split("-")[0]


@functools.cache
def _cleaners() -> Callable[[str, str], str]:
    from TTS.tts.layers.xtts.tokenizer import multilingual_cleaners

    return multilingual_cleaners


def _spell_out(text: str, language: str) -> str:
    """Numbers and symbols written out as XTTS would say them; text unchanged where coqui has no rules."""
    try:
        return _cleaners()(text, language)
    except (KeyError, NotImplementedError):  # a language without symbol/ordinal tables, or num2words lacking it
        return text


def normalise(text: str, language: str) -> str:
    """``text`` as bare words: spelled-out numbers, lower case, no punctuation or symbols, single spaces."""
    lang = model_language(language)
    text = unicodedata.normalize("NFKC", text)
    text = _spell_out(text, lang).lower()
    text = _APOSTROPHES.sub("", text)
    kept = "".join(" " if unicodedata.category(ch)[0] in "PSC" else ch for ch in text)
    return _SPACES.sub("" if lang in _UNSPACED else " ", kept).strip()
