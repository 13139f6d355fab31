"""Performance commands for ``python -m voicecloning``: convert, bench, eval."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("convert", help="write a checkpoint folder in the engine's fast-loading form")
    p.add_argument("src", type=Path, help="coqui-format folder (config.json, vocab.json, model.pth)")
    p.add_argument("dst", type=Path, help="new folder for the converted checkpoint")
    p.add_argument(
        "--precision",
        choices=("all", "fp32", "fast"),
        default="all",
        help="all (default): fp32 weights and pre-quantized int8 GPT; fp32: fp32 weights only",
    )
    p.set_defaults(func=_convert)

    p = sub.add_parser("bench", help="benchmark this engine against stock coqui-tts (separate processes)")
    p.add_argument(
        "--model-dir",
        type=Path,
        default=Path("models/dev-full"),
        help="coqui-format checkpoint; a full-size random one is built there if missing",
    )
    p.add_argument("--quick", action="store_true", help="skip stock coqui-tts's long-form run")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: the CPUs available; with --fanout: per worker, default 1)")
    p.add_argument("--fanout", action="store_true",
                   help="instead: the fan-out bench (serve --workers N), then the Cloud Run simulation from it")
    p.add_argument("--fanout-out", type=Path, default=Path("fanout.jsonl"),
                   help="with --fanout: where the fan-out bench's output goes (the simulation reads it)")
    p.set_defaults(func=_bench)

    p = sub.add_parser("eval", help="speaker similarity of fp32 vs fast synthesis (needs real weights)")
    p.add_argument("--model-dir", type=Path, required=True, help="checkpoint folder (coqui or converted)")
    p.add_argument("--clips", type=Path, required=True, help="folder of reference clips (wav, flac, ogg, mp3)")
    p.add_argument("--language", default="en")
    p.add_argument("--text", default=None, help="text to synthesize (default: a fixed pangram pair)")
    p.add_argument("--max-tokens", type=int, default=None, help="cap audio tokens per segment (dev models)")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_eval)


def _convert(args: argparse.Namespace) -> int:
    from voicecloning.engine.convert import convert_checkpoint

    if not (args.src / "model.pth").is_file():
        print(f"{args.src} has no model.pth", file=sys.stderr)
        return 2
    print(convert_checkpoint(args.src, args.dst, args.precision))
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.fanout:
        return _fanout(args)
    from voicecloning.bench.driver import main

    return main(args.model_dir, args.quick, args.threads)


def _fanout(args: argparse.Namespace) -> int:
    """``bench.fanout`` (its output kept in ``--fanout-out``), then ``bench.simulate --measured`` on that file."""
    from voicecloning.bench import fanout, simulate

    argv = ["--model-dir", str(args.model_dir), *(("--threads", str(args.threads)) if args.threads else ())]
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = fanout.main(argv)
    args.fanout_out.write_text(captured.getvalue())
    print(captured.getvalue(), end="")
    if code != 0:
        return code
    return simulate.main(["--measured", str(args.fanout_out)])


def _eval(args: argparse.Namespace) -> int:
    from voicecloning.eval import main

    return main(args)
