"""bert_tutor.bert: the config's checks, the parameter count by formula, shapes, padding, segments,
the fused and naive attention paths, the masked-positions-only MLM head and the losses.

The equality with Hugging Face's BERT, and the files in its format, are in test_bert_reference.py."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from bert_tutor.bert import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertLayer,
    BertModel,
    bert_parameter_count,
)
from bert_tutor.transformer import EncoderLayer

# float32: the fused and naive paths, and the masked-only head against the full one, sum the same
# numbers in a different order.
TOL = dict(rtol=1e-5, atol=1e-6)
GRAD_TOL = dict(rtol=1e-4, atol=1e-6)
B, N = 3, 9
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_config(**changes) -> BertConfig:
    sizes = dict(vocab_size=60, hidden_size=16, num_layers=2, num_heads=4, intermediate_size=24)
    return BertConfig(**(sizes | dict(max_position_embeddings=16) | changes))


def batch(config: BertConfig, device="cpu"):
    """ids (B, N) with [CLS]-like first tokens, segments A then B, and rows padded to 9, 6 and 4 tokens."""
    ids = torch.randint(1, config.vocab_size, (B, N), device=device)
    lengths = torch.tensor([N, 6, 4], device=device)
    attention_mask = (torch.arange(N, device=device) < lengths[:, None]).long()  # (B, N)
    ids = ids.masked_fill(attention_mask == 0, 0)  # [PAD] = 0
    token_type_ids = (torch.arange(N, device=device) >= lengths[:, None] // 2).long() * attention_mask
    return ids, token_type_ids, attention_mask


def mlm_labels_for(ids, attention_mask, rate=0.3):
    """Labels as the pretraining data gives them: the original id at chosen positions, -100 elsewhere."""
    chosen = (torch.rand(ids.shape, device=ids.device) < rate) & attention_mask.bool()
    chosen[:, 1] = True  # at least one per row
    return ids.masked_fill(~chosen, -100), chosen


# --- the config ---------------------------------------------------------------------------------


def test_default_config_is_the_course_small_model_with_the_vocabulary_given():
    config = BertConfig(vocab_size=5000)
    assert (config.hidden_size, config.num_layers, config.num_heads, config.intermediate_size) == (
        128,
        2,
        8,
        512,
    )
    assert (config.max_position_embeddings, config.type_vocab_size, config.layer_norm_eps) == (128, 2, 1e-12)
    assert config.activation == "gelu"
    with pytest.raises(TypeError):
        BertConfig()  # the vocabulary size comes from the tokenizer: no default


def test_base_config_is_bert_base_of_the_paper():
    config = BertConfig.base()
    assert (config.vocab_size, config.hidden_size, config.num_layers, config.num_heads) == (
        30522,
        768,
        12,
        12,
    )
    assert (config.intermediate_size, config.max_position_embeddings, config.type_vocab_size) == (
        3072,
        512,
        2,
    )
    assert (config.layer_norm_eps, config.activation) == (1e-12, "gelu")
    assert BertConfig.base(num_layers=1).num_layers == 1


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(hidden_size=30, num_heads=4), "hidden_size 30 is not divisible by num_heads 4"),
        (dict(hidden_size=0), "hidden_size must be a positive int, got 0"),
        (dict(num_layers=2.0), "num_layers must be a positive int, got 2.0"),
        (dict(vocab_size=True), "vocab_size must be a positive int, got True"),
        (dict(intermediate_size=-1), "intermediate_size must be a positive int, got -1"),
        (dict(max_position_embeddings=0), "max_position_embeddings must be a positive int"),
        (dict(type_vocab_size=0), "type_vocab_size must be a positive int"),
        (dict(num_labels=0), "num_labels must be a positive int"),
        (dict(hidden_dropout=1.0), "hidden_dropout must be a number in [0, 1), got 1.0"),
        (dict(attention_dropout=-0.1), "attention_dropout must be a number in [0, 1), got -0.1"),
        (dict(classifier_dropout="0.1"), "classifier_dropout must be a number in [0, 1), got '0.1'"),
        (dict(activation="gelu_new"), "activation must be one of ['gelu', 'relu'], got 'gelu_new'"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps must be a positive number, got 0.0"),
        (dict(initializer_range=float("nan")), "initializer_range must be a number >= 0, got nan"),
        (dict(pad_token_id=60), "pad_token_id must be None or an id in [0, 60) (vocab_size), got 60"),
    ],
)
def test_config_refuses_a_bad_value_naming_it(changes, words):
    with pytest.raises(ValueError) as error:
        tiny_config(**changes)
    assert words in str(error.value)


def test_config_accepts_no_padding_token_and_no_classifier_dropout():
    config = tiny_config(pad_token_id=None, classifier_dropout=None)
    assert BertModel(config).embeddings.word_embeddings.padding_idx is None


# --- parameters ---------------------------------------------------------------------------------


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    "config",
    [
        tiny_config(),
        BertConfig(vocab_size=1000),
        tiny_config(hidden_size=36, num_heads=3, intermediate_size=50),
    ],
    ids=["tiny", "small", "odd"],
)
def test_parameter_count_formula_equals_the_model(config):
    assert bert_parameter_count(config) == count(BertModel(config))
    assert bert_parameter_count(config, pooler=False) == count(BertModel(config, add_pooling_layer=False))


def test_bert_base_has_110_million_parameters_by_formula_and_by_model():
    with torch.device("meta"):  # shapes only: no memory, no time
        model = BertModel(BertConfig.base())
    assert count(model) == bert_parameter_count(BertConfig.base()) == 109_482_240


def test_pretraining_heads_add_transform_bias_and_next_sentence_only_since_the_decoder_is_tied():
    config = tiny_config()
    model = BertForPreTraining(config)
    h, v = config.hidden_size, config.vocab_size
    assert count(model) == bert_parameter_count(config) + (h * h + h + 2 * h) + v + (2 * h + 2)
    assert not any("decoder" in name for name in model.state_dict())


def test_a_bert_layer_is_chapter_4s_post_ln_encoder_layer():
    layer = BertModel(tiny_config()).encoder.layer[0]
    assert isinstance(layer, BertLayer) and isinstance(layer, EncoderLayer)
    assert not layer.self_attention_residual.norm_first
    assert layer.self_attention_residual.norm.eps == 1e-12


def test_initial_weights_follow_bert_padding_vector_zero_layernorm_one():
    model = BertModel(tiny_config(vocab_size=2000, initializer_range=0.05))
    words = model.embeddings.word_embeddings.weight
    assert torch.equal(words[0], torch.zeros_like(words[0]))
    assert 0.045 < words[1:].std().item() < 0.055
    layer = model.encoder.layer[0]
    assert torch.equal(layer.self_attention.query.bias, torch.zeros(16))
    assert torch.equal(layer.feed_forward_residual.norm.weight, torch.ones(16))


# --- the model ----------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_bert_model_output_shapes_with_hidden_states_and_attentions(device):
    config = tiny_config()
    model = BertModel(config).to(device).eval()
    model.fused_attention = False
    ids, types, mask = batch(config, device)
    out = model(ids, types, mask, output_hidden_states=True, output_attentions=True)
    assert out.last_hidden_state.shape == (B, N, 16) and out.pooled_output.shape == (B, 16)
    assert len(out.hidden_states) == config.num_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    assert [a.shape for a in out.attentions] == [(B, 4, N, N)] * config.num_layers
    assert out.last_hidden_state.device.type == device
    assert model(ids).hidden_states is None and model(ids).attentions is None


def test_attention_weights_need_the_naive_path_and_the_error_says_how():
    model = BertForPreTraining(tiny_config()).eval()
    ids, types, mask = batch(model.config)
    assert model.bert.fused_attention  # the fast path is the default
    with pytest.raises(ValueError, match=r"fused_attention = False"):
        model(ids, types, mask, output_attentions=True)
    model.bert.fused_attention = False
    attentions = model(ids, types, mask, output_attentions=True).attentions
    for weights in attentions:  # (B, H, N, N)
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, 4, N))
        assert weights[2, :, :, 4:].abs().max() == 0  # row 2 has 4 real tokens: padding gets no weight


@pytest.mark.parametrize("device", DEVICES)
def test_fused_and_naive_attention_give_equal_outputs(device):
    model = BertForPreTraining(tiny_config()).to(device).eval()
    ids, types, mask = batch(model.config, device)
    fused = model(ids, types, mask, output_hidden_states=True)
    model.bert.fused_attention = False
    naive = model(ids, types, mask, output_hidden_states=True)
    for a, b in zip(fused.hidden_states, naive.hidden_states, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(fused.mlm_logits, naive.mlm_logits, **TOL)
    torch.testing.assert_close(fused.nsp_logits, naive.nsp_logits, **TOL)


def test_padding_tokens_change_nothing_at_the_real_positions():
    model = BertModel(tiny_config()).eval()
    ids, types, mask = batch(model.config)
    other = ids.masked_fill(mask == 0, 7)  # different tokens where the mask says padding
    a, b = model(ids, types, mask), model(other, types, mask)
    real = mask.bool()
    torch.testing.assert_close(a.last_hidden_state[real], b.last_hidden_state[real], **TOL)
    torch.testing.assert_close(a.pooled_output, b.pooled_output, **TOL)


def test_no_attention_mask_means_every_token_is_real():
    model = BertModel(tiny_config()).eval()
    ids, types, _ = batch(model.config)
    ones = torch.ones_like(ids)
    torch.testing.assert_close(model(ids, types).last_hidden_state, model(ids, types, ones).last_hidden_state)


def test_segments_matter_and_default_to_segment_a():
    model = BertModel(tiny_config()).eval()
    ids, types, mask = batch(model.config)
    zeros = torch.zeros_like(ids)
    torch.testing.assert_close(
        model(ids, None, mask).last_hidden_state, model(ids, zeros, mask).last_hidden_state
    )
    assert not torch.allclose(
        model(ids, types, mask).last_hidden_state, model(ids, zeros, mask).last_hidden_state
    )


def test_positions_matter_the_encoder_is_not_a_bag_of_words():
    model = BertModel(tiny_config()).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    swapped = torch.tensor([[5, 7, 6, 8]])
    assert not torch.allclose(model(ids).last_hidden_state[0, 1], model(swapped).last_hidden_state[0, 2])


def test_dropout_acts_in_training_only():
    model = BertModel(tiny_config(hidden_dropout=0.5, attention_dropout=0.5))
    ids, types, mask = batch(model.config)
    model.train()
    assert not torch.equal(
        model(ids, types, mask).last_hidden_state, model(ids, types, mask).last_hidden_state
    )
    model.eval()
    assert torch.equal(model(ids, types, mask).last_hidden_state, model(ids, types, mask).last_hidden_state)


def test_dropouts_sit_where_bert_puts_them():
    layer = BertModel(tiny_config(hidden_dropout=0.2, attention_dropout=0.3)).encoder.layer[0]
    assert layer.self_attention.dropout.p == 0.3  # on the attention weights
    assert layer.self_attention_residual.dropout.p == layer.feed_forward_residual.dropout.p == 0.2
    assert isinstance(layer.feed_forward.dropout, torch.nn.Identity)  # none inside the feed-forward network


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda m: m(torch.zeros(2, 17, dtype=torch.long)), "longer than max_position_embeddings 16"),
        (lambda m: m(torch.zeros(2, 5, 3, dtype=torch.long)), "input_ids must have shape (batch, length)"),
        (
            lambda m: m(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)),
            "token_type_ids",
        ),
        (
            lambda m: m(torch.zeros(2, 5, dtype=torch.long), None, torch.ones(2, 4)),
            "attention_mask must have",
        ),
    ],
)
def test_bad_inputs_are_refused_naming_them(call, words):
    with pytest.raises(ValueError) as error:
        call(BertModel(tiny_config()))
    assert words in str(error.value)


# --- pretraining --------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_masked_only_mlm_equals_the_full_sequence_with_ignore_index(device):
    model = BertForPreTraining(tiny_config()).to(device).eval()
    ids, types, mask = batch(model.config, device)
    labels, chosen = mlm_labels_for(ids, mask)

    full = model(ids, types, mask, mlm_labels=labels)
    expected = F.cross_entropy(full.mlm_logits.reshape(-1, 60), labels.reshape(-1), ignore_index=-100)
    full_grads = torch.autograd.grad(full.mlm_loss, list(model.parameters()), allow_unused=True)
    masked = model(ids, types, mask, masked_positions=chosen, mlm_labels=labels)
    masked_grads = torch.autograd.grad(masked.mlm_loss, list(model.parameters()), allow_unused=True)

    assert full.mlm_logits.shape == (B, N, 60) and masked.mlm_logits.shape == (int(chosen.sum()), 60)
    torch.testing.assert_close(full.mlm_loss, expected, **TOL)
    torch.testing.assert_close(masked.mlm_loss, full.mlm_loss, **TOL)
    torch.testing.assert_close(masked.mlm_logits, full.mlm_logits[chosen], **TOL)
    for a, b in zip(masked_grads, full_grads, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, **GRAD_TOL)


def test_masked_positions_take_labels_already_gathered():
    model = BertForPreTraining(tiny_config()).eval()
    ids, types, mask = batch(model.config)
    labels, chosen = mlm_labels_for(ids, mask)
    a = model(ids, types, mask, masked_positions=chosen, mlm_labels=labels)
    b = model(ids, types, mask, masked_positions=chosen, mlm_labels=labels[chosen])
    torch.testing.assert_close(a.mlm_loss, b.mlm_loss)


def test_masked_positions_must_be_a_boolean_mask_shaped_like_the_input():
    model = BertForPreTraining(tiny_config())
    ids, types, mask = batch(model.config)
    with pytest.raises(ValueError, match="masked_positions must be a boolean tensor"):
        model(ids, masked_positions=torch.tensor([[1, 2]] * B))
    with pytest.raises(ValueError, match="mlm_labels must have shape"):
        model(ids, mlm_labels=torch.zeros(B, N + 1, dtype=torch.long))


def test_loss_is_the_sum_of_the_losses_whose_labels_are_given():
    model = BertForPreTraining(tiny_config()).eval()
    ids, types, mask = batch(model.config)
    labels, chosen = mlm_labels_for(ids, mask)
    is_random = torch.tensor([0, 1, 0])
    both = model(ids, types, mask, chosen, labels, is_random)
    torch.testing.assert_close(both.loss, both.mlm_loss + both.nsp_loss)
    torch.testing.assert_close(both.nsp_loss, F.cross_entropy(both.nsp_logits, is_random))
    assert model(ids, types, mask, chosen, labels).loss == both.mlm_loss
    assert model(ids, types, mask, next_sentence_label=is_random).loss == both.nsp_loss
    assert model(ids, types, mask).loss is None


def test_the_mlm_decoder_is_the_word_embeddings_plus_a_bias():
    model = BertForPreTraining(tiny_config()).eval()
    ids, types, mask = batch(model.config)
    x = model.bert(ids, types, mask).last_hidden_state  # (B, N, h)
    predictions = model.cls.predictions
    expected = predictions.transform(x) @ model.bert.embeddings.word_embeddings.weight.T + predictions.bias
    torch.testing.assert_close(model(ids, types, mask).mlm_logits, expected, **TOL)


def test_every_parameter_learns_from_the_pretraining_loss():
    model = BertForPreTraining(tiny_config())
    ids, types, mask = batch(model.config)
    labels, chosen = mlm_labels_for(ids, mask)
    model(ids, types, mask, chosen, labels, torch.tensor([0, 1, 1])).loss.backward()
    silent = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []


# --- fine-tuning heads --------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_sequence_classification_gives_a_label_per_sequence(device):
    model = BertForSequenceClassification(tiny_config(num_labels=3)).to(device).eval()
    ids, types, mask = batch(model.config, device)
    labels = torch.tensor([0, 2, 1], device=device)
    out = model(ids, types, mask, labels=labels)
    assert out.logits.shape == (B, 3)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, labels))
    pooled = model.bert(ids, types, mask).pooled_output
    torch.testing.assert_close(out.logits, model.classifier(pooled))


def test_one_label_sequence_classification_is_a_regression():
    model = BertForSequenceClassification(tiny_config(num_labels=1)).eval()
    ids, types, mask = batch(model.config)
    targets = torch.tensor([0.5, -1.0, 2.0])
    out = model(ids, types, mask, labels=targets)
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits[:, 0], targets))


def test_token_classification_gives_a_label_per_token_and_ignores_minus_100():
    model = BertForTokenClassification(tiny_config(num_labels=5)).eval()
    assert model.bert.pooler is None  # as in Hugging Face: no pooler for token labels
    ids, types, mask = batch(model.config)
    labels = torch.randint(0, 5, (B, N)).masked_fill(mask == 0, -100)
    out = model(ids, types, mask, labels=labels)
    assert out.logits.shape == (B, N, 5)
    real = mask.bool()
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[real], labels[real]))


def test_classifier_dropout_defaults_to_the_hidden_dropout():
    assert BertForSequenceClassification(tiny_config(hidden_dropout=0.2)).dropout.p == 0.2
    config = tiny_config(hidden_dropout=0.2, classifier_dropout=0.4)
    assert BertForTokenClassification(config).dropout.p == 0.4


def test_config_is_a_plain_dataclass_that_can_be_copied_with_changes():
    config = tiny_config()
    assert dataclasses.replace(config, num_layers=3).num_layers == 3
    with pytest.raises(ValueError):
        dataclasses.replace(config, num_heads=5)
