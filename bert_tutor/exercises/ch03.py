"""Checks for the exercises of chapter 3, multi-head attention.

Each ``check_*`` function calls the learner's function on inputs it makes itself (from its own
seeded generator, so the learner's random state is left alone), compares the result with
:mod:`bert_tutor.attention`, and prints ``✓ Exercise 3.N: ...`` or raises an AssertionError
that names the mistake when it recognises one.

    3.1  check_split_heads(my_split_heads)              (B, n, H*d) -> (B, H, n, d), head h = features h*d..
    3.2  check_merge_heads(my_merge_heads)              (B, H, n, d) -> (B, n, H*d), heads side by side
    3.3  check_multi_head_attention(my_multi_head)      self-attention output from W_q, W_k, W_v, W_o
    3.4  check_parameter_count(count_parameters)        parameters of MultiHeadAttention(h, H, bias)
"""

from __future__ import annotations

import math
import numbers

import torch

from bert_tutor.attention import MultiHeadAttention, merge_heads, scaled_dot_product_attention, split_heads
from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator

__all__ = [
    "check_merge_heads",
    "check_multi_head_attention",
    "check_parameter_count",
    "check_split_heads",
]


def _reject_reshaped_mistakes(number: str, answer, mistakes: list[tuple[str, torch.Tensor]]) -> None:
    """Name a typical mistake whose result has the wrong shape (check_tensor only sees same-shape ones).

    mistakes: (hint, what the mistake computes) pairs; several mistakes may share a hint.
    """
    if not isinstance(answer, torch.Tensor):
        return
    for hint, wrong in mistakes:
        if answer.shape == wrong.shape and torch.allclose(answer.detach().float(), wrong.float()):
            raise AssertionError(f"Exercise {number}: {hint}")


# --- 3.1 ---------------------------------------------------------------------------------------


def check_split_heads(my_split_heads) -> None:
    """Exercise 3.1: ``my_split_heads(x, num_heads)`` turns x (B, n, H*d) into (B, H, n, d).

    Head h must hold features ``h*d .. h*d + d - 1`` of every position, positions in order.
    Checked for two sizes, so that a hard-coded number of heads or head size fails.
    """
    g = seeded_generator(31)
    for batch, n, num_heads, d in ((2, 5, 3, 4), (3, 7, 4, 6)):  # every axis has its own size
        x = torch.randn(batch, n, num_heads * d, generator=g)  # (B, n, H * d)
        expected = split_heads(x, num_heads)  # (B, H, n, d)
        straight = x.reshape(batch, num_heads, n, d)  # no transpose: memory order kept
        interleaved = x.view(batch, n, d, num_heads).permute(0, 3, 1, 2)  # head h: features h, h+H, ...
        transposed_first = x.transpose(1, 2).reshape(batch, num_heads, n, d)  # positions in the features
        no_transpose = x.view(batch, n, num_heads, d)  # (B, n, H, d)
        pieces_of_h = x.view(batch, n, d, num_heads)  # (B, n, d, H): pieces of size H
        answer = my_split_heads(x.clone(), num_heads)
        _reject_reshaped_mistakes(
            "3.1",
            answer,
            [
                (
                    f"your tensor is (batch, n, heads, head_size) = {tuple(no_transpose.shape)}: the "
                    f"heads axis must come before the positions, (B, H, n, d), so that each head holds "
                    f"a whole sequence. Add .transpose(1, 2) after the view",
                    no_transpose,
                ),
                *(
                    (
                        f"your tensor has shape {tuple(wrong.shape)}: you cut the features into pieces "
                        f"of size num_heads = {num_heads}. Cut them into num_heads pieces of size "
                        f"head_size = hidden // num_heads = {d}: x.view(B, n, num_heads, head_size)",
                        wrong,
                    )
                    for wrong in (pieces_of_h, pieces_of_h.transpose(1, 2))
                ),
            ],
        )
        check_tensor(
            "3.1",
            answer,
            expected,
            name=f"your heads for num_heads = {num_heads}",
            mistakes={
                "you reshaped (B, n, hidden) straight into (B, H, n, d): reshape keeps memory order, so "
                "'head 0' gets all features of the first positions and the positions are scrambled. "
                "Cut the feature axis first, x.view(B, n, H, d), then move the heads in front of the "
                "positions with .transpose(1, 2)": straight,
                "your heads take every H-th feature (interleaved): head h must take the contiguous "
                "slice of features h*d .. h*d + d - 1, which is what x.view(B, n, num_heads, head_size) "
                "gives (not view(B, n, head_size, num_heads))": interleaved,
                "you transposed (B, n, hidden) to (B, hidden, n) before cutting it, which mixes the "
                "positions into the features: first view(B, n, H, d), then transpose(1, 2) to swap "
                "the positions and the heads": transposed_first,
            },
        )
    passed("3.1", "split heads")


# --- 3.2 ---------------------------------------------------------------------------------------


def check_merge_heads(my_merge_heads) -> None:
    """Exercise 3.2: ``my_merge_heads(x)`` turns x (B, H, n, d) into (B, n, H*d), heads side by side.

    The inverse of split_heads: features ``h*d .. h*d + d - 1`` of position i are head h's row i.
    """
    g = seeded_generator(32)
    batch, num_heads, n, d = 2, 3, 5, 4
    x = torch.randn(batch, num_heads, n, d, generator=g)  # (B, H, n, d)
    expected = merge_heads(x)  # (B, n, H * d)
    straight = x.reshape(batch, n, num_heads * d)  # no transpose: heads and positions scrambled
    interleaved = x.permute(0, 2, 3, 1).reshape(batch, n, num_heads * d)  # feature j of head h at j*H + h
    wrong_axes = x.transpose(2, 3).reshape(batch, n, num_heads * d)  # positions and features swapped
    answer = my_merge_heads(x.clone())
    one_head_wide = (
        f"your result is {(batch, n, d)}, one head wide: did you add or average the heads? Put them "
        f"side by side instead, (B, n, H * d) = {tuple(expected.shape)}, so that the output "
        f"projection sees every head's features"
    )
    _reject_reshaped_mistakes(
        "3.2",
        answer,
        [
            (one_head_wide, x.sum(1)),
            (one_head_wide, x.mean(1)),
            (
                f"your result is {(batch, num_heads * n, d)}: you laid the heads end to end along the "
                f"positions. Each position must get the features of all heads, (B, n, H * d) = "
                f"{tuple(expected.shape)}: x.transpose(1, 2).reshape(B, n, H * d)",
                torch.cat(x.unbind(1), dim=1),
            ),
        ],
    )
    check_tensor(
        "3.2",
        answer,
        expected,
        name="your merged tensor",
        mistakes={
            "you reshaped (B, H, n, d) straight into (B, n, H * d): without a transpose the heads and "
            "positions get scrambled (position 0 receives the first rows of head 0). Move the heads "
            "back behind the positions first: x.transpose(1, 2).reshape(B, n, H * d). (view fails "
            "after the transpose because the tensor is no longer contiguous; reshape copies)": straight,
            "your features are interleaved: feature j of head h landed at j*H + h. Head h's features "
            "must sit side by side at h*d .. h*d + d - 1: transpose(1, 2), which gives (B, n, H, d), "
            "not permute(0, 2, 3, 1)": interleaved,
            "you transposed the last two axes (positions and features); the axes to swap are 1 and 2, "
            "heads and positions: x.transpose(1, 2).reshape(B, n, H * d)": wrong_axes,
        },
    )
    passed("3.2", "merge heads")


# --- 3.3 ---------------------------------------------------------------------------------------


def _heads_attention(x, W_q, W_k, W_v, num_heads, scale):
    """Merged context of ``num_heads`` heads with the scores divided by ``scale``: (B, n, hidden)."""
    q, k, v = (split_heads(x @ W, num_heads) for W in (W_q, W_k, W_v))  # each (B, H, n, d)
    weights = torch.softmax(q @ k.transpose(-2, -1) / scale, dim=-1)  # (B, H, n, n)
    return merge_heads(weights @ v)  # (B, n, hidden)


def check_multi_head_attention(my_multi_head) -> None:
    """Exercise 3.3: ``my_multi_head(x, W_q, W_k, W_v, W_o, num_heads)`` returns the output.

    x: (B, n, hidden); each W: (hidden, hidden), used as ``x @ W``; no biases, no mask.
    output = merge(softmax(Q_h K_hᵀ / sqrt(d)) V_h for each head h) @ W_o, shape (B, n, hidden).
    """
    g = seeded_generator(33)
    batch, n, num_heads, d = 2, 5, 3, 4
    hidden = num_heads * d  # 12: sqrt(hidden) = 3.46 and sqrt(d) = 2 give different answers
    x = torch.randn(batch, n, hidden, generator=g)  # (B, n, hidden)
    W_q, W_k, W_v, W_o = (2 * torch.randn(hidden, hidden, generator=g) / math.sqrt(hidden) for _ in range(4))

    q, k, v = (split_heads(x @ W, num_heads) for W in (W_q, W_k, W_v))  # each (B, H, n, d)
    context, _ = scaled_dot_product_attention(q, k, v)  # (B, H, n, d)
    expected = merge_heads(context) @ W_o  # (B, n, hidden)

    answer = my_multi_head(x.clone(), W_q.clone(), W_k.clone(), W_v.clone(), W_o.clone(), num_heads)

    one_head = torch.softmax((x @ W_q) @ (x @ W_k).transpose(-2, -1) / math.sqrt(hidden), dim=-1)
    # heads cut with view(B, n, H, d) but never transposed: attention runs across the heads
    q_n, k_n, v_n = ((x @ W).view(batch, n, num_heads, d) for W in (W_q, W_k, W_v))  # (B, n, H, d)
    across_heads = torch.softmax(q_n @ k_n.transpose(-2, -1) / math.sqrt(d), dim=-1) @ v_n  # (B, n, H, d)
    over_hidden = _heads_attention(x, W_q, W_k, W_v, num_heads, math.sqrt(hidden)) @ W_o
    unscaled = _heads_attention(x, W_q, W_k, W_v, num_heads, 1.0) @ W_o
    transposed = _heads_attention(x, W_q.T, W_k.T, W_v.T, num_heads, math.sqrt(d)) @ W_o.T
    check_tensor(
        "3.3",
        answer,
        expected,
        name="your output",
        mistakes={
            f"you computed one head over all {hidden} features (scaled by sqrt({hidden})): split the "
            f"projected queries, keys and values into num_heads = {num_heads} heads of "
            f"{d} features and attend in each head separately": one_head @ (x @ W_v) @ W_o,
            f"each head's scores must be divided by sqrt(head_size) = sqrt({d}), not by "
            f"sqrt(hidden) = sqrt({hidden}): a head's dot products add up only {d} "
            f"products": over_hidden,
            f"the scores are not scaled: divide each head's scores by sqrt(head_size) = sqrt({d})": unscaled,
            "your output is the merged heads without the output projection: multiply by W_o, which "
            "mixes what the heads found": merge_heads(context),
            "your heads attended to each other instead of to the positions: after view(B, n, H, d) "
            "the last two axes are (heads, head_size), so Q Kᵀ compared heads. Transpose to "
            "(B, H, n, d) before the attention": across_heads.reshape(batch, n, hidden) @ W_o,
            "you merged the heads without moving them back behind the positions: transpose(1, 2) "
            "before reshape(B, n, hidden)": context.reshape(batch, n, hidden) @ W_o,
            "you used x @ W.T: here every W is an (in, out) matrix, applied as x @ W (an nn.Linear "
            "stores the transpose, (out, in), and computes x @ weight.T)": transposed,
        },
    )
    passed("3.3", "multi-head attention")


# --- 3.4 ---------------------------------------------------------------------------------------


def _module_parameters(hidden_size: int, num_heads: int, bias: bool) -> int:
    """Count MultiHeadAttention's parameters on the meta device: no memory, no random numbers."""
    with torch.device("meta"):
        attention = MultiHeadAttention(hidden_size, num_heads, bias=bias)
    return sum(p.numel() for p in attention.parameters())


def check_parameter_count(count_parameters) -> None:
    """Exercise 3.4: ``count_parameters(hidden_size, num_heads, bias)`` returns an int.

    It must equal ``sum(p.numel() for p in MultiHeadAttention(hidden_size, num_heads, bias=bias)
    .parameters())`` for BERT-base's width and for small sizes, with and without biases.
    """
    for h, heads, bias in ((768, 12, True), (768, 12, False), (64, 4, True), (96, 1, False)):
        expected = _module_parameters(h, heads, bias)
        case = f"for hidden_size={h}, num_heads={heads}, bias={bias}"
        answer = count_parameters(h, heads, bias)
        if isinstance(answer, torch.Tensor) and answer.numel() == 1 and not answer.is_floating_point():
            answer = answer.item()
        if isinstance(answer, float) and answer == expected:
            raise AssertionError(
                f"Exercise 3.4: {case}, you returned the float {answer!r}: a count is an int. "
                f"Use // for the head size (hidden_size // num_heads), or int(...)"
            )
        if not isinstance(answer, numbers.Integral) or isinstance(answer, bool):
            raise AssertionError(
                f"Exercise 3.4: {case}, the count should be an int, got {type(answer).__name__}"
            )
        if answer == expected:
            continue
        d = h // heads
        mistakes = {
            3 * h * h + 3 * h * bias: "you counted three projections: the output projection W_o is the "
            "fourth, with h * h weights (and h biases)",
            heads * expected: "you gave every head its own full (h, h) matrices: the heads share the "
            "four projections, each head using a slice of h / num_heads of their outputs, so the count "
            "does not depend on num_heads",
            expected // heads: "you counted a single head's slice: num_heads slices of "
            "h / num_heads outputs together make the full (h, h) matrices",
            4 * heads * d * d + 4 * h * bias: "a head's query projection takes all h input features to "
            "its d = h / num_heads outputs: h * d weights per head, not d * d",
        }
        if bias:
            mistakes[4 * h * h] = "you left out the biases: each of the four Linear layers has h of them"
            mistakes[4 * h * h + h] = (
                "each of the four projections has its own bias vector: 4 * h biases, not h"
            )
        else:
            mistakes[4 * h * h + 4 * h] = "with bias=False the Linear layers have no bias vectors: 4 * h * h"
        hint = mistakes.get(
            int(answer),
            "Count the weights and biases of the four Linear(h, h) layers: query, key, value, output",
        )
        raise AssertionError(
            f"Exercise 3.4: {case}, you counted {answer:,}, expected {expected:,}. "
            f"{hint[0].upper()}{hint[1:]}"
        )
    passed("3.4", "parameter count")
