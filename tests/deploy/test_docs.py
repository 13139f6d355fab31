"""docs/DEPLOY.md: every command block can be run as written, from the folder it names.

The replay command is run against the Storage emulator (gcloud's uploads do
not work against gcp-storage-emulator, so its two `gcloud storage cp` steps
are carried out with the Python client, as the same download and upload).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import ROOT

DEPLOY = ROOT / "docs" / "DEPLOY.md"
FOLDERS = ("any folder", "the repository root", "terraform/examples/basic")
REPLAY_MARK = "/tmp/job1.json"


def bash_blocks() -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", DEPLOY.read_text(), re.M | re.S)


def test_there_are_command_blocks() -> None:
    assert len(bash_blocks()) >= 10


@pytest.mark.parametrize("index", range(len(bash_blocks())))
def test_every_block_says_where_it_runs(index: int) -> None:
    """The first line is `# in: <folder>`; builds run where the Dockerfile is, terraform where its config is."""
    block = bash_blocks()[index]
    first = block.splitlines()[0]
    match = re.match(r"# in: (.+)", first)
    assert match, f"block {index} does not start with '# in: <folder>': {first!r}"
    folder = next((f for f in FOLDERS if match.group(1).startswith(f)), None)
    assert folder, f"block {index}: unknown folder {match.group(1)!r}"
    if re.search(r"docker build|gcloud builds submit", block):
        assert folder == "the repository root", f"block {index} builds outside the repository root"
    if re.search(r"^terraform (apply|import|output|init)|\$\(terraform output", block, re.M):
        assert folder == "terraform/examples/basic", f"block {index} runs terraform outside its configuration"


@pytest.mark.parametrize("index", range(len(bash_blocks())))
def test_every_block_is_valid_shell(index: int) -> None:
    """`bash -n` accepts each block (an unquoted `(default)` is a syntax error)."""
    proc = subprocess.run(["bash", "-n"], input=bash_blocks()[index], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_imports_quote_the_default_database() -> None:
    text = DEPLOY.read_text()
    assert '"projects/$PROJECT/databases/(default)"' in text
    assert '"projects/$PROJECT/releases/cloud.firestore"' in text
    assert not re.search(r"[^\"'/]projects/\$PROJECT/databases/\(default\)", text)


def gcloud_copies(block: str) -> list[tuple[str, str]]:
    """(source, destination) of every `gcloud storage cp` in a block, with $INPUT left in."""
    copies = []
    for command in re.split(r"&&|\n", block.replace("\\\n", " ")):
        if "gcloud storage cp" not in command:
            continue
        words = shlex.split(command, comments=True)
        if words[:3] == ["gcloud", "storage", "cp"]:
            paths = [w for w in words[3:] if not w.startswith("-")]
            assert len(paths) == 2, command
            copies.append((paths[0], paths[1]))
    return copies


def test_no_command_copies_an_object_onto_itself() -> None:
    """gcloud refuses `cp gs://B/x gs://B/x`; such a 'replay' would do nothing."""
    for block in bash_blocks():
        for source, destination in gcloud_copies(block):
            assert source != destination, f"{source} is copied onto itself"


def _run_copies(copies: list[tuple[str, str]], bucket: Any, input_name: str) -> None:
    """Carry out `gcloud storage cp` steps with the client: gs:// -> file downloads, file -> gs:// uploads."""

    def blob_name(url: str) -> str:
        prefix = f"gs://{input_name}/"
        assert url.startswith(prefix), url
        return url[len(prefix) :]

    for source, destination in copies:
        source, destination = (p.replace("$INPUT", input_name) for p in (source, destination))
        if source.startswith("gs://") and not destination.startswith("gs://"):
            bucket.blob(blob_name(source)).download_to_filename(destination)
        elif destination.startswith("gs://") and not source.startswith("gs://"):
            bucket.blob(blob_name(destination)).upload_from_filename(source)
        else:
            pytest.fail(f"unexpected copy {source} -> {destination}")


def test_replay_writes_a_new_generation(storage_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The documented replay downloads the request and uploads it back: same bytes, a new generation (a new event)."""
    from tests.support.cloud import ensure_bucket, storage_client

    block = next(b for b in bash_blocks() if REPLAY_MARK in b)
    copies = gcloud_copies(block)
    assert [c[0].startswith("gs://") for c in copies] == [True, False], copies
    local = tmp_path / "job1.json"
    copies = [(s.replace("/tmp/job1.json", str(local)), d.replace("/tmp/job1.json", str(local))) for s, d in copies]

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_server.url)
    bucket = ensure_bucket(storage_client(storage_server.url, "demo-voicecloning"), "replay-input")
    original = b'{"text": "Hello", "voice_id": "alice", "language": "en"}'
    blob = bucket.blob("requests/job1.json")
    blob.upload_from_string(original, content_type="application/json")
    blob.reload()
    before = blob.generation

    _run_copies(copies, bucket, "replay-input")

    after = bucket.get_blob("requests/job1.json")
    assert after.download_as_bytes() == original
    assert after.generation != before
