"""Pronunciation lexicons: ``lexicons/<name>.json`` rules applied to the text before segmentation.

A lexicon object is ``{"rules": [{"match": "SQL", "say": "sequel", "case_sensitive": true,
"whole_word": true}, ...]}``; ``case_sensitive`` defaults to false, ``whole_word`` to true.
A request names lexicons in ``"lexicons"``; a user's request finds
``users/<uid>/lexicons/<name>.json`` first, then the shared ``lexicons/<name>.json``,
never another user's. Rules apply in order: lexicons in the order named, rules in
file order, each rule to the text the previous one produced.

"Whole word" means the match is not preceded or followed by a letter, digit or
``_`` (so ``C++`` and ``.NET`` work as whole words too).

Apply rules to the *spoken* text only: parse markup first (``markup.parse``),
then ``apply`` to each ``Text`` chunk, so a rule never rewrites a tag.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voicecloning.errors import InvalidRequest, TransientError
from voicecloning.routes import ID_RULE, valid_id
from voicecloning.stores.blobs import BlobStore

MAX_LEXICONS = 8  # per request
MAX_LEXICON_BYTES = 256 * 1024
MAX_RULES = 2000  # per lexicon
MAX_MATCH_CHARS = 200
MAX_SAY_CHARS = 400
MAX_GROWTH = 4  # applied text may be at most this many times the original (plus 1,000 characters)
RULE_FIELDS = {"match", "say", "case_sensitive", "whole_word"}


@dataclass(frozen=True)
class Rule:
    match: str
    say: str
    case_sensitive: bool = False
    whole_word: bool = True
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        body = re.escape(self.match)
        if self.whole_word:
            body = rf"(?<!\w){body}(?!\w)"
        object.__setattr__(self, "pattern", re.compile(body, 0 if self.case_sensitive else re.IGNORECASE))

    def apply(self, text: str) -> str:
        return self.pattern.sub(lambda _m: self.say, text)


@dataclass(frozen=True)
class Lexicon:
    name: str
    object: str  # the object name it was read from
    generation: int
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class LoadedLexicons:
    lexicons: tuple[Lexicon, ...] = ()

    @property
    def used(self) -> list[dict[str, Any]]:
        """What the job document records: ``[{name, object, generation}, ...]`` (generation as a string)."""
        return [{"name": lx.name, "object": lx.object, "generation": str(lx.generation)} for lx in self.lexicons]

    def apply(self, text: str) -> str:
        """``text`` with every rule applied in order; refuses results that grow without bound."""
        out = text
        limit = MAX_GROWTH * len(text) + 1000
        for lexicon in self.lexicons:
            for rule in lexicon.rules:
                out = rule.apply(out)
                if len(out) > limit:
                    raise InvalidRequest(
                        f"lexicon '{lexicon.name}' makes the text longer than {limit:,} characters "
                        f"(rule for {rule.match!r}); check that no rule's 'say' contains its own 'match'."
                    )
        return out


def object_names(name: str, owner: str | None) -> list[str]:
    """Where lexicon ``name`` is looked for, in order."""
    shared = f"lexicons/{name}.json"
    return [f"users/{owner}/lexicons/{name}.json", shared] if owner else [shared]


def load(names: Sequence[str], owner: str | None, inputs: BlobStore) -> LoadedLexicons:
    """The named lexicons read from the input bucket; ``InvalidRequest`` names any unknown or invalid one."""
    if len(names) > MAX_LEXICONS:
        raise InvalidRequest(f"the request names {len(names)} lexicons; at most {MAX_LEXICONS} are allowed.")
    loaded = []
    for name in dict.fromkeys(names):
        if not valid_id(name):
            raise InvalidRequest(f"lexicon name {name[:64]!r} is not valid; {ID_RULE}.")
        loaded.append(_load_one(name, owner, inputs))
    return LoadedLexicons(tuple(loaded))


def _load_one(name: str, owner: str | None, inputs: BlobStore) -> Lexicon:
    candidates = object_names(name, owner)
    for object_name in candidates:
        for _attempt in range(3):  # replaced between stat and read: read the newer one
            info = inputs.stat(object_name)
            if info is None:
                break
            if info.size > MAX_LEXICON_BYTES:
                raise InvalidRequest(
                    f"lexicon '{name}' ({object_name}) is {info.size:,} bytes; the limit is {MAX_LEXICON_BYTES:,}."
                )
            data = inputs.read(object_name, info.generation)
            if data is not None:
                return Lexicon(name, object_name, info.generation, parse_rules(data, name))
        else:
            raise TransientError(f"lexicon {object_name} kept changing while it was read")
    where = " or ".join(candidates)
    raise InvalidRequest(f"lexicon '{name}' does not exist; upload it as {where}.")


def parse_rules(data: bytes, name: str) -> tuple[Rule, ...]:
    """The rules of one lexicon file, or ``InvalidRequest`` naming the lexicon and what is wrong."""
    where = f"lexicon '{name}'"
    try:
        body = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidRequest(f"{where} is not UTF-8 text; save it as UTF-8 JSON.") from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    if not isinstance(body, dict) or not isinstance(body.get("rules"), list):
        raise InvalidRequest(f"{where} must be an object with a 'rules' list.")
    raw = body["rules"]
    if len(raw) > MAX_RULES:
        raise InvalidRequest(f"{where} has {len(raw)} rules; at most {MAX_RULES} are allowed.")
    return tuple(_rule(entry, f"{where}, rule {i + 1}") for i, entry in enumerate(raw))


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{where} must be an object with 'match' and 'say'.")
    unknown = sorted(set(entry) - RULE_FIELDS)
    if unknown:
        raise InvalidRequest(f"{where} has an unknown field '{str(unknown[0])[:40]}'; known: {', '.join(sorted(RULE_FIELDS))}.")
    match, say = entry.get("match"), entry.get("say")
    if not isinstance(match, str) or not match.strip() or len(match) > MAX_MATCH_CHARS:
        raise InvalidRequest(f"{where}: 'match' must be a non-empty string of at most {MAX_MATCH_CHARS} characters.")
    if not isinstance(say, str) or len(say) > MAX_SAY_CHARS:
        raise InvalidRequest(f"{where}: 'say' must be a string of at most {MAX_SAY_CHARS} characters.")
    flags = {}
    for key, default in (("case_sensitive", False), ("whole_word", True)):
        value = entry.get(key, default)
        if not isinstance(value, bool):
            raise InvalidRequest(f"{where}: '{key}' must be true or false.")
        flags[key] = value
    return Rule(match, say, **flags)
