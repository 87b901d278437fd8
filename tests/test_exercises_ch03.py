"""The checks of chapter 3 accept right answers and name the typical wrong ones."""

import math

import numpy as np
import pytest
import torch

from bert_tutor.attention import MultiHeadAttention, merge_heads, split_heads
from bert_tutor.exercises import ch03

from .conftest import leaves_global_random_state_alone

# --- 3.1 split heads ---------------------------------------------------------------------------


def right_split(x, num_heads):
    B, n, hidden = x.shape
    return x.view(B, n, num_heads, hidden // num_heads).transpose(1, 2)


def test_split_right_answer_prints_one_line(capsys):
    ch03.check_split_heads(right_split)
    assert capsys.readouterr().out == "✓ Exercise 3.1: split heads\n"


@pytest.mark.parametrize(
    "split",
    [
        split_heads,
        lambda x, h: torch.stack(x.chunk(h, dim=-1), dim=1),
        lambda x, h: x.unflatten(-1, (h, -1)).permute(0, 2, 1, 3).contiguous(),
    ],
    ids=["package", "chunk-and-stack", "unflatten-permute"],
)
def test_split_other_right_answers_pass(split, capsys):
    ch03.check_split_heads(split)
    assert "✓ Exercise 3.1" in capsys.readouterr().out


def test_split_straight_reshape_without_transpose_is_named():
    def straight(x, num_heads):
        B, n, hidden = x.shape
        return x.reshape(B, num_heads, n, hidden // num_heads)

    with pytest.raises(AssertionError, match=r"Exercise 3\.1: you reshaped \(B, n, hidden\) straight into"):
        ch03.check_split_heads(straight)


def test_split_interleaved_features_are_named():
    def interleaved(x, num_heads):
        B, n, hidden = x.shape
        return x.view(B, n, hidden // num_heads, num_heads).permute(0, 3, 1, 2)

    with pytest.raises(AssertionError, match=r"your heads take every H-th feature \(interleaved\)"):
        ch03.check_split_heads(interleaved)


def test_split_transposing_before_the_view_is_named():
    def transposed_first(x, num_heads):
        B, n, hidden = x.shape
        return x.transpose(1, 2).reshape(B, num_heads, n, hidden // num_heads)

    with pytest.raises(AssertionError, match=r"you transposed \(B, n, hidden\) to \(B, hidden, n\) before"):
        ch03.check_split_heads(transposed_first)


def test_split_missing_transpose_is_named_by_its_shape():
    def no_transpose(x, num_heads):
        B, n, hidden = x.shape
        return x.view(B, n, num_heads, hidden // num_heads)

    with pytest.raises(
        AssertionError,
        match=r"your tensor is \(batch, n, heads, head_size\) = \(2, 5, 3, 4\).*transpose\(1, 2\)",
    ):
        ch03.check_split_heads(no_transpose)


def test_split_heads_and_head_size_swapped_is_named():
    def swapped(x, num_heads):
        B, n, hidden = x.shape
        return x.view(B, n, hidden // num_heads, num_heads).transpose(1, 2)

    with pytest.raises(AssertionError, match=r"you cut the features into pieces of size num_heads = 3"):
        ch03.check_split_heads(swapped)


def test_split_hard_coded_number_of_heads_fails_on_the_second_size():
    with pytest.raises(
        AssertionError,
        match=r"your heads for num_heads = 4 has shape \(3, 3, 7, 8\), expected \(3, 4, 7, 6\)",
    ):
        ch03.check_split_heads(lambda x, num_heads: right_split(x, 3))


def test_split_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(2, 3, 4, 5\), expected \(2, 3, 5, 4\)"):
        ch03.check_split_heads(lambda x, h: right_split(x, h).transpose(-2, -1))


def test_split_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got ndarray"):
        ch03.check_split_heads(lambda x, h: right_split(x, h).numpy())


def test_split_unknown_mistake_reports_the_difference():
    with pytest.raises(AssertionError, match=r"differs from the expected values \(largest difference"):
        ch03.check_split_heads(lambda x, h: right_split(x, h).flip(1))


def test_split_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch03.check_split_heads, right_split)


# --- 3.2 merge heads ---------------------------------------------------------------------------


def right_merge(x):
    B, H, n, d = x.shape
    return x.transpose(1, 2).reshape(B, n, H * d)


def test_merge_right_answer_prints_one_line(capsys):
    ch03.check_merge_heads(right_merge)
    assert capsys.readouterr().out == "✓ Exercise 3.2: merge heads\n"


@pytest.mark.parametrize(
    "merge",
    [
        merge_heads,
        lambda x: torch.cat(x.unbind(1), dim=-1),
        lambda x: x.transpose(1, 2).contiguous().view(x.shape[0], x.shape[2], -1),
    ],
    ids=["package", "unbind-and-cat", "contiguous-view"],
)
def test_merge_other_right_answers_pass(merge, capsys):
    ch03.check_merge_heads(merge)
    assert "✓ Exercise 3.2" in capsys.readouterr().out


def test_merge_missing_transpose_is_named():
    def straight(x):
        B, H, n, d = x.shape
        return x.reshape(B, n, H * d)

    with pytest.raises(
        AssertionError, match=r"Exercise 3\.2: you reshaped \(B, H, n, d\) straight into \(B, n, H \* d\)"
    ):
        ch03.check_merge_heads(straight)


def test_merge_interleaved_features_are_named():
    def interleaved(x):
        B, H, n, d = x.shape
        return x.permute(0, 2, 3, 1).reshape(B, n, H * d)

    with pytest.raises(AssertionError, match=r"your features are interleaved"):
        ch03.check_merge_heads(interleaved)


def test_merge_transposing_the_wrong_axes_is_named():
    def wrong_axes(x):
        B, H, n, d = x.shape
        return x.transpose(2, 3).reshape(B, n, H * d)

    with pytest.raises(AssertionError, match=r"you transposed the last two axes"):
        ch03.check_merge_heads(wrong_axes)


@pytest.mark.parametrize("reduce", [lambda x: x.sum(1), lambda x: x.mean(1)], ids=["sum", "mean"])
def test_merge_adding_the_heads_is_named(reduce):
    with pytest.raises(AssertionError, match=r"one head wide: did you add or average the heads"):
        ch03.check_merge_heads(reduce)


def test_merge_heads_along_the_positions_is_named():
    with pytest.raises(AssertionError, match=r"you laid the heads end to end along the positions"):
        ch03.check_merge_heads(lambda x: torch.cat(x.unbind(1), dim=1))


def test_merge_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"has shape \(2, 5, 3, 4\), expected \(2, 5, 12\)"):
        ch03.check_merge_heads(lambda x: x.transpose(1, 2))


def test_merge_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"your merged tensor should be a torch\.Tensor, got list"):
        ch03.check_merge_heads(lambda x: right_merge(x).tolist())


def test_merge_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch03.check_merge_heads, right_merge)


# --- 3.3 multi-head attention ---------------------------------------------------------------------


def multi_head_with(split=right_split, merge=right_merge, scale=None, project_output=True, transpose=False):
    """A learner's multi-head attention whose steps can each go wrong."""

    def multi_head(x, W_q, W_k, W_v, W_o, num_heads):
        if transpose:
            W_q, W_k, W_v, W_o = W_q.T, W_k.T, W_v.T, W_o.T
        q, k, v = (split(x @ W, num_heads) for W in (W_q, W_k, W_v))
        d = q.shape[-1] if scale is None else scale(x, num_heads)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d), dim=-1)
        merged = merge(weights @ v)
        return merged @ W_o if project_output else merged

    return multi_head


def test_multi_head_right_answer_prints_one_line(capsys):
    ch03.check_multi_head_attention(multi_head_with())
    assert capsys.readouterr().out == "✓ Exercise 3.3: multi-head attention\n"


def test_multi_head_from_the_package_module_passes(capsys):
    def with_module(x, W_q, W_k, W_v, W_o, num_heads):
        attention = MultiHeadAttention(x.shape[-1], num_heads, bias=False)
        with torch.no_grad():
            for linear, W in zip(
                (attention.query, attention.key, attention.value, attention.output),
                (W_q, W_k, W_v, W_o),
                strict=True,
            ):
                linear.weight.copy_(W.T)  # nn.Linear stores (out, in)
            return attention(x)[0]

    ch03.check_multi_head_attention(with_module)
    assert "✓ Exercise 3.3" in capsys.readouterr().out


def test_multi_head_fused_kernel_passes(capsys):
    def fused(x, W_q, W_k, W_v, W_o, num_heads):
        q, k, v = (right_split(x @ W, num_heads) for W in (W_q, W_k, W_v))
        return right_merge(torch.nn.functional.scaled_dot_product_attention(q, k, v)) @ W_o

    ch03.check_multi_head_attention(fused)
    assert "✓ Exercise 3.3" in capsys.readouterr().out


def test_multi_head_single_full_width_head_is_named():
    with pytest.raises(AssertionError, match=r"Exercise 3\.3: you computed one head over all 12 features"):
        ch03.check_multi_head_attention(multi_head_with(split=lambda t, h: t, merge=lambda t: t))


def test_multi_head_scale_by_hidden_size_is_named():
    with pytest.raises(
        AssertionError, match=r"divided by sqrt\(head_size\) = sqrt\(4\), not by sqrt\(hidden\)"
    ):
        ch03.check_multi_head_attention(multi_head_with(scale=lambda x, h: x.shape[-1]))


def test_multi_head_unscaled_scores_are_named():
    with pytest.raises(AssertionError, match=r"the scores are not scaled"):
        ch03.check_multi_head_attention(multi_head_with(scale=lambda x, h: 1))


def test_multi_head_missing_output_projection_is_named():
    with pytest.raises(AssertionError, match=r"without the output projection: multiply by W_o"):
        ch03.check_multi_head_attention(multi_head_with(project_output=False))


def test_multi_head_split_without_transpose_is_named():
    def view_only(t, num_heads):
        B, n, hidden = t.shape
        return t.view(B, n, num_heads, hidden // num_heads)

    def reshape_back(t):
        B, n, H, d = t.shape
        return t.reshape(B, n, H * d)

    with pytest.raises(
        AssertionError, match=r"your heads attended to each other instead of to the positions"
    ):
        ch03.check_multi_head_attention(multi_head_with(split=view_only, merge=reshape_back))


def test_multi_head_merge_without_transpose_is_named():
    def straight(t):
        B, H, n, d = t.shape
        return t.reshape(B, n, H * d)

    with pytest.raises(AssertionError, match=r"you merged the heads without moving them back"):
        ch03.check_multi_head_attention(multi_head_with(merge=straight))


def test_multi_head_transposed_matrices_are_named():
    with pytest.raises(AssertionError, match=r"you used x @ W\.T"):
        ch03.check_multi_head_attention(multi_head_with(transpose=True))


def test_multi_head_returning_the_weights_too_is_reported():
    def with_weights(x, W_q, W_k, W_v, W_o, num_heads):
        return multi_head_with()(x, W_q, W_k, W_v, W_o, num_heads), None

    with pytest.raises(AssertionError, match=r"your output should be a torch\.Tensor, got tuple"):
        ch03.check_multi_head_attention(with_weights)


def test_multi_head_wrong_shape_is_reported():
    def heads_not_merged(x, W_q, W_k, W_v, W_o, num_heads):
        q, k, v = (right_split(x @ W, num_heads) for W in (W_q, W_k, W_v))
        return torch.softmax(q @ k.transpose(-2, -1) / 2, dim=-1) @ v

    with pytest.raises(AssertionError, match=r"your output has shape \(2, 3, 5, 4\), expected \(2, 5, 12\)"):
        ch03.check_multi_head_attention(heads_not_merged)


def test_multi_head_unknown_mistake_reports_the_difference():
    def softmax_over_queries(x, W_q, W_k, W_v, W_o, num_heads):
        q, k, v = (right_split(x @ W, num_heads) for W in (W_q, W_k, W_v))
        return right_merge(torch.softmax(q @ k.transpose(-2, -1) / 2, dim=-2) @ v) @ W_o

    with pytest.raises(AssertionError, match=r"your output differs from the expected values"):
        ch03.check_multi_head_attention(softmax_over_queries)


def test_multi_head_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch03.check_multi_head_attention, multi_head_with())


# --- 3.4 parameter count -----------------------------------------------------------------------------


def right_count(hidden_size, num_heads, bias=True):
    return 4 * (hidden_size * hidden_size + (hidden_size if bias else 0))


def test_count_right_answer_prints_one_line(capsys):
    ch03.check_parameter_count(right_count)
    assert capsys.readouterr().out == "✓ Exercise 3.4: parameter count\n"


def test_count_by_building_the_module_passes(capsys):
    def by_module(hidden_size, num_heads, bias):
        attention = MultiHeadAttention(hidden_size, num_heads, bias=bias)
        return sum(p.numel() for p in attention.parameters())

    ch03.check_parameter_count(by_module)
    assert "✓ Exercise 3.4" in capsys.readouterr().out


def test_count_per_head_sum_with_integer_division_passes(capsys):
    def per_head(hidden_size, num_heads, bias):
        d = hidden_size // num_heads
        return num_heads * 4 * (hidden_size * d + (d if bias else 0))

    ch03.check_parameter_count(per_head)
    assert "✓ Exercise 3.4" in capsys.readouterr().out


def test_count_numpy_integer_passes(capsys):
    ch03.check_parameter_count(lambda h, heads, bias: np.int64(right_count(h, heads, bias)))
    assert "✓ Exercise 3.4" in capsys.readouterr().out


def test_count_three_projections_is_named():
    with pytest.raises(
        AssertionError,
        match=r"Exercise 3\.4: for hidden_size=768, num_heads=12, bias=True, you counted 1,771,776, "
        r"expected 2,362,368\. You counted three projections",
    ):
        ch03.check_parameter_count(lambda h, heads, bias: 3 * (h * h + h * bias))


def test_count_full_matrices_per_head_is_named():
    with pytest.raises(AssertionError, match=r"every head its own full \(h, h\) matrices"):
        ch03.check_parameter_count(lambda h, heads, bias: heads * right_count(h, heads, bias))


def test_count_one_head_only_is_named():
    with pytest.raises(AssertionError, match=r"You counted a single head's slice"):
        ch03.check_parameter_count(lambda h, heads, bias: right_count(h, heads, bias) // heads)


def test_count_square_head_matrices_are_named():
    def square_heads(h, heads, bias):
        d = h // heads
        return 4 * heads * (d * d + (d if bias else 0))

    with pytest.raises(AssertionError, match=r"h \* d weights per head, not d \* d"):
        ch03.check_parameter_count(square_heads)


def test_count_without_biases_is_named():
    with pytest.raises(AssertionError, match=r"bias=True, .* You left out the biases"):
        ch03.check_parameter_count(lambda h, heads, bias: 4 * h * h)


def test_count_one_bias_vector_is_named():
    with pytest.raises(AssertionError, match=r"4 \* h biases, not h"):
        ch03.check_parameter_count(lambda h, heads, bias: 4 * h * h + h * bias)


def test_count_ignoring_the_bias_flag_is_named():
    with pytest.raises(
        AssertionError, match=r"bias=False, .* With bias=False the Linear layers have no bias"
    ):
        ch03.check_parameter_count(lambda h, heads, bias: 4 * (h * h + h))


def test_count_float_from_true_division_is_named():
    def true_division(h, heads, bias):
        d = h / heads
        return heads * 4 * (h * d + (d if bias else 0))

    with pytest.raises(AssertionError, match=r"you returned the float 2362368\.0: a count is an int"):
        ch03.check_parameter_count(true_division)


def test_count_non_number_is_reported():
    with pytest.raises(AssertionError, match=r"the count should be an int, got str"):
        ch03.check_parameter_count(lambda h, heads, bias: f"{right_count(h, heads, bias):,}")


def test_count_unknown_mistake_reports_both_numbers():
    with pytest.raises(
        AssertionError, match=r"you counted 2,362,369, expected 2,362,368\. Count the weights"
    ):
        ch03.check_parameter_count(lambda h, heads, bias: right_count(h, heads, bias) + 1)


def test_count_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch03.check_parameter_count, right_count)
