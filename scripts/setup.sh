#!/usr/bin/env bash
# Set up everything the service and its tests need on a fresh machine (idempotent).
# Called by `make setup` (and so by `make run` and `make test`).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.setup-stamp
want=$(cat requirements.txt requirements-dev.txt scripts/setup.sh | sha256sum | cut -c1-16)

# System tools: espeak-ng speaks the reference clips the tests use; sox inspects audio by hand.
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Please install: ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

[ -x $VENV/bin/python ] || "$PY" -m venv $VENV
$VENV/bin/python -m pip install -q --upgrade pip

# torch first, as a CPU build, so nothing pulls the multi-GB CUDA build from PyPI.
# This machine image carries the CPU wheel in /opt/wheels; elsewhere PyTorch's CPU index has it.
if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then
  $VENV/bin/python -m pip install -q /opt/wheels/torch-2.13.0+cpu-*.whl
else
  $VENV/bin/python -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
fi
$VENV/bin/python -m pip install -q -r requirements-dev.txt

# Manual step, on purpose: every torchaudio Linux wheel on PyPI is a CUDA build whose native
# libraries fail beside CPU torch (libc10_cuda.so). Without them torchaudio falls back to pure
# Python, and the parts XTTS uses (resample, MelSpectrogram) work. The Dockerfile takes
# torchaudio from PyTorch's CPU index instead and needs no such step.
if ! $VENV/bin/python -c "import torchaudio" >/dev/null 2>&1; then
  rm -f $VENV/lib/python3.11/site-packages/torchaudio/lib/*.so
fi
$VENV/bin/python -c "import TTS, torchaudio; from TTS.tts.models.xtts import Xtts" \
  || { echo "coqui-tts does not import; see the errors above" >&2; exit 1; }

echo "$want" > "$STAMP"
echo "setup: .venv ready"
