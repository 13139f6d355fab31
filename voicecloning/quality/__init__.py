"""The ASR quality gate: each rendered segment heard back, scored against its text, and repaired.

``QualityGate(settings.quality).review(...)`` is the whole interface (see
docs/QUALITY.md); the speech-recognition model loads lazily, once per
process, and never while the gate is off.
"""

from voicecloning.quality.gate import GateResult, QualityGate, derive_seed, merge_summaries

__all__ = ["GateResult", "QualityGate", "derive_seed", "merge_summaries"]
