"""bert_tutor.exercises.ch01: each check accepts a right answer and names typical mistakes."""

import math

import pytest
import torch

from bert_tutor.exercises import ch01

# --- 1.1 soft lookup ---------------------------------------------------------------------


def soft_lookup(query, keys, values):
    weights = torch.softmax(keys @ query, dim=0)  # (n,)
    return weights @ values  # (v,)


def test_soft_lookup_right_answer_prints_the_tick_line(capsys):
    ch01.check_soft_lookup(soft_lookup)
    assert capsys.readouterr().out == "✓ Exercise 1.1: attention as a soft dictionary lookup\n"


def test_soft_lookup_written_with_a_loop_also_passes(capsys):
    def by_hand(query, keys, values):
        scores = torch.stack([sum(q * k for q, k in zip(query, key, strict=True)) for key in keys])
        weights = scores.exp() / scores.exp().sum()
        return sum(w * v for w, v in zip(weights, values, strict=True))

    ch01.check_soft_lookup(by_hand)
    assert "✓ Exercise 1.1" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda q, k, v: (k @ q) @ v, "raw dot products"),
        (lambda q, k, v: v[(k @ q).argmax()], "hard lookup"),
        (lambda q, k, v: v.mean(dim=0), "averaged the values"),
        (
            lambda q, k, v: torch.softmax(k @ q / math.sqrt(q.shape[0]), dim=0) @ v,
            r"divided the scores by sqrt\(d\)",
        ),
        (lambda q, k, v: torch.softmax(k @ q, dim=0) @ k, "mixed the keys"),
    ],
    ids=["no-softmax", "argmax", "uniform", "scaled", "keys-not-values"],
)
def test_soft_lookup_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch01.check_soft_lookup(wrong)


def test_soft_lookup_returning_the_weights_is_told_its_shape():
    with pytest.raises(AssertionError, match=r"Exercise 1.1: your output has shape \(6,\), expected \(4,\)"):
        ch01.check_soft_lookup(lambda q, k, v: torch.softmax(k @ q, dim=0))


def test_a_crashing_answer_becomes_an_assertion_naming_the_shapes():
    with pytest.raises(AssertionError, match=r"raised RuntimeError .* shapes \(4,\), \(6, 4\), \(6, 4\)"):
        ch01.check_soft_lookup(lambda q, k, v: q @ k)


def test_not_implemented_passes_through_for_the_workbooks():
    def unwritten(query, keys, values):
        raise NotImplementedError("Exercise 1.1")

    with pytest.raises(NotImplementedError, match="Exercise 1.1"):
        ch01.check_soft_lookup(unwritten)


def test_passing_something_that_is_not_a_function_is_explained():
    with pytest.raises(AssertionError, match="pass your function itself"):
        ch01.check_soft_lookup(torch.zeros(4))


# --- 1.2 additive scores -----------------------------------------------------------------


def additive_scores(queries, keys, W_q, W_k, w_v):
    features = (queries @ W_q.T)[:, None, :] + (keys @ W_k.T)[None, :, :]  # (Q, K, h)
    return torch.tanh(features) @ w_v  # (Q, K)


def test_additive_scores_right_answer_prints_the_tick_line(capsys):
    ch01.check_additive_scores(additive_scores)
    assert capsys.readouterr().out == "✓ Exercise 1.2: additive (Bahdanau) attention scores\n"


def _project(queries, keys, W_q, W_k):
    return (queries @ W_q.T)[:, None, :], (keys @ W_k.T)[None, :, :]


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda *a: sum(_project(*a[:4])) @ a[4], "left out the tanh"),
        (lambda *a: torch.softmax(additive_scores(*a), dim=-1), "applied a softmax"),
        (
            lambda *a: torch.tanh(_project(*a[:4])[0] * _project(*a[:4])[1]) @ a[4],
            "multiplied W_q q and W_k k",
        ),
        (lambda *a: torch.tanh(sum(_project(*a[:4]))).sum(-1), "summed the hidden units"),
        (lambda *a: additive_scores(*a).T, "rows must be queries, columns keys"),
    ],
    ids=["no-tanh", "softmax", "product", "no-w_v", "transposed"],
)
def test_additive_scores_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch01.check_additive_scores(wrong)


def test_additive_scores_unknown_mistake_reports_the_largest_difference():
    with pytest.raises(AssertionError, match=r"differs from the expected values \(largest difference"):
        ch01.check_additive_scores(lambda *a: additive_scores(*a) + 0.5)


# --- 1.3 masked softmax ------------------------------------------------------------------


def my_masked_softmax(scores, valid_lens):
    visible = torch.arange(scores.shape[-1]) < valid_lens[:, None, None]  # (B, 1, K)
    return torch.softmax(scores.masked_fill(~visible, float("-inf")), dim=-1)


def _visible(scores, valid_lens, shift=0):
    return torch.arange(scores.shape[-1]) < (valid_lens + shift)[:, None, None]


def test_masked_softmax_right_answer_prints_the_tick_line(capsys):
    ch01.check_masked_softmax(my_masked_softmax)
    assert capsys.readouterr().out == "✓ Exercise 1.3: masked softmax with valid lengths\n"


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda s, n: torch.softmax(s, dim=-1), "padded keys .* got weight"),
        (lambda s, n: torch.softmax(s.masked_fill(~_visible(s, n), 0.0), dim=-1), r"exp\(0\) = 1"),
        (lambda s, n: torch.softmax(s, dim=-1) * _visible(s, n), "without renormalising"),
        (lambda s, n: my_masked_softmax(s, n + 1), "you let key valid_len through"),
        (lambda s, n: my_masked_softmax(s, n - 1), "you hid key valid_len - 1"),
        (
            lambda s, n: torch.softmax(s.masked_fill(~_visible(s, n), -1e9), dim=1) * _visible(s, n),
            "softmax over the last axis",
        ),
    ],
    ids=["no-mask", "zero-fill", "zero-after", "one-too-many", "one-too-few", "wrong-axis"],
)
def test_masked_softmax_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch01.check_masked_softmax(wrong)


def test_masked_softmax_returning_nan_is_reported():
    def nan_rows(scores, valid_lens):
        weights = my_masked_softmax(scores, valid_lens).clone()
        weights[0, 0, 0] = float("nan")
        return weights

    with pytest.raises(AssertionError, match="contains NaN"):
        ch01.check_masked_softmax(nan_rows)


# --- 1.4 context vector ------------------------------------------------------------------


def context(attention, state, annotations, source_lens):
    output, _ = attention(state[:, None, :], annotations, annotations, valid_lens=source_lens)  # (B, 1, H)
    return output[:, 0]  # (B, H)


def test_context_right_answer_prints_the_tick_line(capsys):
    ch01.check_context(context)
    assert capsys.readouterr().out == "✓ Exercise 1.4: the context vector of one decoder step\n"


def _uniform_over_words(attention, state, annotations, source_lens):
    visible = (torch.arange(annotations.shape[1]) < source_lens[:, None])[..., None]  # (B, S, 1)
    return (annotations * visible).sum(1) / source_lens[:, None]


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (lambda att, s, a, n: att(s[:, None], a, a)[0][:, 0], "pass valid_lens=source_lens"),
        (lambda att, s, a, n: a.mean(dim=1), "averaged all annotations"),
        (_uniform_over_words, "every real source word the same weight"),
        (lambda att, s, a, n: a[:, -1], "used the last annotation"),
        (lambda att, s, a, n: att(s[:, None], a, a, valid_lens=n)[0], "drop that query axis"),
    ],
    ids=["no-valid-lens", "mean", "uniform", "last", "keeps-query-axis"],
)
def test_context_mistakes_get_their_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ch01.check_context(wrong)
