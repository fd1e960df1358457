"""Is there an NVIDIA GPU, as the driver and as torch see it?"""

from __future__ import annotations

import shutil
import subprocess

from miad.gpucheck import GpuCheckError


def nvidia_gpus() -> list[str]:
    """`nvidia-smi -L` lines, one per GPU; raises GpuCheckError naming what is missing."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise GpuCheckError("no NVIDIA GPU: nvidia-smi is not on PATH (run this on a machine with an NVIDIA driver)")
    proc = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False)
    gpus = [line for line in proc.stdout.splitlines() if line.startswith("GPU ")]
    if proc.returncode != 0 or not gpus:
        raise GpuCheckError(f"no NVIDIA GPU: `nvidia-smi -L` exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    return gpus


def torch_cuda_device() -> str:
    """torch's name for the first CUDA device; raises GpuCheckError when torch cannot use it."""
    import torch

    if not torch.cuda.is_available():
        raise GpuCheckError(
            f"torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda}); "
            "install the CUDA build of torch (requirements.lock, or the train image: docker/train.Dockerfile) "
            "or check the driver"
        )
    return torch.cuda.get_device_name(0)
