"""Benchmark process for this engine: fast load, enrollment, one sentence, long-form batched.

``--precision fp32 --prefix fp32_`` runs the same engine code without int8 or
bf16 (the "engine fp32" column): the gain of the code apart from the gain of
the reduced precision.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from voicecloning.bench import workload as w


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--precision", default="fast")
    parser.add_argument("--prefix", default="", help="prefix of every result key (e.g. fp32_)")
    args = parser.parse_args()

    from voicecloning.engine import synthesis
    from voicecloning.engine.xtts import EngineConfig, XttsEngine
    from voicecloning.generation import GenerationOptions

    engine = XttsEngine(EngineConfig(model_dir=args.model_dir, precision=args.precision, threads=args.threads))
    model = engine.model()
    ready_s = w.since_process_start()
    clip = w.reference_clip()
    latents, first_enroll = w.timed(lambda: engine.compute_latents(clip))  # cold, as stock's one call
    _, warm_enroll = w.timed(lambda: engine.compute_latents(clip))
    options = GenerationOptions(seed=0, **{k: v for k, v in w.SAMPLING.items()})

    def run(segments: tuple[str, ...], tokens: tuple[int, ...]) -> float:
        audio, seconds = w.timed(
            lambda: synthesis.synthesize_segments(
                model, latents, list(segments), "en", options, forced_tokens=list(tokens)
            )
        )
        audio_s = len(audio) / w.OUTPUT_RATE - (len(segments) - 1) * synthesis.PAUSE_SECONDS
        return seconds / audio_s

    run((w.SENTENCE,), (w.WARMUP_TOKENS,))
    rtf_single = run((w.SENTENCE,), (w.SINGLE_TOKENS,))
    rtf_long = run(w.LONG_SEGMENTS, w.LONG_TOKENS)
    result = {
        "ready_s": round(ready_s, 2),
        "load_s": round(engine.load_seconds or 0.0, 2),
        "enroll_s": round(first_enroll, 3),
        "enroll_warm_s": round(warm_enroll, 3),
        "rtf_single": round(rtf_single, 3),
        "rtf_long": round(rtf_long, 3),
        "peak_rss_mb": round(w.peak_rss_mb()),
        "precision": getattr(model, "voicecloning_precision", args.precision),
    }
    w.emit({args.prefix + key: value for key, value in result.items()})


if __name__ == "__main__":
    main()
