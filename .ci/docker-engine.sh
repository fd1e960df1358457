#!/usr/bin/env bash
# Make a Docker engine available on a fresh CI machine (run as root; idempotent): install Debian's docker.io,
# debootstrap (for the local base image) and acl (the container test lets its non-root user reach the venv's Python
# with an ACL) when missing, start dockerd when no daemon answers, and wait until it does. Then what
# tests/test_containers.py needs and never makes itself: the bookworm base image (no registry is reachable) and the
# non-root user that runs the docker-mode pipeline.
set -euo pipefail
DOCKER=/usr/bin/docker  # Debian's client: builds with BuildKit without buildx
if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null || ! command -v setfacl >/dev/null \
   || [ ! -x "$DOCKER" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap acl >/dev/null
fi
if ! "$DOCKER" info >/dev/null 2>&1; then
  # No bridge or iptables: CI machines may lack the kernel modules; builds and runs use --network host/none.
  nohup dockerd --iptables=false --bridge=none >/var/log/miad-dockerd.log 2>&1 &
  for _ in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/miad-dockerd.log" >&2; exit 1; }
fi
bash "$(dirname "$0")/../docker/local-base.sh" miad-base:bookworm >/dev/null
id -u miad-ci >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin miad-ci
