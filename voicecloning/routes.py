"""What an object name in the input bucket means, and where its results go.

    voices/<voice_id>.<ext>                   a reference clip: enroll voice <voice_id>
    voices/<voice_id>/<n>.<ext>               one of several clips of voice <voice_id>
    voices/<voice_id>.consent.json            a consent statement for voice <voice_id>
    requests/<job_id>.json                    a synthesis request: job <job_id>
    batches/<batch_id>.jsonl                  a batch manifest: one job per line (docs/PRODUCT.md)
    users/<uid>/voices/..., users/<uid>/requests/..., users/<uid>/batches/...   the same, owned by user <uid>

Anything else is ignored -- including ``lexicons/<name>.json``, which requests
read when they name them (voicecloning/lexicon.py). Ids are 1-64 letters, digits, '-' or '_'; an
object in a known place with a bad id routes to an ``invalid`` record so the
user learns why (its document id is derived from a hash, never from the name).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "use 1-64 letters, digits, '-' or '_'"
LATENTS_SUFFIX = ".latents.safetensors"


def valid_id(value: str) -> bool:
    return ID_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class Route:
    kind: str  # "voice" | "consent" | "request" | "batch"
    owner: str | None
    id: str
    ext: str
    part: str | None = None  # clip name within a multi-clip voice
    problem: str | None = None  # set when the name is in a known place but its id is invalid

    @property
    def prefix(self) -> str:
        return f"users/{self.owner}/" if self.owner else ""

    @property
    def doc_path(self) -> str:
        collection = {"request": "jobs", "batch": "batches"}.get(self.kind, "voices")
        return f"{self.prefix}{collection}/{self.id}"

    def output_name(self, extension: str) -> str:
        return output_name(self.owner, self.id, extension)


def output_name(owner: str | None, job_id: str, extension: str) -> str:
    """The final audio (and captions) of a job: ``[users/<uid>/]outputs/<job_id>.<ext>``."""
    prefix = f"users/{owner}/" if owner else ""
    return f"{prefix}outputs/{job_id}.{extension}"


def part_name(owner: str | None, job_id: str, index: int, extension: str) -> str:
    """One rendered part: ``[users/<uid>/]outputs/<job_id>/parts/<n>.<ext>``."""
    prefix = f"users/{owner}/" if owner else ""
    return f"{prefix}outputs/{job_id}/parts/{index}.{extension}"


def voice_doc_path(owner: str | None, voice_id: str) -> str:
    return f"users/{owner}/voices/{voice_id}" if owner else f"voices/{voice_id}"


def latents_name(owner: str | None, voice_id: str, generation: int) -> str:
    prefix = f"users/{owner}/" if owner else ""
    return f"{prefix}voices/{voice_id}.{generation}{LATENTS_SUFFIX}"


_CLIP = re.compile(r"(?P<id>[^/]+)\.(?P<ext>[A-Za-z0-9]{1,8})")
_PART = re.compile(r"(?P<id>[^/]+)/(?P<part>[^/]+)\.(?P<ext>[A-Za-z0-9]{1,8})")


def route(name: str) -> Route | None:
    """The route of object ``name``, or None if the service should ignore it."""
    owner: str | None = None
    rest = name
    if name.startswith("users/"):
        parts = name.split("/", 2)
        if len(parts) < 3:
            return None
        owner, rest = parts[1], parts[2]
    if rest.startswith("voices/"):
        tail = rest[len("voices/") :]
        if tail.endswith(".consent.json") and "/" not in tail:
            return _checked(Route("consent", owner, tail[: -len(".consent.json")], "json"), name)
        if m := _CLIP.fullmatch(tail):
            return _checked(Route("voice", owner, m["id"], m["ext"].lower()), name)
        if m := _PART.fullmatch(tail):
            return _checked(Route("voice", owner, m["id"], m["ext"].lower(), part=m["part"]), name)
        return _invalid("voice", owner, name, f"'{_show(name)}' is not a clip name; upload clips as voices/<voice_id>.<ext>.")
    if rest.startswith("requests/"):
        tail = rest[len("requests/") :]
        if "/" not in tail and tail.lower().endswith(".json"):
            return _checked(Route("request", owner, tail[: -len(".json")], "json"), name)
        return _invalid("request", owner, name, f"'{_show(name)}' is not a request name; upload requests as requests/<job_id>.json.")
    if rest.startswith("batches/"):
        tail = rest[len("batches/") :]
        if "/" not in tail and tail.lower().endswith(".jsonl"):
            return _checked(Route("batch", owner, tail[: -len(".jsonl")], "jsonl"), name)
        return _invalid("batch", owner, name, f"'{_show(name)}' is not a batch name; upload manifests as batches/<batch_id>.jsonl.")
    return None


def _checked(r: Route, name: str) -> Route:
    what = {"request": "job", "voice": "voice", "consent": "voice", "batch": "batch"}[r.kind]
    if r.owner is not None and not valid_id(r.owner):
        return _invalid(r.kind, None, name, f"the user id in '{_show(name)}' is not valid; {ID_RULE}.")
    if not valid_id(r.id):
        return _invalid(r.kind, r.owner, name, f"the {what} id '{_show(r.id)}' in '{_show(name)}' is not valid; {ID_RULE}.")
    if r.part is not None and not valid_id(r.part):
        return _invalid(r.kind, r.owner, name, f"the clip name '{_show(r.part)}' in '{_show(name)}' is not valid; {ID_RULE}.")
    return r


def _invalid(kind: str, owner: str | None, name: str, problem: str) -> Route:
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    owner = owner if owner is not None and valid_id(owner) else None
    return Route(kind, owner, f"invalid-{digest}", "", problem=problem)


def _show(text: str, limit: int = 80) -> str:
    """Text safe to put in a message: printable, bounded."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
