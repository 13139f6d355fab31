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
    parser.add_argument("--outlier-dir", type=Path, help="a converted outlier checkpoint (engine.outliers): compare the int8 choices on it")
    args = parser.parse_args()

    import torch
    from TTS.tts.configs.xtts_config import XttsConfig

    from voicecloning.engine.fidelity import compare, compare_choices, random_inputs
    from voicecloning.engine.int8_choices import CHOICES
    from voicecloning.engine.loader import load_model

    torch.set_num_threads(args.threads)
    config = XttsConfig()
    config.load_json(str(args.model_dir / "config.json"))
    reference = load_model(args.model_dir, config, precision="fp32")
    fast = load_model(args.model_dir, config, precision="fast")
    result = compare(reference, fast, random_inputs(reference, codes=args.codes))
    for label, folder in (("plain", args.model_dir), ("outlier", args.outlier_dir)):
        if folder is None:
            continue
        model = reference if folder == args.model_dir else load_model(folder, config, precision="fp32")
        if folder != args.model_dir:  # the shipped default (SmoothQuant at convert) on the outlier checkpoint
            smoothed = compare(model, load_model(folder, config, precision="fast"), random_inputs(model, codes=100))
            result |= {f"{label}_fast_{key}": value for key, value in smoothed.items()}
        for choice, figures in compare_choices(model, random_inputs(model, codes=100), CHOICES).items():
            result |= {f"{label}_{choice}_{key}": value for key, value in figures.items()}
    w.emit(result)


if __name__ == "__main__":
    main()
