"""Run pipeline stages in their pinned images (MIAD_RUNTIME=docker): see miad.runtime.docker.

`make images` (`miad images`, miad.runtime.build) builds the render and train images and records their IDs in
docker/images.lock; `run_in_container` is the re-exec that `miad` does for a stage command, and
`container_command` the `docker run` argv it uses (Slurm tasks call it to containerise the same way).
"""

from miad.runtime.docker import IMAGE_ENV, IN_CONTAINER_ENV, RUNTIME_ENV, container_command, run_in_container, runtime

__all__ = ["IMAGE_ENV", "IN_CONTAINER_ENV", "RUNTIME_ENV", "container_command", "run_in_container", "runtime"]
