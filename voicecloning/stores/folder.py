"""The embedded default's bucket: a folder, with generations and preconditions like Cloud Storage's."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from voicecloning.errors import PreconditionFailed
from voicecloning.stores.blobs import BlobInfo


class LocalBlobStore:
    """A folder as a bucket. Metadata, content types and generations live in a sidecar folder.

    Every new version of an object gets a new generation from a counter shared by all
    processes using the folder (``.meta/.generation``, under a file lock), as Cloud Storage
    does: greater than every generation before it, whatever the file's timestamps say.
    A file written into the folder by hand (``cp``, ``mv``, ``rsync -a``, unzip) is recognised
    as a new version when its inode, size, modification or change time differ from the
    version recorded in its sidecar; the change time moves on every write and rename, so
    preserved modification times cannot make a re-upload look old.
    Preconditions (``if_generation_match``) are checked and applied under the same lock.
    """

    META_DIR = ".meta"

    def __init__(self, root: Path, bucket: str | None = None) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / self.META_DIR).mkdir(exist_ok=True)
        self.bucket = bucket or self.root.name
        self._lock_path = self.root / self.META_DIR / ".lock"
        self._counter = self.root / self.META_DIR / ".generation"

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root not in path.parents or self.META_DIR in Path(name).parts:
            raise ValueError(f"object name {name!r} escapes the bucket folder")
        return path

    def _meta_path(self, name: str) -> Path:
        return self.root / self.META_DIR / (name + ".json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self._lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _next_generation(self) -> int:
        """Called under the lock: strictly greater than any generation issued before (and than
        the nanosecond timestamps earlier versions of this store used as generations)."""
        try:
            last = int(self._counter.read_text() or 0)
        except (FileNotFoundError, ValueError):
            last = 0
        generation = max(last + 1, time.time_ns())
        _atomic_write(self._counter, str(generation).encode())
        return generation

    def _meta(self, name: str) -> dict[str, Any]:
        try:
            loaded: dict[str, Any] = json.loads(self._meta_path(name).read_text())
            return loaded
        except (FileNotFoundError, ValueError):
            return {}

    def _current(self, name: str) -> tuple[BlobInfo, list[int]] | None:
        """The object's facts, issuing a generation for a version written by hand (call under the lock)."""
        path = self._path(name)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        print_ = _fingerprint(st)
        meta = self._meta(name)
        if meta.get("fingerprint") != print_ or "generation" not in meta:
            meta = {"content_type": None, "metadata": {}, "generation": self._next_generation(),
                    "fingerprint": print_}
            self._write_meta(name, meta)
        info = BlobInfo(name, st.st_size, int(meta["generation"]), meta.get("content_type"), meta.get("metadata") or {})
        return info, print_

    def _write_meta(self, name: str, meta: dict[str, Any]) -> None:
        meta_path = self._meta_path(name)
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(meta_path, json.dumps(meta).encode())

    def stat(self, name: str) -> BlobInfo | None:
        path = self._path(name)
        meta = self._meta(name)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if path.is_file() and meta.get("fingerprint") == _fingerprint(st) and "generation" in meta:
            return BlobInfo(name, st.st_size, int(meta["generation"]), meta.get("content_type"),
                            meta.get("metadata") or {})
        with self._locked():
            current = self._current(name)
        return None if current is None else current[0]

    def read(self, name: str, generation: int | None = None) -> bytes | None:
        info = self.stat(name)
        if info is None or (generation is not None and info.generation != generation):
            return None
        meta = self._meta(name)
        try:
            with self._path(name).open("rb") as fh:
                if _fingerprint(os.fstat(fh.fileno())) != meta.get("fingerprint"):
                    return None if generation is not None else self.read(name)  # replaced while opening
                return fh.read()
        except (FileNotFoundError, IsADirectoryError):
            return None

    def write(self, name: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None,
              if_generation_match: int | None = None) -> BlobInfo:
        return self._store(name, lambda dest: _atomic_write(dest, data), content_type, metadata, if_generation_match)

    def write_file(self, name: str, path: Path, content_type: str, metadata: dict[str, str] | None = None,
                   if_generation_match: int | None = None) -> BlobInfo:
        return self._store(name, lambda dest: _atomic_copy(path, dest), content_type, metadata, if_generation_match)

    def _store(self, name: str, put: Callable[[Path], None], content_type: str, metadata: dict[str, str] | None,
               if_generation_match: int | None) -> BlobInfo:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            _check_precondition(name, self._current(name), if_generation_match)
            put(path)
            generation = self._next_generation()
            st = path.stat()
            self._write_meta(name, {"content_type": content_type, "metadata": metadata or {},
                                    "generation": generation, "fingerprint": _fingerprint(st)})
        return BlobInfo(name, st.st_size, generation, content_type, dict(metadata or {}))

    def delete(self, name: str, if_generation_match: int | None = None) -> None:
        with self._locked():
            if if_generation_match is not None:
                _check_precondition(name, self._current(name), if_generation_match)
            for path in (self._path(name), self._meta_path(name)):
                path.unlink(missing_ok=True)
                _prune_empty(path.parent, self.root)

    def list(self, prefix: str) -> list[BlobInfo]:
        infos = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_file() and rel.startswith(prefix) and not rel.startswith(self.META_DIR + "/"):
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    continue  # an upload in progress
                info = self.stat(rel)
                if info is not None:
                    infos.append(info)
        return infos

    def uri(self, name: str) -> str:
        return self._path(name).as_uri()


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove folders a delete left empty (a bucket has no folders), up to the bucket's root."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _fingerprint(st: os.stat_result) -> list[int]:
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _check_precondition(name: str, current: tuple[BlobInfo, list[int]] | None, expected: int | None) -> None:
    if expected is None:
        return
    found = current[0].generation if current is not None else 0
    if found != expected:
        raise PreconditionFailed(f"{name}: generation is {found}, not {expected}")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a hidden temporary name in the same folder, fsync, then rename."""
    _atomic(path, lambda fh: fh.write(data))


def _atomic_copy(source: Path, path: Path) -> None:
    def copy(fh: Any) -> None:
        with source.open("rb") as src:
            shutil.copyfileobj(src, fh, 1 << 20)

    _atomic(path, copy)


def _atomic(path: Path, fill: Callable[[Any], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
