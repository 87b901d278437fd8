"""Argument checks shared by the package's modules: one mistake, one message that names it."""

from __future__ import annotations


def check_positive_int(name: str, value: object) -> None:
    """Raise a ValueError that names ``name`` unless ``value`` is an int of at least 1 (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
