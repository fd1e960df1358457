#!/usr/bin/env bash
# Make a Debian bookworm base image locally with debootstrap, for machines that cannot pull from a registry
# (CI, this project's build machines). Usage: docker/local-base.sh [TAG]   (default miad-base:bookworm)
# Prints the tag. Skips the work when the tag already exists. Needs root and debootstrap.
set -euo pipefail
TAG=${1:-miad-base:bookworm}
DOCKER=${DOCKER:-/usr/bin/docker}
if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then echo "$TAG"; exit 0; fi
ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
debootstrap --variant=minbase bookworm "$ROOT" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >&2
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" -c . | "$DOCKER" import - "$TAG" >&2
echo "$TAG"
