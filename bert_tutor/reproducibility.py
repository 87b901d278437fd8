"""Seeds and thread counts, so that every notebook and test gives the same numbers each run."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything"]


def seed_everything(seed: int, threads: int | None = 2) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; fix PyTorch's CPU thread count.

    threads: at most this many (and never more than the machine's cores); ``None`` leaves it.
    Returns a ``torch.Generator`` seeded with ``seed`` for code that wants its own stream.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if threads is not None:
        torch.set_num_threads(max(1, min(threads, os.cpu_count() or 1)))
    return torch.Generator().manual_seed(seed)
