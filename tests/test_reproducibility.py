"""bert_tutor.reproducibility: the same seed gives the same numbers."""

import os
import random

import numpy as np
import pytest
import torch

from bert_tutor.reproducibility import seed_everything


def _draw():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_same_seed_gives_same_numbers_in_python_numpy_and_torch():
    seed_everything(7)
    first = _draw()
    seed_everything(7)
    assert _draw() == first
    seed_everything(8)
    assert _draw() != first


def test_returned_generator_is_seeded():
    a = torch.rand(3, generator=seed_everything(3))
    b = torch.rand(3, generator=seed_everything(3))
    assert torch.equal(a, b)


def test_thread_count_is_capped_by_the_cores():
    previous = torch.get_num_threads()
    try:
        seed_everything(0, threads=1)
        assert torch.get_num_threads() == 1
        seed_everything(0, threads=10_000)
        assert torch.get_num_threads() == os.cpu_count()
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_refused(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        seed_everything(seed)
