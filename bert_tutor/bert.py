"""BERT: chapter 4's encoder with embeddings for tokens, segments and positions, and its heads (chapter 6).

Read it top to bottom: the config, the embeddings, one encoder layer (chapter 4's ``EncoderLayer``,
post-LN), the stack of layers, the pooler, ``BertModel``, then the heads: masked-LM and
next-sentence prediction for pretraining (``BertForPreTraining``), and the fine-tuning heads
(``BertForSequenceClassification``, ``BertForTokenClassification``).

Shapes use these letters:
    B  batch size         n  sequence length      h  hidden_size       i  intermediate_size
    V  vocabulary size    H  number of heads      L  number of layers  M  number of masked positions

Weight names follow Hugging Face's BERT (``embeddings.word_embeddings``, ``encoder.layer.N``,
``pooler.dense``, ``cls.predictions.transform.dense`` ...). Inside a layer the names are chapter 4's
(``self_attention.query``, ``feed_forward.intermediate`` ...); ``bert_tutor.hf`` maps them to Hugging
Face's (``attention.self.query``, ``intermediate.dense`` ...) with a table of eight rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bert_tutor.attention import MultiHeadAttention, fused_attention, merge_heads, split_heads
from bert_tutor.checks import check_positive_int
from bert_tutor.transformer import ACTIVATIONS, EncoderLayer, TransformerConfig, causal_mask

__all__ = [
    "BertConfig",
    "BertEmbeddings",
    "BertEncoder",
    "BertForPreTraining",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertLayer",
    "BertModel",
    "BertModelOutput",
    "BertPooler",
    "BertPreTrainingOutput",
    "ClassifierOutput",
    "MaskedLMHead",
    "PreTrainingHeads",
    "bert_parameter_count",
    "init_bert_weights",
]

IGNORE_INDEX = -100  # a label that no loss counts: unmasked positions, padding, sub-word pieces


# --- the config ---------------------------------------------------------------------------------


@dataclass
class BertConfig:
    """Sizes of a BERT; the defaults are the course's small model, which pretrains on a laptop CPU.

    vocab_size: the tokenizer's vocabulary size, ``len(tokenizer)``; there is no default.
    num_layers, num_heads: Hugging Face calls them num_hidden_layers, num_attention_heads.
    activation: "gelu" (exact, with erf, as Hugging Face's "gelu") or "relu".
    hidden_dropout: after the embeddings and after each sublayer; attention_dropout: on the weights.
    max_position_embeddings: the longest sequence; type_vocab_size: the number of segments (A, B).
    initializer_range: the standard deviation of the initial weights.
    num_labels, classifier_dropout: for the fine-tuning heads (None: use hidden_dropout).
    causal: True gives every position a causal mask (it sees itself and the tokens to its left
    only), the left-to-right model that chapter 7 compares BERT with; Hugging Face: is_decoder.
    """

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 8  # of 16 features: 8 narrow heads learned chapter 7's world sooner than 4 wide
    intermediate_size: int = 512
    activation: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 128
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    num_labels: int = 2
    classifier_dropout: float | None = None
    causal: bool = False

    @classmethod
    def base(cls, **changes) -> BertConfig:
        """BERT-base of the paper (110M parameters); ``changes`` override fields, e.g. num_layers=1."""
        sizes = dict(
            vocab_size=30522,
            hidden_size=768,
            num_layers=12,
            num_heads=12,
            intermediate_size=3072,
            max_position_embeddings=512,
            type_vocab_size=2,
        )
        return cls(**(sizes | changes))

    def __post_init__(self):
        sizes = ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size")
        for name in (*sizes, "max_position_embeddings", "type_vocab_size", "num_labels"):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        dropouts = ("hidden_dropout", "attention_dropout", "classifier_dropout")
        for name in dropouts:
            value = getattr(self, name)
            if value is None and name == "classifier_dropout":
                continue
            if not _is_number(value) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if not isinstance(self.causal, bool):
            raise ValueError(f"causal must be True or False, got {self.causal!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not _is_number(self.layer_norm_eps) or not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be a positive number, got {self.layer_norm_eps!r}")
        if not _is_number(self.initializer_range) or not self.initializer_range >= 0:
            raise ValueError(f"initializer_range must be a number >= 0, got {self.initializer_range!r}")
        if self.pad_token_id is not None and (
            isinstance(self.pad_token_id, bool)
            or not isinstance(self.pad_token_id, int)
            or not 0 <= self.pad_token_id < self.vocab_size
        ):
            raise ValueError(
                f"pad_token_id must be None or an id in [0, {self.vocab_size}) (vocab_size), "
                f"got {self.pad_token_id!r}"
            )

    def layer_config(self) -> TransformerConfig:
        """Chapter 4's config, with the fields an encoder layer reads: post-LN, BERT's sizes,
        activation and LayerNorm eps, the fused attention path."""
        return TransformerConfig(
            hidden_size=self.hidden_size,
            num_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            dropout=self.hidden_dropout,
            norm_first=False,
            activation=self.activation,
            layer_norm_eps=self.layer_norm_eps,
            fused=True,
        )


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def bert_parameter_count(config: BertConfig, pooler: bool = True) -> int:
    """The number of parameters of ``BertModel(config)``, by formula (chapter 6 derives it).

    Embeddings: a vector per token, per position and per segment, and a LayerNorm (2h).
    Each layer: four h x h projections with biases (query, key, value, output), the feed-forward
    network h -> i -> h with biases, and two LayerNorms. The pooler: one h x h layer with a bias.
    """
    h, i = config.hidden_size, config.intermediate_size
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    attention = 4 * (h * h + h)
    feed_forward = (h * i + i) + (i * h + h)
    layer = attention + feed_forward + 2 * (2 * h)
    return embeddings + config.num_layers * layer + (h * h + h if pooler else 0)


def init_bert_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation, for ``model.apply``: weights ~ N(0, std), biases 0, LayerNorms 1 and 0.

    The padding token's embedding starts at zero.
    """
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# --- the model ----------------------------------------------------------------------------------


class BertEmbeddings(nn.Module):
    """Token + segment + position embeddings, summed, then LayerNorm and dropout.

    forward(input_ids (B, n), token_type_ids (B, n) or None = all segment A) -> (B, n, h).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        h = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, h)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, h)
        self.LayerNorm = nn.LayerNorm(h, eps=config.layer_norm_eps)  # Hugging Face's name
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        n = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)  # (B, n): every token in segment A
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)  # (B, n, h)
        x = x + self.position_embeddings.weight[:n]  # (n, h) broadcasts over the batch
        return self.dropout(self.LayerNorm(x))  # (B, n, h)


class BertLayer(EncoderLayer):
    """Chapter 4's post-LN encoder layer, as BERT uses it.

    Two differences from chapter 4's defaults, set here: the attention weights have their own
    dropout (attention_dropout), and the feed-forward network has no dropout between its two
    Linear layers (BERT drops out only the sublayer's output, in the residual connection).
    forward(x (B, n, h), mask (B, 1, 1, n) or None, need_weights) -> (x (B, n, h), weights
    (B, H, n, n) or None). Weights need the naive path: ``self_attention.fused = False``.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config.layer_config())
        self.self_attention.dropout = nn.Dropout(config.attention_dropout)
        self.feed_forward.dropout = nn.Identity()

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        weights = None

        def attend(y: torch.Tensor) -> torch.Tensor:  # the attention sublayer, keeping its weights
            nonlocal weights
            if self.self_attention.fused and not need_weights:
                return _fused_self_attention(self.self_attention, y, mask)  # (B, n, h)
            context, weights = self.self_attention(y, mask=mask, need_weights=need_weights)  # (B, n, h)
            return context

        x = self.self_attention_residual(x, attend)  # LayerNorm(x + dropout(attention(x)))
        x = self.feed_forward_residual(x, self.feed_forward)  # LayerNorm(x + dropout(ffn(x)))
        return x, weights  # (B, n, h), (B, H, n, n) or None


def _fused_self_attention(
    attention: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """``attention(x, mask=mask)[0]`` on the fast path, with one projection for queries, keys and values.

    The three (h, h) weights, stacked into one (3h, h), make one matmul of x instead of three (and one,
    not three, in the backward pass); the weights stay the three Linear layers that Hugging Face's
    names map to. x (B, n, h), mask (B, 1, 1, n) or None -> (B, n, h).
    """
    weight = torch.cat([attention.query.weight, attention.key.weight, attention.value.weight])  # (3h, h)
    bias = torch.cat([attention.query.bias, attention.key.bias, attention.value.bias])  # (3h,)
    queries, keys, values = F.linear(x, weight, bias).chunk(3, dim=-1)  # each (B, n, h)
    q, k, v = (split_heads(t, attention.num_heads) for t in (queries, keys, values))  # each (B, H, n, d)
    dropout_p = attention.dropout.p if attention.training else 0.0
    context = fused_attention(q, k, v, mask=mask, dropout_p=dropout_p)  # (B, H, n, d)
    return attention.output(merge_heads(context))  # (B, n, h)


class BertEncoder(nn.Module):
    """L BERT layers, one after the other; optionally keeps every layer's output and weights.

    forward(x (B, n, h), mask, output_hidden_states, output_attentions) returns (x (B, n, h),
    hidden_states: L + 1 tensors (B, n, h), the input then each layer's output, or None,
    attentions: L tensors (B, H, n, n), or None).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_layers))  # HF: "layer"

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None, tuple[torch.Tensor, ...] | None]:
        hidden_states, attentions = [x], []
        for layer in self.layer:
            x, weights = layer(x, mask, need_weights=output_attentions)  # (B, n, h), (B, H, n, n)
            hidden_states.append(x)
            attentions.append(weights)
        return (
            x,
            tuple(hidden_states) if output_hidden_states else None,
            tuple(attentions) if output_attentions else None,
        )


class BertPooler(nn.Module):
    """The sequence's summary: tanh(dense(hidden state of [CLS])). forward((B, n, h)) -> (B, h)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(x[:, 0]))  # (B, h): the first token is always [CLS]


class BertModelOutput(NamedTuple):
    """What ``BertModel`` returns.

    last_hidden_state (B, n, h); pooled_output (B, h), None without a pooler;
    hidden_states: L + 1 tensors (B, n, h) (the embeddings, then each layer) if asked, else None;
    attentions: L tensors (B, H, n, n) if asked, else None.
    """

    last_hidden_state: torch.Tensor
    pooled_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def _attention_mask(
    attention_mask: torch.Tensor | None, input_ids: torch.Tensor, causal: bool
) -> torch.Tensor | None:
    """Which keys each query may see, True = may attend, or None for "all of them".

    attention_mask (B, n): 1 (or True) for a real token, 0 for padding. Returns boolean (B, 1, 1, n)
    (the same keys for every head and query); with ``causal``, (B or 1, 1, n, n), also lower-triangular.
    """
    n = input_ids.shape[1]
    padding = None
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(attention_mask.shape)}"
            )
        # No padding on the CPU: no mask, so attention can take its fastest kernel. (Checking costs
        # nothing on the CPU; on a GPU it would wait for the device, so there the mask is kept.)
        if not (attention_mask.device.type == "cpu" and bool(attention_mask.all())):
            padding = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, n)
    if not causal:
        return padding
    left_to_right = causal_mask(n, device=input_ids.device)[None, None]  # (1, 1, n, n)
    return left_to_right if padding is None else padding & left_to_right  # (B or 1, 1, n, n)


class _PretrainedIO:
    """``save_pretrained`` and ``from_pretrained`` in Hugging Face's format; see ``bert_tutor.hf``."""

    def save_pretrained(self, directory, tokenizer=None):
        """Write config.json, model.safetensors (and vocab.txt, given a tokenizer or a token list)."""
        from bert_tutor.hf import save_pretrained

        return save_pretrained(self, directory, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, directory):
        """Read a directory written by ``save_pretrained`` here or by Hugging Face's ``transformers``."""
        from bert_tutor.hf import from_pretrained

        return from_pretrained(cls, directory)


class BertModel(_PretrainedIO, nn.Module):
    """Embeddings, the bidirectional encoder and the pooler.

    forward(input_ids (B, n), token_type_ids (B, n) or None, attention_mask (B, n) or None,
    output_hidden_states, output_attentions) -> :class:`BertModelOutput`.
    Attention takes the fused path (``F.scaled_dot_product_attention``) unless
    ``fused_attention`` is set to False; attention weights (output_attentions=True) need the naive path.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(lambda module: init_bert_weights(module, config.initializer_range))

    @property
    def fused_attention(self) -> bool:
        """True: attention by ``F.scaled_dot_product_attention`` (fast); False: chapter 3's naive path."""
        return all(layer.self_attention.fused for layer in self.encoder.layer)

    @fused_attention.setter
    def fused_attention(self, fused: bool) -> None:
        for layer in self.encoder.layer:
            layer.self_attention.fused = bool(fused)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertModelOutput:
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        if input_ids.shape[1] > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {input_ids.shape[1]} is longer than max_position_embeddings "
                f"{self.config.max_position_embeddings}"
            )
        if token_type_ids is not None and token_type_ids.shape != input_ids.shape:
            raise ValueError(
                f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                f"got {tuple(token_type_ids.shape)}"
            )
        if output_attentions and any(layer.self_attention.fused for layer in self.encoder.layer):
            raise ValueError(
                "output_attentions=True needs the attention weights, which the fused path never forms: set "
                "model.fused_attention = False first (for a model with a head: model.bert.fused_attention)"
            )
        mask = _attention_mask(attention_mask, input_ids, self.config.causal)  # (B, 1, 1 or n, n) or None
        x = self.embeddings(input_ids, token_type_ids)  # (B, n, h)
        x, hidden_states, attentions = self.encoder(x, mask, output_hidden_states, output_attentions)
        pooled = self.pooler(x) if self.pooler is not None else None  # (B, h)
        return BertModelOutput(x, pooled, hidden_states, attentions)


# --- pretraining: masked-LM and next-sentence prediction ----------------------------------------


class PredictionHeadTransform(nn.Module):
    """dense, activation, LayerNorm: (..., h) -> (..., h). Hugging Face: ``predictions.transform``."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = ACTIVATIONS[config.activation]()
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.activation(self.dense(x)))  # (..., h)


class MaskedLMHead(nn.Module):
    """Scores every vocabulary token at each position given: transform, then the word embeddings.

    The decoder is tied: its weight *is* the input word embeddings (V, h), passed to forward, so
    a token's input and output vectors are one; it has its own bias (V,).
    forward(x (..., h), word_embeddings (V, h)) -> logits (..., V).
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.transform = PredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, x: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(x), word_embeddings, self.bias)  # (..., V)


class PreTrainingHeads(nn.Module):
    """The two pretraining heads, named as Hugging Face's ``cls``: ``predictions`` (masked-LM) and
    ``seq_relationship`` (next sentence: is B the sentence after A? logits (B, 2), 0 = yes)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.predictions = MaskedLMHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertPreTrainingOutput(NamedTuple):
    """What ``BertForPreTraining`` returns.

    loss: mlm_loss + nsp_loss (the ones whose labels were given), or None; mlm_loss, nsp_loss: ();
    mlm_logits: (B, n, V), or (M, V) for the M masked positions when masked_positions is given;
    nsp_logits: (B, 2); hidden_states, attentions: as in :class:`BertModelOutput`.
    """

    loss: torch.Tensor | None
    mlm_loss: torch.Tensor | None
    nsp_loss: torch.Tensor | None
    mlm_logits: torch.Tensor
    nsp_logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class BertForPreTraining(_PretrainedIO, nn.Module):
    """BERT with its two pretraining heads: fill in the masked tokens, and tell whether B follows A.

    forward(input_ids (B, n), token_type_ids, attention_mask, masked_positions, mlm_labels,
    next_sentence_label, output_hidden_states, output_attentions) -> :class:`BertPreTrainingOutput`.

    masked_positions: boolean (B, n), True where a token is to be predicted. Given, the masked-LM
    head runs only there (about 15% of the positions), which is most of the cost saved:
    mlm_logits is (M, V), in row-major order (``x[masked_positions]``). Without it, (B, n, V).
    mlm_labels: the original token ids, (B, n) with -100 where nothing is predicted (or (M,) when
    masked_positions is given). next_sentence_label: (B,), 0 = B follows A, 1 = B is random.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.cls = PreTrainingHeads(config)
        self.cls.apply(lambda module: init_bert_weights(module, config.initializer_range))

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        masked_positions: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> BertPreTrainingOutput:
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        x = out.last_hidden_state  # (B, n, h)
        if masked_positions is not None:
            if masked_positions.dtype != torch.bool or masked_positions.shape != input_ids.shape:
                raise ValueError(
                    f"masked_positions must be a boolean tensor shaped like input_ids "
                    f"{tuple(input_ids.shape)}, got {masked_positions.dtype} {tuple(masked_positions.shape)}"
                )
            x = x[masked_positions]  # (M, h): gather before the transform, the rest is never scored
            if mlm_labels is not None and mlm_labels.shape == masked_positions.shape:
                mlm_labels = mlm_labels[masked_positions]  # (M,)
        mlm_logits = self.cls.predictions(
            x, self.bert.embeddings.word_embeddings.weight
        )  # (B, n, V) or (M, V)
        nsp_logits = self.cls.seq_relationship(out.pooled_output)  # (B, 2)

        mlm_loss = nsp_loss = None
        if mlm_labels is not None:
            if mlm_labels.shape != mlm_logits.shape[:-1]:
                raise ValueError(
                    f"mlm_labels must have shape {tuple(mlm_logits.shape[:-1])}, "
                    f"got {tuple(mlm_labels.shape)}"
                )
            mlm_loss = F.cross_entropy(
                mlm_logits.reshape(-1, mlm_logits.shape[-1]),
                mlm_labels.reshape(-1),
                ignore_index=IGNORE_INDEX,
            )  # the mean over the predicted positions
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp_logits, next_sentence_label.reshape(-1))
        losses = [loss for loss in (mlm_loss, nsp_loss) if loss is not None]
        loss = sum(losses) if losses else None
        return BertPreTrainingOutput(
            loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits, out.hidden_states, out.attentions
        )


# --- fine-tuning heads --------------------------------------------------------------------------


class ClassifierOutput(NamedTuple):
    """What the fine-tuning heads return: loss () or None, logits ((B, num_labels) per sequence or
    (B, n, num_labels) per token), hidden_states and attentions as in :class:`BertModelOutput`."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class _Classifier(_PretrainedIO, nn.Module):
    """BERT, dropout and a Linear(h, num_labels) classifier; the subclasses say what is classified."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool):
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooling_layer=add_pooling_layer)
        dropout = config.hidden_dropout if config.classifier_dropout is None else config.classifier_dropout
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        init_bert_weights(self.classifier, config.initializer_range)


class BertForSequenceClassification(_Classifier):
    """A label per sequence (or sentence pair), from the pooled [CLS] vector.

    forward(input_ids (B, n), token_type_ids, attention_mask, labels (B,), ...) -> ClassifierOutput
    with logits (B, num_labels). With num_labels == 1 it is a regression (labels are floats, MSE loss);
    otherwise cross-entropy over the labels.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config, add_pooling_layer=True)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> ClassifierOutput:
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.pooled_output))  # (B, num_labels)
        loss = None
        if labels is not None:
            if self.config.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).reshape(-1))
            else:
                loss = F.cross_entropy(logits, labels.reshape(-1))
        return ClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class BertForTokenClassification(_Classifier):
    """A label per token (e.g. named entities), from each token's last hidden state. No pooler.

    forward(input_ids (B, n), token_type_ids, attention_mask, labels (B, n) with -100 where no
    label counts (padding, later pieces of a word), ...) -> ClassifierOutput, logits (B, n, num_labels).
    """

    def __init__(self, config: BertConfig):
        super().__init__(config, add_pooling_layer=False)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> ClassifierOutput:
        out = self.bert(input_ids, token_type_ids, attention_mask, output_hidden_states, output_attentions)
        logits = self.classifier(self.dropout(out.last_hidden_state))  # (B, n, num_labels)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )
        return ClassifierOutput(loss, logits, out.hidden_states, out.attentions)
