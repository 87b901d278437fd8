"""Checks for the exercises of chapter 10, attention visualization.

Each ``check_*`` function calls the learner's function on attention weights it makes itself (from its
own seeded generator, so the learner's random state is left alone), compares the result with the
definition that :func:`bert_tutor.viz.attention_statistics` uses, and prints ``✓ Exercise 10.N: ...``
or raises an AssertionError that names the mistake when it recognises one.

    10.1  check_head_entropy(head_entropy)                 (H, n, n) -> (H,): mean entropy of the rows, nats
    10.2  check_previous_token_share(previous_token_share)  (L, H, n, n) -> (L, H): weight on token i - 1
    10.3  check_strongest_head(strongest_head)              (L, H) -> (layer, head) of the largest value
    10.4  check_mention_share(mention_share)                (L, H, n, n), [(later, earlier)] -> (L, H)
"""

from __future__ import annotations

import math
import numbers

import torch

from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator

__all__ = ["check_head_entropy", "check_mention_share", "check_previous_token_share", "check_strongest_head"]


def _random_heads(shape: tuple[int, ...], g: torch.Generator, sharpness: float = 2.0) -> torch.Tensor:
    """Attention weights of the given shape (..., n, n): softmax of random scores over the keys."""
    return torch.softmax(torch.randn(shape, generator=g) * sharpness, dim=-1)


def _shifted(n: int, offset: int) -> torch.Tensor:
    """(n, n): row i puts all its weight on key i + offset, clipped to the sequence."""
    keys = (torch.arange(n) + offset).clamp(0, n - 1)
    return torch.nn.functional.one_hot(keys, n).double()


def _plogp(weights: torch.Tensor) -> torch.Tensor:
    return torch.xlogy(weights, weights)  # 0 where the weight is 0: 0 log 0 = 0


# --- 10.1 --------------------------------------------------------------------------------------


def _entropy_weights() -> torch.Tensor:
    """(H, n, n) = (4, 6, 6): a previous-token head, a uniform head, a causal head, a random head.

    Exact zeros (heads 0 and 2) make 0 · log 0 show; the previous-token head makes the entropy of
    the average row differ from the average entropy.
    """
    g = seeded_generator(101)
    n = 6
    causal = torch.ones(n, n).tril().bool()
    scores = torch.randn(n, n, generator=g, dtype=torch.float64) * 2
    heads = [
        _shifted(n, -1),  # each token on the one before it ([CLS] on itself): entropy 0
        torch.full((n, n), 1.0 / n, dtype=torch.float64),  # uniform: entropy log n
        torch.softmax(scores.masked_fill(~causal, -math.inf), dim=-1),  # zeros above the diagonal
        _random_heads((n, n), g).double(),
    ]
    return torch.stack(heads)  # (H, n, n)


def check_head_entropy(head_entropy) -> None:
    """Exercise 10.1: ``head_entropy(weights)`` returns (H,), each head's entropy in nats.

    weights: (H, n, n), row i of head h the distribution of query i over the keys. A row's entropy is
    -sum_k w_k log w_k (natural log, with 0 log 0 = 0); a head's entropy is the mean over its rows.
    """
    weights = _entropy_weights()  # (H, n, n)
    H, n, _ = weights.shape
    rows = -_plogp(weights).sum(dim=-1)  # (H, n): one entropy per query
    expected = rows.mean(dim=-1)  # (H,)
    mean_row = weights.mean(dim=-2)  # (H, n): the average query's weights
    mistakes = {
        "0 · log 0 gave NaN: a weight of exactly 0 contributes 0 to the entropy. Use torch.xlogy(w, w), "
        "or w * torch.log(w.clamp_min(1e-12))": -(weights * weights.log()).sum(dim=-1).mean(dim=-1),
        "your entropies are in bits (log base 2): the course measures entropy in nats, with the natural "
        "log, torch.log": expected / math.log(2),
        "your entropies are negative: the entropy is MINUS the sum of w log w (each log w <= 0)": -expected,
        "you averaged w log w over the keys: a row's entropy is the SUM over its keys of -w log w; "
        "then average the rows": expected / n,
        "you summed the rows' entropies: average them over the queries (.mean(dim=-1)), so that heads "
        "on sentences of different lengths compare": rows.sum(dim=-1),
        "you took the entropy of the average row: average the rows' entropies instead. A head where "
        "every token looks at the token before it has entropy 0, though its average row is spread out": (
            -_plogp(mean_row).sum(dim=-1)
        ),
    }
    answer = head_entropy(weights.clone())
    if isinstance(answer, torch.Tensor) and tuple(answer.shape) == (H, n):
        raise AssertionError(
            f"Exercise 10.1: your result has shape {(H, n)}: one entropy per query. A head's entropy is "
            "the mean over its queries (rows): .mean(dim=-1), shape (H,)"
        )
    check_tensor(
        "10.1",
        answer,
        expected,
        name="your entropies",
        mistakes=mistakes,
        hint="Per row: -sum over the keys of w log w; per head: the mean over the rows.",
    )
    passed("10.1", "entropy of each head")


# --- 10.2 --------------------------------------------------------------------------------------


def _share_weights() -> torch.Tensor:
    """(L, H, n, n) = (2, 3, 7, 7): random heads, one of them mostly a previous-token head."""
    g = seeded_generator(102)
    weights = _random_heads((2, 3, 7, 7), g).double()
    weights[1, 2] = 0.7 * _shifted(7, -1) + 0.3 * weights[1, 2]  # rows still sum to 1
    return weights


def check_previous_token_share(previous_token_share) -> None:
    """Exercise 10.2: ``previous_token_share(weights)`` returns (L, H): for each head, the weight that a
    query puts on the token just before it, averaged over the queries that have one.

    weights: (L, H, n, n) for one sentence. Query i (i = 1 .. n - 1) puts weights[l, h, i, i - 1] on
    the token before it; query 0 ([CLS]) has none and is left out of the mean.
    """
    weights = _share_weights()  # (L, H, n, n)
    n = weights.shape[-1]
    before = weights.diagonal(offset=-1, dim1=-2, dim2=-1)  # (L, H, n - 1): weights[..., i, i - 1]
    after = weights.diagonal(offset=1, dim1=-2, dim2=-1)  # (L, H, n - 1): weights[..., i, i + 1]
    wrapped = weights[..., torch.arange(n), (torch.arange(n) - 1) % n]  # (L, H, n): query 0 on the last
    expected = before.mean(dim=-1)  # (L, H)
    mistakes = {
        "you took the weight on the NEXT token, weights[..., i, i + 1] (or the previous token's weight "
        "on this one): row i is the query, so query i looking one token back is weights[..., i, i - 1], "
        "the diagonal just below the main one (offset=-1)": after.mean(dim=-1),
        "you took each token's weight on itself (the main diagonal): the previous token is one column "
        "to the left, weights[..., i, i - 1], diagonal(offset=-1)": weights.diagonal(dim1=-2, dim2=-1).mean(
            dim=-1
        ),
        "query 0 ([CLS]) has no token before it, but torch.roll (or index -1) wrapped it round to the "
        "last token: average over queries 1 .. n - 1 only": wrapped.mean(dim=-1),
        "you divided by n: only the n - 1 queries from position 1 on have a token before them, so "
        "average over those": before.sum(dim=-1) / n,
        "you summed over the queries: average them (.mean(dim=-1)), a share between 0 and 1": before.sum(
            dim=-1
        ),
    }
    answer = previous_token_share(weights.clone())
    check_tensor(
        "10.2",
        answer,
        expected,
        name="your shares",
        mistakes=mistakes,
        hint="Take weights[..., i, i - 1] for i = 1 .. n - 1 and average them.",
    )
    passed("10.2", "share of attention to the previous token")


# --- 10.3 --------------------------------------------------------------------------------------

_STATISTIC_103 = torch.tensor(  # (L, H) = (3, 5); every typical mistake gives a different answer
    [
        [0.20, 0.05, 0.30, 0.10, 0.25],
        [0.15, 0.35, 0.40, 0.91, 0.02],
        [0.60, 0.45, 0.70, 0.12, 0.33],
    ]
)


def _as_index(value) -> int | None:
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    return None


def check_strongest_head(strongest_head) -> None:
    """Exercise 10.3: ``strongest_head(statistic)`` returns ``(layer, head)``, two ints: where the
    (L, H) table of a head statistic (one value per head) is largest."""
    statistic = _STATISTIC_103
    num_layers, num_heads = statistic.shape
    flat = int(statistic.argmax())
    expected = divmod(flat, num_heads)  # (1, 3)
    answer = strongest_head(statistic.clone())
    prefix = "Exercise 10.3: "
    if isinstance(answer, torch.Tensor) and answer.dim() == 1 and answer.numel() in (num_layers, num_heads):
        raise AssertionError(
            f"{prefix}you returned {answer.numel()} indices, the best along one axis for each row or "
            "column: look for the largest value of the whole table, statistic.argmax() on all of it"
        )
    if _as_index(answer) is not None:
        raise AssertionError(
            f"{prefix}you returned one number, {_as_index(answer)}: the position in the flattened table. "
            f"Turn it into (layer, head) with divmod(index, num_heads), num_heads = statistic.shape[1]"
        )
    if not isinstance(answer, tuple | list | torch.Tensor) or len(answer) != 2:
        raise AssertionError(f"{prefix}return a pair (layer, head), got {answer!r:.80}")
    pair = tuple(_as_index(value) for value in answer)
    if None in pair:
        raise AssertionError(f"{prefix}layer and head should be ints, got {answer!r:.80}")
    if pair == expected:
        passed("10.3", "the strongest head")
        return
    worst = divmod(int(statistic.argmin()), num_heads)
    hints = {
        expected[::-1]: "you returned (head, layer): the table's rows are the layers and its columns the "
        "heads, so return (layer, head)",
        divmod(flat, num_layers): "you divided the flat index by the number of layers: row-major order "
        "moves through the heads of one layer first, so layer, head = divmod(index, num_heads)",
        worst: "that is the head with the SMALLEST value: use argmax, not argmin",
    }
    layer, head = pair
    value = (
        f" (value {float(statistic[layer, head]):.2f})"
        if 0 <= layer < num_layers and 0 <= head < num_heads
        else ""
    )
    hint = hints.get(pair, "look for the largest value of the whole table")
    raise AssertionError(f"{prefix}you returned {pair}{value}, but the largest value is elsewhere; {hint}")


# --- 10.4 --------------------------------------------------------------------------------------

_MENTIONS_104 = [(9, 2), (12, 5), (10, 7)]  # (later, earlier): a word and its earlier mention


def check_mention_share(mention_share) -> None:
    """Exercise 10.4: ``mention_share(weights, mentions)`` returns (L, H): for each head, the weight
    that a later mention of a word puts on its earlier mention, averaged over the mentions.

    weights: (L, H, n, n) for one sentence (pair); mentions: a list of (later, earlier) token positions,
    later > earlier. Row ``later`` is the query, column ``earlier`` the key.
    """
    weights = _random_heads((2, 3, 14, 14), seeded_generator(104)).double()  # (L, H, n, n)
    later = torch.tensor([m[0] for m in _MENTIONS_104])  # (M,)
    earlier = torch.tensor([m[1] for m in _MENTIONS_104])  # (M,)
    picked = weights[:, :, later, earlier]  # (L, H, M): one weight per mention
    expected = picked.mean(dim=-1)  # (L, H)
    mistakes = {
        "you took the weight of the EARLIER mention on the later one, weights[..., earlier, later]: the "
        "later mention is the query (the row), looking back at the earlier one (the column)": weights[
            :, :, earlier, later
        ].mean(dim=-1),
        "you averaged over every later mention looking at every earlier one, weights[..., later, :]"
        "[..., earlier]: index rows and columns together, weights[:, :, later, earlier], to get one "
        "weight per (later, earlier) pair": weights[:, :, later][:, :, :, earlier].mean(dim=(-2, -1)),
        "you summed over the mentions: average them, a share between 0 and 1": picked.sum(dim=-1),
        "you took the later mention's weight on itself: its earlier mention is the column `earlier`": (
            weights[:, :, later, later].mean(dim=-1)
        ),
    }
    answer = mention_share(weights.clone(), list(_MENTIONS_104))
    check_tensor(
        "10.4",
        answer,
        expected,
        name="your shares",
        mistakes=mistakes,
        hint="For each (later, earlier): weights[:, :, later, earlier]; then the mean over the mentions.",
    )
    passed("10.4", "attention from a word to its earlier mention")
