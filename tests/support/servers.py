"""Start and stop the real servers the tests talk to, on free loopback ports.

Each helper starts exactly one process group and stops exactly that group.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A server process started by the tests (its own process group)."""

    name: str
    argv: Sequence[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self, ready_path: str = "/", timeout: float = 60.0) -> Server:
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            list(self.argv),
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we stop exactly what we started
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url + ready_path, timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers; any status means it is up
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready on {self.url} in {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """Stop it abruptly (SIGKILL), as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def firestore_jar() -> Path:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError("gcloud is not installed; the Firestore emulator ships with it")
    root = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    jar = Path(root) / "platform" / "cloud-firestore-emulator" / "cloud-firestore-emulator.jar"
    if not jar.is_file():
        raise RuntimeError(f"Firestore emulator not found at {jar}: gcloud components install cloud-firestore-emulator")
    return jar


def firestore_emulator(log_dir: Path, port: int | None = None, project: str = "demo-voicecloning") -> Server:
    """The official Cloud Firestore emulator, run from its jar so the PID we hold is Java's."""
    port = port or free_port()
    argv = [
        "java",
        "-Duser.language=en",
        "-cp",
        str(firestore_jar()),
        "com.google.cloud.datastore.emulator.firestore.CloudFirestore",
        "start",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--project_id={project}",
    ]
    return Server("firestore-emulator", argv, port, log_path=log_dir / f"firestore-{port}.log")


def storage_emulator(log_dir: Path, port: int | None = None) -> Server:
    """gcp-storage-emulator in memory (no generation preconditions, no notifications)."""
    port = port or free_port()
    argv = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "--host=127.0.0.1",
        f"--port={port}",
        "--in-memory",
        "--default-bucket=voicecloning-input",
    ]
    return Server("storage-emulator", argv, port, log_path=log_dir / f"storage-{port}.log")


def reset_firestore(server: Server, project: str = "demo-voicecloning") -> None:
    req = urllib.request.Request(
        f"{server.url}/emulator/v1/projects/{project}/databases/(default)/documents", method="DELETE"
    )
    with urllib.request.urlopen(req, timeout=10):
        pass


def pubsub_emulator(log_dir: Path, port: int | None = None, project: str = "demo-voicecloning") -> Server:
    """The official Pub/Sub emulator (its launcher starts a Java child: the group is stopped together)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError("gcloud is not installed; the Pub/Sub emulator ships with it")
    root = subprocess.run([gcloud, "info", "--format=value(installation.sdk_root)"], check=True,
                          capture_output=True, text=True).stdout.strip()
    launcher = Path(root) / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    if not launcher.is_file():
        raise RuntimeError(f"Pub/Sub emulator not found at {launcher}: gcloud components install pubsub-emulator")
    port = port or free_port()
    argv = [str(launcher), "--host=127.0.0.1", f"--port={port}"]
    return Server("pubsub-emulator", argv, port, env={"PUBSUB_PROJECT_ID": project},
                  log_path=log_dir / f"pubsub-{port}.log")
