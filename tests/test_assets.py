import pytest

from miad import assets
from tests.conftest import REPO


def test_build_is_deterministic_and_matches_data_dvc(tmp_path):
    assets.build(tmp_path / "a")
    assets.build(tmp_path / "b")
    assert assets.listing(tmp_path / "a") == assets.listing(tmp_path / "b")
    assets.check(tmp_path / "a", REPO / "data.dvc")


def test_pools_are_disjoint_and_complete(tmp_path):
    names = assets.build(tmp_path / "a")
    train = {n for n in names if "/train/" in n}
    test = {n for n in names if "/test/" in n}
    assert train and test and not train & test and len(train) + len(test) == len(names)
    payloads = {}
    for name in names:
        payloads.setdefault((tmp_path / "a" / name).read_bytes(), []).append(name)
    assert all(len(v) == 1 for v in payloads.values())  # no image appears in two pools


def test_mismatch_names_the_files(tmp_path):
    root = tmp_path / "a"
    assets.build(root)
    (root / "backgrounds/train/bg_000.png").write_bytes(b"x")
    (root / "textures/rust/test/rust_001.png").unlink()
    (root / "extra.txt").write_text("x")
    with pytest.raises(assets.AssetMismatchError) as info:
        assets.check(root, REPO / "data.dvc")
    text = str(info.value)
    assert "differs: backgrounds/train/bg_000.png" in text
    assert "missing: textures/rust/test/rust_001.png" in text
    assert "unexpected: extra.txt" in text


# Dispatch settings a CPU of another kind would get, emulated here: NumPy without AVX-512, without AVX2/FMA3 or at
# SSE3 only; OpenCV with and without IPP and its own AVX2/AVX-512 paths; OpenBLAS on an older core.
NPY_AVX512 = "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL"
DISPATCH_SETTINGS = {
    "native": {},
    "no-avx512": {"NPY_DISABLE_CPU_FEATURES": NPY_AVX512, "OPENCV_CPU_DISABLE": "AVX512-SKX"},
    "no-avx2-fma-ipp": {
        "NPY_DISABLE_CPU_FEATURES": f"AVX2 FMA3 {NPY_AVX512}",
        "OPENCV_IPP": "disabled",
        "OPENCV_CPU_DISABLE": "AVX2,FP16,AVX512-SKX",
    },
    "sse3-only": {
        "NPY_DISABLE_CPU_FEATURES": f"SSSE3 SSE41 POPCNT SSE42 AVX F16C AVX2 FMA3 {NPY_AVX512}",
        "OPENCV_CPU_DISABLE": "SSE4.1,SSE4.2,AVX,FP16,AVX2,AVX512-SKX",
        "OPENBLAS_CORETYPE": "Prescott",
    },
}


@pytest.mark.parametrize("setting", sorted(DISPATCH_SETTINGS))
def test_asset_library_is_the_same_under_every_dispatch_setting(tmp_path, setting):
    """The generator's bits do not depend on the SIMD path: built in a fresh process under each setting, with
    miad's own pinning off so that the libraries really run at the emulated level, every file matches data.dvc."""
    import os
    import subprocess
    import sys

    setting_env = dict(DISPATCH_SETTINGS[setting])
    if "OPENBLAS_CORETYPE" in os.environ:  # some machines set it because their OpenBLAS needs it: leave theirs
        setting_env.pop("OPENBLAS_CORETYPE", None)
    env = {**os.environ, "MIAD_UNPINNED": "1", "OPENCV_LOG_LEVEL": "ERROR", **setting_env}
    script = (
        "import sys; from pathlib import Path; from miad import assets; "
        "from numpy.core._multiarray_umath import __cpu_dispatch__ as d, __cpu_features__ as f; "
        "assets.build(Path(sys.argv[1])); print(' '.join(x for x in d if f.get(x)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "a")], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    enabled = proc.stdout.split()
    for feature in DISPATCH_SETTINGS[setting].get("NPY_DISABLE_CPU_FEATURES", "").split():
        assert feature not in enabled  # the setting took effect
    assets.check(tmp_path / "a", REPO / "data.dvc")


def test_cubic_upsampling_matches_the_textbook_kernel():
    """The portable upsampler against a scalar Catmull-Rom loop with OpenCV's pixel-centre rule; a constant stays
    constant and linear data is reproduced away from the edges."""
    import math

    import numpy as np

    def kernel(d: float) -> float:
        d = abs(d)
        return 1.5 * d**3 - 2.5 * d**2 + 1 if d <= 1 else (-0.5 * d**3 + 2.5 * d**2 - 4 * d + 2 if d < 2 else 0.0)

    grid = np.random.default_rng(0).random((4, 4))
    size = 10
    expected = np.zeros((size, size))
    for y in range(size):
        for x in range(size):
            sy, sx = (y + 0.5) * 4 / size - 0.5, (x + 0.5) * 4 / size - 0.5
            for j in range(math.floor(sy) - 1, math.floor(sy) + 3):
                for i in range(math.floor(sx) - 1, math.floor(sx) + 3):
                    weight = kernel(sy - j) * kernel(sx - i)
                    expected[y, x] += weight * grid[min(max(j, 0), 3), min(max(i, 0), 3)]
    assert np.allclose(assets.upsample_cubic(grid, size), expected, atol=1e-12)
    assert np.array_equal(assets.upsample_cubic(np.full((4, 4), 0.25), 32), np.full((32, 32), 0.25))
    ramp = assets.upsample_cubic(np.tile(np.arange(6.0), (6, 1)), 12)
    assert np.allclose(ramp[:, 3:9], np.arange(12.0)[3:9] / 2 - 0.25)


def test_fractional_power_is_close_to_pow():
    import numpy as np

    x = np.linspace(0.0, 1.0, 101)
    for exponent in (1.5, 2.0, 2.3, 3.0):
        assert np.max(np.abs(assets.fractional_power(x, exponent) - x**exponent)) < 0.03
    with pytest.raises(ValueError, match="exponent"):
        assets.fractional_power(x, 4.0)
