# The train image: torch (CUDA 13 wheels) + timm, with miad's methods, metrics, stats and reporting code. No bpy.
# `make images` builds it; with MIAD_RUNTIME=docker, every stage but the render ones runs in it (see docs/containers.md).
# BASE is pinned by digest; tests and offline machines pass a locally made bookworm base with --build-arg BASE=...
ARG BASE=debian:bookworm-slim@sha256:7b140f374b289a7c2befc338f42ebe6441b7ea838a042bbd5acbfca6ec875818
FROM ${BASE}

# Python 3.11, the same interpreter as the render image (torch's wheels bring their CUDA runtime and libgomp).
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11=3.11.* python3.11-venv=3.11.* \
    && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/miad \
    PATH=/opt/miad/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Every file hash-checked (docker/train.lock, `make locks`). Optional build secrets, which leave the layer cache
# alone: `ca` a CA bundle for pip, `index_url` a package index to use instead of pip's default (`make images`
# passes those of the host's pip configuration, its local file:// indexes served on localhost: miad.runtime.mirror;
# the files must match the hashes).
COPY docker/train.lock /tmp/requirements.lock
RUN --mount=type=secret,id=ca --mount=type=secret,id=index_url \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && if [ -f /run/secrets/index_url ]; then PIP_INDEX_URL="$(cat /run/secrets/index_url)"; export PIP_INDEX_URL; fi \
    && python3.11 -m venv "$VIRTUAL_ENV" \
    && pip install --require-hashes --no-deps -r /tmp/requirements.lock \
    && rm /tmp/requirements.lock

# miad itself (last: a code change rebuilds only this layer). At run time the mounted checkout's src/ comes first.
COPY pyproject.toml README.md LICENSE /opt/src/
COPY src /opt/src/src
RUN pip install --no-deps --no-build-isolation /opt/src && rm -rf /opt/src

# CUDA compute, and utility for nvidia-smi.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    MIAD_IN_CONTAINER=1
RUN useradd --create-home --uid 1000 miad
USER 1000:1000
WORKDIR /home/miad
CMD ["miad", "--help"]
