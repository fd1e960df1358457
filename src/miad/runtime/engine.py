"""The Docker client miad calls, and whether an engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from miad.config import ConfigError

DOCKER_ENV = "MIAD_DOCKER"  # the docker client to call (default: Debian's /usr/bin/docker, else `docker` on PATH)
DEBIAN_CLIENT = Path("/usr/bin/docker")  # builds with BuildKit without the buildx plugin


def client() -> str:
    """Path of the docker client: $MIAD_DOCKER, else /usr/bin/docker, else `docker` on PATH."""
    chosen = os.environ.get(DOCKER_ENV)
    if chosen:
        return chosen
    if DEBIAN_CLIENT.is_file():
        return str(DEBIAN_CLIENT)
    found = shutil.which("docker")
    if found is None:
        raise ConfigError(f"MIAD_RUNTIME=docker needs a docker client: none on PATH (set {DOCKER_ENV})")
    return found


def available() -> tuple[bool, str]:
    """(whether a Docker engine answers, why not or the server version)."""
    try:
        proc = subprocess.run(
            [client(), "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (ConfigError, OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    if proc.returncode != 0:
        return False, (proc.stderr.strip() or proc.stdout.strip() or f"docker version exited {proc.returncode}")
    return True, proc.stdout.strip()
