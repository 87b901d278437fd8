"""bert_tutor.bert and bert_tutor.hf against Hugging Face's BERT, built from configs (no download).

Equal outputs: a randomly initialised ``transformers`` model's weights, read into ours, give the same
hidden states, pooled output, masked-LM, next-sentence and classification logits and attention
weights, for four configs, with padding and segments, in eval mode, against both of Hugging Face's
attention implementations (eager and sdpa) and both of ours (fused and naive).

Equal files, both ways: a directory that ``transformers`` wrote loads into ours, one we wrote loads
unchanged into ``transformers``; whatever does not fit is refused with a message that names it.
"""

import dataclasses
import json
from functools import cache

import pytest
import torch
from safetensors.torch import load_file, save_file

from bert_tutor import hf
from bert_tutor.bert import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    bert_parameter_count,
)

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()

# float32, the same sums in a different order. Where both sides take the same kernel (our fused path
# and their sdpa) the outputs are bit-equal; across paths the largest difference seen was 5.6e-6, in
# the masked-LM logits (up to 7 in size) at BERT-base width, 2e-6 in its hidden states, below 1.2e-6
# in the smaller configs.
TOL = dict(rtol=1e-5, atol=1e-5)
B, N = 3, 12

CONFIGS = {
    "tiny": BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_layers=2,
        num_heads=2,
        intermediate_size=20,
        max_position_embeddings=32,
    ),
    "course-small": BertConfig(vocab_size=1000),  # the course's defaults
    "base-width-one-layer": BertConfig.base(num_layers=1),
    "odd": BertConfig(
        vocab_size=97,
        hidden_size=36,
        num_layers=2,
        num_heads=3,
        intermediate_size=50,
        max_position_embeddings=40,
        type_vocab_size=3,
        activation="relu",
        layer_norm_eps=1e-7,
        pad_token_id=5,
    ),
}
OURS = {
    "BertModel": BertModel,
    "BertForPreTraining": BertForPreTraining,
    "BertForSequenceClassification": BertForSequenceClassification,
    "BertForTokenClassification": BertForTokenClassification,
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Many small forward passes: one thread is as fast, and on a busy machine a second thread waiting
    for a core made this file four times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hf_config(config: BertConfig, attention: str = "eager") -> "transformers.BertConfig":
    data = hf.config_to_hf(config, "BertForSequenceClassification")  # with num_labels
    return transformers.BertConfig(**data, attn_implementation=attention)


@cache
def hf_model(name: str, architecture: str, num_labels: int = 2):
    """A Hugging Face model of the config, every weight moved off its initial value (LayerNorms too)."""
    torch.manual_seed(0)
    config = dataclasses.replace(CONFIGS[name], num_labels=num_labels)
    model = getattr(transformers, architecture)(hf_config(config)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def ours_from(model_class, hf_model_, config: BertConfig):
    ours = model_class(config).eval()
    hf.load_hf_state_dict(ours, hf_model_.state_dict(), source="the Hugging Face model")
    return ours


@cache
def pair(name: str, architecture: str, num_labels: int = 2):
    """(Hugging Face's model, ours with its weights), built once per config and architecture."""
    theirs = hf_model(name, architecture, num_labels)
    return theirs, ours_from(
        OURS[architecture], theirs, dataclasses.replace(CONFIGS[name], num_labels=num_labels)
    )


def inputs(config: BertConfig, seed: int = 1):
    """ids (B, N); segments A then B (and a third where the config has one); rows of 12, 8 and 5 tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, config.vocab_size, (B, N), generator=g)
    lengths = torch.tensor([N, 8, 5])
    attention_mask = (torch.arange(N) < lengths[:, None]).long()
    token_type_ids = (torch.arange(N) >= lengths[:, None] // 2).long() * attention_mask
    if config.type_vocab_size > 2:
        token_type_ids[0, -2:] = 2
    return ids, token_type_ids, attention_mask


def set_paths(hf_model_, ours, attention: str, fused: bool):
    hf_model_.set_attn_implementation(attention)
    (ours if isinstance(ours, BertModel) else ours.bert).fused_attention = fused


PATHS = [("eager", False), ("eager", True), ("sdpa", False), ("sdpa", True)]
PATH_IDS = ["hf-eager-ours-naive", "hf-eager-ours-fused", "hf-sdpa-ours-naive", "hf-sdpa-ours-fused"]


# --- equal outputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("attention, fused", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("name", CONFIGS)
def test_pretraining_outputs_equal_hugging_face(name, attention, fused):
    config = CONFIGS[name]
    theirs, ours = pair(name, "BertForPreTraining")
    set_paths(theirs, ours, attention, fused)
    ids, types, mask = inputs(config)
    labels = ids.masked_fill(torch.rand(B, N) > 0.3, -100)
    is_random = torch.tensor([1, 0, 1])
    with torch.no_grad():
        expected = theirs(
            input_ids=ids,
            token_type_ids=types,
            attention_mask=mask,
            labels=labels,
            next_sentence_label=is_random,
            output_hidden_states=True,
        )
        pooled = theirs.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).pooler_output
        got = ours(
            ids, types, mask, mlm_labels=labels, next_sentence_label=is_random, output_hidden_states=True
        )
        got_pooled = ours.bert(ids, types, mask).pooled_output
    assert len(got.hidden_states) == len(expected.hidden_states) == config.num_layers + 1
    for a, b in zip(got.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(got_pooled, pooled, **TOL)
    torch.testing.assert_close(got.mlm_logits, expected.prediction_logits, **TOL)
    torch.testing.assert_close(got.nsp_logits, expected.seq_relationship_logits, **TOL)
    torch.testing.assert_close(got.loss, expected.loss, **TOL)


@pytest.mark.parametrize("attention, fused", PATHS, ids=PATH_IDS)
def test_causal_model_equals_hugging_face_is_decoder(attention, fused):
    """causal=True is Hugging Face's is_decoder=True (without cross-attention): the same outputs."""
    config = dataclasses.replace(CONFIGS["tiny"], causal=True)
    torch.manual_seed(0)
    theirs = transformers.BertForPreTraining(hf_config(config)).eval()
    assert theirs.config.is_decoder
    ours = ours_from(BertForPreTraining, theirs, config)
    set_paths(theirs, ours, attention, fused)
    ids, types, mask = inputs(config)
    with torch.no_grad():
        expected = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, output_hidden_states=True)
        got = ours(ids, types, mask, output_hidden_states=True)
    torch.testing.assert_close(got.hidden_states[-1], expected.hidden_states[-1], **TOL)
    torch.testing.assert_close(got.mlm_logits, expected.prediction_logits, **TOL)
    # and it is causal: changing the last token leaves every earlier position unchanged
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % config.vocab_size
    with torch.no_grad():
        again = ours(changed, types, mask).mlm_logits
    torch.testing.assert_close(again[0, :-1], got.mlm_logits[0, :-1], rtol=0, atol=0)
    assert not torch.equal(again[0, -1], got.mlm_logits[0, -1])


@pytest.mark.parametrize("name", CONFIGS)
def test_attention_weights_equal_hugging_face_eager(name):
    config = CONFIGS[name]
    theirs, ours = pair(name, "BertForPreTraining")
    set_paths(theirs, ours, "eager", fused=False)
    ids, types, mask = inputs(config)
    with torch.no_grad():
        expected = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, output_attentions=True)
        got = ours(ids, types, mask, output_attentions=True)
    assert len(got.attentions) == len(expected.attentions) == config.num_layers
    for a, b in zip(got.attentions, expected.attentions, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("attention, fused", PATHS, ids=PATH_IDS)
@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("architecture", ["BertForSequenceClassification", "BertForTokenClassification"])
def test_classification_logits_and_loss_equal_hugging_face(architecture, name, attention, fused):
    config = dataclasses.replace(CONFIGS[name], num_labels=3)
    theirs, ours = pair(name, architecture, num_labels=3)
    set_paths(theirs, ours, attention, fused)
    ids, types, mask = inputs(config)
    if architecture == "BertForSequenceClassification":
        labels = torch.tensor([2, 0, 1])
    else:
        labels = torch.randint(0, 3, (B, N)).masked_fill(mask == 0, -100)
    with torch.no_grad():
        expected = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask, labels=labels)
        got = ours(ids, types, mask, labels=labels)
    torch.testing.assert_close(got.logits, expected.logits, **TOL)
    torch.testing.assert_close(got.loss, expected.loss, **TOL)


@pytest.mark.parametrize("name", ["tiny", "odd"])
def test_bert_model_equals_hugging_face_bert_model_whose_keys_have_no_prefix(name):
    config = CONFIGS[name]
    theirs, ours = pair(name, "BertModel")
    assert not any(key.startswith("bert.") for key in theirs.state_dict())
    set_paths(theirs, ours, "sdpa", fused=True)
    ids, types, mask = inputs(config)
    with torch.no_grad():
        expected = theirs(input_ids=ids, token_type_ids=types, attention_mask=mask)
        got = ours(ids, types, mask)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state, **TOL)
    torch.testing.assert_close(got.pooled_output, expected.pooler_output, **TOL)


def test_bert_base_parameter_count_equals_hugging_face_and_the_formula():
    with torch.device("meta"):  # built from the config, shapes only
        theirs = transformers.BertModel(transformers.BertConfig())
        ours = BertModel(BertConfig.base())
    count = sum(p.numel() for p in theirs.parameters())
    assert count == sum(p.numel() for p in ours.parameters()) == bert_parameter_count(BertConfig.base())


def test_our_names_map_one_to_one_onto_hugging_face_names():
    for architecture, model_class in OURS.items():
        config = CONFIGS["tiny"]
        theirs = getattr(transformers, architecture)(hf_config(config))
        tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
        assert set(hf.hf_state_dict(model_class(config))) == set(theirs.state_dict()) - tied, architecture


def test_hugging_face_default_config_reads_as_bert_base():
    data = transformers.BertConfig().to_dict()
    assert hf.config_from_hf(data) == BertConfig.base()


# --- files, from transformers to us --------------------------------------------------------------


def outputs(model, ids, types, mask):
    """The main output of either library's model: masked-LM logits, classifier logits or hidden states."""
    with torch.no_grad():
        if isinstance(model, transformers.PreTrainedModel):
            out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
        else:
            out = model(ids, types, mask)
    for name in ("prediction_logits", "mlm_logits", "logits", "last_hidden_state"):
        if hasattr(out, name):
            return getattr(out, name)
    raise AssertionError(f"no logits in {type(out).__name__}")


@pytest.mark.parametrize("architecture", OURS)
def test_a_directory_transformers_wrote_loads_into_ours_with_equal_outputs(tmp_path, architecture):
    theirs = hf_model("tiny", architecture)
    theirs.set_attn_implementation("sdpa")
    theirs.save_pretrained(tmp_path)
    ours = OURS[architecture].from_pretrained(tmp_path)
    assert not ours.training
    ids, types, mask = inputs(ours.config)
    torch.testing.assert_close(outputs(ours, ids, types, mask), outputs(theirs, ids, types, mask), **TOL)


def test_bert_model_takes_the_encoder_out_of_a_pretraining_directory(tmp_path):
    theirs = hf_model("tiny", "BertForPreTraining")
    theirs.save_pretrained(tmp_path)
    ours = BertModel.from_pretrained(tmp_path)
    ids, types, mask = inputs(ours.config)
    torch.testing.assert_close(outputs(ours, ids, types, mask), outputs(theirs.bert, ids, types, mask), **TOL)


def test_bert_model_has_no_pooler_when_the_file_has_none(tmp_path):
    theirs = hf_model("tiny", "BertForTokenClassification")
    theirs.save_pretrained(tmp_path)
    ours = BertModel.from_pretrained(tmp_path)
    assert ours.pooler is None
    ids, types, mask = inputs(ours.config)
    torch.testing.assert_close(outputs(ours, ids, types, mask), outputs(theirs.bert, ids, types, mask), **TOL)


def test_old_files_with_gamma_beta_position_ids_and_a_tied_decoder_still_load(tmp_path):
    theirs = hf_model("tiny", "BertForPreTraining")
    theirs.save_pretrained(tmp_path)
    state = {k: v.contiguous() for k, v in theirs.state_dict().items()}  # with decoder weight and bias
    old = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace(
            "LayerNorm.bias", "LayerNorm.beta"
        ): v.clone()
        for k, v in state.items()
    }
    old["bert.embeddings.position_ids"] = torch.arange(32)[None]
    del old["cls.predictions.bias"]  # only the decoder's bias, as some files have it
    save_file(old, tmp_path / "model.safetensors")
    ours = BertForPreTraining.from_pretrained(tmp_path)
    ids, types, mask = inputs(ours.config)
    torch.testing.assert_close(outputs(ours, ids, types, mask), outputs(theirs, ids, types, mask), **TOL)


def test_an_old_pytorch_model_bin_is_read_as_tensors_only(tmp_path):
    theirs = hf_model("tiny", "BertModel")
    theirs.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(dict(theirs.state_dict()), tmp_path / "pytorch_model.bin")
    ours = BertModel.from_pretrained(tmp_path)
    ids, types, mask = inputs(ours.config)
    torch.testing.assert_close(outputs(ours, ids, types, mask), outputs(theirs, ids, types, mask), **TOL)


# --- files, from us to transformers --------------------------------------------------------------


class StandInTokenizer:
    """What save_pretrained needs of a tokenizer: ``save(path)`` writing vocab.txt, and ``len``."""

    def __init__(self, tokens):
        self.tokens = tokens

    def __len__(self):
        return len(self.tokens)

    def save(self, path):
        path.write_text("".join(t + "\n" for t in self.tokens), encoding="utf-8")
        return path


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(45)]


@pytest.mark.parametrize("architecture", OURS)
def test_our_directory_loads_unchanged_in_transformers_with_equal_outputs(tmp_path, architecture):
    config = dataclasses.replace(CONFIGS["tiny"], num_labels=3)
    ours = OURS[architecture](config).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    ours.save_pretrained(tmp_path, tokenizer=StandInTokenizer(VOCAB))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors", "vocab.txt"]
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [architecture]
    assert (tmp_path / "vocab.txt").read_text().splitlines() == VOCAB

    theirs, info = getattr(transformers, architecture).from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == info["unexpected_keys"] == info["mismatched_keys"] == set()
    assert theirs.config.num_labels == 3 or architecture in ("BertModel", "BertForPreTraining")
    ids, types, mask = inputs(config)
    torch.testing.assert_close(
        outputs(theirs.eval(), ids, types, mask), outputs(ours, ids, types, mask), **TOL
    )
    reloaded = OURS[architecture].from_pretrained(tmp_path)
    for (name, a), b in zip(ours.state_dict().items(), reloaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_vocab_txt_from_a_list_of_tokens_and_transformers_tokenizer_reads_the_directory(tmp_path):
    BertModel(CONFIGS["tiny"]).save_pretrained(tmp_path, tokenizer=VOCAB)
    tokenizer = transformers.BertTokenizer.from_pretrained(tmp_path)
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "w3", "[MASK]"]) == [2, 8, 4]


def test_vocab_txt_from_bert_tutors_tokenizer(tmp_path):
    tokenization = pytest.importorskip("bert_tutor.tokenization")
    BertModel(CONFIGS["tiny"]).save_pretrained(tmp_path, tokenizer=tokenization.BertTokenizer(VOCAB))
    assert (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines() == VOCAB
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_a_tokenizer_larger_than_the_vocabulary_is_refused(tmp_path):
    with pytest.raises(ValueError, match="51 tokens, more than the model's vocab_size 50"):
        BertModel(CONFIGS["tiny"]).save_pretrained(tmp_path, tokenizer=VOCAB + ["extra"])
    assert not (tmp_path / "model.safetensors").exists()  # refused before anything is written


def test_saving_is_atomic_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    model = BertModel(CONFIGS["tiny"])
    model.save_pretrained(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def fail(tensors, path, metadata=None):
        path.write_bytes(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(hf, "save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        BertModel(CONFIGS["tiny"]).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


# --- refusals -----------------------------------------------------------------------------------


@pytest.fixture
def pretraining_dir(tmp_path):
    hf_model("tiny", "BertForPreTraining").save_pretrained(tmp_path)
    return tmp_path


def edit_config(directory, **changes):
    path = directory / "config.json"
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


def edit_weights(directory, drop=(), add=None):
    path = directory / "model.safetensors"
    weights = {k: v for k, v in load_file(path).items() if k not in drop} | (add or {})
    save_file(weights, path)


def refused(model_class, directory, *words, error=ValueError):
    with pytest.raises(error) as caught:
        model_class.from_pretrained(directory)
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))


def test_a_missing_key_is_refused_naming_it(pretraining_dir):
    edit_weights(pretraining_dir, drop={"bert.encoder.layer.1.attention.output.dense.bias"})
    refused(
        BertForPreTraining,
        pretraining_dir,
        str(pretraining_dir),
        "missing keys",
        "layer.1.attention.output.dense.bias",
    )


def test_an_unexpected_key_is_refused_naming_it(pretraining_dir):
    edit_weights(pretraining_dir, add={"bert.encoder.layer.2.output.dense.bias": torch.zeros(16)})
    refused(BertForPreTraining, pretraining_dir, "unexpected keys", "bert.encoder.layer.2.output.dense.bias")


def test_a_model_with_a_head_refuses_a_file_without_it(tmp_path):
    hf_model("tiny", "BertModel").save_pretrained(tmp_path)
    refused(BertForPreTraining, tmp_path, "missing keys", "cls.seq_relationship.weight", "['BertModel']")
    refused(BertForTokenClassification, tmp_path, "missing keys: classifier.bias, classifier.weight")


def test_a_hidden_size_that_disagrees_with_the_weights_is_refused_naming_keys_and_shapes(pretraining_dir):
    edit_config(pretraining_dir, hidden_size=32)
    refused(
        BertForPreTraining,
        pretraining_dir,
        "shapes differ",
        "bert.embeddings.word_embeddings.weight: (50, 16) in the file, (50, 32) in the model",
    )


def test_an_untied_decoder_is_refused(pretraining_dir):
    edit_weights(pretraining_dir, add={"cls.predictions.decoder.weight": torch.zeros(50, 16)})
    refused(BertForPreTraining, pretraining_dir, "cls.predictions.decoder.weight", "ties the decoder")
    edit_config(pretraining_dir, tie_word_embeddings=False)
    refused(BertForPreTraining, pretraining_dir, "tie_word_embeddings = False")


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(num_attention_heads=3), ["hidden_size 16 is not divisible by num_heads 3"]),
        (
            dict(num_hidden_layers=0),
            ["num_layers must be a positive int, got 0", "num_hidden_layers in the file"],
        ),
        (dict(hidden_dropout_prob=1.5), ["hidden_dropout must be a number in [0, 1), got 1.5"]),
        (dict(hidden_act="gelu_new"), ["activation must be one of", "'gelu_new'", "hidden_act in the file"]),
        (dict(vocab_size=None), ["missing vocab_size"]),
        (
            dict(model_type="gpt2", architectures=["GPT2LMHeadModel"]),
            ["model_type is 'gpt2'", "GPT2LMHeadModel"],
        ),
        (dict(add_cross_attention=True), ["add_cross_attention = True is not supported"]),
        (dict(position_embedding_type="relative_key"), ["position_embedding_type = 'relative_key'"]),
    ],
)
def test_a_wrong_config_is_refused_naming_the_value(pretraining_dir, changes, words):
    edit_config(pretraining_dir, **changes)
    refused(BertForPreTraining, pretraining_dir, "config.json", *words)


def test_invalid_json_is_refused_naming_the_file(pretraining_dir):
    (pretraining_dir / "config.json").write_text('{"model_type": "bert", ')
    refused(BertForPreTraining, pretraining_dir, str(pretraining_dir / "config.json"), "not valid JSON")


def test_a_truncated_safetensors_file_is_refused_naming_it(pretraining_dir):
    path = pretraining_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    refused(BertForPreTraining, pretraining_dir, str(path), "not a complete safetensors file")


def test_missing_files_are_refused_naming_them(tmp_path):
    refused(BertModel, tmp_path / "nowhere", "no model directory", error=FileNotFoundError)
    refused(BertModel, tmp_path, "no config.json", error=FileNotFoundError)
    (tmp_path / "config.json").write_text(json.dumps(hf.config_to_hf(CONFIGS["tiny"], "BertModel")))
    refused(BertModel, tmp_path, "no weights in", "model.safetensors", error=FileNotFoundError)
