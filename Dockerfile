# syntax=docker/dockerfile:1
#
# Voice-cloning service, CPU image. One image serves both Cloud Run services;
# FUNCTION_TARGET picks the entry point in main.py (on_push or http_api).
#
# Model weights (XTTS-v2, Coqui Public Model License 1.0.0: NON-COMMERCIAL use
# of the weights and of their outputs) come from one of three routes:
#   --build-arg MODEL_SOURCE=coqui   (default) download with coqui's ModelManager;
#                                    needs --build-arg COQUI_TOS_AGREED=1, else the build fails
#   --build-arg MODEL_SOURCE=context copy ./model/{config.json,model.pth,vocab.json} from the context
#   --build-arg MODEL_SOURCE=none    code only; mount an already converted model at
#                                    /opt/model-fast (or point VOICECLONING_MODEL_DIR elsewhere)
# Either weight route is converted at build time by convert_checkpoint (what
# `python -m voicecloning convert /opt/model /opt/model-fast` runs); only the
# converted folder reaches the final image. The weight stages do not contain
# the application code, so code edits reuse them. Needs BuildKit (docker
# buildx, Docker >= 23, or DOCKER_BUILDKIT=1): unused stages are skipped and
# the checkpoint is bind-mounted into the conversion.
# See docs/DEPLOY.md. Keep Dockerfile.gpu in step: tests/deploy checks both.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG MODEL_SOURCE=coqui

# ---------------------------------------------------------------------------
# base: Python, system libraries, Python dependencies (no application code)
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# FFmpeg shared libraries for torchcodec (torchaudio.load in coqui-tts decodes through it).
# soundfile bundles libsndfile and PyAV bundles its own FFmpeg: nothing else is needed.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libavcodec59 libavdevice59 libavfilter8 libavformat59 libavutil57 libswresample4 libswscale6 \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app

# CPU torch first, in its own layer, from PyTorch's CPU index, so that
# requirements.txt (which pins the same versions) finds them installed and never
# pulls a CUDA build (PyPI's Linux torchaudio wheels are CUDA builds).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 torchaudio==2.11.0

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt \
    && pip check

# ---------------------------------------------------------------------------
# Weights: stages FROM base, without the application code, so a code edit
# never downloads or converts the ~1.9 GB of weights again. Each route leaves
# a checkpoint folder in /opt/model.
# ---------------------------------------------------------------------------
FROM base AS weights-context
# .dockerignore lets only the checkpoint files of model/ into the context.
COPY model/ /opt/model/
RUN test -s /opt/model/model.pth && test -s /opt/model/config.json && test -s /opt/model/vocab.json \
    || { echo "MODEL_SOURCE=context needs model/config.json, model/model.pth and model/vocab.json in the build context." >&2; exit 1; }

FROM base AS weights-coqui
ARG COQUI_TOS_AGREED=0
RUN if [ "${COQUI_TOS_AGREED}" != "1" ]; then \
        echo "ERROR: XTTS-v2 weights are licensed under the Coqui Public Model License 1.0.0 (CPML)," >&2; \
        echo "which allows NON-COMMERCIAL use of the model and its outputs only: https://coqui.ai/cpml (mirror: https://tts-hub.github.io/cpml)" >&2; \
        echo "Read it, then rebuild with --build-arg COQUI_TOS_AGREED=1 to agree and download," >&2; \
        echo "or use --build-arg MODEL_SOURCE=context / MODEL_SOURCE=none (docs/DEPLOY.md)." >&2; \
        exit 1; \
    fi \
    && COQUI_TOS_AGREED=1 HF_HOME=/tmp/hf TTS_HOME=/tmp/tts python -c "\
import shutil; \
from TTS.utils.manage import ModelManager; \
_, config, _ = ModelManager(progress_bar=False).download_model('tts_models/multilingual/multi-dataset/xtts_v2'); \
shutil.copytree(config.parent, '/opt/model', ignore=shutil.ignore_patterns('samples', 'dvae.pth', 'mel_stats.pth', '.*'))" \
    && rm -rf /tmp/hf /tmp/tts \
    && test -s /opt/model/model.pth

FROM base AS weights-none
RUN mkdir -p /opt/model

FROM weights-${MODEL_SOURCE} AS weights

# ---------------------------------------------------------------------------
# converted: the fast-loading form (coqui rewrites model.pth on first load, so
# this must happen here, on a writable filesystem, never at run time). Only the
# converter's own modules are copied: editing any other code reuses this layer.
# The checkpoint is bind-mounted read-only (the converter never writes SRC).
# ---------------------------------------------------------------------------
FROM base AS converted
COPY voicecloning/__init__.py ./voicecloning/
# convert calibrates SmoothQuant on the fp32 model (engine/smoothing.py), so it builds the skeleton and runs it
COPY voicecloning/engine/__init__.py voicecloning/engine/convert.py voicecloning/engine/fastload.py \
     voicecloning/engine/manifest.py voicecloning/engine/quantize.py voicecloning/engine/smoothing.py \
     voicecloning/engine/skeleton.py voicecloning/engine/gpt2.py voicecloning/engine/conditioning.py \
     voicecloning/engine/fidelity.py voicecloning/engine/batching.py voicecloning/engine/kvdecode.py \
     voicecloning/engine/sampling.py ./voicecloning/engine/
RUN --mount=type=bind,from=weights,source=/opt/model,target=/opt/model \
    mkdir -p /opt/model-fast \
    && if [ -s /opt/model/model.pth ]; then \
        python -c "from pathlib import Path; from voicecloning.engine.convert import convert_checkpoint as c; print(c(Path('/opt/model'), Path('/opt/model-fast')))"; \
    fi

# ---------------------------------------------------------------------------
# app: the application code (last, so code edits rebuild only these layers)
# ---------------------------------------------------------------------------
FROM base AS app
COPY main.py ./
COPY voicecloning/ ./voicecloning/
COPY handlers/ ./handlers/

# ---------------------------------------------------------------------------
# runtime
# ---------------------------------------------------------------------------
FROM app AS runtime
COPY --from=converted --chown=10001:10001 /opt/model-fast /opt/model-fast

ENV VOICECLONING_MODEL_DIR=/opt/model-fast \
    VOICECLONING_DEVICE=cpu \
    FUNCTION_TARGET=http_api \
    HOME=/home/app

USER 10001:10001
EXPOSE 8080

# Shell form on purpose: ${FUNCTION_TARGET} and ${PORT} are expanded at start;
# exec makes functions-framework PID 1 so it receives SIGTERM from Cloud Run.
CMD exec functions-framework --target="${FUNCTION_TARGET}" --port="${PORT:-8080}"
