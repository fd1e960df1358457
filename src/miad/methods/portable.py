"""Stand-ins for the few torch operations whose CPU bits depend on the CPU's vendor, even with the numeric pin.

On CPU, `torch.sqrt` (and `acos`, `asin`, `atan`, `pow(x, 0.5)`) run MKL's vector maths, whose code for these uses
the processor's approximate reciprocal square root: its bits differ between Intel and AMD, and under qemu-user
(checked: 878-964 of 6144 float32 results were not the correctly rounded root, and which ones depended on the CPU).
So does torch's default (foreach) Adam, which takes that square root of its second moment. What the methods use
instead, on CPU:
- `portable_sqrt`: NumPy's square root, the IEEE `sqrtps` instruction: correctly rounded on every x86 CPU;
- `adam`: torch's fused Adam/AdamW, whose CPU kernel takes the square root with the same IEEE instruction.
`torch.linalg.vector_norm` and `F.normalize` are safe as they are (ATen's own vectorised square root).
On a GPU both fall back to torch's own operations (GPU results are reproducible per GPU model).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch


def portable_sqrt(values: torch.Tensor) -> torch.Tensor:
    """Element-wise square root, correctly rounded on every CPU (a new tensor; gradients do not flow)."""
    if values.device.type != "cpu":
        return torch.sqrt(values)
    array = values.detach().contiguous().numpy()
    return torch.from_numpy(np.sqrt(array))


def adam(params: Iterable[Any], *, decoupled_weight_decay: bool = False, **kwargs: Any) -> torch.optim.Optimizer:
    """Adam (`decoupled_weight_decay`: AdamW) in torch's fused implementation, whose bits do not depend on the CPU.

    `params` and `kwargs` are those of `torch.optim.Adam` (parameter groups, lr, betas, weight_decay, ...)."""
    optimizer = torch.optim.AdamW if decoupled_weight_decay else torch.optim.Adam
    return optimizer(params, fused=True, **kwargs)
