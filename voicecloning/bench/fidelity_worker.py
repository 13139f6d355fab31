"""Benchmark process for fidelity: fast vs fp32 on the full-size model, same inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from voicecloning.bench import workload as w


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--codes", type=int, default=w.SINGLE_TOKENS)
    args = parser.parse_args()

    import torch
    from TTS.tts.configs.xtts_config import XttsConfig

    from voicecloning.engine.fidelity import compare, random_inputs
    from voicecloning.engine.loader import load_model

    torch.set_num_threads(args.threads)
    config = XttsConfig()
    config.load_json(str(args.model_dir / "config.json"))
    reference = load_model(args.model_dir, config, precision="fp32")
    fast = load_model(args.model_dir, config, precision="fast")
    w.emit(compare(reference, fast, random_inputs(reference, codes=args.codes)))


if __name__ == "__main__":
    main()
