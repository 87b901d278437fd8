"""The shared machinery of every exercise check."""

from __future__ import annotations

from collections.abc import Mapping

import torch

__all__ = ["check_tensor", "passed", "seeded_generator", "unpack_answer"]


def passed(number: str, title: str) -> None:
    """Print the one stable line that says exercise ``number`` is right."""
    print(f"✓ Exercise {number}: {title}")


def seeded_generator(seed: int) -> torch.Generator:
    """A generator of a check's own, so that checking leaves the learner's global random state alone."""
    return torch.Generator().manual_seed(seed)


def unpack_answer(number: str, answer, names: tuple[str, ...], function: str) -> tuple:
    """Return ``answer`` as a tuple of len(names) items, or explain what ``function`` returned instead."""
    wanted = f"({', '.join(names)})"
    if not isinstance(answer, tuple | list):
        raise AssertionError(
            f"Exercise {number}: {function} should return {len(names)} tensors {wanted}, "
            f"got a single {type(answer).__name__}"
        )
    if len(answer) != len(names):
        raise AssertionError(
            f"Exercise {number}: {function} should return {len(names)} tensors {wanted}, "
            f"got {len(answer)} items"
        )
    return tuple(answer)


def _close(a: torch.Tensor, b: torch.Tensor, atol: float, rtol: float, equal_nan: bool = False) -> bool:
    return a.shape == b.shape and torch.allclose(
        a.float(), b.float(), atol=atol, rtol=rtol, equal_nan=equal_nan
    )


def check_tensor(
    number: str,
    answer,
    expected: torch.Tensor,
    name: str = "your result",
    mistakes: Mapping[str, torch.Tensor] | None = None,
    hint: str = "",
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> None:
    """Assert that ``answer`` equals ``expected``, or explain how it differs.

    mistakes maps a hint to what a typical wrong answer computes; when the learner's answer
    matches one of them, that hint is the message. Otherwise the message names the type,
    shape, NaNs or the largest difference, followed by ``hint``.
    """
    prefix = f"Exercise {number}: "
    if not isinstance(answer, torch.Tensor):
        raise AssertionError(f"{prefix}{name} should be a torch.Tensor, got {type(answer).__name__}")
    if answer.shape != expected.shape:
        raise AssertionError(
            f"{prefix}{name} has shape {tuple(answer.shape)}, expected {tuple(expected.shape)}"
        )
    answer = answer.detach()
    if _close(answer, expected, atol, rtol):
        return
    for mistake_hint, wrong in (mistakes or {}).items():
        if _close(answer, wrong, atol, rtol, equal_nan=True):  # a mistake may produce NaN
            raise AssertionError(prefix + mistake_hint)
    if torch.isnan(answer).any():
        raise AssertionError(f"{prefix}{name} contains NaN. {hint}".rstrip())
    diff = (answer.float() - expected.float()).abs().max().item()
    raise AssertionError(
        f"{prefix}{name} differs from the expected values (largest difference {diff:.3g}). {hint}".rstrip()
    )
