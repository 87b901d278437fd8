"""Attention, from a soft dictionary lookup to self-attention (chapters 1-2).

Shapes use these letters:
    B  batch size               Q  number of queries (query length)
    K  number of keys/values    d  query/key size      v  value size

A *mask* is a boolean tensor that is ``True`` where a query may look at a key and
``False`` where it may not. It must broadcast to the scores' shape ``(..., Q, K)``.
*Valid lengths* are the other common way to say the same thing for padding: key ``j``
is visible when ``j < valid_len``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "AdditiveAttention",
    "SelfAttention",
    "lengths_to_mask",
    "masked_softmax",
    "scaled_dot_product_attention",
]


def lengths_to_mask(valid_lens: torch.Tensor, num_keys: int) -> torch.Tensor:
    """Turn valid lengths into a boolean key mask.

    valid_lens: (B,) or (B, Q), integer lengths in ``[0, num_keys]``.
    Returns (B, 1, K) or (B, Q, K): ``True`` where ``key index < valid_len``.
    """
    if valid_lens.dtype.is_floating_point or valid_lens.dtype == torch.bool:
        raise ValueError(f"valid_lens must hold integers, got dtype {valid_lens.dtype}")
    if valid_lens.dim() not in (1, 2):
        raise ValueError(f"valid_lens must have shape (B,) or (B, Q), got {tuple(valid_lens.shape)}")
    if valid_lens.numel() and (valid_lens.min() < 0 or valid_lens.max() > num_keys):
        raise ValueError(
            f"valid_lens must lie in [0, {num_keys}] (the number of keys), "
            f"got values from {int(valid_lens.min())} to {int(valid_lens.max())}"
        )
    positions = torch.arange(num_keys, device=valid_lens.device)  # (K,)
    if valid_lens.dim() == 1:
        return positions < valid_lens[:, None, None]  # (B, 1, K)
    return positions < valid_lens[:, :, None]  # (B, Q, K)


def _check_mask(scores: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise ValueError unless ``mask`` is boolean and broadcasts to ``scores`` (..., Q, K)."""
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores.shape) == scores.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} cannot broadcast to the scores' shape "
            f"{tuple(scores.shape)} (..., queries, keys)"
        )


def masked_softmax(
    scores: torch.Tensor,
    mask: torch.Tensor | None = None,
    valid_lens: torch.Tensor | None = None,
) -> torch.Tensor:
    """Softmax over the last axis (the keys), ignoring masked-out keys.

    scores: (..., Q, K). mask: boolean, broadcastable to scores, True = keep.
    valid_lens: (B,) or (B, Q) when scores is (B, Q, K) (or (B, heads, Q, K) with (B,)).
    Returns weights of the same shape as scores; each row sums to 1 over its visible keys,
    and a row whose keys are *all* masked gives all-zero weights (never NaN).
    """
    if mask is not None and valid_lens is not None:
        raise ValueError("give either mask or valid_lens, not both")
    if valid_lens is not None:
        mask = lengths_to_mask(valid_lens, scores.shape[-1])  # (B, 1 or Q, K)
        if scores.dim() == 4:
            mask = mask[:, None]  # (B, 1, 1 or Q, K): the same keys for every head
    if mask is None:
        return torch.softmax(scores, dim=-1)
    _check_mask(scores, mask)
    # The most negative finite number, not -inf: exp() of it is exactly 0 next to any
    # visible key, and a fully masked row stays finite (uniform) until we zero it below.
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1) * mask


def _check_qkv(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, same_size: bool):
    """Raise ValueError unless queries (..., Q, d), keys (..., K, d'), values (..., K, v) fit."""
    for name, t in (("queries", queries), ("keys", keys), ("values", values)):
        if t.dim() < 2:
            raise ValueError(f"{name} must be at least 2-D (..., length, size), got shape {tuple(t.shape)}")
    if keys.shape[-2] != values.shape[-2]:
        raise ValueError(
            f"keys and values must have the same length: "
            f"keys {tuple(keys.shape)}, values {tuple(values.shape)}"
        )
    if same_size and queries.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same last size d for dot products: "
            f"queries {tuple(queries.shape)}, keys {tuple(keys.shape)}"
        )
    if queries.shape[:-2] != keys.shape[:-2] or keys.shape[:-2] != values.shape[:-2]:
        raise ValueError(
            f"queries, keys and values must share their leading (batch) dimensions: queries "
            f"{tuple(queries.shape)}, keys {tuple(keys.shape)}, values {tuple(values.shape)}"
        )


def scaled_dot_product_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
    valid_lens: torch.Tensor | None = None,
    dropout: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention(Q, K, V) = softmax(Q K^T / sqrt(d)) V, the naive (readable) way.

    queries: (..., Q, d); keys: (..., K, d); values: (..., K, v).
    mask / valid_lens: as in :func:`masked_softmax`. dropout: applied to the weights.
    Returns (output (..., Q, v), weights (..., Q, K)).
    """
    _check_qkv(queries, keys, values, same_size=True)
    d = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(d)  # (..., Q, K)
    weights = masked_softmax(scores, mask=mask, valid_lens=valid_lens)  # (..., Q, K)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ values, weights  # (..., Q, v), (..., Q, K)


class AdditiveAttention(nn.Module):
    """Bahdanau's additive attention: score(q, k) = w_v . tanh(W_q q + W_k k).

    Queries and keys may have different sizes; a hidden layer of ``hidden_size`` units
    compares them. forward(queries (B, Q, dq), keys (B, K, dk), values (B, K, v), mask or
    valid_lens) returns (output (B, Q, v), weights (B, Q, K)).
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int, dropout: float = 0.0):
        super().__init__()
        for name, value in (("query_size", query_size), ("key_size", key_size), ("hidden_size", hidden_size)):
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self.query_size, self.key_size = query_size, key_size
        self.W_q = nn.Linear(query_size, hidden_size, bias=False)
        self.W_k = nn.Linear(key_size, hidden_size, bias=False)
        self.w_v = nn.Linear(hidden_size, 1, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries, keys, values, mask=None, valid_lens=None):
        _check_qkv(queries, keys, values, same_size=False)
        if queries.shape[-1] != self.query_size or keys.shape[-1] != self.key_size:
            raise ValueError(
                f"expected queries (..., {self.query_size}) and keys (..., {self.key_size}), "
                f"got {tuple(queries.shape)} and {tuple(keys.shape)}"
            )
        # Every query meets every key: (B, Q, 1, h) + (B, 1, K, h) -> (B, Q, K, h)
        features = torch.tanh(self.W_q(queries).unsqueeze(-2) + self.W_k(keys).unsqueeze(-3))
        scores = self.w_v(features).squeeze(-1)  # (B, Q, K)
        weights = masked_softmax(scores, mask=mask, valid_lens=valid_lens)  # (B, Q, K)
        return self.dropout(weights) @ values, weights  # (B, Q, v), (B, Q, K)


class SelfAttention(nn.Module):
    """Single-head self-attention: project x to queries, keys and values, then attend.

    forward(x (B, n, hidden_size), mask or valid_lens) returns
    (output (B, n, head_size), weights (B, n, n)).
    """

    def __init__(
        self, hidden_size: int, head_size: int | None = None, bias: bool = True, dropout: float = 0.0
    ):
        super().__init__()
        head_size = hidden_size if head_size is None else head_size
        if hidden_size <= 0 or head_size <= 0:
            raise ValueError(f"hidden_size and head_size must be positive, got {hidden_size} and {head_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.hidden_size = hidden_size
        self.query = nn.Linear(hidden_size, head_size, bias=bias)
        self.key = nn.Linear(hidden_size, head_size, bias=bias)
        self.value = nn.Linear(hidden_size, head_size, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask=None, valid_lens=None):
        if x.dim() != 3 or x.shape[-1] != self.hidden_size:
            raise ValueError(f"expected x of shape (batch, length, {self.hidden_size}), got {tuple(x.shape)}")
        queries, keys, values = self.query(x), self.key(x), self.value(x)  # each (B, n, head_size)
        return scaled_dot_product_attention(
            queries, keys, values, mask=mask, valid_lens=valid_lens, dropout=self.dropout
        )
