"""The checks of chapter 6 accept right answers and name the typical wrong ones."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bert_tutor.bert import bert_parameter_count
from bert_tutor.exercises import ch06

from .conftest import leaves_global_random_state_alone

# --- 6.1 embeddings ----------------------------------------------------------------------------


def embeddings_with(segments=True, positions=True, norm=True, start=0, norm_first=False):
    """A learner's BERT embeddings whose steps can each go wrong."""

    def my_embeddings(input_ids, token_type_ids, embeddings):
        n = input_ids.shape[1]
        x = embeddings.word_embeddings(input_ids)
        if norm_first:
            x = embeddings.LayerNorm(x)
        if segments:
            x = x + embeddings.token_type_embeddings(token_type_ids)
        if positions:
            x = x + embeddings.position_embeddings(torch.arange(start, start + n))
        return embeddings.LayerNorm(x) if norm and not norm_first else x

    return my_embeddings


def test_embeddings_right_answer_prints_one_line(capsys):
    ch06.check_embeddings(embeddings_with())
    assert capsys.readouterr().out == "✓ Exercise 6.1: BERT embeddings\n"


def test_embeddings_the_module_itself_passes(capsys):
    ch06.check_embeddings(lambda ids, types, embeddings: embeddings(ids, types))
    assert "✓ Exercise 6.1" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (embeddings_with(segments=False), r"you left out the segment \(token type\) embeddings"),
        (embeddings_with(positions=False), r"you left out the position embeddings"),
        (embeddings_with(norm=False), r"you left out the LayerNorm"),
        (embeddings_with(start=1), r"your positions start at 1"),
        (embeddings_with(norm_first=True), r"you applied the LayerNorm before summing"),
    ],
    ids=["no-segments", "no-positions", "no-layernorm", "positions-from-1", "layernorm-first"],
)
def test_embeddings_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 6\.1: " + hint):
        ch06.check_embeddings(wrong)


def test_embeddings_wrong_shape_is_reported():
    with pytest.raises(AssertionError, match=r"your embeddings has shape \(2, 12\), expected \(2, 7, 12\)"):
        ch06.check_embeddings(lambda ids, types, e: embeddings_with()(ids, types, e)[:, 0])


def test_embeddings_non_tensor_is_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got list"):
        ch06.check_embeddings(lambda ids, types, e: embeddings_with()(ids, types, e).tolist())


def test_embeddings_unknown_mistake_reports_the_difference():
    with pytest.raises(AssertionError, match=r"differs from the expected values \(largest difference"):
        ch06.check_embeddings(lambda ids, types, e: embeddings_with()(ids, types, e) * 2)


def test_embeddings_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch06.check_embeddings, embeddings_with())


# --- 6.2 attention mask ------------------------------------------------------------------------


def test_mask_right_answer_prints_one_line(capsys):
    ch06.check_attention_mask(lambda m: m.bool()[:, None, None, :])
    assert capsys.readouterr().out == "✓ Exercise 6.2: attention mask\n"


def test_mask_other_right_answers_pass(capsys):
    ch06.check_attention_mask(lambda m: (m == 1).unsqueeze(1).unsqueeze(2))
    ch06.check_attention_mask(lambda m: m.view(m.shape[0], 1, 1, -1) > 0)
    assert capsys.readouterr().out.count("✓ Exercise 6.2") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda m: m.bool()[:, None, :, None], r"it masks queries \(rows\), not keys"),
        (lambda m: (m == 0)[:, None, None, :], r"your mask is inverted"),
        (
            lambda m: (m[:, None, :, None] * m[:, None, None, :]).bool(),
            r"it also hides the padding queries",
        ),
        (lambda m: m.bool(), r"has shape \(3, 6\): it must broadcast against the scores"),
        (
            lambda m: m[:, None, None, :].float(),
            r"holds the right numbers as torch\.float32: make it boolean",
        ),
        (
            lambda m: (1.0 - m[:, None, None, :].float()) * torch.finfo(torch.float32).min,
            r"Hugging Face's additive form",
        ),
    ],
    ids=["queries", "inverted", "queries-and-keys", "no-broadcast-axes", "float", "additive"],
)
def test_mask_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 6\.2: .*" + hint):
        ch06.check_attention_mask(wrong)


def test_mask_wrong_entries_are_located():
    def one_too_many(m):
        mask = m.bool()[:, None, None, :].clone()
        mask[1, 0, 0, 4] = True
        return mask

    with pytest.raises(AssertionError, match=r"differs at index \(1, 0, 0, 4\): sentence 1 has 4 real"):
        ch06.check_attention_mask(one_too_many)


def test_mask_non_tensor_and_other_shapes_are_reported():
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got list"):
        ch06.check_attention_mask(lambda m: m.tolist())
    with pytest.raises(AssertionError, match=r"has shape \(1, 3, 1, 6\), expected \(3, 1, 1, 6\)"):
        ch06.check_attention_mask(lambda m: m.bool()[None, :, None, :])


# --- 6.3 parameter count -----------------------------------------------------------------------


def count_with(biases=True, norms=2, embedding_norm=True, pooler=True, decoder=False, segments=True):
    """A learner's parameter count whose terms can each go wrong."""

    def count(config):
        V, P, T = config.vocab_size, config.max_position_embeddings, config.type_vocab_size
        h, i, L = config.hidden_size, config.intermediate_size, config.num_layers
        b = 1 if biases else 0
        embeddings = (V + P + (T if segments else 0)) * h + (2 * h if embedding_norm else 0)
        layer = 4 * (h * h + b * h) + norms * 2 * h + (h * i + b * i) + (i * h + b * h)
        total = embeddings + L * layer + ((h * h + b * h) if pooler else 0)
        return total + (V * h if decoder else 0)

    return count


def test_count_right_answer_prints_one_line(capsys):
    ch06.check_parameter_count(count_with())
    assert capsys.readouterr().out == "✓ Exercise 6.3: parameter count\n"


def test_count_package_formula_and_numpy_integer_pass(capsys):
    ch06.check_parameter_count(bert_parameter_count)
    ch06.check_parameter_count(lambda c: np.int64(bert_parameter_count(c)))
    assert capsys.readouterr().out.count("✓ Exercise 6.3") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (count_with(biases=False), r"you left out the biases"),
        (count_with(norms=0, embedding_norm=False), r"you left out the LayerNorms"),
        (count_with(embedding_norm=False), r"you left out the LayerNorm of the embeddings"),
        (count_with(norms=1), r"you counted one LayerNorm per layer"),
        (count_with(pooler=False), r"you left out the pooler"),
        (count_with(decoder=True), r"you counted the masked-LM decoder: .*tied"),
        (count_with(segments=False), r"you left out the segment \(token type\) embeddings"),
    ],
    ids=[
        "no-biases",
        "no-layernorms",
        "no-embedding-layernorm",
        "one-layernorm",
        "no-pooler",
        "decoder",
        "no-segments",
    ],
)
def test_count_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(
        AssertionError,
        match=r"Exercise 6\.3: for vocab_size=97, .* expected [\d,]+\. " + hint[0].upper() + hint[1:],
    ):
        ch06.check_parameter_count(wrong)


def test_every_typical_count_mistake_gives_its_own_number_on_the_first_config():
    config = ch06._CONFIGS[0]
    counts = list(ch06._parameter_mistakes(config))
    assert len(counts) == len(set(counts)) == 13
    assert bert_parameter_count(config) not in counts


def test_count_float_and_non_number_are_reported():
    with pytest.raises(AssertionError, match=r"you returned the float [\d.]+: a count is an int"):
        ch06.check_parameter_count(lambda c: float(bert_parameter_count(c)))
    with pytest.raises(AssertionError, match=r"the count should be an int, got str"):
        ch06.check_parameter_count(lambda c: f"{bert_parameter_count(c):,}")


def test_count_unknown_mistake_reports_both_numbers():
    with pytest.raises(AssertionError, match=r"you counted [\d,]+, expected [\d,]+\. Count, in order"):
        ch06.check_parameter_count(lambda c: bert_parameter_count(c) + 1)


# --- 6.4 pooler --------------------------------------------------------------------------------


def right_pooler(x, weight, bias):
    return torch.tanh(x[:, 0] @ weight.T + bias)


def test_pooler_right_answers_pass(capsys):
    ch06.check_pooler(right_pooler)
    ch06.check_pooler(lambda x, w, b: torch.tanh(F.linear(x[:, 0, :], w, b)))
    assert capsys.readouterr().out == "✓ Exercise 6.4: pooler\n" * 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda x, w, b: right_pooler(x.mean(1, keepdim=True), w, b), r"you averaged over all positions"),
        (lambda x, w, b: right_pooler(x[:, -1:], w, b), r"you took the last position"),
        (lambda x, w, b: x[:, 0] @ w.T + b, r"you left out the tanh"),
        (lambda x, w, b: torch.tanh(x[:, 0] @ w + b), r"you used x @ weight"),
        (lambda x, w, b: torch.sigmoid(x[:, 0] @ w.T + b), r"not a sigmoid"),
    ],
    ids=["mean", "last", "no-tanh", "untransposed", "sigmoid"],
)
def test_pooler_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 6\.4: .*" + hint):
        ch06.check_pooler(wrong)


def test_pooler_wrong_shape_and_type_are_reported():
    with pytest.raises(AssertionError, match=r"has shape \(3, 5, 8\), expected \(3, 8\)"):
        ch06.check_pooler(lambda x, w, b: torch.tanh(x @ w.T + b))
    with pytest.raises(AssertionError, match=r"should be a torch\.Tensor, got ndarray"):
        ch06.check_pooler(lambda x, w, b: right_pooler(x, w, b).numpy())


def test_pooler_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch06.check_pooler, right_pooler)
