"""Hugging Face's BERT format, both ways: config.json, model.safetensors and vocab.txt (chapter 6).

``save_pretrained(model, directory)`` writes a directory that ``transformers``' ``from_pretrained``
loads unchanged; ``from_pretrained(BertModel, directory)`` reads one that ``transformers`` wrote
(this is how you load real BERT weights you downloaded yourself). Every model class of
``bert_tutor.bert`` has both as methods.

Names: outside the encoder layers, ``bert_tutor.bert`` names its modules as Hugging Face does, so
those keys are the same. Inside a layer it keeps chapter 4's names (a BERT layer *is* chapter 4's
encoder layer), and ``LAYER_NAMES`` maps them: eight rows. The config's fields use the course's
names, and ``CONFIG_NAMES`` maps them to config.json's.

Hugging Face's files also differ in small ways that the loader accepts: the decoder of the masked-LM
head is tied to the word embeddings, so its weight is often absent (and, when present, must equal
them); its bias is ``cls.predictions.bias`` or ``cls.predictions.decoder.bias``; a ``BertModel``'s keys
have no ``bert.`` prefix; old files hold ``position_ids`` buffers and LayerNorm ``gamma``/``beta``.
Anything else that does not fit (a missing or unexpected key, a shape, a config value) is refused
with a message that names it. Weights are read with safetensors (or, for an old ``pytorch_model.bin``,
``torch.load(weights_only=True)``): no pickled code is ever run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from bert_tutor.bert import (
    BertConfig,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from bert_tutor.files import write_atomically

__all__ = [
    "CONFIG_NAMES",
    "LAYER_NAMES",
    "config_from_hf",
    "config_to_hf",
    "from_pretrained",
    "hf_name",
    "hf_state_dict",
    "load_hf_state_dict",
    "read_config",
    "read_weights",
    "save_pretrained",
]

CONFIG_FILE, WEIGHTS_FILE, VOCAB_FILE = "config.json", "model.safetensors", "vocab.txt"

# Inside encoder.layer.N: chapter 4's module names -> Hugging Face's.
LAYER_NAMES = {
    "self_attention.query": "attention.self.query",
    "self_attention.key": "attention.self.key",
    "self_attention.value": "attention.self.value",
    "self_attention.output": "attention.output.dense",
    "self_attention_residual.norm": "attention.output.LayerNorm",
    "feed_forward.intermediate": "intermediate.dense",
    "feed_forward.output": "output.dense",
    "feed_forward_residual.norm": "output.LayerNorm",
}

# BertConfig's fields -> config.json's keys (num_labels is written as id2label, as Hugging Face does).
CONFIG_NAMES = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "activation": "hidden_act",
    "hidden_dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
    "max_position_embeddings": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "layer_norm_eps": "layer_norm_eps",
    "initializer_range": "initializer_range",
    "pad_token_id": "pad_token_id",
    "classifier_dropout": "classifier_dropout",
    "causal": "is_decoder",
}
REQUIRED_CONFIG_KEYS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
# Switches of Hugging Face's BertConfig that change what the model computes, and the only value we support.
UNSUPPORTED_UNLESS = {
    "add_cross_attention": False,
    "position_embedding_type": "absolute",
}

ARCHITECTURES = {  # our class -> Hugging Face's class of the same shape
    BertModel: "BertModel",
    BertForPreTraining: "BertForPreTraining",
    BertForSequenceClassification: "BertForSequenceClassification",
    BertForTokenClassification: "BertForTokenClassification",
}

_LAYER_KEY = re.compile(r"(?P<layer>(?:bert\.)?encoder\.layer\.\d+)\.(?P<module>.+)\.(?P<tensor>weight|bias)")
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")  # not learned; old files hold them
_DECODER_WEIGHT, _DECODER_BIAS, _MLM_BIAS = (
    "cls.predictions.decoder.weight",
    "cls.predictions.decoder.bias",
    "cls.predictions.bias",
)
_WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"


# --- names --------------------------------------------------------------------------------------


def hf_name(name: str) -> str:
    """Our state-dict key -> Hugging Face's, e.g. ``encoder.layer.0.feed_forward.intermediate.weight``
    -> ``encoder.layer.0.intermediate.dense.weight``; keys outside the layers are the same."""
    match = _LAYER_KEY.fullmatch(name)
    if match is None or match["module"] not in LAYER_NAMES:
        return name
    return f"{match['layer']}.{LAYER_NAMES[match['module']]}.{match['tensor']}"


def hf_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under Hugging Face's names (the tied decoder weight is not repeated)."""
    return {hf_name(name): tensor for name, tensor in model.state_dict().items()}


def _architecture(model_class: type) -> str:
    for ours, theirs in ARCHITECTURES.items():
        if issubclass(model_class, ours):
            return theirs
    raise TypeError(f"{model_class.__name__} is none of {', '.join(c.__name__ for c in ARCHITECTURES)}")


# --- config.json --------------------------------------------------------------------------------


def config_to_hf(config: BertConfig, architecture: str) -> dict:
    """config.json's contents for ``transformers.BertConfig``, for a model of class ``architecture``."""
    data = {theirs: getattr(config, ours) for ours, theirs in CONFIG_NAMES.items()}
    data |= {
        "architectures": [architecture],
        "model_type": "bert",
        "tie_word_embeddings": True,
        "add_cross_attention": False,
    }
    if architecture in ("BertForSequenceClassification", "BertForTokenClassification"):
        data["id2label"] = {str(i): f"LABEL_{i}" for i in range(config.num_labels)}
        data["label2id"] = {f"LABEL_{i}": i for i in range(config.num_labels)}
    return data


def config_from_hf(data: Mapping, source: str = CONFIG_FILE) -> BertConfig:
    """A :class:`BertConfig` from config.json's contents; ``source`` names the file in messages.

    Refuses a config for another model type, one that lacks a size, and one that asks for what this
    BERT does not do (a decoder, cross-attention, relative positions, an unknown activation).
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a JSON object, got {type(data).__name__}")
    if data.get("model_type") != "bert":
        raise ValueError(
            f"{source}: model_type is {data.get('model_type')!r}, not 'bert' "
            f"(architectures: {data.get('architectures')}): this is not a BERT config"
        )
    missing = [key for key in REQUIRED_CONFIG_KEYS if key not in data]
    if missing:
        raise ValueError(f"{source}: missing {', '.join(missing)}")
    for key, supported in UNSUPPORTED_UNLESS.items():
        if key in data and data[key] != supported:
            raise ValueError(f"{source}: {key} = {data[key]!r} is not supported (only {supported!r})")
    fields = {ours: data[theirs] for ours, theirs in CONFIG_NAMES.items() if theirs in data}
    if "id2label" in data:
        if not isinstance(data["id2label"], Mapping):
            raise ValueError(f"{source}: id2label must be an object, got {data['id2label']!r}")
        fields["num_labels"] = len(data["id2label"])
    elif "num_labels" in data:
        fields["num_labels"] = data["num_labels"]
    try:
        return BertConfig(**fields)
    except (TypeError, ValueError) as error:
        message = str(error)
        ours = next((name for name in CONFIG_NAMES if message.startswith(name + " ")), None)
        where = f" ({CONFIG_NAMES[ours]} in the file)" if ours and CONFIG_NAMES[ours] != ours else ""
        raise ValueError(f"{source}: {message}{where}") from error


def read_config(directory: str | Path) -> tuple[BertConfig, dict]:
    """Read ``directory/config.json``. Returns (the BertConfig, the file's raw contents)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    return config_from_hf(data, source=str(path)), data


# --- weights ------------------------------------------------------------------------------------


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: not a complete safetensors file ({error})") from error


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """Read the weights in ``directory`` under the file's own names, on the CPU.

    Looks for model.safetensors, then a sharded model.safetensors.index.json, then an old
    pytorch_model.bin (read with ``weights_only=True``: tensors only, no code).
    """
    directory = Path(directory)
    single, index, legacy = (
        directory / WEIGHTS_FILE,
        directory / f"{WEIGHTS_FILE}.index.json",
        directory / "pytorch_model.bin",
    )
    if single.is_file():
        return _load_safetensors(single)
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{index} is not a valid index of weight files: {error!r}") from error
        weights = {}
        for shard in shards:
            weights |= _load_safetensors(directory / shard)
        return weights
    if legacy.is_file():
        try:
            weights = torch.load(legacy, map_location="cpu", weights_only=True)
        except Exception as error:  # a truncated zip, a pickle of anything but tensors, ...
            raise ValueError(f"cannot read {legacy} as tensors: {error}") from error
        if not isinstance(weights, Mapping) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
            raise ValueError(f"{legacy} does not hold a dict of tensors")
        return dict(weights)
    raise FileNotFoundError(f"no weights in {directory}: expected {WEIGHTS_FILE}")


def _some(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _normalise(
    weights: Mapping[str, torch.Tensor], prefixed: bool, source: str
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The file's weights under the names Hugging Face gives *this* model's class.

    prefixed: whether the model's keys start with ``bert.`` (a model with a head). Returns (weights,
    head keys ignored: those of a head, read into a model without one).
    """
    file_prefixed = any(key.startswith("bert.") for key in weights)
    renamed, ignored = {}, []
    for key, tensor in weights.items():
        if key.endswith(_BUFFERS):
            continue
        if "LayerNorm." in key:  # names from before PyTorch's LayerNorm: gamma, beta
            key = re.sub(
                r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", key)
            )
        if file_prefixed and not prefixed:  # a BertModel read from a file with heads: take bert.*
            if not key.startswith("bert."):
                ignored.append(key)
                continue
            key = key.removeprefix("bert.")
        elif prefixed and not file_prefixed and key.startswith(("embeddings.", "encoder.", "pooler.")):
            key = "bert." + key  # a model with a head read from a BertModel's file: the head will be missing
        if key in renamed:
            raise ValueError(f"{source}: two tensors for {key}")
        renamed[key] = tensor

    # The masked-LM decoder is the word embeddings, with the bias cls.predictions.bias.
    if _DECODER_BIAS in renamed:
        bias = renamed.pop(_DECODER_BIAS)
        if _MLM_BIAS in renamed and not torch.equal(renamed[_MLM_BIAS], bias):
            raise ValueError(f"{source}: {_DECODER_BIAS} and {_MLM_BIAS} differ; this model has one bias")
        renamed.setdefault(_MLM_BIAS, bias)
    if _DECODER_WEIGHT in renamed:
        decoder = renamed.pop(_DECODER_WEIGHT)
        embeddings = renamed.get(_WORD_EMBEDDINGS)
        if embeddings is not None and not (
            decoder.shape == embeddings.shape and torch.equal(decoder, embeddings)
        ):
            raise ValueError(
                f"{source}: {_DECODER_WEIGHT} {tuple(decoder.shape)} is not {_WORD_EMBEDDINGS} "
                f"{tuple(embeddings.shape)}: this model ties the decoder to the word embeddings"
            )
    return renamed, ignored


def load_hf_state_dict(
    model: nn.Module, weights: Mapping[str, torch.Tensor], source: str = "the weights", hint: str = ""
) -> list[str]:
    """Copy weights named as Hugging Face names them into ``model``; every one must fit exactly.

    Raises ValueError naming the missing keys, the unexpected keys and the shapes that differ
    (``source`` and ``hint`` go into the message). Returns the head keys that were left out
    (reading a ``BertModel`` from a file with heads keeps only ``bert.*``).
    """
    ours = dict(model.state_dict())
    expected = {hf_name(name): name for name in ours}  # Hugging Face's key -> ours
    prefixed = any(key.startswith("bert.") for key in expected)
    given, ignored = _normalise(weights, prefixed, source)
    missing, unexpected = expected.keys() - given.keys(), given.keys() - expected.keys()
    if missing or unexpected:
        problems = [f"missing keys: {_some(missing)}"] if missing else []
        problems += [f"unexpected keys: {_some(unexpected)}"] if unexpected else []
        raise ValueError(f"{source} does not fit {type(model).__name__}{hint}: {'; '.join(problems)}")
    wrong = [
        f"{key}: {tuple(given[key].shape)} in the file, {tuple(ours[name].shape)} in the model"
        for key, name in expected.items()
        if given[key].shape != ours[name].shape
    ]
    if wrong:
        raise ValueError(
            f"{source} does not fit {type(model).__name__}{hint}: shapes differ: {'; '.join(wrong)}"
        )
    not_float = [key for key, tensor in given.items() if not tensor.is_floating_point()]
    if not_float:
        raise ValueError(f"{source}: weights that are not floating point: {_some(not_float)}")
    model.load_state_dict({name: given[key] for key, name in expected.items()}, strict=True)
    return ignored


# --- the directory ------------------------------------------------------------------------------


def _vocab_writer(tokenizer, vocab_size: int) -> Callable[[Path], object]:
    """How to write vocab.txt from a tokenizer with ``save(path)`` (and ``len``) or a list of tokens."""
    if hasattr(tokenizer, "save"):
        size = len(tokenizer) if hasattr(tokenizer, "__len__") else None
        write = tokenizer.save
    else:
        tokens = list(tokenizer)
        bad = [
            i
            for i, token in enumerate(tokens)
            if not isinstance(token, str) or "\n" in token or "\r" in token
        ]
        if bad:
            raise ValueError(f"vocabulary entries {_some(map(str, bad))} are not one-line strings")
        size = len(tokens)
        write = lambda path: path.write_text("".join(token + "\n" for token in tokens), encoding="utf-8")
    if size is not None and size > vocab_size:
        raise ValueError(f"the tokenizer has {size} tokens, more than the model's vocab_size {vocab_size}")
    return write


def save_pretrained(model: nn.Module, directory: str | Path, tokenizer=None) -> Path:
    """Write ``model`` into ``directory`` as Hugging Face's ``save_pretrained`` would.

    config.json (Hugging Face's BertConfig, with ``architectures``), model.safetensors (Hugging Face's
    key names) and, given ``tokenizer`` (an object with ``save(path)``, e.g. bert_tutor's BertTokenizer,
    or a list of tokens in id order), vocab.txt. Each file is written atomically. Returns the directory.
    ``transformers.BertForPreTraining.from_pretrained(directory)`` then loads it unchanged.
    """
    architecture = _architecture(type(model))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: tensor.detach().to("cpu").contiguous() for key, tensor in hf_state_dict(model).items()}
    config = config_to_hf(model.config, architecture)
    write_vocab = _vocab_writer(tokenizer, model.config.vocab_size) if tokenizer is not None else None
    write_atomically(
        directory / WEIGHTS_FILE, lambda path: save_file(tensors, path, metadata={"format": "pt"})
    )
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    write_atomically(directory / CONFIG_FILE, lambda path: path.write_text(text, encoding="utf-8"))
    if write_vocab is not None:
        write_atomically(directory / VOCAB_FILE, write_vocab)
    return directory


def from_pretrained(model_class: type, directory: str | Path) -> nn.Module:
    """Build ``model_class`` (one of bert_tutor's BERTs) from a directory in Hugging Face's format.

    The directory may come from ``transformers``' ``save_pretrained`` or from :func:`save_pretrained`.
    A ``BertModel`` may be read from the file of a model with heads (the heads are left out), and has
    no pooler when the file has none; a model with a head needs that head's weights.
    Returns the model in eval mode, as ``transformers`` does.
    """
    architecture = _architecture(model_class)
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no model directory at {directory}")
    config, data = read_config(directory)
    if architecture == "BertForPreTraining" and data.get("tie_word_embeddings", True) is not True:
        raise ValueError(
            f"{directory / CONFIG_FILE}: tie_word_embeddings = {data['tie_word_embeddings']!r}; "
            "this model's masked-LM decoder is always the word embeddings"
        )
    weights = read_weights(directory)
    if issubclass(model_class, BertModel) and not any(key.endswith("pooler.dense.weight") for key in weights):
        model = model_class(config, add_pooling_layer=False)  # e.g. from BertForMaskedLM: no pooler
    else:
        model = model_class(config)
    hint = f" (config.json's architectures: {data['architectures']})" if "architectures" in data else ""
    load_hf_state_dict(model, weights, source=str(directory), hint=hint)
    return model.eval()
