"""An RNN encoder-decoder, with or without Bahdanau attention (chapter 1).

The encoder reads the source with a bidirectional GRU and keeps one vector per source position
(its *annotations*, shape (B, S, H)), as in Bahdanau, Cho and Bengio (2015). The decoder
writes the target one word at a time with a GRUCell. At each step it needs a *context* vector
(B, H) that says what the source is:

* without attention: the encoder's summary of the sentence, the same at every step (one
  fixed-size vector that must hold the whole sentence: the classic encoder-decoder);
* with attention: a weighted average of all annotations, with weights computed afresh at each
  step by :class:`~bert_tutor.attention.AdditiveAttention` from the decoder's state (the query)
  and the annotations (keys and values). Padded source positions get weight 0.

Shapes: ``B`` batch, ``S`` source length, ``T`` target length, ``E`` embedding size,
``H`` hidden size, ``V`` target vocabulary size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bert_tutor.attention import AdditiveAttention
from bert_tutor.checks import check_positive_int
from bert_tutor.toy_translation import LENGTH_BUCKETS, Pair, Vocab, iterate_batches, length_bucket, make_batch

__all__ = [
    "Decoder",
    "Encoder",
    "Seq2Seq",
    "Seq2SeqConfig",
    "evaluate",
    "greedy_decode",
    "predict",
    "train_seq2seq",
    "translate",
]


@dataclass
class Seq2SeqConfig:
    """Sizes of the encoder-decoder; ``attention`` switches Bahdanau attention on or off."""

    source_vocab_size: int
    target_vocab_size: int
    embed_size: int = 32
    hidden_size: int = 64
    attention: bool = True
    pad_id: int = 0

    def __post_init__(self):
        for name in ("source_vocab_size", "target_vocab_size", "embed_size", "hidden_size"):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % 2:
            raise ValueError(f"hidden_size must be even (half for each direction), got {self.hidden_size}")
        if not 0 <= self.pad_id < min(self.source_vocab_size, self.target_vocab_size):
            raise ValueError(f"pad_id must be a valid id in both vocabularies, got {self.pad_id}")


class Encoder(nn.Module):
    """Embed the source and read it with a bidirectional GRU (H/2 units each way)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.source_vocab_size, config.embed_size, padding_idx=config.pad_id)
        self.rnn = nn.GRU(config.embed_size, config.hidden_size // 2, batch_first=True, bidirectional=True)

    def forward(self, source: torch.Tensor, source_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """source (B, S) ids, source_lens (B,) -> annotations (B, S, H), summary (B, H).

        Annotation j joins a left-to-right state (words 0..j) and a right-to-left state
        (words j..end), so it describes word j in the context of the whole sentence. Packing
        makes each direction stop at the sentence's own length: the right-to-left pass starts
        at the last real word, not in the padding. The summary joins the two final states.
        """
        if (
            source_lens.shape != source.shape[:1]
            or source_lens.min() < 1
            or source_lens.max() > source.shape[1]
        ):
            raise ValueError(
                f"source_lens must hold one length in [1, {source.shape[1]}] per sentence of source "
                f"{tuple(source.shape)}, got {source_lens.tolist()}"
            )
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embedding(source), source_lens.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_annotations, final = self.rnn(packed)  # final: (2, B, H/2), one per direction
        annotations, _ = nn.utils.rnn.pad_packed_sequence(
            packed_annotations, batch_first=True, total_length=source.shape[1]
        )  # (B, S, H), zeros at padded positions
        summary = torch.cat([final[0], final[1]], dim=-1)  # (B, H)
        return annotations, summary


class Decoder(nn.Module):
    """A GRUCell that writes one target word per step, fed by a context vector."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        E, H, V = config.embed_size, config.hidden_size, config.target_vocab_size
        self.embedding = nn.Embedding(V, E, padding_idx=config.pad_id)
        self.attention = (
            AdditiveAttention(query_size=H, key_size=H, hidden_size=H) if config.attention else None
        )
        self.rnn = nn.GRUCell(E + H, H)  # input: previous word + context
        self.output = nn.Linear(H + H, V)  # from: new state + context

    def step(
        self,
        previous: torch.Tensor,
        state: torch.Tensor,
        annotations: torch.Tensor,
        source_lens: torch.Tensor,
        summary: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One step. previous (B,) ids of the previous word; state (B, H); annotations (B, S, H);
        source_lens (B,); summary (B, H) (used only without attention).

        Returns logits (B, V) for the next word, the new state (B, H) and, with attention,
        the weights (B, S) over the source positions (None without attention).
        """
        if self.attention is None:
            context, weights = summary, None  # (B, H): the same for every step
        else:
            # The query is the state before this step: "what do I need to write next?"
            context, weights = self.attention(
                state[:, None, :], annotations, annotations, valid_lens=source_lens
            )  # (B, 1, H), (B, 1, S)
            context, weights = context[:, 0], weights[:, 0]  # (B, H), (B, S)
        inputs = torch.cat([self.embedding(previous), context], dim=-1)  # (B, E + H)
        state = self.rnn(inputs, state)  # (B, H)
        logits = self.output(torch.cat([state, context], dim=-1))  # (B, V)
        return logits, state, weights


class Seq2Seq(nn.Module):
    """Encoder + decoder. forward() is teacher-forced: the decoder reads the true previous word."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def forward(
        self, source: torch.Tensor, source_lens: torch.Tensor, target_in: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """source (B, S), source_lens (B,), target_in (B, T) starting with <bos>.

        Returns logits (B, T, V) and, with attention, the weights (B, T, S) (else None).
        """
        if source.dim() != 2 or target_in.dim() != 2 or source.shape[0] != target_in.shape[0]:
            raise ValueError(
                f"expected source (B, S) and target_in (B, T) with the same B, "
                f"got {tuple(source.shape)} and {tuple(target_in.shape)}"
            )
        annotations, summary = self.encoder(source, source_lens)  # checks source_lens
        state = summary  # the decoder starts from the encoder's summary
        all_logits, all_weights = [], []
        for t in range(target_in.shape[1]):
            logits, state, weights = self.decoder.step(
                target_in[:, t], state, annotations, source_lens, summary
            )
            all_logits.append(logits)
            all_weights.append(weights)
        logits = torch.stack(all_logits, dim=1)  # (B, T, V)
        weights = None if self.decoder.attention is None else torch.stack(all_weights, dim=1)  # (B, T, S)
        return logits, weights


def train_seq2seq(
    model: Seq2Seq,
    pairs: Sequence[Pair],
    source_vocab: Vocab,
    target_vocab: Vocab,
    num_steps: int,
    batch_size: int = 64,
    lr: float = 5e-3,
    seed: int = 0,
    clip: float = 1.0,
) -> list[float]:
    """Train with teacher forcing and Adam for ``num_steps`` batches; return the loss per step.

    The loss is the cross-entropy of each target word (and the final <eos>), averaged over the
    real positions (padding is ignored). Batches are shuffled with a generator seeded by ``seed``.
    """
    check_positive_int("num_steps", num_steps)
    if len(pairs) == 0:
        raise ValueError("cannot train on no pairs")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses: list[float] = []
    while len(losses) < num_steps:
        for batch in iterate_batches(pairs, source_vocab, target_vocab, batch_size, generator):
            logits, _ = model(batch.source, batch.source_lens, batch.target_in)  # (B, T, V)
            loss = F.cross_entropy(
                logits.flatten(0, 1), batch.target_out.flatten(), ignore_index=target_vocab.pad_id
            )
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == num_steps:
                break
    model.eval()
    return losses


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq,
    source: torch.Tensor,
    source_lens: torch.Tensor,
    bos_id: int = Vocab.bos_id,
    eos_id: int = Vocab.eos_id,
    max_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Translate a batch by always taking the most likely next word, until <eos>.

    source (B, S), source_lens (B,). max_len: most steps (default 2 S).
    Returns tokens (B, T) (each row's words, then its <eos>, then padding with the model's
    pad_id), lengths (B,) (words before <eos>; T if none came) and, with attention,
    weights (B, T, S) (row t: where step t looked; zero after a row's <eos>), else None.
    """
    model.eval()
    max_len = 2 * source.shape[1] if max_len is None else max_len
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    batch = source.shape[0]
    annotations, summary = model.encoder(source, source_lens)
    state = summary
    previous = torch.full((batch,), bos_id, dtype=torch.long)
    finished = torch.zeros(batch, dtype=torch.bool)
    lengths = torch.full((batch,), max_len, dtype=torch.long)
    tokens, all_weights = [], []
    for t in range(max_len):
        logits, state, weights = model.decoder.step(previous, state, annotations, source_lens, summary)
        previous = logits.argmax(dim=-1)  # (B,)
        pad = torch.full_like(previous, model.config.pad_id)
        tokens.append(torch.where(finished, pad, previous))
        if weights is not None:
            all_weights.append(weights * ~finished[:, None])
        newly_done = ~finished & (previous == eos_id)
        lengths[newly_done] = t
        finished |= newly_done
        if finished.all():
            break
    weights = torch.stack(all_weights, dim=1) if all_weights else None  # (B, T, S)
    return torch.stack(tokens, dim=1), lengths, weights


def translate(
    model: Seq2Seq, sentence: str | Sequence[str], source_vocab: Vocab, target_vocab: Vocab
) -> tuple[list[str], torch.Tensor | None]:
    """Translate one sentence; return its words and, with attention, the weights.

    The weights have shape (len(words) + 1, len(sentence) + 1): one row per written word and
    one for the final <eos> (if it came), one column per source word and one for the source's
    <eos>. Without attention the second value is None.
    """
    ids = source_vocab.encode(sentence, add_eos=True)
    tokens, lengths, weights = greedy_decode(
        model, torch.tensor([ids]), torch.tensor([len(ids)]), target_vocab.bos_id, target_vocab.eos_id
    )
    words = _written_words(tokens[0], lengths[0], target_vocab)
    if weights is None:
        return words, None
    rows = min(len(words) + 1, weights.shape[1])  # + the <eos> step, if decoding reached it
    return words, weights[0, :rows]


def _written_words(tokens: torch.Tensor, length: torch.Tensor, vocab: Vocab) -> list[str]:
    """The words of one decoded row before its <eos>. A special token written by mistake (say
    <pad>) stays in, so that it counts as an error and each word keeps its row of weights."""
    return [vocab.itos[i] for i in tokens[: int(length)].tolist()]


def predict(
    model: Seq2Seq, pairs: Sequence[Pair], source_vocab: Vocab, target_vocab: Vocab, batch_size: int = 256
) -> list[tuple[str, ...]]:
    """Greedy translations (tuples of words) of the sources of ``pairs``, in order."""
    predictions = []
    for start in range(0, len(pairs), batch_size):
        batch = make_batch(pairs[start : start + batch_size], source_vocab, target_vocab)
        tokens, lengths, _ = greedy_decode(
            model, batch.source, batch.source_lens, target_vocab.bos_id, target_vocab.eos_id
        )
        predictions += [
            tuple(_written_words(row, n, target_vocab)) for row, n in zip(tokens, lengths, strict=True)
        ]
    return predictions


def evaluate(
    model: Seq2Seq, pairs: Sequence[Pair], source_vocab: Vocab, target_vocab: Vocab
) -> dict[str, float]:
    """Exact-sentence accuracy: the fraction of pairs translated with every word right.

    Returns {"all": accuracy, "short": ..., "medium": ..., "long": ...} (the buckets of
    LENGTH_BUCKETS, by source length; a bucket with no pairs is left out).
    """
    if len(pairs) == 0:
        raise ValueError("cannot evaluate on no pairs")
    predictions = predict(model, pairs, source_vocab, target_vocab)
    right = [prediction == pair.target for prediction, pair in zip(predictions, pairs, strict=True)]
    accuracy = {"all": sum(right) / len(right)}
    for name, _, _ in LENGTH_BUCKETS:
        in_bucket = [
            ok for ok, pair in zip(right, pairs, strict=True) if length_bucket(len(pair.source)) == name
        ]
        if in_bucket:
            accuracy[name] = sum(in_bucket) / len(in_bucket)
    return accuracy
