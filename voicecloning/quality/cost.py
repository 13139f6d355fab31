"""What the gate costs per second of audio: ``python -m voicecloning.quality.cost`` (prints JSON).

The audio is the benchmark's long-form text (``bench.workload.LONG_SEGMENTS``,
the shape behind ``rtf_long``) spoken by espeak-ng, so the whole path runs:
resampling, the VAD, Whisper and the scoring. The dev model's output is noise,
which the VAD already rejects, so it would only time the VAD. Needs
espeak-ng (a development tool here, not a runtime dependency).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from voicecloning.audio.resample import resample
from voicecloning.audio.vad import speech_segments
from voicecloning.bench.workload import LONG_SEGMENTS
from voicecloning.quality import asr
from voicecloning.quality.gate import OUTPUT_RATE, QualityGate
from voicecloning.quality.normalise import normalise
from voicecloning.quality.score import Thresholds, score_text
from voicecloning.settings import Quality


def espeak(text: str) -> np.ndarray:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "s.wav"
        subprocess.run([exe, "-v", "en", "-s", "150", "-w", str(path), text], check=True)
        samples, rate = sf.read(path, dtype="float32")
    return resample(samples, rate, OUTPUT_RATE)


def measure(repeats: int) -> dict[str, Any]:
    texts = list(LONG_SEGMENTS) * repeats
    clips = [espeak(t) for t in texts]
    audio_s = sum(len(c) for c in clips) / OUTPUT_RATE
    recognizer = asr.Recognizer()
    started = time.perf_counter()
    recognizer.transcribe(np.zeros(asr.ASR_RATE, np.float32), "en")  # loads the model
    speech_segments(np.zeros(asr.ASR_RATE, np.float32))  # and the VAD
    load_s = time.perf_counter() - started
    stages = {"resample_vad_s": 0.0, "asr_s": 0.0, "score_s": 0.0}
    cers = []
    for text, clip in zip(texts, clips, strict=True):
        t0 = time.perf_counter()
        samples_16k = resample(clip, OUTPUT_RATE, asr.ASR_RATE)
        speech = speech_segments(samples_16k)
        t1 = time.perf_counter()
        heard = recognizer.transcribe(samples_16k, "en")
        t2 = time.perf_counter()
        score = score_text(normalise(text, "en"), normalise(heard.text, "en"),
                           speech[-1].end_s - speech[0].start_s, Thresholds())
        t3 = time.perf_counter()
        stages["resample_vad_s"] += t1 - t0
        stages["asr_s"] += t2 - t1
        stages["score_s"] += t3 - t2
        cers.append(score.cer)
    total = sum(stages.values())
    noise = np.random.default_rng(0).standard_normal(int(audio_s * OUTPUT_RATE)).astype(np.float32) * 0.1
    gate = QualityGate(Quality(gate="check"), recognizer)
    t0 = time.perf_counter()
    gate.score("noise", noise, "en")
    noise_s = time.perf_counter() - t0
    return {
        "segments": len(texts),
        "audio_s": round(audio_s, 2),
        "threads": asr.available_cpus(),
        "load_s": round(load_s, 2),
        **{k: round(v, 3) for k, v in stages.items()},
        "gate_s_per_audio_s": round(total / audio_s, 4),
        "noise_gate_s_per_audio_s": round(noise_s / audio_s, 4),
        "cer_mean": round(sum(cers) / len(cers), 4),
        "cer_max": round(max(cers), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2, help="times the six long-form segments are said")
    print(json.dumps(measure(parser.parse_args().repeats), indent=2))


if __name__ == "__main__":
    main()
