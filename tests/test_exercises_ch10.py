"""The checks of chapter 10 accept right answers and name the typical wrong ones."""

import math

import numpy as np
import pytest
import torch

from bert_tutor.exercises import ch10
from bert_tutor.viz import attention_statistics

from .conftest import leaves_global_random_state_alone

# --- 10.1 entropy of each head -----------------------------------------------------------------


def entropy_with(log=torch.log, sign=-1.0, reduce="mean", safe=True, mean_row=False):
    """A learner's head entropy whose steps can each go wrong."""

    def head_entropy(weights):
        if mean_row:
            weights = weights.mean(dim=-2, keepdim=True)
        plogp = weights * log(weights.clamp_min(1e-30)) if safe else weights * log(weights)
        rows = sign * plogp.sum(dim=-1)  # (H, n)
        return rows.mean(dim=-1) if reduce == "mean" else rows.sum(dim=-1) if reduce == "sum" else rows

    return head_entropy


def test_entropy_right_answer_prints_one_line(capsys):
    ch10.check_head_entropy(entropy_with())
    assert capsys.readouterr().out == "✓ Exercise 10.1: entropy of each head\n"


def test_entropy_other_right_answers_pass(capsys):
    ch10.check_head_entropy(lambda w: -torch.xlogy(w, w).sum(-1).mean(-1))
    ch10.check_head_entropy(lambda w: torch.distributions.Categorical(probs=w).entropy().mean(-1))
    assert capsys.readouterr().out.count("✓ Exercise 10.1") == 2


def test_entropy_agrees_with_the_package_statistic():
    weights = ch10._entropy_weights()  # (H, n, n)
    n = weights.shape[-1]
    ids = torch.arange(10, 10 + n)[None]  # (1, n): no [CLS] or [SEP] needed for the entropy
    package = attention_statistics(weights[None, None], ids, cls_token_id=0, sep_token_id=1)["entropy"]
    torch.testing.assert_close(package[0], entropy_with()(weights).float())


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (entropy_with(safe=False), r"0 · log 0 gave NaN"),
        (entropy_with(log=torch.log2), r"your entropies are in bits"),
        (entropy_with(sign=1.0), r"your entropies are negative"),
        (lambda w: -torch.xlogy(w, w).mean(-1).mean(-1), r"you averaged w log w over the keys"),
        (entropy_with(reduce="sum"), r"you summed the rows' entropies"),
        (entropy_with(mean_row=True), r"you took the entropy of the average row"),
        (entropy_with(reduce=None), r"your result has shape \(4, 6\): one entropy per query"),
    ],
    ids=["nan", "bits", "sign", "mean-over-keys", "sum", "mean-row", "per-query"],
)
def test_entropy_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 10\.1: " + hint):
        ch10.check_head_entropy(wrong)


def test_entropy_non_tensor_and_unknown_mistakes_are_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got list"):
        ch10.check_head_entropy(lambda w: entropy_with()(w).tolist())
    with pytest.raises(AssertionError, match=r"differs from the expected values .* Per row: -sum"):
        ch10.check_head_entropy(lambda w: entropy_with()(w) + 0.1)


def test_entropy_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch10.check_head_entropy, entropy_with())


def test_the_entropy_weights_are_distributions_with_exact_zeros():
    weights = ch10._entropy_weights()
    torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1], dtype=weights.dtype))
    assert (weights == 0).any(dim=(-2, -1)).tolist() == [True, False, True, False]
    assert math.isclose(entropy_with()(weights)[1].item(), math.log(weights.shape[-1]), rel_tol=1e-9)


# --- 10.2 share to the previous token ----------------------------------------------------------


def right_share(weights):
    n = weights.shape[-1]
    i = torch.arange(1, n)
    return weights[..., i, i - 1].mean(dim=-1)


def test_share_right_answers_pass(capsys):
    ch10.check_previous_token_share(right_share)
    ch10.check_previous_token_share(lambda w: w.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1))
    assert capsys.readouterr().out == "✓ Exercise 10.2: share of attention to the previous token\n" * 2


def test_share_agrees_with_the_package_statistic():
    weights = ch10._share_weights()  # (L, H, n, n)
    n = weights.shape[-1]
    ids = torch.arange(10, 10 + n)[None]
    package = attention_statistics(weights[:, None], ids, cls_token_id=0, sep_token_id=1)["previous"]
    torch.testing.assert_close(package, right_share(weights).float())


def wrapped(weights):
    n = weights.shape[-1]
    return weights[..., torch.arange(n), torch.arange(n) - 1].mean(-1)  # index -1: the last token


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda w: w.diagonal(offset=1, dim1=-2, dim2=-1).mean(-1), r"you took the weight on the NEXT token"),
        (lambda w: w.transpose(-2, -1).diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1), r"on the NEXT token"),
        (lambda w: w.diagonal(dim1=-2, dim2=-1).mean(-1), r"each token's weight on itself"),
        (wrapped, r"wrapped it round to the last token"),
        (lambda w: w.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1) / w.shape[-1], r"you divided by n"),
        (lambda w: w.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1), r"you summed over the queries"),
    ],
    ids=["next", "transposed", "self", "wrapped", "divided-by-n", "sum"],
)
def test_share_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 10\.2: .*" + hint):
        ch10.check_previous_token_share(wrong)


def test_share_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"your shares has shape \(2, 3, 6\), expected \(2, 3\)"):
        ch10.check_previous_token_share(lambda w: w.diagonal(offset=-1, dim1=-2, dim2=-1))


def test_share_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch10.check_previous_token_share, right_share)


# --- 10.3 the strongest head -------------------------------------------------------------------


def test_strongest_right_answers_pass(capsys):
    ch10.check_strongest_head(lambda s: divmod(int(s.argmax()), s.shape[1]))
    ch10.check_strongest_head(lambda s: torch.unravel_index(s.argmax(), s.shape))
    ch10.check_strongest_head(lambda s: [np.int64(i) for i in np.unravel_index(s.numpy().argmax(), s.shape)])
    ch10.check_strongest_head(lambda s: (s == s.max()).nonzero()[0])
    assert capsys.readouterr().out == "✓ Exercise 10.3: the strongest head\n" * 4


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda s: divmod(int(s.argmax()), s.shape[1])[::-1], r"you returned \(head, layer\)"),
        (
            lambda s: divmod(int(s.argmax()), s.shape[0]),
            r"you divided the flat index by the number of layers",
        ),
        (lambda s: divmod(int(s.argmin()), s.shape[1]), r"the SMALLEST value: use argmax"),
        (lambda s: int(s.argmax()), r"you returned one number, 8: the position in the flattened table"),
        (lambda s: s.argmax(), r"you returned one number, 8"),
        (lambda s: s.argmax(dim=1), r"you returned 3 indices, the best along one axis"),
        (lambda s: s.argmax(dim=0), r"you returned 5 indices"),
    ],
    ids=["swapped", "divmod-layers", "argmin", "flat-int", "flat-tensor", "per-layer", "per-head"],
)
def test_strongest_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 10\.3: .*" + hint):
        ch10.check_strongest_head(wrong)


def test_strongest_other_answers_are_reported():
    with pytest.raises(AssertionError, match=r"you returned \(0, 0\) \(value 0\.20\).* largest value of the"):
        ch10.check_strongest_head(lambda s: (0, 0))
    with pytest.raises(AssertionError, match=r"return a pair \(layer, head\), got \(1, 3, 0\)"):
        ch10.check_strongest_head(lambda s: (1, 3, 0))
    with pytest.raises(AssertionError, match=r"layer and head should be ints, got \(1\.0, 3\.0\)"):
        ch10.check_strongest_head(lambda s: (1.0, 3.0))


def test_every_typical_strongest_mistake_gives_its_own_answer():
    s = ch10._STATISTIC_103
    flat, heads, layers = int(s.argmax()), s.shape[1], s.shape[0]
    answers = [
        divmod(flat, heads),
        divmod(flat, heads)[::-1],
        divmod(flat, layers),
        divmod(int(s.argmin()), heads),
    ]
    assert len(set(answers)) == len(answers)


# --- 10.4 attention to an earlier mention ------------------------------------------------------


def right_mention_share(weights, mentions):
    later = [m[0] for m in mentions]
    earlier = [m[1] for m in mentions]
    return weights[:, :, later, earlier].mean(dim=-1)


def test_mention_right_answers_pass(capsys):
    ch10.check_mention_share(right_mention_share)
    ch10.check_mention_share(lambda w, ms: torch.stack([w[:, :, a, b] for a, b in ms]).mean(0))
    assert capsys.readouterr().out == "✓ Exercise 10.4: attention from a word to its earlier mention\n" * 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda w, ms: right_mention_share(w, [(b, a) for a, b in ms]), r"the weight of the EARLIER mention"),
        (
            lambda w, ms: w[:, :, [a for a, _ in ms]][:, :, :, [b for _, b in ms]].mean((-2, -1)),
            r"every later mention looking at every earlier one",
        ),
        (lambda w, ms: right_mention_share(w, ms) * len(ms), r"you summed over the mentions"),
        (
            lambda w, ms: right_mention_share(w, [(a, a) for a, _ in ms]),
            r"the later mention's weight on itself",
        ),
    ],
    ids=["reversed", "cross", "sum", "itself"],
)
def test_mention_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 10\.4: .*" + hint):
        ch10.check_mention_share(wrong)


def test_mention_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"your shares has shape \(2, 3, 3\), expected \(2, 3\)"):
        ch10.check_mention_share(lambda w, ms: w[:, :, [a for a, _ in ms], [b for _, b in ms]])


def test_mention_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch10.check_mention_share, right_mention_share)
