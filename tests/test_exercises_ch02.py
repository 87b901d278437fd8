"""The checks of chapter 2 accept right answers and name the typical wrong ones."""

import math

import numpy as np
import pytest
import torch

from bert_tutor.exercises import ch02

# --- 2.1 Q, K, V projections ------------------------------------------------------------------


def right_qkv(x, W_q, W_k, W_v):
    return x @ W_q, x @ W_k, x @ W_v


def test_qkv_right_answer_prints_one_line(capsys):
    ch02.check_qkv_projections(right_qkv)
    assert capsys.readouterr().out == "✓ Exercise 2.1: Q, K, V projections\n"


def test_qkv_accepts_a_list():
    ch02.check_qkv_projections(lambda x, W_q, W_k, W_v: [x @ W_q, x @ W_k, x @ W_v])


def test_qkv_swapped_queries_and_keys_is_named():
    with pytest.raises(AssertionError, match=r"Exercise 2\.1: your queries equal x @ W_k"):
        ch02.check_qkv_projections(lambda x, W_q, W_k, W_v: (x @ W_k, x @ W_q, x @ W_v))


def test_qkv_one_matrix_for_all_is_named():
    with pytest.raises(AssertionError, match=r"your keys equal x @ W_q: keys are x @ W_k"):
        ch02.check_qkv_projections(lambda x, W_q, W_k, W_v: (x @ W_q, x @ W_q, x @ W_q))


def test_qkv_values_from_the_key_matrix_is_named():
    with pytest.raises(AssertionError, match=r"your values equal x @ W_k: values are x @ W_v"):
        ch02.check_qkv_projections(lambda x, W_q, W_k, W_v: (x @ W_q, x @ W_k, x @ W_k))


def test_qkv_scaled_projection_is_named():
    def scaled(x, W_q, W_k, W_v):
        return x @ W_q / math.sqrt(W_q.shape[-1]), x @ W_k, x @ W_v

    with pytest.raises(AssertionError, match=r"the 1/sqrt\(d\) scale belongs to the scores"):
        ch02.check_qkv_projections(scaled)


def test_qkv_wrong_shape_is_reported():
    def transposed(x, W_q, W_k, W_v):
        return (x @ W_q).transpose(-2, -1), x @ W_k, x @ W_v

    with pytest.raises(
        AssertionError, match=r"your queries tensor has shape \(2, 4, 5\), expected \(2, 5, 4\)"
    ):
        ch02.check_qkv_projections(transposed)


def test_qkv_non_tensor_is_reported():
    def numpy_answer(x, W_q, W_k, W_v):
        return tuple((x @ w).numpy() for w in (W_q, W_k, W_v))

    with pytest.raises(AssertionError, match=r"your queries tensor should be a torch\.Tensor, got ndarray"):
        ch02.check_qkv_projections(numpy_answer)


def test_qkv_single_tensor_is_reported():
    with pytest.raises(
        AssertionError, match=r"should return 3 tensors \(queries, keys, values\), got a single"
    ):
        ch02.check_qkv_projections(lambda x, W_q, W_k, W_v: x @ W_q)


def test_qkv_wrong_number_of_items_is_reported():
    with pytest.raises(AssertionError, match=r"got 2 items"):
        ch02.check_qkv_projections(lambda x, W_q, W_k, W_v: (x @ W_q, x @ W_k))


def test_qkv_check_leaves_global_random_state_alone():
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    ch02.check_qkv_projections(right_qkv)
    torch.testing.assert_close(torch.rand(3), before)


# --- 2.2 scaled dot-product attention ------------------------------------------------------------


def attention_with(scores_fn, softmax_dim=-1, output_fn=None):
    """A learner's attention whose scores, softmax axis and output step can each go wrong."""

    def attention(queries, keys, values):
        weights = torch.softmax(scores_fn(queries, keys), dim=softmax_dim)
        output = weights @ values if output_fn is None else output_fn(weights, queries, keys, values)
        return output, weights

    return attention


def scaled(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def test_attention_right_answer_prints_one_line(capsys):
    ch02.check_scaled_dot_product(attention_with(scaled))
    assert capsys.readouterr().out == "✓ Exercise 2.2: scaled dot-product attention\n"


def test_attention_package_function_passes(capsys):
    from bert_tutor.attention import scaled_dot_product_attention

    ch02.check_scaled_dot_product(scaled_dot_product_attention)
    assert "✓ Exercise 2.2" in capsys.readouterr().out


def test_attention_missing_scale_is_named():
    with pytest.raises(AssertionError, match=r"without the scale: divide the scores by sqrt\(d\)"):
        ch02.check_scaled_dot_product(attention_with(lambda q, k: q @ k.transpose(-2, -1)))


def test_attention_divided_by_d_is_named():
    with pytest.raises(
        AssertionError, match=r"you divided the scores by d = 16; divide them by sqrt\(d\) = 4"
    ):
        ch02.check_scaled_dot_product(attention_with(lambda q, k: q @ k.transpose(-2, -1) / q.shape[-1]))


def test_attention_scale_from_the_number_of_keys_is_named():
    def by_length(q, k):
        return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-2])

    with pytest.raises(AssertionError, match=r"sqrt\(6\), the number of keys"):
        ch02.check_scaled_dot_product(attention_with(by_length))


def test_attention_softmax_over_queries_is_named():
    with pytest.raises(
        AssertionError, match=r"do not sum to 1 over the keys: did you apply softmax over the wrong axis"
    ):
        ch02.check_scaled_dot_product(attention_with(scaled, softmax_dim=-2))


def test_attention_softmax_over_batch_is_named():
    with pytest.raises(AssertionError, match=r"softmax ran over the batch axis"):
        ch02.check_scaled_dot_product(attention_with(scaled, softmax_dim=0))


def test_attention_transposed_scores_are_named():
    with pytest.raises(AssertionError, match=r"your weights look transposed"):
        ch02.check_scaled_dot_product(attention_with(lambda q, k: scaled(k, q)))


def test_attention_output_with_transposed_weights_is_named():
    def transposed_output(weights, queries, keys, values):
        return weights.transpose(-2, -1) @ values

    with pytest.raises(AssertionError, match=r"your output uses the transposed weights"):
        ch02.check_scaled_dot_product(attention_with(scaled, output_fn=transposed_output))


def test_attention_output_without_softmax_is_named():
    def raw_scores_output(weights, queries, keys, values):
        return scaled(queries, keys) @ values

    with pytest.raises(AssertionError, match=r"mixes the values with the raw scores"):
        ch02.check_scaled_dot_product(attention_with(scaled, output_fn=raw_scores_output))


def test_attention_swapped_return_order_is_named():
    def swapped(queries, keys, values):
        output, weights = attention_with(scaled)(queries, keys, values)
        return weights, output

    with pytest.raises(AssertionError, match=r"you returned \(weights, output\)"):
        ch02.check_scaled_dot_product(swapped)


def test_attention_wrong_shape_is_reported():
    def transposed(queries, keys, values):
        output, weights = attention_with(scaled)(queries, keys, values)
        return output.transpose(-2, -1), weights

    with pytest.raises(AssertionError, match=r"your output has shape \(2, 5, 6\), expected \(2, 6, 5\)"):
        ch02.check_scaled_dot_product(transposed)


def test_attention_non_tensor_is_reported():
    def as_lists(queries, keys, values):
        output, weights = attention_with(scaled)(queries, keys, values)
        return output.tolist(), weights.tolist()

    with pytest.raises(AssertionError, match=r"your weights tensor should be a torch\.Tensor, got list"):
        ch02.check_scaled_dot_product(as_lists)


def test_attention_output_only_is_reported():
    with pytest.raises(AssertionError, match=r"should return 2 tensors \(output, weights\)"):
        ch02.check_scaled_dot_product(lambda q, k, v: attention_with(scaled)(q, k, v)[0])


def test_attention_unknown_mistake_reports_the_difference():
    with pytest.raises(
        AssertionError, match=r"your weights tensor differs from the expected values \(largest difference"
    ):
        ch02.check_scaled_dot_product(attention_with(lambda q, k: 2 * scaled(q, k)))


# --- 2.3 masked softmax --------------------------------------------------------------------------


def right_masked_softmax(scores, mask):
    filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(filled, dim=-1) * mask


def test_masked_softmax_right_answer_prints_one_line(capsys):
    ch02.check_masked_softmax(right_masked_softmax)
    assert capsys.readouterr().out == "✓ Exercise 2.3: masked softmax\n"


def test_masked_softmax_with_nan_to_num_passes():
    def via_nan_to_num(scores, mask):
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1).nan_to_num(0.0)

    ch02.check_masked_softmax(via_nan_to_num)


def test_masked_softmax_minus_inf_nan_rows_are_named():
    def minus_inf(scores, mask):
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)

    with pytest.raises(AssertionError, match=r"rows whose keys are all masked came out NaN"):
        ch02.check_masked_softmax(minus_inf)


def test_masked_softmax_ignored_mask_is_named():
    with pytest.raises(AssertionError, match=r"masked keys got nonzero weight: did you apply the mask"):
        ch02.check_masked_softmax(lambda scores, mask: torch.softmax(scores, dim=-1))


def test_masked_softmax_mask_after_softmax_is_named():
    with pytest.raises(AssertionError, match=r"you applied the mask after the softmax"):
        ch02.check_masked_softmax(lambda scores, mask: torch.softmax(scores, dim=-1) * mask)


def test_masked_softmax_fill_with_zero_is_named():
    with pytest.raises(AssertionError, match=r"masked_fill\(~mask, 0\) sets their scores to 0"):
        ch02.check_masked_softmax(lambda scores, mask: torch.softmax(scores.masked_fill(~mask, 0), dim=-1))


def test_masked_softmax_uniform_all_masked_rows_are_named():
    def without_zeroing(scores, mask):
        return torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1)

    with pytest.raises(AssertionError, match=r"rows whose keys are all masked should be all zeros"):
        ch02.check_masked_softmax(without_zeroing)


def test_masked_softmax_inverted_mask_is_named():
    def inverted(scores, mask):
        return right_masked_softmax(scores, ~mask)

    with pytest.raises(AssertionError, match=r"your mask is inverted"):
        ch02.check_masked_softmax(inverted)


def test_masked_softmax_wrong_axis_is_named():
    def over_queries(scores, mask):
        filled = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        return torch.softmax(filled, dim=-2) * mask

    with pytest.raises(AssertionError, match=r"softmax over the wrong axis"):
        ch02.check_masked_softmax(over_queries)


def test_masked_softmax_nan_outside_empty_rows_is_not_blamed_on_them():
    def nan_everywhere(scores, mask):
        return torch.full_like(scores, float("nan"))

    with pytest.raises(AssertionError, match=r"your weights tensor contains NaN"):
        ch02.check_masked_softmax(nan_everywhere)


def test_masked_softmax_wrong_shape_is_reported():
    def transposed(scores, mask):
        return right_masked_softmax(scores, mask).transpose(-2, -1)

    with pytest.raises(AssertionError, match=r"has shape \(3, 5, 4\), expected \(3, 4, 5\)"):
        ch02.check_masked_softmax(transposed)


def test_masked_softmax_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got list"):
        ch02.check_masked_softmax(lambda scores, mask: right_masked_softmax(scores, mask).tolist())


def test_masked_softmax_in_place_answer_does_not_fool_the_check(capsys):
    def in_place(scores, mask):
        scores.masked_fill_(~mask, torch.finfo(scores.dtype).min)
        return torch.softmax(scores, dim=-1).mul_(mask)

    ch02.check_masked_softmax(in_place)
    assert "✓ Exercise 2.3" in capsys.readouterr().out


# --- 2.4 causal mask -------------------------------------------------------------------------------


def test_causal_mask_right_answer_prints_one_line(capsys):
    ch02.check_causal_mask(lambda n: torch.tril(torch.ones(n, n, dtype=torch.bool)))
    assert capsys.readouterr().out == "✓ Exercise 2.4: causal mask\n"


def test_causal_mask_from_arange_passes():
    ch02.check_causal_mask(lambda n: torch.arange(n)[None, :] <= torch.arange(n)[:, None])


def test_causal_mask_without_diagonal_is_named():
    with pytest.raises(AssertionError, match=r"must be able to attend to itself"):
        ch02.check_causal_mask(lambda n: torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=-1))


def test_causal_mask_one_step_ahead_is_named():
    with pytest.raises(AssertionError, match=r"see one step into the future"):
        ch02.check_causal_mask(lambda n: torch.tril(torch.ones(n, n, dtype=torch.bool), diagonal=1))


def test_causal_mask_upper_triangle_is_named():
    with pytest.raises(AssertionError, match=r"not the upper one"):
        ch02.check_causal_mask(lambda n: torch.triu(torch.ones(n, n, dtype=torch.bool)))


def test_causal_mask_blocked_convention_is_named():
    with pytest.raises(AssertionError, match=r"True where attention is blocked"):
        ch02.check_causal_mask(lambda n: torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1))


def test_causal_mask_all_visible_is_named():
    with pytest.raises(AssertionError, match=r"your mask hides nothing"):
        ch02.check_causal_mask(lambda n: torch.ones(n, n, dtype=torch.bool))


def test_causal_mask_float_mask_is_reported():
    def additive(n):
        return torch.full((n, n), float("-inf")).triu(diagonal=1)

    with pytest.raises(AssertionError, match=r"should be a boolean tensor .* got dtype torch\.float32"):
        ch02.check_causal_mask(additive)


def test_causal_mask_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(1, 6, 6\), expected \(6, 6\)"):
        ch02.check_causal_mask(lambda n: torch.tril(torch.ones(1, n, n, dtype=torch.bool)))


def test_causal_mask_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got ndarray"):
        ch02.check_causal_mask(lambda n: np.tril(np.ones((n, n), dtype=bool)))


def test_causal_mask_fixed_size_answer_fails_on_other_sizes():
    with pytest.raises(AssertionError, match=r"your mask for n = 1 has shape \(6, 6\)"):
        ch02.check_causal_mask(lambda n: torch.tril(torch.ones(6, 6, dtype=torch.bool)))
