import numpy as np
import pytest
import torch
from torch import nn

from graphkit.extras._core.checks import check_min_size, check_positive, min_input_size


def test_min_input_size_follows_convs_and_pools():
    layers = [nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
    assert min_input_size(layers) == (3, 3)  # 3 -> 2 -> 1; 2 -> 1 -> 0
    ceil_pool = [nn.MaxPool2d(3, stride=2, ceil_mode=True)]
    assert min_input_size(ceil_pool) == (2, 2)
    assert min_input_size([nn.Conv2d(1, 1, (1, 5))]) == (1, 5)
    net = nn.Sequential(*layers)  # torch agrees on both sides of the bound
    assert net(torch.zeros(1, 1, 3, 3)).shape[-2:] == (1, 1)
    with pytest.raises(RuntimeError):
        net(torch.zeros(1, 1, 2, 2))


def test_check_min_size_names_the_model_and_the_sizes():
    check_min_size(torch.zeros(1, 3, 8, 8), (8, 8), "Net")
    with pytest.raises(ValueError, match="Net needs images of at least 8x8 pixels .* got 8x7"):
        check_min_size(torch.zeros(1, 3, 8, 7), (8, 8), "Net")


def test_check_positive_takes_whole_numbers_only():
    check_positive(a=1, b=np.int64(7))
    # 5.0 used to pass and then fail inside nn.Linear with a torch type error
    for bad in (0, -2, 5.0, 2.5, True, "3", None):
        with pytest.raises(ValueError, match=f"width must be a positive integer, got {bad!r}"):
            check_positive(width=bad)
