"""Attention, from a soft dictionary lookup to multi-head attention (chapters 1-3).

Shapes use these letters:
    B  batch size               Q  number of queries (query length)
    K  number of keys/values    d  query/key size      v  value size
    H  number of heads

A *mask* is a boolean tensor that is ``True`` where a query may look at a key and
``False`` where it may not. It must broadcast to the scores' shape ``(..., Q, K)``.
*Valid lengths* are the other common way to say the same thing for padding: key ``j``
is visible when ``j < valid_len``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AdditiveAttention",
    "MultiHeadAttention",
    "SelfAttention",
    "fused_attention",
    "lengths_to_mask",
    "masked_softmax",
    "merge_heads",
    "scaled_dot_product_attention",
    "split_heads",
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


def _check_mask(mask: torch.Tensor, scores_shape: tuple[int, ...]) -> None:
    """Raise ValueError unless ``mask`` is boolean and broadcasts to the scores' shape (..., Q, K)."""
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a boolean tensor (True = may attend), got dtype {mask.dtype}")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} cannot broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., queries, keys)"
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
    _check_mask(mask, scores.shape)
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


# --- Multi-head attention (chapter 3) ---------------------------------------------------


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Cut the feature axis into ``num_heads`` heads and move heads in front of positions.

    x: (B, n, H * d). Returns (B, H, n, d), a view: head h sees features ``h*d .. h*d + d - 1``.
    """
    if x.dim() != 3 or num_heads <= 0 or x.shape[-1] % num_heads:
        raise ValueError(
            f"split_heads needs x of shape (batch, length, num_heads * head_size) with num_heads > 0, "
            f"got shape {tuple(x.shape)} and num_heads={num_heads}"
        )
    B, n, hidden = x.shape
    return x.view(B, n, num_heads, hidden // num_heads).transpose(1, 2)  # (B, H, n, d)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`split_heads`: put the heads side by side again.

    x: (B, H, n, d). Returns (B, n, H * d).
    """
    if x.dim() != 4:
        raise ValueError(
            f"merge_heads needs x of shape (batch, heads, length, head_size), got {tuple(x.shape)}"
        )
    B, H, n, d = x.shape
    return x.transpose(1, 2).reshape(B, n, H * d)  # (B, n, H * d)


def fused_attention(
    queries: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """The fast path: :func:`scaled_dot_product_attention` done by ``F.scaled_dot_product_attention``.

    queries: (..., Q, d); keys: (..., K, d); values: (..., K, v); mask: boolean, True = may attend,
    broadcastable to (..., Q, K). dropout_p: dropout on the weights (pass 0.0 when evaluating).
    Returns the output (..., Q, v) only: the fused kernel never forms the (Q, K) weights.
    A query that may see no key gets a zero output, as on the naive path (some PyTorch versions
    and GPU kernels give NaN there, so such rows see every key, then are zeroed).
    """
    _check_qkv(queries, keys, values, same_size=True)
    if mask is None:
        return F.scaled_dot_product_attention(queries, keys, values, dropout_p=dropout_p)  # (..., Q, v)
    _check_mask(mask, (*queries.shape[:-1], keys.shape[-2]))  # (..., Q, K)
    sees_a_key = mask.any(dim=-1, keepdim=True)  # (..., Q or 1, 1)
    output = F.scaled_dot_product_attention(
        queries, keys, values, attn_mask=mask | ~sees_a_key, dropout_p=dropout_p
    )  # (..., Q, v)
    return output.masked_fill(~sees_a_key, 0.0)


class MultiHeadAttention(nn.Module):
    """H heads of scaled dot-product attention side by side, each on its own slice of the features.

    Each of ``query``, ``key``, ``value`` and ``output`` is a Linear(hidden_size, hidden_size);
    head h uses features ``h*d .. h*d + d - 1`` of the projected queries, keys and values
    (d = hidden_size / num_heads), and ``output`` mixes the heads' results back together.
    A query that may see no key (say, in a fully padded sequence) gets a zero context from every
    head, so its output is just ``output``'s bias.

    ``fused`` picks the path: False computes the weights with matmul, masked softmax, matmul
    (what chapter 3 teaches); True calls ``F.scaled_dot_product_attention``, which is faster and
    equal up to rounding, but never forms the weights. Dropout on the weights draws different
    random numbers on the two paths, so they agree exactly only in eval mode.
    """

    def __init__(
        self, hidden_size: int, num_heads: int, dropout: float = 0.0, bias: bool = True, fused: bool = False
    ):
        super().__init__()
        if hidden_size <= 0 or num_heads <= 0:
            raise ValueError(f"hidden_size and num_heads must be positive, got {hidden_size} and {num_heads}")
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.hidden_size, self.num_heads = hidden_size, num_heads
        self.head_size = hidden_size // num_heads
        self.fused = fused
        self.query = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.key = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.value = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.output = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        queries: torch.Tensor,
        keys: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        valid_lens: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from queries (B, Q, hidden) to keys (B, K, hidden) and values (B, K, hidden).

        keys default to queries (self-attention); values default to keys (cross-attention
        passes the encoder's output once). mask: boolean, True = may attend, broadcastable to
        (B, H, Q, K); or valid_lens (B,) or (B, Q), the number of visible keys.
        Returns (output (B, Q, hidden), weights (B, H, Q, K) if need_weights else None); in
        training mode the weights are the ones used, after dropout.
        need_weights=True on the fused path raises ValueError: set ``fused = False`` to see them.
        """
        if need_weights and self.fused:
            raise ValueError("the fused path never forms the attention weights: set fused=False to get them")
        keys = queries if keys is None else keys
        values = keys if values is None else values
        for name, t in (("queries", queries), ("keys", keys), ("values", values)):
            if t.dim() != 3 or t.shape[-1] != self.hidden_size:
                raise ValueError(
                    f"expected {name} of shape (batch, length, {self.hidden_size}), got {tuple(t.shape)}"
                )
        if mask is not None and valid_lens is not None:
            raise ValueError("give either mask or valid_lens, not both")
        if valid_lens is not None:
            # (B, 1, K) or (B, Q, K) -> (B, 1, 1 or Q, K): every head hides the same keys
            mask = lengths_to_mask(valid_lens, keys.shape[1]).unsqueeze(1)

        q = split_heads(self.query(queries), self.num_heads)  # (B, H, Q, d)
        k = split_heads(self.key(keys), self.num_heads)  # (B, H, K, d)
        v = split_heads(self.value(values), self.num_heads)  # (B, H, K, d)
        if self.fused:
            dropout_p = self.dropout.p if self.training else 0.0
            context = fused_attention(q, k, v, mask=mask, dropout_p=dropout_p)  # (B, H, Q, d)
            weights = None
        else:
            # (B, H, Q, d), (B, H, Q, K)
            context, weights = scaled_dot_product_attention(q, k, v, mask=mask, dropout=self.dropout)
        output = self.output(merge_heads(context))  # (B, Q, hidden)
        return output, (weights if need_weights else None)
