"""Splitting long text into XTTS segments on sentence boundaries."""

from __future__ import annotations

import re

import pytest

from voicecloning.text import has_speakable_content, normalise, split_text


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def test_short_text_is_one_segment() -> None:
    assert split_text("Hello there. How are you?", "en", 250) == ["Hello there. How are you?"]


def test_a_paragraph_splits_on_sentences_within_the_limit() -> None:
    text = " ".join(f"This is sentence number {i} of a paragraph." for i in range(30))
    segments = split_text(text, "en", 120)
    assert len(segments) > 5
    assert all(len(s) <= 120 for s in segments)
    assert all(s.endswith(".") for s in segments)  # whole sentences
    assert words(" ".join(segments)) == words(text)  # nothing lost or reordered


def test_abbreviations_do_not_end_sentences_in_english() -> None:
    segments = split_text("Dr. Smith met Mr. Jones at 3 p.m. yesterday. They talked.", "en", 40)
    assert segments[0].startswith("Dr. Smith met Mr. Jones")


def test_a_long_sentence_is_cut_between_words_never_inside_one() -> None:
    text = "word " * 200
    segments = split_text(text, "en", 50)
    assert all(len(s) <= 50 for s in segments)
    assert all(w == "word" for s in segments for w in s.split())


def test_scripts_without_spaces_are_cut_between_characters() -> None:
    text = "我们今天去公园散步。" * 20
    segments = split_text(text, "zh-cn", 82)
    assert all(len(s) <= 82 for s in segments)
    assert "".join(segments) == text


@pytest.mark.parametrize("lang", ["pt", "tr", "cs", "hu", "ko"])
def test_languages_without_pysbd_rules_split_on_punctuation(lang: str) -> None:
    text = "Primeira frase aqui. Segunda frase aqui! Terceira frase aqui?"
    segments = split_text(text, lang, 25)
    assert segments == ["Primeira frase aqui.", "Segunda frase aqui!", "Terceira frase aqui?"]


def test_normalise_and_speakable_content() -> None:
    assert normalise("  a\tb\n\x00c  ") == "a b c"
    assert has_speakable_content("Hi!") and has_speakable_content("42")
    assert not has_speakable_content("?!… 🎉")
    assert split_text("   ", "en", 100) == []
