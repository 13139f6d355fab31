"""The page's download route serves a job's captions beside its audio, inside the caller's prefix only."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.uploads import UploadRejected, read_output
from voicecloning.stores.folder import LocalBlobStore


@pytest.fixture
def outputs(tmp_path: Path) -> LocalBlobStore:
    store = LocalBlobStore(tmp_path / "output", "output")
    store.write("users/alice/outputs/j1.vtt", b"WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.000\nHi\n", "text/vtt")
    store.write("users/alice/outputs/j1.srt", b"1\n00:00:00,000 --> 00:00:01,000\nHi\n", "application/x-subrip")
    return store


@pytest.mark.parametrize(("name", "kind"), [("j1.vtt", "text/vtt"), ("j1.srt", "application/x-subrip")])
def test_the_owner_downloads_the_captions_of_a_job(outputs: LocalBlobStore, name: str, kind: str) -> None:
    got = read_output("alice", name, outputs=outputs)
    assert got.content_type.startswith(kind) and got.filename == name and got.data.startswith((b"WEBVTT", b"1\n"))


def test_another_user_gets_no_captions(outputs: LocalBlobStore) -> None:
    with pytest.raises(UploadRejected) as err:
        read_output("bob", "j1.vtt", outputs=outputs)
    assert err.value.status == 404


@pytest.mark.parametrize("name", ["j1.txt", "j1.timings.json"])
def test_other_text_files_are_not_served(outputs: LocalBlobStore, name: str) -> None:
    with pytest.raises(UploadRejected) as err:
        read_output("alice", name, outputs=outputs)
    assert err.value.status in (400, 415)
