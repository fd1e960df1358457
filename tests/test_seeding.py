import pytest

from miad.seeding import SEED_BITS, derive_seed, rng_for, torch_seed


def test_derive_seed_is_stable_and_distinct():
    assert derive_seed(1, "render", "main", 3) == derive_seed(1, "render", "main", 3)
    seeds = {derive_seed(1, "render", "main", i) for i in range(1000)}
    assert len(seeds) == 1000
    assert derive_seed(1, "a", 1) != derive_seed(1, "a", "1")  # types are part of the path
    assert derive_seed(2, "a") != derive_seed(1, "a")
    assert all(0 <= s < 2**SEED_BITS for s in seeds)


def test_known_value_never_changes():
    # Changing the derivation would silently change every rendered image: pin one value.
    assert derive_seed(20230417, "render", "main", "electrical_insulator", "train", 0) == 8129371545322704517


def test_rng_for_and_torch_seed():
    assert rng_for(5, "x").integers(0, 1 << 30) == rng_for(5, "x").integers(0, 1 << 30)
    assert 0 <= torch_seed(2**62 + 7) < 2**32


@pytest.mark.parametrize("root", [-1, 1.5, True, "3"])
def test_bad_root(root):
    with pytest.raises(ValueError, match="root seed"):
        derive_seed(root, "a")
