"""Object names -> routes: what the service handles, ignores, and refuses."""

from __future__ import annotations

import pytest

from voicecloning.routes import latents_name, route, voice_doc_path


@pytest.mark.parametrize(
    ("name", "kind", "owner", "id_", "ext", "part"),
    [
        ("voices/alice.wav", "voice", None, "alice", "wav", None),
        ("voices/Bob_2.FLAC", "voice", None, "Bob_2", "flac", None),
        ("voices/alice/1.mp3", "voice", None, "alice", "mp3", "1"),
        ("voices/alice.consent.json", "consent", None, "alice", "json", None),
        ("requests/job-1.json", "request", None, "job-1", "json", None),
        ("users/u1/voices/mine.ogg", "voice", "u1", "mine", "ogg", None),
        ("users/u1/requests/j9.json", "request", "u1", "j9", "json", None),
    ],
)
def test_known_layout_routes_to_its_handler(name: str, kind: str, owner: str | None, id_: str, ext: str, part: str | None) -> None:
    r = route(name)
    assert r is not None and r.problem is None
    assert (r.kind, r.owner, r.id, r.ext, r.part) == (kind, owner, id_, ext, part)


@pytest.mark.parametrize("name", ["readme.txt", "outputs/job1.wav", "misc/voices/a.wav", "users/u1", "users/u1/other/x.json", ""])
def test_objects_outside_the_layout_are_ignored(name: str) -> None:
    assert route(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("requests/../etc.json", "not a request name"),
        ("requests/a b.json", "job id 'a b'"),
        ("requests/" + "x" * 65 + ".json", "is not valid"),
        ("requests/héllo.json", "job id 'héllo'"),
        ("voices/..wav", "voice id"),
        ("users/../requests/j.json", "user id"),
        ("users/u%2F1/requests/j.json", "user id"),
        ("requests/sub/dir.json", "not a request name"),
        ("requests/job.txt", "not a request name"),
        ("voices/a/b/c.wav", "not a clip name"),
    ],
)
def test_bad_ids_become_invalid_records_with_a_reason(name: str, fragment: str) -> None:
    """A bad id never becomes a path: the record id is a hash, and the reason names the problem."""
    r = route(name)
    assert r is not None and r.problem is not None
    assert fragment in r.problem
    assert r.id.startswith("invalid-") and len(r.id) == len("invalid-") + 16
    assert ".." not in r.doc_path and r.doc_path.count("/") in (1, 3)


def test_invalid_records_are_stable_per_object_name() -> None:
    assert route("requests/a b.json") == route("requests/a b.json")
    assert route("requests/a b.json").id != route("requests/a c.json").id  # type: ignore[union-attr]


def test_documents_and_outputs_mirror_the_object_paths() -> None:
    job = route("users/u1/requests/j1.json")
    assert job is not None
    assert job.doc_path == "users/u1/jobs/j1"
    assert job.output_name("wav") == "users/u1/outputs/j1.wav"
    assert route("requests/j1.json").output_name("mp3") == "outputs/j1.mp3"  # type: ignore[union-attr]
    assert voice_doc_path("u1", "v") == "users/u1/voices/v" and voice_doc_path(None, "v") == "voices/v"
    assert latents_name(None, "v", 7) == "voices/v.7.latents.safetensors"


@pytest.mark.parametrize(("name", "owner", "id_"), [
    ("batches/b1.jsonl", None, "b1"),
    ("batches/Night_Run-2.JSONL", None, "Night_Run-2"),
    ("users/u1/batches/b9.jsonl", "u1", "b9"),
])
def test_batch_manifests_route_to_a_batch_document(name: str, owner: str | None, id_: str) -> None:
    r = route(name)
    assert r is not None and r.problem is None
    assert (r.kind, r.owner, r.id, r.ext) == ("batch", owner, id_, "jsonl")
    assert r.doc_path == (f"users/{owner}/batches/{id_}" if owner else f"batches/{id_}")


@pytest.mark.parametrize(("name", "fragment"), [
    ("batches/b1.json", "not a batch name"),
    ("batches/sub/b1.jsonl", "not a batch name"),
    ("batches/a b.jsonl", "batch id 'a b'"),
])
def test_bad_batch_names_become_invalid_batch_records(name: str, fragment: str) -> None:
    r = route(name)
    assert r is not None and r.kind == "batch" and r.problem is not None and fragment in r.problem
    assert r.doc_path.startswith("batches/invalid-")


@pytest.mark.parametrize("name", ["lexicons/tech.json", "users/u1/lexicons/names.json", "lexicons/bad name.json"])
def test_lexicons_are_not_events_for_the_service(name: str) -> None:
    """Lexicons are read when a request names them; their upload triggers nothing."""
    assert route(name) is None
