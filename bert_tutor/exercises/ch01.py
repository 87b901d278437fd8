"""Exercise checks of chapter 1: attention.

1.1 ``check_soft_lookup``       attention as a soft dictionary lookup (dot-product scores)
1.2 ``check_additive_scores``   Bahdanau's additive score w_v . tanh(W_q q + W_k k)
1.3 ``check_masked_softmax``    a softmax that ignores padded keys (valid lengths)
1.4 ``check_context``           one decoder step's context vector, with AdditiveAttention

Each check builds its own inputs, runs the learner's function on them, and compares the result
with the package's reference. Typical wrong answers are recomputed so that the message can say
exactly what went wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from bert_tutor.attention import (
    AdditiveAttention,
    lengths_to_mask,
    masked_softmax,
    scaled_dot_product_attention,
)
from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator

__all__ = ["check_additive_scores", "check_context", "check_masked_softmax", "check_soft_lookup"]


def _run(number: str, function: Callable, *args):
    """Call the learner's function; turn a crash into an AssertionError that names the inputs.

    NotImplementedError passes through unchanged: it means "not written yet" (the workbooks).
    """
    if not callable(function):
        raise AssertionError(f"Exercise {number}: pass your function itself, got {type(function).__name__}")
    try:
        return function(*args)
    except (NotImplementedError, AssertionError):
        raise
    except Exception as error:
        shapes = ", ".join(
            str(tuple(a.shape)) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args
        )
        raise AssertionError(
            f"Exercise {number}: your function raised {type(error).__name__} ({error}) "
            f"when called with arguments of shapes {shapes}"
        ) from error


def _wrong_shape(number: str, answer, shape: tuple[int, ...], hint: str) -> None:
    """Raise ``hint`` when the answer has ``shape``, a shape that a known mistake gives."""
    if isinstance(answer, torch.Tensor) and tuple(answer.shape) == shape:
        raise AssertionError(f"Exercise {number}: {hint}")


# --- 1.1 ---------------------------------------------------------------------------------


def check_soft_lookup(soft_lookup: Callable) -> None:
    """Exercise 1.1: ``soft_lookup(query (d,), keys (n, d), values (n, v)) -> output (v,)``.

    The weights are softmax(keys @ query) (plain dot products, no scaling) and the output is
    the weighted sum of the values.
    """
    number, title = "1.1", "attention as a soft dictionary lookup"
    generator = seeded_generator(11)
    n, d = 6, 4
    query = torch.randn(d, generator=generator)
    keys = torch.randn(n, d, generator=generator)
    values = torch.randn(n, d, generator=generator)  # v = d, so that mixing the keys has the right shape
    answer = _run(number, soft_lookup, query.clone(), keys.clone(), values.clone())

    # The package divides scores by sqrt(d); scaling the query by sqrt(d) undoes that.
    expected, _ = scaled_dot_product_attention(query[None] * math.sqrt(d), keys, values)  # (1, v)
    scores = keys @ query  # (n,)
    weights = torch.softmax(scores, dim=0)  # (n,)
    check_tensor(
        number,
        answer,
        expected[0],
        name="your output",
        mistakes={
            "you used the raw dot products q·k as weights; turn them into weights that are positive "
            "and sum to 1 with a softmax first": scores @ values,
            "that is a hard lookup: you returned only the value of the best-matching key. Attention "
            "mixes all the values, each weighted by softmax(q·k)": values[scores.argmax()],
            "you averaged the values with equal weights; the weights must depend on how well each "
            "key matches the query (softmax of q·k)": values.mean(dim=0),
            "you divided the scores by sqrt(d). Here the score is the plain dot product q·k "
            "(chapter 2 explains the scaling)": torch.softmax(scores / math.sqrt(d), dim=0) @ values,
            "you mixed the keys; the weights should mix the values": weights @ keys,
        },
        hint="The output should be softmax(keys @ query) @ values.",
    )
    passed(number, title)


# --- 1.2 ---------------------------------------------------------------------------------


def check_additive_scores(additive_scores: Callable) -> None:
    """Exercise 1.2: ``additive_scores(queries (Q, dq), keys (K, dk), W_q (h, dq), W_k (h, dk),
    w_v (h,)) -> scores (Q, K)`` with ``scores[i, j] = w_v . tanh(W_q q_i + W_k k_j)``.
    """
    number, title = "1.2", "additive (Bahdanau) attention scores"
    generator = seeded_generator(12)
    Q, K, dq, dk, h = 3, 5, 4, 6, 7
    queries = torch.randn(Q, dq, generator=generator)
    keys = torch.randn(K, dk, generator=generator)
    attention = AdditiveAttention(query_size=dq, key_size=dk, hidden_size=h)
    with torch.no_grad():  # the package's layers, with weights drawn from our generator
        for layer in (attention.W_q, attention.W_k, attention.w_v):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
    W_q, W_k = attention.W_q.weight.detach(), attention.W_k.weight.detach()  # (h, dq), (h, dk)
    w_v = attention.w_v.weight.detach()[0]  # (h,)
    args = (queries.clone(), keys.clone(), W_q.clone(), W_k.clone(), w_v.clone())
    answer = _run(number, additive_scores, *args)

    with torch.no_grad():  # the same steps as AdditiveAttention.forward, before its softmax
        features = attention.W_q(queries)[:, None, :] + attention.W_k(keys)[None, :, :]  # (Q, K, h)
        expected = attention.w_v(torch.tanh(features))[..., 0]  # (Q, K)
    _wrong_shape(
        number, answer, (K, Q), f"your scores have shape {(K, Q)}: rows must be queries, columns keys"
    )
    q, k = (queries @ W_q.T)[:, None, :], (keys @ W_k.T)[None, :, :]  # (Q, 1, h), (1, K, h)
    no_tanh = (q + k) @ w_v
    product = torch.tanh(q * k) @ w_v
    summed = torch.tanh(q + k).sum(dim=-1)
    check_tensor(
        number,
        answer,
        expected,
        name="your scores",
        mistakes={
            "you left out the tanh: without it the score is linear (w_v·W_q q + w_v·W_k k) and cannot "
            "model how a query and a key interact": no_tanh,
            "these are attention weights (you applied a softmax); return the scores before the softmax": (
                torch.softmax(expected, dim=-1)
            ),
            "you multiplied W_q q and W_k k; additive attention adds them before the tanh": product,
            "you summed the hidden units; weight them with w_v (a dot product with w_v) instead": summed,
        },
        hint="Broadcast W_q q_i + W_k k_j to (Q, K, h), then tanh, then the dot product with w_v.",
    )
    passed(number, title)


# --- 1.3 ---------------------------------------------------------------------------------


def check_masked_softmax(my_masked_softmax: Callable) -> None:
    """Exercise 1.3: ``my_masked_softmax(scores (B, Q, K), valid_lens (B,)) -> weights (B, Q, K)``.

    Key j of example b is visible when ``j < valid_lens[b]``; hidden keys get weight 0 and each
    row sums to 1 over the visible keys.
    """
    number, title = "1.3", "masked softmax with valid lengths"
    generator = seeded_generator(13)
    scores = torch.randn(3, 2, 5, generator=generator)  # (B, Q, K)
    valid_lens = torch.tensor([2, 5, 3])
    answer = _run(number, my_masked_softmax, scores.clone(), valid_lens.clone())

    expected = masked_softmax(scores, valid_lens=valid_lens)  # (B, Q, K)
    mask = lengths_to_mask(valid_lens, scores.shape[-1])  # (B, 1, K)
    zero_filled = torch.softmax(scores.masked_fill(~mask, 0.0), dim=-1)
    not_renormalised = torch.softmax(scores, dim=-1) * mask
    one_too_many = masked_softmax(scores, valid_lens=torch.clamp(valid_lens + 1, max=scores.shape[-1]))
    one_too_few = masked_softmax(scores, valid_lens=valid_lens - 1)
    over_queries = torch.softmax(scores.masked_fill(~mask, -1e9), dim=1) * mask
    check_tensor(
        number,
        answer,
        expected,
        name="your weights",
        mistakes={
            "the padded keys (positions j >= valid_len) got weight: apply the mask": torch.softmax(
                scores, -1
            ),
            "you set the hidden scores to 0, but exp(0) = 1 still gives them weight: fill them with a very "
            "negative number (or -inf) before the softmax": zero_filled,
            "the rows no longer sum to 1: you zeroed the hidden weights after the softmax without "
            "renormalising. Mask the scores before the softmax": not_renormalised,
            "off by one: key j is visible when j < valid_len (you let key valid_len through)": one_too_many,
            "off by one: key j is visible when j < valid_len (you hid key valid_len - 1 too)": one_too_few,
            "each query's weights must sum to 1 over the keys: take the softmax over the last axis "
            "(you used the queries' axis)": over_queries,
        },
        hint="Fill the scores of keys j >= valid_len with a very negative number, then take the softmax.",
    )
    passed(number, title)


# --- 1.4 ---------------------------------------------------------------------------------


def check_context(context_fn: Callable) -> None:
    """Exercise 1.4: ``context_fn(attention, state (B, H), annotations (B, S, H), source_lens (B,))
    -> context (B, H)``: one decoder step's context, from an AdditiveAttention module whose query is
    the decoder state and whose keys and values are the annotations; padding gets no weight.
    """
    number, title = "1.4", "the context vector of one decoder step"
    generator = seeded_generator(14)
    B, S, H = 3, 6, 8
    attention = AdditiveAttention(query_size=H, key_size=H, hidden_size=H)
    with torch.no_grad():
        for layer in (attention.W_q, attention.W_k, attention.w_v):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
    state = torch.randn(B, H, generator=generator)
    annotations = torch.randn(B, S, H, generator=generator)  # nonzero in the padding too, on purpose
    source_lens = torch.tensor([6, 2, 4])
    answer = _run(number, context_fn, attention, state.clone(), annotations.clone(), source_lens.clone())

    with torch.no_grad():
        expected, _ = attention(state[:, None], annotations, annotations, valid_lens=source_lens)  # (B, 1, H)
        unmasked, _ = attention(state[:, None], annotations, annotations)  # (B, 1, H)
    mask = lengths_to_mask(source_lens, S)[:, 0, :, None]  # (B, S, 1)
    _wrong_shape(
        number,
        answer,
        (B, 1, H),
        f"your context has shape {(B, 1, H)}: the attention returns one row per query; "
        f"drop that query axis of length 1 to get (B, H)",
    )
    check_tensor(
        number,
        answer,
        expected[:, 0],
        name="your context",
        mistakes={
            "the padded source positions got weight: pass valid_lens=source_lens to the attention": (
                unmasked[:, 0]
            ),
            "you averaged all annotations, padding included; the weights must come from the attention": (
                annotations.mean(dim=1)
            ),
            "you gave every real source word the same weight; the weights must come from the attention "
            "(query = the decoder state)": (annotations * mask).sum(dim=1) / source_lens[:, None],
            "you used the last annotation; the context mixes all annotations with attention weights": (
                annotations[:, -1]
            ),
        },
        hint="Call attention(state as a (B, 1, H) query, annotations, annotations, valid_lens=source_lens).",
    )
    passed(number, title)
