"""Checks for the exercises of chapter 4, the Transformer.

Each ``check_*`` function calls the learner's function on inputs it makes itself (from its own
seeded generator, so the learner's random state is left alone), compares the result with
:mod:`bert_tutor.transformer` or PyTorch, and prints ``✓ Exercise 4.N: ...`` or raises an
AssertionError that names the mistake when it recognises one.

    4.1  check_sinusoidal_encoding(my_encoding)     (max_len, hidden) table of sines and cosines
    4.2  check_causal_mask(my_causal_mask)          (n, n) boolean, True = may attend
    4.3  check_layer_norm(my_layer_norm)            LayerNorm over the features, biased variance, eps
    4.4  check_residual(my_residual)                post-LN and pre-LN residual connections
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator
from bert_tutor.transformer import SinusoidalPositionalEncoding, causal_mask

__all__ = ["check_causal_mask", "check_layer_norm", "check_residual", "check_sinusoidal_encoding"]


# --- 4.1 ---------------------------------------------------------------------------------------


def _sinusoids(max_len: int, hidden_size: int, exponent, swap: bool = False, halves: bool = False):
    """A table built with frequencies 10000 ** (-exponent(j)) for pair j, for the typical mistakes."""
    positions = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    pairs = torch.arange(hidden_size // 2, dtype=torch.float32)  # (h / 2,)
    angles = positions * 10000.0 ** (-exponent(pairs))  # (max_len, h / 2)
    first, second = (torch.cos(angles), torch.sin(angles)) if swap else (torch.sin(angles), torch.cos(angles))
    if halves:
        return torch.cat([first, second], dim=1)  # (max_len, h)
    return torch.stack([first, second], dim=-1).flatten(1)  # (max_len, h): interleaved


def check_sinusoidal_encoding(my_encoding) -> None:
    """Exercise 4.1: ``my_encoding(max_len, hidden_size)`` returns the (max_len, hidden_size) table.

    P[pos, 2j] = sin(pos / 10000^(2j / h)), P[pos, 2j + 1] = cos(pos / 10000^(2j / h)).
    Checked for two sizes, with max_len != hidden_size so that a transposed table fails.
    """
    for max_len, h in ((50, 16), (12, 32)):
        expected = SinusoidalPositionalEncoding(h, max_len).encoding  # (max_len, h)
        answer = my_encoding(max_len, h)
        case = f"for max_len={max_len}, hidden_size={h}"
        transposed = isinstance(answer, torch.Tensor) and answer.shape == (h, max_len)
        if transposed and torch.allclose(answer.detach().float(), expected.T, atol=1e-5):
            raise AssertionError(
                f"Exercise 4.1: {case}, your table is ({h}, {max_len}) = (hidden, positions): "
                f"positions and features are transposed. Row pos must be the encoding of position "
                f"pos: shape (max_len, hidden_size)"
            )
        check_tensor(
            "4.1",
            answer,
            expected,
            name=f"your encoding {case}",
            atol=1e-4,
            mistakes={
                "sin and cos are swapped: even features (0, 2, 4, ...) take the sine, odd ones "
                "the cosine": _sinusoids(max_len, h, lambda j, h=h: 2 * j / h, swap=True),
                "the exponent must be 2j / hidden_size for pair j (features 2j and 2j + 1); you used "
                "j / hidden_size, so the wavelengths only reach 10000 ** 0.5 = 100": _sinusoids(
                    max_len, h, lambda j, h=h: j / h
                ),
                "the exponent must be 2j / hidden_size, a fraction between 0 and 1; you used 2j "
                "without dividing by hidden_size, so every pair but the first turns almost not at "
                "all": _sinusoids(max_len, h, lambda j: 2 * j),
                "the exponent must be 2j / hidden_size for pair j; you used the feature index i / "
                "hidden_size (i = 2j for the sines, 2j + 1 for the cosines), so a pair's sine and "
                "cosine turn at different speeds": _sinusoid_by_feature(max_len, h),
                "you put all the sines in the first half and all the cosines in the second half: "
                "the Transformer interleaves them, sine in feature 2j and cosine in feature 2j + 1 "
                "(the same information, in another order)": _sinusoids(
                    max_len, h, lambda j, h=h: 2 * j / h, halves=True
                ),
            },
        )
    passed("4.1", "sinusoidal positional encoding")


def _sinusoid_by_feature(max_len: int, hidden_size: int) -> torch.Tensor:
    positions = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    features = torch.arange(hidden_size, dtype=torch.float32)  # (h,)
    angles = positions * 10000.0 ** (-features / hidden_size)  # (max_len, h)
    return torch.where(features.long() % 2 == 0, torch.sin(angles), torch.cos(angles))  # (max_len, h)


# --- 4.2 ---------------------------------------------------------------------------------------


def check_causal_mask(my_causal_mask) -> None:
    """Exercise 4.2: ``my_causal_mask(n)`` returns an (n, n) boolean mask, True = may attend.

    Query i (row) may attend to keys 0..i (columns), itself included, never to later ones.
    """
    for n in (4, 7, 1):  # n = 1 last: there a missing diagonal looks inverted
        expected = causal_mask(n)  # (n, n)
        answer = my_causal_mask(n)
        name = f"your mask for n={n}"
        if isinstance(answer, torch.Tensor) and answer.shape == expected.shape and answer.dtype != torch.bool:
            if answer.dtype.is_floating_point and torch.equal(
                answer, torch.zeros(n, n).masked_fill(~expected, float("-inf"))
            ):
                hint = (
                    "you returned an additive float mask (0 and -inf); in this course masks are "
                    "boolean, True = may attend: return torch.ones(n, n, dtype=torch.bool).tril()"
                )
            else:
                hint = f"a mask must be boolean (True = may attend), got dtype {answer.dtype}"
            raise AssertionError(f"Exercise 4.2: {hint}")
        if isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            answer = answer.long()
        check_tensor(
            "4.2",
            answer,
            expected.long(),
            name=name,
            mistakes={
                "your mask is inverted: True marks the future, the keys to hide. In this course True "
                "means 'may attend': keep the lower triangle with the diagonal, ~ your "
                "mask": (~expected).long(),
                "off by one: the diagonal is False, so a position cannot see itself (and row 0 sees "
                "nothing at all, a softmax over no keys). Keep the diagonal: tril(), not "
                "tril(-1)": torch.ones(n, n).tril(-1).long(),
                "your mask is the upper triangle: query i sees keys i..n-1, the future. Rows are "
                "queries and columns keys, so keep the lower triangle: tril()": torch.ones(n, n)
                .triu()
                .long(),
                "off by one: you let each position see the next one too (tril(1)). Query i may see "
                "keys 0..i only": torch.ones(n, n).tril(1).long(),
            },
        )
    passed("4.2", "causal mask")


# --- 4.3 ---------------------------------------------------------------------------------------


def _layer_norm(x, gamma, beta, eps, dim=-1, unbiased=False, eps_outside=False):
    mean = x.mean(dim, keepdim=True)
    var = x.var(dim, keepdim=True, correction=1 if unbiased else 0)
    spread = var.sqrt() + eps if eps_outside else (var + eps).sqrt()
    return (x - mean) / spread * gamma + beta


def check_layer_norm(my_layer_norm) -> None:
    """Exercise 4.3: ``my_layer_norm(x, gamma, beta, eps)`` normalises x (B, n, h) over the features.

    Each position's h features get mean 0 and variance 1 (the biased variance, divided by h, with
    eps added inside the square root), then are scaled by gamma (h,) and shifted by beta (h,):
    equal to ``F.layer_norm(x, (h,), gamma, beta, eps)``.
    """
    g = seeded_generator(43)
    batch, n, h, eps = 2, 5, 6, 1e-2  # small h: unbiased / biased differ by sqrt(6 / 5)
    x = torch.randn(batch, n, h, generator=g) * 3 + 1  # (B, n, h)
    x[0, 0] = 0.05 * torch.randn(h, generator=g)  # a nearly flat row, where eps matters
    gamma = 1 + 0.5 * torch.randn(h, generator=g)  # (h,)
    beta = 0.5 * torch.randn(h, generator=g)  # (h,)
    expected = F.layer_norm(x, (h,), gamma, beta, eps)  # (B, n, h)
    answer = my_layer_norm(x.clone(), gamma.clone(), beta.clone(), eps)
    check_tensor(
        "4.3",
        answer,
        expected,
        name="your LayerNorm",
        mistakes={
            "you normalised over the positions (axis 1): LayerNorm normalises each position's "
            "features, the last axis, dim=-1": _layer_norm(x, gamma, beta, eps, dim=1),
            "you normalised over the batch (axis 0), as BatchNorm does: LayerNorm normalises each "
            "position's features, the last axis, dim=-1": _layer_norm(x, gamma, beta, eps, dim=0),
            "you used the unbiased variance (divided by h - 1): LayerNorm divides by h, "
            "x.var(-1, unbiased=False) or ((x - mean) ** 2).mean(-1)": _layer_norm(
                x, gamma, beta, eps, unbiased=True
            ),
            "you left out eps: add it to the variance inside the square root, sqrt(var + eps); it "
            "matters for a nearly flat row like x[0, 0]": _layer_norm(x, gamma, beta, 0.0),
            "eps goes inside the square root, sqrt(var + eps), not after it, std + eps": _layer_norm(
                x, gamma, beta, eps, eps_outside=True
            ),
            "you left out gamma and beta: scale by gamma and shift by beta after normalising": _layer_norm(
                x, 1.0, 0.0, eps
            ),
            "you swapped gamma and beta: multiply by gamma (the gain), then add beta (the bias)": _layer_norm(
                x, beta, gamma, eps
            ),
        },
    )
    passed("4.3", "layer normalisation")


# --- 4.4 ---------------------------------------------------------------------------------------


def check_residual(my_residual) -> None:
    """Exercise 4.4: ``my_residual(x, sublayer, norm, norm_first)`` returns (B, n, h).

    post-LN (norm_first=False): norm(x + sublayer(x)); pre-LN (norm_first=True): x + sublayer(norm(x)).
    sublayer and norm are callables (B, n, h) -> (B, n, h); no dropout.
    """
    g = seeded_generator(44)
    h = 8
    x = torch.randn(2, 5, h, generator=g) * 2 + 0.5  # (B, n, h)
    weight = torch.randn(h, h, generator=g) / h**0.5

    def sublayer(y):
        return torch.tanh(y @ weight) + 0.3  # (B, n, h)

    norm = torch.nn.LayerNorm(h)
    with torch.no_grad():
        norm.weight.copy_(1 + 0.3 * torch.randn(h, generator=g))
        norm.bias.copy_(0.3 * torch.randn(h, generator=g))
    with torch.no_grad():
        post = norm(x + sublayer(x))
        pre = x + sublayer(norm(x))
        mistakes = {
            "post": {
                "you wrote the pre-LN order for norm_first=False: post-LN, the paper's order, adds "
                "first and normalises the sum, norm(x + sublayer(x))": pre,
                "post-LN normalises the sum x + sublayer(x); you normalised only the sublayer's "
                "output, x + norm(sublayer(x))": x + norm(sublayer(x)),
                "the residual connection is missing: add x to the sublayer's output before the norm": norm(
                    sublayer(x)
                ),
            },
            "pre": {
                "you wrote the post-LN order for norm_first=True: pre-LN normalises the sublayer's "
                "input and adds the raw x, x + sublayer(norm(x))": post,
                "pre-LN adds the raw x, not norm(x): x + sublayer(norm(x)), so the residual path "
                "carries x through the whole stack untouched": norm(x) + sublayer(norm(x)),
                "the residual connection is missing: add x to sublayer(norm(x))": sublayer(norm(x)),
            },
        }
        for norm_first, expected, which in ((False, post, "post"), (True, pre, "pre")):
            answer = my_residual(x.clone(), sublayer, norm, norm_first)
            check_tensor(
                "4.4",
                answer,
                expected,
                name=f"your result for norm_first={norm_first}",
                mistakes=mistakes[which],
            )
    passed("4.4", "post-LN and pre-LN residual connections")
