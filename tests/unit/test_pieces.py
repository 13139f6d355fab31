"""Request text to pieces: markup parsed per item, lexicons applied to spoken chunks, breaks as pauses."""

from __future__ import annotations

import pytest

from handlers.prepare import pieces
from voicecloning.errors import InvalidRequest
from voicecloning.lexicon import Lexicon, LoadedLexicons, Rule
from voicecloning.parts import PAUSE_BETWEEN_ITEMS_S, segments_of
from voicecloning.request import parse_request
from voicecloning.settings import Limits


def request(**body: object):  # type: ignore[no-untyped-def]
    import json

    return parse_request(json.dumps(body).encode(), Limits())


def lexicons(*rules: Rule) -> LoadedLexicons:
    return LoadedLexicons((Lexicon("t", "lexicons/t.json", 1, rules),))


def test_a_break_becomes_the_pause_before_the_next_piece_replacing_the_designed_one() -> None:
    got = pieces(request(text='One. <break time="700ms"/> Two. <break time="1s"/><break time="0.5s"/> Three.',
                         voice_id="v"))
    assert [(p.text, p.pause_before_s) for p in got] == [("One.", 0.0), ("Two.", 0.7), ("Three.", 1.5)]


def test_items_keep_the_designed_pause_and_a_trailing_break_carries_into_the_next_item() -> None:
    got = pieces(request(items=[{"text": "Hi.", "voice_id": "a"}, {"text": 'Hello. <break time="2s"/>', "voice_id": "b"},
                                {"text": "Bye.", "voice_id": "a"}]))
    assert [(p.text, p.voice_id, p.pause_before_s) for p in got] == [
        ("Hi.", "a", 0.0), ("Hello.", "b", PAUSE_BETWEEN_ITEMS_S), ("Bye.", "a", 2.0)]


def test_a_break_before_the_first_words_is_dropped_by_segmentation() -> None:
    got = pieces(request(text='<break time="1s"/> Start. Then more.', voice_id="v"))
    assert got[0].pause_before_s == 1.0
    assert segments_of(got, lambda _lang: 250)[0].pause_before_s == 0.0


def test_lexicons_apply_to_spoken_text_and_aliases_never_to_tags() -> None:
    rules = lexicons(Rule("break", "pause"), Rule("WHO", "who"))
    got = pieces(request(text='A break. <break time="1s"/> <sub alias="World Health Organization">WHO</sub> says.',
                         voice_id="v"), rules)
    assert [(p.text, p.pause_before_s) for p in got] == [("A pause.", 0.0),
                                                        ("World Health Organization says.", 1.0)]


def test_a_lexicon_that_removes_every_word_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no words to speak"):
        pieces(request(text="Hush.", voice_id="v"), lexicons(Rule("Hush", "")))
