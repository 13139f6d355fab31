"""Benchmark process for stock coqui-tts: ``Xtts`` + ``load_checkpoint`` + ``inference``, nothing else."""

from __future__ import annotations

import argparse
from pathlib import Path

from voicecloning.bench import workload as w


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()

    import torch
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    torch.set_num_threads(args.threads)
    config = XttsConfig()
    config.load_json(str(args.model_dir / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(args.model_dir), eval=True)
    ready_s = w.since_process_start()

    audio = torch.from_numpy(w.reference_clip()).unsqueeze(0)

    def enroll() -> tuple[torch.Tensor, torch.Tensor]:
        cond = model.get_gpt_cond_latents(
            audio, w.CONDITIONING_RATE, length=config.gpt_cond_len, chunk_length=config.gpt_cond_chunk_len
        )
        return cond, model.get_speaker_embedding(audio, w.CONDITIONING_RATE)

    (cond, speaker), enroll_s = w.timed(enroll)  # the first (cold) call, as the engine's enroll_s

    def run(segments: tuple[str, ...], tokens: tuple[int, ...]) -> float:
        def speak() -> float:
            samples = 0
            for text, count in zip(segments, tokens, strict=True):
                out = model.inference(
                    text, "en", cond, speaker, min_new_tokens=count, max_new_tokens=count, **w.SAMPLING
                )
                samples += len(out["wav"])
            return samples / w.OUTPUT_RATE

        torch.manual_seed(0)
        audio_s, seconds = w.timed(speak)
        return seconds / audio_s

    run((w.SENTENCE,), (w.WARMUP_TOKENS,))
    result = {
        "stock_ready_s": round(ready_s, 2),
        "stock_enroll_s": round(enroll_s, 3),
        "stock_rtf_single": round(run((w.SENTENCE,), (w.SINGLE_TOKENS,)), 3),
    }
    if not args.skip_long:
        result["stock_rtf_long"] = round(run(w.LONG_SEGMENTS, w.LONG_TOKENS), 3)
    result["stock_peak_rss_mb"] = round(w.peak_rss_mb())
    w.emit(result)


if __name__ == "__main__":
    main()
