"""Checks for the exercises of chapter 2, self-attention.

Each ``check_*`` function calls the learner's function on inputs it makes itself (from its own
seeded generator, so the learner's random state is left alone), compares the result with
:mod:`bert_tutor.attention`, and prints ``✓ Exercise 2.N: ...`` or raises an AssertionError
that names the mistake when it recognises one.

    2.1  check_qkv_projections(project_qkv)        queries, keys, values = x @ W_q, x @ W_k, x @ W_v
    2.2  check_scaled_dot_product(my_attention)    (output, weights) of softmax(Q Kᵀ / sqrt(d)) V
    2.3  check_masked_softmax(my_masked_softmax)   softmax over visible keys; all-masked rows give 0
    2.4  check_causal_mask(causal_mask)            (n, n) boolean, True where key j <= query i
"""

from __future__ import annotations

import math

import torch

from bert_tutor.attention import lengths_to_mask, masked_softmax, scaled_dot_product_attention
from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator, unpack_answer

__all__ = [
    "check_causal_mask",
    "check_masked_softmax",
    "check_qkv_projections",
    "check_scaled_dot_product",
]


def check_qkv_projections(project_qkv) -> None:
    """Exercise 2.1: ``project_qkv(x, W_q, W_k, W_v)`` returns (queries, keys, values).

    x: (B, n, hidden); W_q, W_k: (hidden, d); W_v: (hidden, v). Each projection is x @ W.
    """
    g = seeded_generator(21)
    batch, n, hidden, d = 2, 5, 8, 4  # d = v here, as in BERT, so that swapped matrices still fit
    x = torch.randn(batch, n, hidden, generator=g)  # (B, n, hidden)
    weights = {name: torch.randn(hidden, d, generator=g) for name in ("W_q", "W_k", "W_v")}
    projected = {name: x @ w for name, w in weights.items()}  # each (B, n, d)

    answer = project_qkv(x.clone(), *(w.clone() for w in weights.values()))
    names = ("queries", "keys", "values")
    answer = unpack_answer("2.1", answer, names, "project_qkv")
    for name, own, result in zip(names, weights, answer, strict=True):
        mistakes = {
            f"your {name} equal x @ {other}: {name} are x @ {own}. "
            f"Each of queries, keys and values has its own matrix; did you swap or reuse one?": value
            for other, value in projected.items()
            if other != own
        }
        mistakes[
            f"your {name} are x @ {own} divided by sqrt(d): the 1/sqrt(d) scale belongs to the "
            f"scores Q Kᵀ (exercise 2.2), not to the projections"
        ] = projected[own] / math.sqrt(d)
        check_tensor("2.1", result, projected[own], name=f"your {name} tensor", mistakes=mistakes)
    passed("2.1", "Q, K, V projections")


# --- 2.2 ---------------------------------------------------------------------------------------


def check_scaled_dot_product(my_attention) -> None:
    """Exercise 2.2: ``my_attention(queries, keys, values)`` returns (output, weights).

    queries, keys: (B, n, d); values: (B, n, v). weights = softmax(Q Kᵀ / sqrt(d)) over the keys,
    (B, n, n); output = weights @ values, (B, n, v).
    """
    g = seeded_generator(22)
    batch, n, d, v = 2, 6, 16, 5  # n, d, v and sqrt of each all differ, so each mistake is visible
    queries = torch.randn(batch, n, d, generator=g)
    keys = torch.randn(batch, n, d, generator=g)
    values = torch.randn(batch, n, v, generator=g)
    output, weights = scaled_dot_product_attention(queries, keys, values)  # (B, n, v), (B, n, n)

    answer = my_attention(queries.clone(), keys.clone(), values.clone())
    answer_output, answer_weights = unpack_answer("2.2", answer, ("output", "weights"), "my_attention")
    if (
        isinstance(answer_output, torch.Tensor)
        and isinstance(answer_weights, torch.Tensor)
        and answer_output.shape == weights.shape
        and answer_weights.shape == output.shape
    ):
        raise AssertionError(
            "Exercise 2.2: you returned (weights, output); return (output, weights), in that order"
        )

    dots = queries @ keys.transpose(-2, -1)  # (B, n, n), unscaled
    scale = math.sqrt(d)
    unscaled = torch.softmax(dots, dim=-1)
    over_d = torch.softmax(dots / d, dim=-1)
    over_sqrt_n = torch.softmax(dots / math.sqrt(n), dim=-1)
    over_sqrt_v = torch.softmax(dots / math.sqrt(v), dim=-1)
    over_queries = torch.softmax(dots / scale, dim=-2)
    over_batch = torch.softmax(dots / scale, dim=0)  # what softmax without dim= does to a 3-D tensor
    transposed = torch.softmax(dots.transpose(-2, -1) / scale, dim=-1)
    check_tensor(
        "2.2",
        answer_weights,
        weights,
        name="your weights tensor",
        mistakes={
            "your weights are softmax(Q Kᵀ) without the scale: divide the scores by sqrt(d) "
            f"(here d = {d}, so by {scale:g})": unscaled,
            f"you divided the scores by d = {d}; divide them by sqrt(d) = {scale:g}": over_d,
            f"you divided the scores by sqrt({n}), the number of keys; d is the size of each "
            f"query and key, queries.shape[-1] = {d}": over_sqrt_n,
            f"you divided the scores by sqrt({v}), the size of the values; d is the size of each "
            f"query and key, queries.shape[-1] = {d}": over_sqrt_v,
            "your weights do not sum to 1 over the keys: did you apply softmax over the wrong axis? "
            "Each query's row must be a distribution over the keys: softmax(..., dim=-1)": over_queries,
            "your softmax ran over the batch axis: softmax without dim= picks dim 0 for a 3-D "
            "tensor. Pass dim=-1 (the keys)": over_batch,
            "your weights look transposed: row i must belong to query i, so compute "
            "queries @ keys.transpose(-2, -1), not keys @ queries.transpose(-2, -1)": transposed,
        },
    )
    transposed_output = weights.transpose(-2, -1) @ values  # (B, n, v)
    scores_output = dots / scale @ values  # (B, n, v)
    check_tensor(
        "2.2",
        answer_output,
        output,
        name="your output",
        mistakes={
            "your output uses the transposed weights: output = weights @ values, "
            "so that output row i mixes the values with query i's weights": transposed_output,
            "your output mixes the values with the raw scores: apply the softmax first, "
            "output = weights @ values": scores_output,
        },
    )
    passed("2.2", "scaled dot-product attention")


# --- 2.3 ---------------------------------------------------------------------------------------


def check_masked_softmax(my_masked_softmax) -> None:
    """Exercise 2.3: ``my_masked_softmax(scores, mask)`` returns the weights.

    scores: (B, Q, K); mask: boolean (B, 1, K), True where a key may be attended to. A padding
    mask here: the last sequence has no valid key at all, so its rows must come out all zeros.
    """
    g = seeded_generator(23)
    batch, q, k = 3, 4, 5
    scores = 3 * torch.randn(batch, q, k, generator=g)  # (B, Q, K)
    mask = lengths_to_mask(torch.tensor([5, 2, 0]), k)  # (B, 1, K): full, padded, empty
    weights = masked_softmax(scores, mask=mask)  # (B, Q, K)

    answer = my_masked_softmax(scores.clone(), mask.clone())
    if isinstance(answer, torch.Tensor) and answer.shape == weights.shape:
        nan_rows = torch.isnan(answer.detach()).any(dim=-1)  # (B, Q)
        empty_rows = ~mask.any(dim=-1).expand(batch, q)  # (B, Q): rows with no visible key
        if nan_rows.any() and not (nan_rows & ~empty_rows).any():
            raise AssertionError(
                "Exercise 2.3: rows whose keys are all masked came out NaN. With -inf scores every "
                "exp() is 0, and softmax divides 0 by 0. Fill with a very negative finite number "
                "(torch.finfo(scores.dtype).min) and multiply the weights by the mask afterwards, "
                "so that such rows are zeros"
            )
    lowest = torch.finfo(scores.dtype).min
    filled = scores.masked_fill(~mask, lowest)  # (B, Q, K)
    unmasked = torch.softmax(scores, dim=-1)
    masked_after = torch.softmax(scores, dim=-1) * mask
    zero_filled = torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1)
    uniform_empty_rows = torch.softmax(filled, dim=-1)
    inverted = torch.softmax(scores.masked_fill(mask, lowest), dim=-1) * ~mask
    over_queries = torch.softmax(filled, dim=-2) * mask
    check_tensor(
        "2.3",
        answer,
        weights,
        name="your weights tensor",
        mistakes={
            "masked keys got nonzero weight: did you apply the mask? Fill the masked scores with a "
            "very negative number before the softmax": unmasked,
            "your weights are zero at masked keys, but the visible ones do not sum to 1: you applied "
            "the mask after the softmax. Mask the scores first, then take the softmax": masked_after,
            "masked keys still get weight: masked_fill(~mask, 0) sets their scores to 0, and "
            "exp(0) = 1. Fill them with a very negative number instead": zero_filled,
            "rows whose keys are all masked should be all zeros, yours spread the weight evenly over "
            f"the {k} keys: multiply the weights by the mask after the softmax": uniform_empty_rows,
            "your mask is inverted: in bert_tutor a mask is True where a query MAY attend, so fill the "
            "scores where ~mask": inverted,
            "your weights do not sum to 1 over the keys: did you apply softmax over the wrong axis? "
            "Use softmax(..., dim=-1)": over_queries,
        },
    )
    passed("2.3", "masked softmax")


# --- 2.4 ---------------------------------------------------------------------------------------


def check_causal_mask(causal_mask) -> None:
    """Exercise 2.4: ``causal_mask(n)`` returns an (n, n) boolean mask, True where key j <= query i."""
    for n in (6, 1, 3):
        expected = torch.tril(torch.ones(n, n, dtype=torch.bool))  # (n, n)
        answer = causal_mask(n)
        if isinstance(answer, torch.Tensor) and answer.dtype != torch.bool:
            raise AssertionError(
                f"Exercise 2.4: your mask should be a boolean tensor (True = may attend), got dtype "
                f"{answer.dtype}. If you built an additive mask of 0 and -inf, return the boolean "
                f"one: masked_softmax fills the scores itself"
            )
        ones = torch.ones_like(expected)
        check_tensor(
            "2.4",
            answer,
            expected,
            name=f"your mask for n = {n}",
            mistakes={
                "each token must be able to attend to itself: your mask hides the diagonal "
                "(torch.tril(..., diagonal=0), not diagonal=-1)": torch.tril(ones, diagonal=-1),
                "your mask lets each token see one step into the future: the diagonal (key j = "
                "query i) is the last visible key": torch.tril(ones, diagonal=1),
                "your mask lets queries see later keys and hides earlier ones: a causal mask is the "
                "lower triangle (torch.tril), not the upper one": torch.triu(ones),
                "your mask is True where attention is blocked (the convention of PyTorch's "
                "nn.Transformer); in bert_tutor True means may attend": ~expected,
                "your mask hides nothing: every query may still see the keys after it": ones,
            },
        )
    passed("2.4", "causal mask")
