"""The checks of chapter 4 accept right answers and name the typical wrong ones."""

import math

import pytest
import torch
import torch.nn.functional as F

from bert_tutor.exercises import ch04
from bert_tutor.transformer import SinusoidalPositionalEncoding

from .conftest import leaves_global_random_state_alone

# --- 4.1 sinusoidal positional encoding --------------------------------------------------------


def right_encoding(max_len, hidden_size):
    table = torch.zeros(max_len, hidden_size)
    for pos in range(max_len):
        for j in range(hidden_size // 2):
            angle = pos / 10000 ** (2 * j / hidden_size)
            table[pos, 2 * j] = math.sin(angle)
            table[pos, 2 * j + 1] = math.cos(angle)
    return table


def encoding_with(exponent, swap=False, halves=False):
    def encoding(max_len, hidden_size):
        positions = torch.arange(max_len, dtype=torch.float32)[:, None]
        j = torch.arange(hidden_size // 2, dtype=torch.float32)
        angles = positions / 10000 ** exponent(j, hidden_size)
        first, second = (angles.cos(), angles.sin()) if swap else (angles.sin(), angles.cos())
        if halves:
            return torch.cat([first, second], dim=1)
        return torch.stack([first, second], dim=-1).flatten(1)

    return encoding


def test_encoding_right_answer_prints_one_line(capsys):
    ch04.check_sinusoidal_encoding(right_encoding)
    assert capsys.readouterr().out == "✓ Exercise 4.1: sinusoidal positional encoding\n"


def test_encoding_package_and_vectorised_answers_pass(capsys):
    ch04.check_sinusoidal_encoding(lambda n, h: SinusoidalPositionalEncoding(h, n).encoding.clone())
    ch04.check_sinusoidal_encoding(encoding_with(lambda j, h: 2 * j / h))
    assert capsys.readouterr().out.count("✓ Exercise 4.1") == 2


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (encoding_with(lambda j, h: 2 * j / h, swap=True), r"Exercise 4\.1: sin and cos are swapped"),
        (encoding_with(lambda j, h: j / h), r"you used j / hidden_size"),
        (encoding_with(lambda j, h: 2 * j), r"you used 2j without dividing by hidden_size"),
        (encoding_with(lambda j, h: 2 * j / h, halves=True), r"all the sines in the first half"),
        (lambda n, h: right_encoding(n, h).T.contiguous(), r"positions and features are transposed"),
    ],
    ids=["sin-cos-swapped", "exponent-j-over-d", "exponent-without-d", "halves", "transposed"],
)
def test_encoding_typical_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=message):
        ch04.check_sinusoidal_encoding(wrong)


def test_encoding_with_the_feature_index_in_the_exponent_is_named():
    def by_feature(max_len, hidden_size):
        table = torch.zeros(max_len, hidden_size)
        for pos in range(max_len):
            for i in range(hidden_size):
                angle = pos / 10000 ** (i / hidden_size)
                table[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
        return table

    with pytest.raises(AssertionError, match=r"you used the feature index i / hidden_size"):
        ch04.check_sinusoidal_encoding(by_feature)


def test_encoding_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(50, 8\), expected \(50, 16\)"):
        ch04.check_sinusoidal_encoding(lambda n, h: torch.zeros(n, h // 2))


def test_encoding_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got list"):
        ch04.check_sinusoidal_encoding(lambda n, h: right_encoding(n, h).tolist())


def test_encoding_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch04.check_sinusoidal_encoding, right_encoding)


# --- 4.2 causal mask ---------------------------------------------------------------------------


def test_mask_right_answer_prints_one_line(capsys):
    ch04.check_causal_mask(lambda n: torch.ones(n, n, dtype=torch.bool).tril())
    assert capsys.readouterr().out == "✓ Exercise 4.2: causal mask\n"


def test_mask_other_right_answer_passes(capsys):
    ch04.check_causal_mask(lambda n: torch.arange(n)[None, :] <= torch.arange(n)[:, None])
    assert "✓ Exercise 4.2" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda n: torch.ones(n, n, dtype=torch.bool).triu(1), r"Exercise 4\.2: your mask is inverted"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).tril(-1), r"off by one: the diagonal is False"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).triu(), r"your mask is the upper triangle"),
        (lambda n: torch.ones(n, n, dtype=torch.bool).tril(1), r"off by one: you let each position see"),
    ],
    ids=["inverted", "no-diagonal", "upper-triangle", "sees-next"],
)
def test_mask_typical_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=message):
        ch04.check_causal_mask(wrong)


def test_mask_additive_float_mask_is_named():
    def additive(n):
        return torch.zeros(n, n).masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))

    with pytest.raises(AssertionError, match=r"additive float mask \(0 and -inf\)"):
        ch04.check_causal_mask(additive)


def test_mask_of_ones_and_zeros_must_be_boolean():
    with pytest.raises(AssertionError, match=r"must be boolean .* got dtype torch\.int64"):
        ch04.check_causal_mask(lambda n: torch.ones(n, n, dtype=torch.long).tril())


def test_mask_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(1, 4, 4\), expected \(4, 4\)"):
        ch04.check_causal_mask(lambda n: torch.ones(1, n, n, dtype=torch.bool).tril())


def test_mask_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got list"):
        ch04.check_causal_mask(lambda n: [[j <= i for j in range(n)] for i in range(n)])


# --- 4.3 layer norm ----------------------------------------------------------------------------


def right_layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma + beta


def test_layer_norm_right_answer_prints_one_line(capsys):
    ch04.check_layer_norm(right_layer_norm)
    assert capsys.readouterr().out == "✓ Exercise 4.3: layer normalisation\n"


def test_layer_norm_functional_answer_passes(capsys):
    ch04.check_layer_norm(lambda x, g, b, eps: F.layer_norm(x, x.shape[-1:], g, b, eps))
    assert "✓ Exercise 4.3" in capsys.readouterr().out


def norm_over(dim=-1, correction=0, eps_inside=True, use_eps=True, affine=True, swap=False):
    def layer_norm(x, gamma, beta, eps=1e-5):
        eps = eps if use_eps else 0.0
        mean = x.mean(dim, keepdim=True)
        var = x.var(dim, keepdim=True, correction=correction)
        y = (x - mean) / (torch.sqrt(var + eps) if eps_inside else torch.sqrt(var) + eps)
        if not affine:
            return y
        return y * beta + gamma if swap else y * gamma + beta

    return layer_norm


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (norm_over(dim=1), r"Exercise 4\.3: you normalised over the positions"),
        (norm_over(dim=0), r"you normalised over the batch"),
        (norm_over(correction=1), r"you used the unbiased variance"),
        (norm_over(use_eps=False), r"you left out eps"),
        (norm_over(eps_inside=False), r"eps goes inside the square root"),
        (norm_over(affine=False), r"you left out gamma and beta"),
        (norm_over(swap=True), r"you swapped gamma and beta"),
    ],
    ids=["positions-axis", "batch-axis", "unbiased", "no-eps", "eps-outside", "no-affine", "swapped"],
)
def test_layer_norm_typical_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=message):
        ch04.check_layer_norm(wrong)


def test_layer_norm_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(2, 5, 1\), expected \(2, 5, 6\)"):
        ch04.check_layer_norm(lambda x, g, b, eps: x.mean(-1, keepdim=True))


def test_layer_norm_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got ndarray"):
        ch04.check_layer_norm(lambda x, g, b, eps: right_layer_norm(x, g, b, eps).numpy())


def test_layer_norm_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch04.check_layer_norm, right_layer_norm)


# --- 4.4 residual connections ------------------------------------------------------------------


def right_residual(x, sublayer, norm, norm_first):
    if norm_first:
        return x + sublayer(norm(x))
    return norm(x + sublayer(x))


def test_residual_right_answer_prints_one_line(capsys):
    ch04.check_residual(right_residual)
    assert capsys.readouterr().out == "✓ Exercise 4.4: post-LN and pre-LN residual connections\n"


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda x, s, n, first: right_residual(x, s, n, not first),
            r"Exercise 4\.4: you wrote the pre-LN order",
        ),
        (lambda x, s, n, first: x + s(n(x)) if first else x + n(s(x)), r"you normalised only the sublayer"),
        (lambda x, s, n, first: x + s(n(x)) if first else n(s(x)), r"the residual connection is missing"),
        (lambda x, s, n, first: n(x) + s(n(x)) if first else n(x + s(x)), r"pre-LN adds the raw x"),
        (lambda x, s, n, first: n(x + s(x)), r"you wrote the post-LN order for norm_first=True"),
    ],
    ids=["orders-swapped", "post-norm-on-sublayer", "post-no-residual", "pre-normed-residual", "always-post"],
)
def test_residual_typical_mistakes_are_named(wrong, message):
    with pytest.raises(AssertionError, match=message):
        ch04.check_residual(wrong)


def test_residual_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(2, 5\), expected \(2, 5, 8\)"):
        ch04.check_residual(lambda x, s, n, first: right_residual(x, s, n, first).sum(-1))


def test_residual_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got float"):
        ch04.check_residual(lambda x, s, n, first: 0.0)


def test_residual_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch04.check_residual, right_residual)
