# syntax=docker/dockerfile:1
# The vidscribe image: every pod of the KubeRay cluster in k8s/, or one box with
#   docker run --shm-size=2g -p 8000:8000 -v vidscribe-data:/data -e VIDSCRIBE_API_TOKENS=... vidscribe:0.1.0
#
#   docker build -t vidscribe:0.1.0 .                         # CPU
#   docker build --build-arg GPU=1 -t vidscribe:0.1.0-gpu .   # + the CUDA 12 libraries ctranslate2 loads
#   docker build --build-arg YTDLP_VERSION=2026.11.20 ...     # another yt-dlp, no vidscribe release needed
#   docker build --build-arg WHISPER_MODEL=large-v3-turbo ... # a bigger speech model baked in (see below)
#
# Base: python:3.11-slim rather than rayproject/ray:2.60.0-py311. pyproject.toml is the one
# source of dependencies and pins ray[serve]==2.60.0 itself, so the Ray image would only add
# a second Python (conda under /home/ray) and a gigabyte or two of packages we never import;
# and the GPU variant needs cuBLAS/cuDNN only, which come as pip wheels, not a CUDA base
# image. What the Ray image would have brought and KubeRay needs is added here: bash (in the
# base), wget (KubeRay's exec probes) and a non-root user.
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

# GPU=1 installs these wheels (cuBLAS and cuDNN 9 for CUDA 12, what faster-whisper's
# ctranslate2 needs on a GPU); the driver itself comes from the node.
ARG GPU=0
ARG CUDA_WHEELS="nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*"

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN apt-get update \
 && apt-get install -y --no-install-recommends wget ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# uid/gid 1000: runAsUser and fsGroup in k8s/rayservice.yaml.
RUN groupadd --gid 1000 vidscribe \
 && useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash vidscribe \
 && mkdir -p /data \
 && chown vidscribe:vidscribe /data

WORKDIR /opt/vidscribe/app

# Dependencies in their own layer, from pyproject.toml: a code change does not reinstall Ray.
# Into the system Python (/usr/local): `ray` stays on PATH even in a login shell.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

RUN if [ "$GPU" = "1" ]; then set -f; pip install $CUDA_WHEELS; fi

# yt-dlp follows the sites' changes every week; pyproject.toml pins only a minimum. Upgrade it
# without a vidscribe release: --build-arg YTDLP_VERSION=2026.11.20 installs that release,
# --build-arg YTDLP_VERSION= (empty, the default) the newest one (a cached layer keeps the one it
# had: pass a version, or --no-cache, to move it). Each Transcriber logs the version it runs.
ARG YTDLP_VERSION=""
RUN pip install --upgrade "yt-dlp${YTDLP_VERSION:+==$YTDLP_VERSION}"

# Installed as pip installs it (not editable): the image runs what pip users get, with the
# Serve config as package data.
COPY README.md ./
COPY serve_app ./serve_app
COPY actors ./actors
RUN pip install --no-deps .

# The default Whisper base model, assembled and verified at build time, outside /data (the
# volume), so that no pod assembles it at start-up.
RUN python -c "from pathlib import Path; from actors.speech.bundled_model import ensure_default_model; print(ensure_default_model(Path('/opt/vidscribe')))" \
 && test -s /opt/vidscribe/models/whisper-base/model.bin

# A bigger Whisper model, fetched once here (this build needs the internet; pods never fetch
# one) and checked to load; run the image with that name in VIDSCRIBE_ASR__MODEL.
ARG WHISPER_MODEL=""
RUN if [ -n "$WHISPER_MODEL" ]; then vidscribe models pull "$WHISPER_MODEL" --to /opt/vidscribe/models; fi

ENV VIDSCRIBE_DATA_DIR=/data \
    VIDSCRIBE_ASR__MODEL=/opt/vidscribe/models/whisper-base \
    VIDSCRIBE_ASR__MODELS_DIR=/opt/vidscribe/models \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/usr/local/lib/python3.11/site-packages/nvidia/cublas/lib:/usr/local/lib/python3.11/site-packages/nvidia/cudnn/lib

USER 1000:1000
WORKDIR /home/vidscribe
EXPOSE 8000 8265
CMD ["vidscribe", "serve", "--host", "0.0.0.0", "--port", "8000"]
