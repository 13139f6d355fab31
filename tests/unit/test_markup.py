"""Inline markup: <break>, <sub>, and a clear refusal of anything else that looks like a tag."""

from __future__ import annotations

import pytest

from voicecloning.errors import InvalidRequest
from voicecloning.markup import MAX_BREAK_S, Break, Text, parse, pause_seconds, spoken_text


def test_plain_text_is_one_text_chunk() -> None:
    assert parse("Hello  world.") == [Text("Hello world.")]


@pytest.mark.parametrize(("tag", "seconds"), [
    ('<break time="700ms"/>', 0.7), ('<break time="1.5s"/>', 1.5), ("<break time='2s' />", 2.0),
    ('<BREAK TIME="250MS">', 0.25), ('<break time=" 10s "/>', 10.0), ('<break time=".5s"/>', 0.5),
])
def test_a_break_becomes_a_pause_of_that_length(tag: str, seconds: float) -> None:
    assert parse(f"One. {tag} Two.") == [Text("One."), Break(seconds), Text("Two.")]


@pytest.mark.parametrize(("tag", "fragment"), [
    ('<break time="11s"/>', f"at most {MAX_BREAK_S:g} s"),
    ('<break time="0ms"/>', "more than 0"),
    ('<break time="fast"/>', 'needs a time such as time="700ms"'),
    ("<break/>", "needs a time"),
    ('<break strength="strong"/>', "attribute 'strength' of <break strength=\"strong\"/> is not supported"),
    ('<break time="1s" oops/>', "is not well-formed"),
])
def test_a_bad_break_is_refused_with_the_reason(tag: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(f"One. {tag} Two.")
    assert fragment in str(info.value)


def test_pauses_are_bounded_in_total() -> None:
    with pytest.raises(InvalidRequest, match="the pauses add up to more than 120 s"):
        parse("Wait." + '<break time="10s"/>' * 13 + "Done.")


def test_sub_speaks_the_alias_instead_of_the_enclosed_text() -> None:
    chunks = parse('The <sub alias="World Health Organization">WHO</sub> said so.')
    assert chunks == [Text("The World Health Organization said so.")]


def test_sub_alias_may_carry_entities_and_single_quotes() -> None:
    assert parse("<sub alias='A &amp; B'>A&amp;B</sub> now") == [Text("A & B now")]


@pytest.mark.parametrize(("text", "fragment"), [
    ('<sub alias="">WHO</sub>', "needs a non-empty alias"),
    ('<sub alias="x"/>', "must enclose the text it replaces"),
    ('<sub alias="x">WHO', "a <sub> tag is not closed"),
    ('<sub alias="x">W<break time="1s"/>HO</sub>', "inside <sub> is not supported"),
    ('<sub lang="en" alias="x">WHO</sub>', "attribute 'lang'"),
])
def test_a_bad_sub_is_refused_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize("tag", ['<prosody rate="slow">', "<emphasis>", "</p>", '<say-as interpret-as="date">',
                                 "<audio src='x.wav'/>", "</break>"])
def test_any_other_tag_is_refused_naming_the_tag(tag: str) -> None:
    """Unsupported markup is never read aloud nor silently dropped: the job fails with the tag's name."""
    with pytest.raises(InvalidRequest) as info:
        parse(f"Hello {tag}there")
    message = str(info.value)
    assert f"markup {tag} is not supported" in message
    assert "<break" in message and "&lt;" in message


@pytest.mark.parametrize(("text", "spoken"), [
    ("3 < 4 and 5 > 2", "3 < 4 and 5 > 2"),
    ("a<b", "a<b"),
    ("x <- y", "x <- y"),
    ("Write &lt;emphasis&gt; to see it", "Write <emphasis> to see it"),
    ("Fish &amp; chips", "Fish & chips"),
])
def test_angle_brackets_that_are_not_tags_and_entities_are_spoken_as_text(text: str, spoken: str) -> None:
    assert parse(text) == [Text(spoken)]


def test_an_outer_speak_element_is_accepted_and_removed() -> None:
    assert parse('<speak>Hi <break time="1s"/> there</speak>') == [Text("Hi"), Break(1.0), Text("there")]


def test_text_of_only_pauses_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no words to speak"):
        parse('<break time="1s"/> <break time="2s"/>')


def test_helpers_give_the_words_and_the_total_pause() -> None:
    chunks = parse('A <break time="500ms"/> B <break time="1.5s"/> C')
    assert spoken_text(chunks) == "A B C" and pause_seconds(chunks) == 2.0


def test_long_tags_are_shown_shortened_in_messages() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse("<x" + " a" * 200 + ">")
    assert len(str(info.value)) < 300 and "…" in str(info.value)
