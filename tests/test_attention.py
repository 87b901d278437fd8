"""bert_tutor.attention: masked softmax, scaled dot-product, additive and self-attention."""

import math

import pytest
import torch
import torch.nn.functional as F

from bert_tutor.attention import (
    AdditiveAttention,
    SelfAttention,
    lengths_to_mask,
    masked_softmax,
    scaled_dot_product_attention,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --- masked_softmax -------------------------------------------------------------------


def test_without_mask_equals_softmax_over_keys():
    scores = torch.randn(2, 3, 5)
    torch.testing.assert_close(masked_softmax(scores), torch.softmax(scores, dim=-1))


def test_masked_keys_get_exactly_zero_and_rows_sum_to_one():
    scores = torch.randn(2, 3, 5)
    mask = torch.tensor([True, True, False, True, False])
    weights = masked_softmax(scores, mask)
    assert (weights[..., ~mask] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))
    expected = torch.softmax(scores[..., mask], dim=-1)
    torch.testing.assert_close(weights[..., mask], expected)


def test_all_masked_row_gives_zero_weights_not_nan():
    scores = torch.randn(2, 3, 4, requires_grad=True)
    mask = torch.ones(2, 3, 4, dtype=torch.bool)
    mask[1, 2] = False  # query 2 of example 1 may look at nothing
    weights = masked_softmax(scores, mask)
    assert not torch.isnan(weights).any()
    assert (weights[1, 2] == 0).all()
    weights.sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_valid_lengths_equal_the_boolean_mask_they_describe():
    scores = torch.randn(3, 2, 6)
    valid_lens = torch.tensor([6, 2, 0])
    mask = torch.arange(6) < valid_lens[:, None, None]
    torch.testing.assert_close(masked_softmax(scores, valid_lens=valid_lens), masked_softmax(scores, mask))
    assert (masked_softmax(scores, valid_lens=valid_lens)[2] == 0).all()


def test_valid_lengths_per_query():
    scores = torch.randn(2, 3, 4)
    valid_lens = torch.tensor([[1, 2, 3], [4, 4, 0]])
    weights = masked_softmax(scores, valid_lens=valid_lens)
    visible = (weights > 0).sum(-1)
    assert visible.tolist() == valid_lens.tolist()


def test_valid_lengths_broadcast_over_heads():
    scores = torch.randn(2, 4, 3, 5)  # (B, heads, Q, K)
    weights = masked_softmax(scores, valid_lens=torch.tensor([2, 5]))
    assert (weights[0, :, :, 2:] == 0).all()
    torch.testing.assert_close(weights[1], torch.softmax(scores[1], dim=-1))


def test_valid_lengths_per_query_broadcast_over_heads_not_batch():
    # B == heads here, so lining batch up against heads would go unnoticed by shape checks
    scores = torch.zeros(2, 2, 3, 3)  # (B, heads, Q, K)
    weights = masked_softmax(scores, valid_lens=torch.tensor([[1, 1, 1], [3, 3, 3]]))
    torch.testing.assert_close(weights[0, 1, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(weights[1, 0, 0], torch.full((3,), 1 / 3))


def test_lengths_to_mask_shapes():
    assert lengths_to_mask(torch.tensor([1, 3]), 4).shape == (2, 1, 4)
    assert lengths_to_mask(torch.tensor([[1, 3, 0]]), 4).shape == (1, 3, 4)
    assert lengths_to_mask(torch.tensor([1, 3]), 4)[0, 0].tolist() == [True, False, False, False]


def test_mask_that_cannot_broadcast_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 3, 4\)"):
        masked_softmax(torch.randn(2, 3, 4), torch.ones(3, 3, dtype=torch.bool))


def test_mask_with_more_dimensions_than_scores_is_refused():
    with pytest.raises(ValueError, match="cannot broadcast"):
        masked_softmax(torch.randn(3, 4), torch.ones(2, 3, 4, dtype=torch.bool))


def test_non_boolean_mask_is_refused():
    with pytest.raises(ValueError, match="boolean"):
        masked_softmax(torch.randn(2, 3), torch.ones(2, 3))


@pytest.mark.parametrize(
    ("valid_lens", "message"),
    [
        (torch.tensor([5]), r"\[0, 4\]"),
        (torch.tensor([-1]), r"\[0, 4\]"),
        (torch.tensor([1.5]), "integers"),
        (torch.ones(1, 1, 1, dtype=torch.long), "shape"),
    ],
)
def test_bad_valid_lengths_are_refused(valid_lens, message):
    with pytest.raises(ValueError, match=message):
        masked_softmax(torch.randn(1, 2, 4), valid_lens=valid_lens)


def test_mask_and_valid_lengths_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        masked_softmax(torch.randn(1, 2, 4), torch.ones(4, dtype=torch.bool), torch.tensor([2]))


# --- scaled_dot_product_attention -----------------------------------------------------


def test_scaled_dot_product_matches_the_formula():
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 6)
    output, weights = scaled_dot_product_attention(q, k, v)
    expected_weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1)
    torch.testing.assert_close(weights, expected_weights)
    torch.testing.assert_close(output, expected_weights @ v)
    assert output.shape == (2, 3, 6) and weights.shape == (2, 3, 5)


def test_scaled_dot_product_equals_pytorch_with_a_mask():
    q, k, v = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8)
    mask = torch.rand(2, 1, 3, 5) > 0.3
    mask[..., 0] = True  # every query sees at least one key (PyTorch gives NaN otherwise)
    output, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    torch.testing.assert_close(output, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))


def test_changing_a_masked_value_does_not_change_the_output():
    q, k, v = torch.randn(1, 2, 4), torch.randn(1, 3, 4), torch.randn(1, 3, 4)
    output, _ = scaled_dot_product_attention(q, k, v, valid_lens=torch.tensor([2]))
    v2 = v.clone()
    v2[0, 2] = 100.0
    output2, _ = scaled_dot_product_attention(q, k, v2, valid_lens=torch.tensor([2]))
    torch.testing.assert_close(output, output2)


def test_dropout_on_weights_is_applied_in_training_only():
    q, k, v = torch.randn(1, 4, 4), torch.randn(1, 4, 4), torch.randn(1, 4, 4)
    dropout = torch.nn.Dropout(0.5)
    _, weights = scaled_dot_product_attention(q, k, v, dropout=dropout)
    assert (weights == 0).any()
    dropout.eval()
    _, weights = scaled_dot_product_attention(q, k, v, dropout=dropout)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1, 4))


@pytest.mark.parametrize(
    ("q", "k", "v", "message"),
    [
        (torch.randn(2, 3, 8), torch.randn(2, 5, 7), torch.randn(2, 5, 6), r"same last size.*\(2, 3, 8\)"),
        (torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 4, 6), r"same length.*\(2, 4, 6\)"),
        (torch.randn(2, 3, 8), torch.randn(3, 5, 8), torch.randn(3, 5, 6), "leading"),
        (torch.randn(8), torch.randn(5, 8), torch.randn(5, 6), r"queries must be at least 2-D"),
    ],
)
def test_mismatched_shapes_raise_value_error_naming_the_shapes(q, k, v, message):
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(q, k, v)


# --- AdditiveAttention ----------------------------------------------------------------


def test_additive_attention_shapes_and_masking():
    attention = AdditiveAttention(query_size=4, key_size=6, hidden_size=10)
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 6), torch.randn(2, 5, 7)
    output, weights = attention(q, k, v, valid_lens=torch.tensor([3, 5]))
    assert output.shape == (2, 3, 7) and weights.shape == (2, 3, 5)
    assert (weights[0, :, 3:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


def test_additive_score_is_the_bahdanau_formula():
    attention = AdditiveAttention(query_size=4, key_size=6, hidden_size=10)
    q, k, v = torch.randn(1, 1, 4), torch.randn(1, 3, 6), torch.randn(1, 3, 2)
    _, weights = attention(q, k, v)
    scores = torch.stack(
        [attention.w_v(torch.tanh(attention.W_q(q[0, 0]) + attention.W_k(k[0, j]))) for j in range(3)]
    )
    torch.testing.assert_close(weights[0, 0], torch.softmax(scores.squeeze(-1), dim=0))


def test_additive_attention_refuses_wrong_feature_sizes():
    attention = AdditiveAttention(query_size=4, key_size=6, hidden_size=10)
    with pytest.raises(ValueError, match=r"queries \(\.\.\., 4\)"):
        attention(torch.randn(2, 3, 5), torch.randn(2, 5, 6), torch.randn(2, 5, 7))


def test_additive_attention_refuses_non_positive_sizes():
    with pytest.raises(ValueError, match="hidden_size must be positive, got 0"):
        AdditiveAttention(4, 6, 0)


# --- SelfAttention --------------------------------------------------------------------


def test_self_attention_is_permutation_equivariant():
    attention = SelfAttention(hidden_size=8, head_size=4)
    x = torch.randn(1, 6, 8)
    permutation = torch.randperm(6)
    output, weights = attention(x)
    output_p, weights_p = attention(x[:, permutation])
    torch.testing.assert_close(output_p, output[:, permutation])
    torch.testing.assert_close(weights_p, weights[:, permutation][:, :, permutation])


def test_self_attention_uses_its_projections():
    attention = SelfAttention(hidden_size=8, head_size=4)
    x = torch.randn(2, 5, 8)
    output, weights = attention(x, valid_lens=torch.tensor([5, 3]))
    expected, _ = scaled_dot_product_attention(
        attention.query(x), attention.key(x), attention.value(x), valid_lens=torch.tensor([5, 3])
    )
    torch.testing.assert_close(output, expected)
    assert weights.shape == (2, 5, 5) and (weights[1, :, 3:] == 0).all()


@pytest.mark.parametrize("shape", [(5, 8), (2, 5, 7)])
def test_self_attention_refuses_input_of_the_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"\(batch, length, 8\)"):
        SelfAttention(hidden_size=8)(torch.randn(*shape))


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"hidden_size": 0}, "positive"), ({"dropout": 1.0}, "dropout")]
)
def test_self_attention_refuses_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SelfAttention(**{"hidden_size": 8, **kwargs})
