"""``python -m voicecloning``: the embedded default and tools around it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path("data")


def main(argv: list[str] | None = None) -> int:
    from voicecloning.errors import ConfigurationError

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m voicecloning", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="watch DATA/input and process what is dropped there")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data folder (default ./data)")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes (default: the CPUs available / VOICECLONING_THREADS, at least 1)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("work", help=argparse.SUPPRESS)  # one worker process of `serve` (started by it)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.set_defaults(func=_work)

    p = sub.add_parser("enroll", help="enroll a voice from a reference clip")
    p.add_argument("clip", type=Path)
    p.add_argument("--voice", required=True, help="voice id (letters, digits, - or _)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.set_defaults(func=_enroll)

    p = sub.add_parser("say", help="synthesize text with an enrolled voice")
    p.add_argument("--voice", required=True)
    p.add_argument("--text", required=True)
    p.add_argument("--language", default="en")
    p.add_argument("--format", default="wav")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.set_defaults(func=_say)

    p = sub.add_parser("status", help="print one document of the embedded store as JSON")
    p.add_argument("path", help="e.g. jobs/job1 or voices/alice")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.set_defaults(func=_status)

    p = sub.add_parser("events", help="print the embedded events table (terminal job/voice/batch events)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.set_defaults(func=_events)

    p = sub.add_parser("sweep", help="delete expired outputs and documents (VOICECLONING_RETENTION_DAYS)")
    p.add_argument("--days", type=int, default=None, help="override VOICECLONING_RETENTION_DAYS")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.set_defaults(func=_sweep)

    p = sub.add_parser("dev-model", help="write a RANDOM-WEIGHT XTTS-v2 checkpoint (tests only: noise)")
    p.add_argument("dir", type=Path)
    p.add_argument("--full", action="store_true", help="real size (for benchmarks) instead of tiny")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_dev_model)

    from voicecloning import cli_perf

    cli_perf.register(sub)  # convert, bench, eval
    return parser


def _local_services(data: Path, inline: bool = False) -> Any:
    """The embedded default's services; ``inline``: parts run in this process (one-shot commands)."""
    from voicecloning import logs
    from voicecloning.services import build_services
    from voicecloning.settings import Settings
    from voicecloning.stores.queue import InlineTaskQueue

    env = {**os.environ, "VOICECLONING_BACKEND": "local", "VOICECLONING_DATA_DIR": str(data)}
    # One local worker: a request must not hold it while its voice waits in the queue behind it;
    # it asks for redelivery at once and the voice is enrolled in between.
    env.setdefault("VOICECLONING_VOICE_POLL_SECONDS", "0.1")
    env.pop("VOICECLONING_INPUT_BUCKET", None)
    env.pop("VOICECLONING_OUTPUT_BUCKET", None)
    settings = Settings.from_env(env)
    logs.configure(settings.log_level)
    return build_services(settings, tasks=InlineTaskQueue() if inline else None)


def _serve(args: argparse.Namespace) -> int:
    from voicecloning.local import LocalRunner
    from voicecloning.workers import Supervisor, default_workers, storage_task

    services = _local_services(args.data)
    services.engine.languages()  # fail at start, not on the first file, if no model is configured
    queue = services.tasks
    runner = LocalRunner(services, lambda event, _services: queue.publish([storage_task(event)]))
    count = args.workers or default_workers(services.settings.threads)
    supervisor = Supervisor(args.data, count, services.settings.threads)
    signal.signal(signal.SIGTERM, _interrupt)  # stop the workers too
    supervisor.start()
    print(f"Serving {args.data.resolve()} with {count} worker(s): drop clips into input/voices/, requests into "
          "input/requests/ (Ctrl-C to stop).", file=sys.stderr)
    try:
        while True:
            runner.scan()
            while runner.step():
                pass
            supervisor.check()
            time.sleep(runner.poll_seconds)
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _work(args: argparse.Namespace) -> int:
    import threading

    from voicecloning.workers import work

    services = _local_services(args.data)
    stop = threading.Event()
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def orphaned() -> None:  # the supervisor is gone: stop too
        while not stop.wait(1.0):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=orphaned, daemon=True).start()
    work(services, services.tasks, stop)
    return 0


def _run_once(services: Any, name: str) -> dict[str, Any]:
    """Deliver the event for object ``name`` as the platform would (retrying what raises); its document."""
    from handlers.dispatch import handle_storage_event
    from voicecloning.local import LocalRunner
    from voicecloning.routes import route

    target = route(name)
    info = services.inputs.stat(name)
    assert target is not None and info is not None
    runner = LocalRunner(services, handle_storage_event, max_backoff=5.0)
    runner.submit(info)

    def finished() -> bool:
        doc = services.docs.get(target.doc_path) or {}
        return doc.get("status") in ("ready", "done", "failed") and doc.get("source", {}).get("generation") == str(
            info.generation
        )

    runner.run_until(finished)
    return services.docs.get(target.doc_path) or {}


def _enroll(args: argparse.Namespace) -> int:
    services = _local_services(args.data, inline=True)
    name = f"voices/{args.voice}{args.clip.suffix.lower()}"
    dest = services.inputs.root / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.clip, dest)
    doc = _run_once(services, name)
    _print(doc)
    return 0 if doc.get("status") == "ready" else 1


def _say(args: argparse.Namespace) -> int:
    services = _local_services(args.data, inline=True)
    job_id = f"say-{uuid.uuid4().hex[:12]}"
    name = f"requests/{job_id}.json"
    body = {"text": args.text, "voice_id": args.voice, "language": args.language, "format": args.format}
    dest = services.inputs.root / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(body, ensure_ascii=False))
    doc = _run_once(services, name)
    if doc.get("status") == "done":
        data = services.outputs.read(doc["output_object"])
        args.output.write_bytes(data)
    _print({"job_id": job_id, **doc})
    return 0 if doc.get("status") == "done" else 1


def _status(args: argparse.Namespace) -> int:
    from voicecloning.stores.documents import SqliteDocumentStore

    db_path = args.data / "documents.sqlite3"
    if not db_path.is_file():
        print(f"no document store at {db_path}", file=sys.stderr)
        return 2
    doc = SqliteDocumentStore(db_path).get(args.path.strip("/"))
    if doc is None:
        print(f"no document at {args.path}", file=sys.stderr)
        return 1
    _print(doc)
    return 0


def _events(args: argparse.Namespace) -> int:
    from voicecloning.notify import EmbeddedNotifier

    db_path = args.data / "documents.sqlite3"
    if not db_path.is_file():
        print(f"no document store at {db_path}", file=sys.stderr)
        return 2
    for event in EmbeddedNotifier(db_path).list():
        print(json.dumps(event, ensure_ascii=False, sort_keys=True))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from voicecloning.retention import sweep_local
    from voicecloning.settings import Product
    from voicecloning.stores.documents import SqliteDocumentStore
    from voicecloning.stores.folder import LocalBlobStore

    days = Product.from_env(os.environ).retention_days if args.days is None else args.days
    counts = sweep_local(LocalBlobStore(args.data / "output"), SqliteDocumentStore(args.data / "documents.sqlite3"),
                         datetime.now(UTC), days)
    _print({"retention_days": days, "deleted": counts})
    return 0


def _dev_model(args: argparse.Namespace) -> int:
    from voicecloning.engine.devmodel import WARNING, build_dev_model

    print(f"WARNING: {WARNING}", file=sys.stderr)
    path = build_dev_model(args.dir, full=args.full, seed=args.seed)
    print(path)
    return 0


def _print(doc: dict[str, Any]) -> None:
    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if dataclasses.is_dataclass(value):
            return dataclasses.asdict(value)  # type: ignore[arg-type]
        return str(value)

    print(json.dumps(doc, indent=2, default=default, ensure_ascii=False, sort_keys=True))
