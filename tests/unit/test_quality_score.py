"""The scorer's arithmetic and normalisation, without audio: alignment, CER, flags, text cleaning."""

from __future__ import annotations

import pytest

from voicecloning.quality.normalise import model_language, normalise
from voicecloning.quality.score import Thresholds, align, score_text

T = Thresholds()
TEXT = normalise("Please call me back before noon tomorrow, if you have the time.", "en")


def test_edit_distance_is_levenshtein() -> None:
    """kitten -> sitting takes three edits; nothing heard costs the whole text."""
    assert align("kitten", "sitting").distance == 3
    assert align("abc", "").distance == 3
    assert align("", "abc").distance == 3


def test_the_covered_prefix_is_what_a_cut_off_take_said() -> None:
    """A take that stops after 'the quick' is closest to that prefix of the text."""
    alignment = align("the quick brown fox", "the quick")
    assert alignment.covered == len("the quick") and alignment.covered_distance == 0


def test_numbers_case_and_punctuation_do_not_count_as_errors() -> None:
    """Digits are spelled out the way XTTS says them, on both sides; case and punctuation vanish."""
    assert normalise("On the 3rd of May, 42 people paid $15!", "en") == normalise(
        "on the third of may forty-two people paid fifteen dollars", "en"
    )
    assert normalise("Don't STOP—now!", "en") == "dont stop now"
    assert normalise("Dr. Smith is 25% sure.", "en") == "doctor smith is twenty five percent sure"


def test_chinese_and_japanese_are_compared_without_spaces() -> None:
    """Words there are not separated by spaces; only the characters are compared."""
    assert normalise("你好，世界。", "zh-cn") == "你好世界"
    assert model_language("zh-cn") == "zh"


def test_a_faithful_transcript_passes() -> None:
    """A near word-for-word transcript raises no flag."""
    score = score_text(TEXT, normalise("Please call me back before noon tomorrow if you have no time.", "en"), 3.8, T)
    assert score.flags == () and score.cer < 0.1


def test_another_sentence_is_only_a_high_error_rate() -> None:
    """A different sentence is an error rate, not a cut-off or babble."""
    score = score_text(TEXT, normalise("The quick brown fox jumps over the lazy dog.", "en"), 3.0, T)
    assert score.flags == ("high_cer",)


def test_a_missing_tail_is_truncated() -> None:
    """Only the first half heard (its last word misheard): the tail is missing."""
    score = score_text(TEXT, normalise("Please call me back before doing it.", "en"), 2.0, T)
    assert "truncated" in score.flags and "babble" not in score.flags


def test_a_lost_last_word_is_an_error_not_a_cut() -> None:
    """Dropping only 'time' (4 characters) is below the tail limit: not called truncated."""
    score = score_text(TEXT, normalise("Please call me back before noon tomorrow, if you have the", "en"), 3.5, T)
    assert score.flags == ()


def test_saying_it_twice_is_babble() -> None:
    """The text said twice is babble."""
    score = score_text(TEXT, f"{TEXT} {TEXT}", 8.0, T)
    assert "babble" in score.flags and "truncated" not in score.flags
    assert score.cer == 1.0  # capped: one segment cannot swamp a job's mean


def test_a_repeat_partly_misheard_is_still_babble() -> None:
    """What Whisper once wrote for a sentence said twice: shorter than two exact copies (135 characters
    normalised for 80), still far too much for the text."""
    text = normalise("On the 3rd of May, 42 people paid $15 each for their tickets.", "en")
    heard = normalise("On the turn of May, 42 people paint $50 for naticus. " * 2, "en")
    score = score_text(text, heard, 9.3, T)
    assert "babble" in score.flags and "truncated" not in score.flags


def test_speech_far_longer_than_the_text_is_babble_even_unheard() -> None:
    """Mumbling that Whisper cannot write down still counts: 20 s of speech for a 60-character text."""
    score = score_text(TEXT, "", 20.0, T)
    assert "babble" in score.flags


@pytest.mark.parametrize("max_cer", [0.05, 0.5])
def test_the_error_rate_limit_is_a_setting(max_cer: float) -> None:
    """max_cer alone decides high_cer."""
    heard = normalise("Please call me back before noon tomorrow if you have no time.", "en")
    score = score_text(TEXT, heard, 3.8, Thresholds(max_cer=max_cer))
    assert ("high_cer" in score.flags) == (score.cer > max_cer)


def test_an_empty_text_passes_with_nothing_to_say() -> None:
    """A segment with no words to say cannot fail."""
    assert score_text("", "", 0.0, T).flags == ()
