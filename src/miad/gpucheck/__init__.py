"""A prepared first check for a lent NVIDIA GPU: `miad gpucheck` (see `miad.gpucheck.run`).

Renders one shard with OptiX and one with CUDA, trains and evaluates one method for a few steps on
the GPU twice (determinism), and prints rates and peak memory; about 10 minutes on one GPU.
Untested on a GPU so far: the parts that need none run in tests/test_gpucheck.py.
"""

from miad.errors import MiadError


class GpuCheckError(MiadError, RuntimeError):
    """The check cannot run here (no NVIDIA GPU, no Cycles GPU device) or found a problem."""
