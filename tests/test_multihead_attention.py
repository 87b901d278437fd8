"""bert_tutor.attention, chapter 3: split/merge heads, multi-head attention, naive and fused paths."""

import pytest
import torch
import torch.nn.functional as F

from bert_tutor.attention import (
    MultiHeadAttention,
    fused_attention,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)

# float32 throughout. The two paths add the same numbers in a different order, so they differ
# by a few units in the last place (about 1e-7 here); gradients pass through more sums.
OUTPUT_TOL = dict(rtol=1e-5, atol=1e-5)
GRAD_TOL = dict(rtol=1e-4, atol=1e-5)
HIDDEN, HEADS = 32, 4
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def causal(q_len, k_len):
    return torch.ones(q_len, k_len, dtype=torch.bool).tril()  # (Q, K): True on and below the diagonal


def run_both_paths(attention, queries, keys=None, mask=None, valid_lens=None):
    """Output and every gradient (inputs and weights) on the naive path, then on the fused path."""
    results = []
    for fused in (False, True):
        attention.fused = fused
        attention.zero_grad()
        inputs = [t.detach().requires_grad_() for t in (queries, keys) if t is not None]
        output, _ = attention(*inputs, mask=mask, valid_lens=valid_lens)
        (output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum().backward()
        grads = [t.grad for t in inputs] + [p.grad.clone() for p in attention.parameters()]
        results.append((output.detach(), grads))
    return results


# --- split and merge heads ---------------------------------------------------------------------


def test_split_heads_gives_each_head_its_own_slice_of_features():
    x = torch.randn(2, 5, 12)  # (B, n, H * d) with H = 3, d = 4
    heads = split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    for h in range(3):
        torch.testing.assert_close(heads[:, h], x[..., 4 * h : 4 * h + 4], rtol=0, atol=0)


def test_merge_heads_undoes_split_heads():
    x = torch.randn(2, 5, 12)
    torch.testing.assert_close(merge_heads(split_heads(x, 3)), x, rtol=0, atol=0)


@pytest.mark.parametrize("shape, heads", [((2, 5, 10), 3), ((5, 12), 3), ((2, 5, 12), 0)])
def test_split_heads_refuses_shapes_it_cannot_cut(shape, heads):
    with pytest.raises(ValueError, match=f"num_heads={heads}"):
        split_heads(torch.randn(shape), heads)


def test_merge_heads_refuses_a_tensor_without_a_heads_axis():
    with pytest.raises(ValueError, match=r"\(2, 5, 12\)"):
        merge_heads(torch.randn(2, 5, 12))


# --- the naive path is H single-head attentions side by side -------------------------------------


def test_parameter_count_is_four_square_matrices_and_four_biases():
    attention = MultiHeadAttention(HIDDEN, HEADS)
    assert sum(p.numel() for p in attention.parameters()) == 4 * HIDDEN * HIDDEN + 4 * HIDDEN
    assert [name for name, _ in attention.named_children()] == ["query", "key", "value", "output", "dropout"]


def test_each_head_attends_with_its_own_slice_of_the_projections():
    attention = MultiHeadAttention(HIDDEN, HEADS)
    x = torch.randn(2, 6, HIDDEN)
    output, weights = attention(x, need_weights=True)
    d = HIDDEN // HEADS
    q, k, v = attention.query(x), attention.key(x), attention.value(x)  # each (B, n, hidden)
    per_head = []
    for h in range(HEADS):
        cut = slice(h * d, (h + 1) * d)
        out_h, weights_h = scaled_dot_product_attention(q[..., cut], k[..., cut], v[..., cut])
        torch.testing.assert_close(weights[:, h], weights_h)
        per_head.append(out_h)  # (B, n, d)
    torch.testing.assert_close(output, attention.output(torch.cat(per_head, dim=-1)))


def test_weights_are_per_head_distributions_that_respect_the_mask():
    attention = MultiHeadAttention(HIDDEN, HEADS).eval()
    x = torch.randn(2, 5, HIDDEN)
    _, weights = attention(x, valid_lens=torch.tensor([5, 3]), need_weights=True)
    assert weights.shape == (2, HEADS, 5, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, 5))
    assert (weights[1, ..., 3:] == 0).all()


def test_weights_are_none_unless_asked_for():
    attention = MultiHeadAttention(HIDDEN, HEADS)
    assert attention(torch.randn(1, 3, HIDDEN))[1] is None


def test_asking_the_fused_path_for_weights_is_an_error():
    attention = MultiHeadAttention(HIDDEN, HEADS, fused=True)
    with pytest.raises(ValueError, match="fused=False"):
        attention(torch.randn(1, 3, HIDDEN), need_weights=True)


# --- the fused path equals the naive one ---------------------------------------------------------


def _padding(valid, k_len):
    return (torch.arange(k_len) < torch.tensor(valid)[:, None])[:, None, None, :]  # (B, 1, 1, K)


CASES = {
    # name: (batch, q_len, k_len or None for self-attention, mask or None, valid_lens or None)
    "self, no mask": (3, 6, None, None, None),
    "self, padding mask": (3, 6, None, _padding([6, 4, 1], 6), None),
    "self, padding as valid_lens": (3, 6, None, None, torch.tensor([6, 4, 1])),
    "self, valid_lens per query": (2, 4, None, None, torch.tensor([[1, 2, 3, 4], [4, 3, 0, 1]])),
    "self, causal mask": (3, 6, None, causal(6, 6), None),
    "self, causal and padding": (3, 6, None, causal(6, 6) & _padding([6, 4, 2], 6), None),
    "self, a fully padded sequence": (3, 6, None, causal(6, 6) & _padding([6, 0, 3], 6), None),
    "self, batch of one": (1, 5, None, _padding([3], 5), None),
    "self, a mask per head": (2, 5, None, torch.rand(2, HEADS, 5, 5) > 0.3, None),
    "cross, no mask": (3, 4, 7, None, None),
    "cross, padding mask": (3, 4, 7, _padding([7, 2, 5], 7), None),
    "cross, a fully padded sequence": (3, 4, 7, None, torch.tensor([7, 0, 3])),
    "cross, batch of one, longer queries": (1, 9, 3, _padding([2], 3), None),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fused_path_equals_naive_path_with_gradients(case):
    batch, q_len, k_len, mask, valid_lens = case
    attention = MultiHeadAttention(HIDDEN, HEADS)
    queries = torch.randn(batch, q_len, HIDDEN)
    keys = None if k_len is None else torch.randn(batch, k_len, HIDDEN)
    (naive, naive_grads), (fused, fused_grads) = run_both_paths(attention, queries, keys, mask, valid_lens)
    assert naive.shape == (batch, q_len, HIDDEN)
    torch.testing.assert_close(fused, naive, **OUTPUT_TOL)
    for fused_grad, naive_grad in zip(fused_grads, naive_grads, strict=True):
        assert torch.isfinite(fused_grad).all() and torch.isfinite(naive_grad).all()
        torch.testing.assert_close(fused_grad, naive_grad, **GRAD_TOL)


def test_a_fully_padded_sequence_gives_zero_rows_on_both_paths_not_nan():
    attention = MultiHeadAttention(HIDDEN, HEADS, bias=False)  # no output bias: attending to nothing gives 0
    x = torch.randn(3, 5, HIDDEN)
    valid_lens = torch.tensor([5, 0, 2])
    for fused in (False, True):
        attention.fused = fused
        output, _ = attention(x, valid_lens=valid_lens)
        assert torch.isfinite(output).all()
        assert (output[1] == 0).all()
        assert (output[[0, 2]] != 0).any(dim=-1).all()


def test_fused_attention_zeroes_rows_that_see_no_key_even_where_the_kernel_gives_nan(monkeypatch):
    def nan_for_rows_that_see_nothing(q, k, v, attn_mask, dropout_p):
        # What older PyTorch and some GPU kernels do: -inf everywhere in a row, softmax gives NaN.
        scores = (q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5).masked_fill(~attn_mask, float("-inf"))
        return torch.softmax(scores, dim=-1) @ v

    monkeypatch.setattr(F, "scaled_dot_product_attention", nan_for_rows_that_see_nothing)
    q, k, v = (torch.randn(2, 2, n, 4, requires_grad=True) for n in (3, 5, 5))
    mask = _padding([5, 0], 5)
    output = fused_attention(q, k, v, mask=mask)
    assert (output[1] == 0).all()
    torch.testing.assert_close(output[0], scaled_dot_product_attention(q, k, v, mask=mask)[0][0])
    output.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_fused_attention_refuses_a_float_mask_it_would_silently_add():
    q = torch.randn(1, 1, 3, 4)
    with pytest.raises(ValueError, match="boolean"):
        fused_attention(q, q, q, mask=torch.ones(3, 3))


@pytest.mark.parametrize("fused", [False, True])
def test_mask_that_cannot_broadcast_to_batch_heads_queries_keys_is_refused(fused):
    attention = MultiHeadAttention(HIDDEN, HEADS, fused=fused)
    with pytest.raises(ValueError, match=r"\(2, 4, 3, 3\)"):
        attention(torch.randn(2, 3, HIDDEN), mask=torch.ones(2, 3, 3, dtype=torch.bool))


# --- dropout -------------------------------------------------------------------------------------


def test_dropout_is_off_in_eval_mode_so_both_paths_agree_under_any_seed():
    attention = MultiHeadAttention(HIDDEN, HEADS, dropout=0.5).eval()
    x = torch.randn(2, 5, HIDDEN)
    outputs = []
    for seed, fused in ((1, False), (2, True), (3, False)):
        torch.manual_seed(seed)
        attention.fused = fused
        outputs.append(attention(x, valid_lens=torch.tensor([5, 2]))[0])
    torch.testing.assert_close(outputs[0], outputs[2], rtol=0, atol=0)
    torch.testing.assert_close(outputs[1], outputs[0], **OUTPUT_TOL)


@pytest.mark.parametrize("fused", [False, True])
def test_dropout_in_training_changes_the_output_and_repeats_under_the_same_seed(fused):
    attention = MultiHeadAttention(HIDDEN, HEADS, dropout=0.5, fused=fused)
    x = torch.randn(2, 5, HIDDEN)
    runs = []
    for seed in (7, 7, 8):
        torch.manual_seed(seed)
        runs.append(attention(x)[0])
    torch.testing.assert_close(runs[0], runs[1], rtol=0, atol=0)
    assert not torch.allclose(runs[0], runs[2])
    assert not torch.allclose(runs[0], attention.eval()(x)[0])


# --- configuration and inputs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=30, num_heads=4), "30 is not divisible by num_heads 4"),
        (dict(hidden_size=32, num_heads=0), "got 32 and 0"),
        (dict(hidden_size=-8, num_heads=2), "got -8 and 2"),
        (dict(hidden_size=32, num_heads=4, dropout=-0.1), "got -0.1"),
        (dict(hidden_size=32, num_heads=4, dropout=1.0), "got 1.0"),
    ],
)
def test_bad_configuration_raises_value_error_naming_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**kwargs)


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((2, 3, 16),), r"queries of shape \(batch, length, 32\), got \(2, 3, 16\)"),
        (((3, 32),), r"queries .* got \(3, 32\)"),
        (((2, 3, 32), (2, 4, 16)), r"keys .* got \(2, 4, 16\)"),
        (((2, 3, 32), (2, 4, 32), (2, 5, 32)), "same length"),
        (((2, 3, 32), (1, 4, 32)), "batch"),
    ],
)
def test_inputs_of_the_wrong_shape_raise_value_error_naming_the_shape(shapes, message):
    attention = MultiHeadAttention(HIDDEN, HEADS)
    with pytest.raises(ValueError, match=message):
        attention(*(torch.randn(shape) for shape in shapes))


def test_mask_and_valid_lengths_together_are_refused():
    attention = MultiHeadAttention(HIDDEN, HEADS)
    x = torch.randn(1, 3, HIDDEN)
    with pytest.raises(ValueError, match="either mask or valid_lens"):
        attention(x, mask=causal(3, 3), valid_lens=torch.tensor([2]))


@pytest.mark.parametrize("device", DEVICES)
def test_both_paths_run_and_agree_on_every_available_device(device):
    attention = MultiHeadAttention(HIDDEN, HEADS).to(device).eval()
    x = torch.randn(2, 6, HIDDEN, device=device)
    valid_lens = torch.tensor([6, 0], device=device)
    naive, _ = attention(x, valid_lens=valid_lens)
    attention.fused = True
    fused, _ = attention(x, valid_lens=valid_lens)
    assert fused.device == x.device
    torch.testing.assert_close(fused, naive, **OUTPUT_TOL)
