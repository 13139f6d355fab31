"""Pronunciation lexicons read from the input bucket (the embedded LocalBlobStore) and applied in order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from voicecloning.errors import InvalidRequest
from voicecloning.lexicon import MAX_LEXICON_BYTES, load, parse_rules
from voicecloning.stores.folder import LocalBlobStore


@pytest.fixture
def inputs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "input", "input")


def put(store: LocalBlobStore, name: str, rules: list[dict[str, object]] | str) -> int:
    data = rules if isinstance(rules, str) else json.dumps({"rules": rules})
    return store.write(name, data.encode(), "application/json").generation


def test_rules_apply_in_order_and_the_job_learns_which_versions_it_used(inputs: LocalBlobStore) -> None:
    """Lexicons in the order named, rules in file order; each records its object and generation."""
    g1 = put(inputs, "lexicons/tech.json", [{"match": "SQL", "say": "sequel", "case_sensitive": True},
                                            {"match": "sequel", "say": "S Q L"}])
    g2 = put(inputs, "lexicons/names.json", [{"match": "Nguyen", "say": "Win"}])
    loaded = load(["tech", "names"], None, inputs)
    assert loaded.apply("SQL and sql by Nguyen") == "S Q L and sql by Win"
    assert loaded.used == [{"name": "tech", "object": "lexicons/tech.json", "generation": str(g1)},
                           {"name": "names", "object": "lexicons/names.json", "generation": str(g2)}]


def test_case_insensitive_is_the_default(inputs: LocalBlobStore) -> None:
    put(inputs, "lexicons/l.json", [{"match": "GIF", "say": "jif"}])
    assert load(["l"], None, inputs).apply("gif, GIF, Gif") == "jif, jif, jif"


def test_whole_word_rules_do_not_touch_parts_of_words(inputs: LocalBlobStore) -> None:
    """Whole word is the default; symbols at the edge of a match (C++) still count as whole words."""
    put(inputs, "lexicons/l.json", [{"match": "cat", "say": "kitty"}, {"match": "C++", "say": "C plus plus"},
                                    {"match": "ing", "say": "ING", "whole_word": False, "case_sensitive": True}])
    assert load(["l"], None, inputs).apply("cat concatenate C++ code sing") == "kitty concatenate C plus plus code sING"


def test_whole_word_works_for_non_latin_scripts(inputs: LocalBlobStore) -> None:
    put(inputs, "lexicons/ru.json", [{"match": "ООН", "say": "оон", "case_sensitive": True}])
    assert load(["ru"], None, inputs).apply("ООН и ООНовцы") == "оон и ООНовцы"


def test_a_users_own_lexicon_comes_first_then_the_shared_one(inputs: LocalBlobStore) -> None:
    put(inputs, "lexicons/names.json", [{"match": "x", "say": "shared"}])
    put(inputs, "users/u1/lexicons/names.json", [{"match": "x", "say": "mine"}])
    assert load(["names"], "u1", inputs).apply("x") == "mine"
    assert load(["names"], "u2", inputs).apply("x") == "shared"
    assert load(["names"], None, inputs).apply("x") == "shared"


def test_another_users_lexicon_is_never_visible(inputs: LocalBlobStore) -> None:
    put(inputs, "users/u1/lexicons/private.json", [{"match": "x", "say": "y"}])
    with pytest.raises(InvalidRequest, match="lexicon 'private' does not exist"):
        load(["private"], "u2", inputs)
    with pytest.raises(InvalidRequest, match="lexicon 'private' does not exist; upload it as lexicons/private.json"):
        load(["private"], None, inputs)


def test_an_unknown_lexicon_names_itself_and_where_to_upload_it(inputs: LocalBlobStore) -> None:
    with pytest.raises(InvalidRequest) as info:
        load(["missing"], "u1", inputs)
    assert str(info.value) == ("lexicon 'missing' does not exist; upload it as users/u1/lexicons/missing.json "
                               "or lexicons/missing.json.")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "lexicon 'bad' is not valid JSON"),
        ('{"rules": {}}', "must be an object with a 'rules' list"),
        ('{"rules": ["x"]}', "lexicon 'bad', rule 1 must be an object"),
        ('{"rules": [{"say": "y"}]}', "rule 1: 'match' must be a non-empty string"),
        ('{"rules": [{"match": "a", "say": "b"}, {"match": "a", "say": 3}]}', "rule 2: 'say' must be a string"),
        ('{"rules": [{"match": "a", "say": "b", "whole_word": "yes"}]}', "'whole_word' must be true or false"),
        ('{"rules": [{"match": "a", "say": "b", "regex": true}]}', "unknown field 'regex'"),
    ],
)
def test_an_invalid_lexicon_is_refused_with_its_name_and_the_problem(inputs: LocalBlobStore, content: str,
                                                                     fragment: str) -> None:
    put(inputs, "lexicons/bad.json", content)
    with pytest.raises(InvalidRequest, match=re.escape(fragment)):
        load(["bad"], None, inputs)


def test_oversized_lexicons_and_invalid_names_are_refused(inputs: LocalBlobStore) -> None:
    put(inputs, "lexicons/big.json", " " * (MAX_LEXICON_BYTES + 1))
    with pytest.raises(InvalidRequest, match="the limit is"):
        load(["big"], None, inputs)
    with pytest.raises(InvalidRequest, match="lexicon name '../x' is not valid"):
        load(["../x"], None, inputs)


def test_a_rule_that_feeds_itself_cannot_grow_the_text_without_bound(inputs: LocalBlobStore) -> None:
    put(inputs, "lexicons/loop.json", [{"match": "a", "say": "a a a a a a"}] * 6)
    with pytest.raises(InvalidRequest, match="lexicon 'loop' makes the text longer"):
        load(["loop"], None, inputs).apply("a " * 300)


def test_no_lexicons_leave_the_text_unchanged(inputs: LocalBlobStore) -> None:
    loaded = load([], None, inputs)
    assert loaded.apply("SQL") == "SQL" and loaded.used == []


def test_special_characters_in_say_are_literal() -> None:
    """'say' is plain text, not a regex replacement template."""
    (rule,) = parse_rules(json.dumps({"rules": [{"match": "x", "say": r"\1 $0 \g<0>"}]}).encode(), "l")
    assert rule.apply("x") == r"\1 $0 \g<0>"
