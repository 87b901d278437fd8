"""Checks for the exercises of chapter 6, BERT.

Each ``check_*`` function calls the learner's function on inputs it makes itself (from its own
seeded generator, so the learner's random state is left alone), compares the result with
:mod:`bert_tutor.bert`, and prints ``✓ Exercise 6.N: ...`` or raises an AssertionError that
names the mistake when it recognises one.

    6.1  check_embeddings(my_embeddings)           token + segment + position, LayerNorm: (B, n, h)
    6.2  check_attention_mask(my_attention_mask)   (B, n) of 1/0 -> boolean (B, 1, 1, n), keys visible
    6.3  check_parameter_count(count_parameters)   parameters of BertModel(config), by formula
    6.4  check_pooler(my_pooler)                   tanh(dense(hidden state of [CLS])): (B, h)
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from bert_tutor.bert import BertConfig, BertEmbeddings, BertModel, bert_parameter_count
from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator

__all__ = ["check_attention_mask", "check_embeddings", "check_parameter_count", "check_pooler"]


def _fill_(module: torch.nn.Module, g: torch.Generator) -> None:
    """Give every parameter random values (LayerNorms too, so that forgetting one shows)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1.0 if p.dim() == 1 else 0.0))


# --- 6.1 ---------------------------------------------------------------------------------------


def check_embeddings(my_embeddings) -> None:
    """Exercise 6.1: ``my_embeddings(input_ids, token_type_ids, embeddings)`` returns (B, n, h).

    embeddings is a :class:`BertEmbeddings` in eval mode; use its three tables and its LayerNorm:
    LayerNorm(word[ids] + token_type[segments] + position[0..n-1]).
    """
    g = seeded_generator(61)
    config = BertConfig(vocab_size=40, hidden_size=12, num_heads=3, max_position_embeddings=16)
    with torch.random.fork_rng(devices=[]):  # building the module draws numbers: leave the learner's
        embeddings = BertEmbeddings(config).eval()
    _fill_(embeddings, g)
    batch, n = 2, 7
    ids = torch.randint(0, config.vocab_size, (batch, n), generator=g)  # (B, n)
    types = (torch.arange(n) >= torch.tensor([[3], [5]])).long()  # (B, n): A then B
    words = embeddings.word_embeddings.weight[ids]  # (B, n, h)
    segments = embeddings.token_type_embeddings.weight[types]  # (B, n, h)
    positions = embeddings.position_embeddings.weight  # (max, h)
    norm = embeddings.LayerNorm
    with torch.no_grad():
        expected = embeddings(ids, types)
        mistakes = {
            "you left out the segment (token type) embeddings: add "
            "embeddings.token_type_embeddings(token_type_ids), which tells sentence A from "
            "sentence B": norm(words + positions[:n]),
            "you left out the position embeddings: without them the encoder cannot tell the "
            "order of the tokens. Add embeddings.position_embeddings.weight[:n]": norm(words + segments),
            "you left out the LayerNorm: BERT normalises the sum, embeddings.LayerNorm(word + segment "
            "+ position)": words + segments + positions[:n],
            "your positions start at 1: the first token ([CLS]) has position 0, so take rows "
            "0 .. n-1 of the position table, torch.arange(n)": norm(words + segments + positions[1 : n + 1]),
            "you applied the LayerNorm before summing: sum the three embeddings first, then "
            "normalise the sum once": norm(words) + segments + positions[:n],
            "you normalised each table separately and added the results: sum the three embeddings "
            "first, then normalise the sum once": norm(words) + norm(segments) + norm(positions[:n]),
            "you used the segment ids as positions (or the other way round): the position of "
            "token j is j, its segment is token_type_ids[:, j]": norm(
                words + embeddings.token_type_embeddings.weight[torch.arange(n) % 2] + positions[types]
            ),
        }
        answer = my_embeddings(ids.clone(), types.clone(), embeddings)
    check_tensor("6.1", answer, expected, name="your embeddings", mistakes=mistakes)
    passed("6.1", "BERT embeddings")


# --- 6.2 ---------------------------------------------------------------------------------------


def check_attention_mask(my_attention_mask) -> None:
    """Exercise 6.2: ``my_attention_mask(attention_mask)`` turns (B, n) of 1 (token) / 0 (padding)
    into a boolean (B, 1, 1, n), True where a key may be attended to.

    The two axes of size 1 broadcast over the heads and the queries: every query of every head
    sees the same keys, the real tokens.
    """
    lengths = torch.tensor([6, 4, 2])
    n = 6
    attention_mask = (torch.arange(n) < lengths[:, None]).long()  # (B, n)
    batch = attention_mask.shape[0]
    expected = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, n)
    answer = my_attention_mask(attention_mask.clone())
    prefix = "Exercise 6.2: "
    if not isinstance(answer, torch.Tensor):
        raise AssertionError(f"{prefix}your mask should be a torch.Tensor, got {type(answer).__name__}")
    shape = tuple(answer.shape)
    if shape == (batch, 1, n, 1):
        raise AssertionError(
            f"{prefix}your mask has shape {shape}: it masks queries (rows), not keys. Padding must not "
            f"be *looked at*, so the mask runs along the last axis, the keys: (B, 1, 1, n)"
        )
    if shape == (batch, 1, n, n):
        raise AssertionError(
            f"{prefix}your mask has shape {shape}: it also hides the padding queries, whose rows then "
            f"have no visible key at all. Only keys need hiding: (B, 1, 1, n), "
            f"attention_mask[:, None, None, :]"
        )
    if shape in ((batch, n), (batch, 1, n), (batch, n, 1, 1)):
        raise AssertionError(
            f"{prefix}your mask has shape {shape}: it must broadcast against the scores (B, H, n, n), "
            f"with the keys on the last axis: (B, 1, 1, n) = attention_mask[:, None, None, :]"
        )
    if shape != tuple(expected.shape):
        raise AssertionError(f"{prefix}your mask has shape {shape}, expected {tuple(expected.shape)}")
    if answer.dtype != torch.bool:
        if torch.equal(answer.double(), expected.double()):
            raise AssertionError(
                f"{prefix}your mask holds the right numbers as {answer.dtype}: make it boolean "
                f"(.bool()), True = may attend; attention treats a mask of 0/1 numbers as something to add"
            )
        if (answer[expected] == 0).all() and (answer[~expected] < -1e3).all():
            raise AssertionError(
                f"{prefix}this is Hugging Face's additive form (0 where visible, a large negative number "
                f"where hidden), which is right to add to the scores; here return the boolean mask"
            )
        raise AssertionError(f"{prefix}your mask should be boolean (True = may attend), got {answer.dtype}")
    if torch.equal(answer, ~expected):
        raise AssertionError(
            f"{prefix}your mask is inverted: True must mark the keys that may be attended to, the real "
            f"tokens (attention_mask == 1), and False the padding"
        )
    if not torch.equal(answer, expected):
        wrong = (answer != expected).nonzero()[0].tolist()
        raise AssertionError(
            f"{prefix}your mask differs at index {tuple(wrong)}: sentence {wrong[0]} has "
            f"{int(lengths[wrong[0]])} real tokens, and only they may be attended to"
        )
    passed("6.2", "attention mask")


# --- 6.3 ---------------------------------------------------------------------------------------

_CONFIGS = (  # the odd one first: every typical mistake gives it a different count
    BertConfig(
        vocab_size=97,
        hidden_size=24,
        num_layers=3,
        num_heads=4,
        intermediate_size=40,
        max_position_embeddings=40,
        type_vocab_size=3,
    ),
    BertConfig.base(),
    BertConfig(vocab_size=1000),
)


def _parameter_mistakes(config: BertConfig) -> dict[int, str]:
    """Counts that typical mistakes give, with the hint for each."""
    V, P, T = config.vocab_size, config.max_position_embeddings, config.type_vocab_size
    h, i, L = config.hidden_size, config.intermediate_size, config.num_layers
    right = bert_parameter_count(config)
    biases = 4 * h + i + h  # per layer: four projections, two feed-forward Linear layers
    return {
        right - L * biases - h: "you left out the biases: every Linear layer has one per output "
        "(4h in the attention, i + h in the feed-forward network, h in the pooler)",
        right - L * 4 * h - 2 * h: "you left out the LayerNorms: one after the embeddings and two in "
        "each layer, each with a weight and a bias of h numbers (2h)",
        right - 2 * h: "you left out the LayerNorm of the embeddings (2h): the sum of the three "
        "embeddings is normalised before the first layer",
        right - L * 2 * h: "you counted one LayerNorm per layer: there are two, one after the attention "
        "and one after the feed-forward network, 2 * 2h",
        right - (2 * L + 1) * h: "you counted each LayerNorm as h numbers: it has a weight and a bias, 2h",
        right - (h * h + h): "you left out the pooler: one Linear(h, h) with its bias on [CLS], h² + h",
        right + V * h: "you counted the masked-LM decoder: BertModel has no heads, and even in "
        "BertForPreTraining the decoder's weight *is* the word embedding table (tied), counted once",
        right + V * h + V: "you counted the masked-LM decoder and its bias: BertModel has no heads, and "
        "the decoder's weight is the word embedding table (tied), counted once",
        right - T * h: "you left out the segment (token type) embeddings: type_vocab_size x h",
        right - P * h: "you left out the position embeddings: max_position_embeddings x h",
        right - L * (i + h): "you left out the feed-forward network's biases: i in the first Linear, "
        "h in the second",
        right - L * (h * i + i): "you counted one feed-forward Linear layer: there are two, h -> i and "
        "i -> h, 2·h·i + i + h",
        right - L * (h * h + h): "you counted three attention projections: the output projection is "
        "the fourth, 4(h² + h)",
    }


def check_parameter_count(count_parameters) -> None:
    """Exercise 6.3: ``count_parameters(config)`` returns, as an int, the number of parameters of
    ``BertModel(config)`` (embeddings, the layers, the pooler), by formula.

    Checked on an odd config with three segment types, BERT-base and the course's small model.
    """
    for config in _CONFIGS:
        with torch.device("meta"):  # shapes only: no memory, no random numbers
            expected = sum(p.numel() for p in BertModel(config).parameters())
        c = config
        case = (
            f"for vocab_size={c.vocab_size}, hidden_size={c.hidden_size}, num_layers={c.num_layers}, "
            f"intermediate_size={c.intermediate_size}, max_position_embeddings="
            f"{c.max_position_embeddings}, type_vocab_size={c.type_vocab_size}"
        )
        answer = count_parameters(config)
        if isinstance(answer, torch.Tensor) and answer.numel() == 1 and not answer.is_floating_point():
            answer = answer.item()
        if isinstance(answer, float) and answer == expected:
            raise AssertionError(
                f"Exercise 6.3: {case}, you returned the float {answer!r}: a count is an int "
                f"(use // instead of /, or int(...))"
            )
        if not isinstance(answer, numbers.Integral) or isinstance(answer, bool):
            raise AssertionError(
                f"Exercise 6.3: {case}, the count should be an int, got {type(answer).__name__}"
            )
        if answer == expected:
            continue
        hint = _parameter_mistakes(config).get(
            int(answer),
            "Count, in order: the three embedding tables and their LayerNorm; per layer the four "
            "attention projections 4(h² + h), two LayerNorms 2·2h and the feed-forward network "
            "2·h·i + i + h; the pooler h² + h",
        )
        hint = hint[0].upper() + hint[1:]
        raise AssertionError(f"Exercise 6.3: {case}, you counted {answer:,}, expected {expected:,}. {hint}")
    passed("6.3", "parameter count")


# --- 6.4 ---------------------------------------------------------------------------------------


def check_pooler(my_pooler) -> None:
    """Exercise 6.4: ``my_pooler(last_hidden_state, weight, bias)`` returns (B, h).

    last_hidden_state: (B, n, h); weight (h, h) and bias (h,) as an ``nn.Linear`` stores them, so
    dense(x) = x @ weight.T + bias. pooled = tanh(dense(last_hidden_state[:, 0])), the [CLS] vector.
    """
    g = seeded_generator(64)
    batch, n, h = 3, 5, 8
    x = torch.randn(batch, n, h, generator=g)  # (B, n, h)
    weight = torch.randn(h, h, generator=g) / h**0.5  # (h, h): (out, in)
    bias = torch.randn(h, generator=g)  # (h,)
    expected = torch.tanh(F.linear(x[:, 0], weight, bias))  # (B, h)
    answer = my_pooler(x.clone(), weight.clone(), bias.clone())
    check_tensor(
        "6.4",
        answer,
        expected,
        name="your pooled output",
        mistakes={
            "you averaged over all positions: BERT's pooler reads only the first token, [CLS], "
            "last_hidden_state[:, 0]": torch.tanh(F.linear(x.mean(1), weight, bias)),
            "you took the last position: BERT's pooler reads the first token, [CLS], "
            "last_hidden_state[:, 0]": torch.tanh(F.linear(x[:, -1], weight, bias)),
            "you left out the tanh: pooled = tanh(dense([CLS]))": F.linear(x[:, 0], weight, bias),
            "you used x @ weight: an nn.Linear stores its weight as (out, in) and computes "
            "x @ weight.T + bias": torch.tanh(x[:, 0] @ weight + bias),
            "you left out the bias: dense(x) = x @ weight.T + bias": torch.tanh(x[:, 0] @ weight.T),
            "the pooler's activation is tanh, not a sigmoid": torch.sigmoid(F.linear(x[:, 0], weight, bias)),
            "the pooler's activation is tanh, not ReLU": torch.relu(F.linear(x[:, 0], weight, bias)),
        },
    )
    passed("6.4", "pooler")
