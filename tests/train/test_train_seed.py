import random

import numpy as np
import pytest
import torch

from graphkit.train import deterministic, run_repeated, seed_everything


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_seed_everything_reproduces_python_numpy_and_torch():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert _draws() != first


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


def test_deterministic_as_context_manager_restores():
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic() as mode:
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark
        assert "enabled=True" in repr(mode)
    assert torch.are_deterministic_algorithms_enabled() == before


def test_deterministic_as_function_persists():
    mode = deterministic(True)
    try:
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        mode.__exit__(None, None, None)
    deterministic(False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_run_repeated_seeds_run_r_with_seed_plus_r():
    values = run_repeated(lambda r: (r, float(torch.rand(1))), runs=3, seed=10)
    for r, value in values:
        seed_everything(10 + r)
        assert value == float(torch.rand(1))
    assert [r for r, _ in values] == [0, 1, 2]


def test_run_repeated_rejects_zero_runs():
    with pytest.raises(ValueError, match="runs"):
        run_repeated(lambda r: r, runs=0)
