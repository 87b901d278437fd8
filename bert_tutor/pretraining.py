"""BERT's two pretraining tasks, as data: next sentence prediction pairs and masked tokens.

* :func:`make_nsp_pairs` cuts documents into ``[CLS] A [SEP] B [SEP]`` pairs: half the time B is
  the text that really follows A, half the time it comes from another document.
* :func:`mask_tokens` chooses 15 % of the ordinary tokens of each sequence; of those, 80 %
  become ``[MASK]``, 10 % a random token and 10 % stay as they are. It is called on every batch,
  so each epoch masks different tokens ("dynamic masking", RoBERTa).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "NspPair",
    "PretrainingBatch",
    "collate_pairs",
    "make_nsp_pairs",
    "mask_tokens",
    "split_pairs",
    "tokenize_documents",
    "word_starts",
]

IGNORE_INDEX = -100  # label of positions the MLM loss skips (PyTorch's cross_entropy default)


@dataclass(frozen=True)
class NspPair:
    """Token ids of segment A and segment B (no special tokens) and whether B follows A."""

    tokens_a: tuple[int, ...]
    tokens_b: tuple[int, ...]
    is_next: bool


def _truncate_pair(a: list[int], b: list[int], budget: int, rng: random.Random) -> None:
    """Shorten the longer of a and b, one token at a time, from its front or back at random
    (as Google's original does), until ``len(a) + len(b) <= budget``."""
    while len(a) + len(b) > budget:
        longer = a if len(a) > len(b) else b
        del longer[0 if rng.random() < 0.5 else -1]


def make_nsp_pairs(
    documents: Sequence[Sequence[Sequence[int]]], max_length: int, seed: int = 0
) -> list[NspPair]:
    """Next-sentence-prediction pairs from tokenized documents.

    documents: a list of documents, each a list of sentences, each a list of token ids.
    Each document is cut into chunks of consecutive sentences that fill about ``max_length - 3``
    tokens; a chunk is split at a random sentence boundary into A and B. With probability 1/2, B is
    replaced by sentences from a random *other* document (``is_next=False``). Pairs are truncated
    so that ``[CLS] A [SEP] B [SEP]`` fits ``max_length``. Documents need at least 2 sentences.
    """
    if max_length < 5:
        raise ValueError(
            f"max_length must leave room for [CLS] A [SEP] B [SEP]: at least 5, got {max_length}"
        )
    usable = [doc for doc in documents if len(doc) >= 2]
    if len(usable) < 2:
        raise ValueError(
            f"next sentence prediction needs at least 2 documents of 2 or more sentences, got {len(usable)}"
        )
    rng = random.Random(seed)
    budget = max_length - 3
    pairs = []
    for index, document in enumerate(usable):
        start = 0
        while start < len(document) - 1:
            # Take sentences until the chunk fills the budget (at least two sentences).
            end, length = start, 0
            while end < len(document) and (end - start < 2 or length + len(document[end]) <= budget):
                length += len(document[end])
                end += 1
            cut = rng.randint(start + 1, end - 1)  # A = [start, cut), B = [cut, end)
            tokens_a = [t for sentence in document[start:cut] for t in sentence]
            is_next = rng.random() < 0.5
            if is_next:
                tokens_b = [t for sentence in document[cut:end] for t in sentence]
            else:
                other = usable[rng.choice([i for i in range(len(usable)) if i != index])]
                first = rng.randrange(len(other))
                tokens_b = [t for sentence in other[first : first + end - cut] for t in sentence]
            _truncate_pair(tokens_a, tokens_b, budget, rng)
            if tokens_a and tokens_b:
                pairs.append(NspPair(tuple(tokens_a), tuple(tokens_b), is_next))
            start = end
    return pairs


@dataclass
class PretrainingBatch:
    """A padded batch of NSP pairs, before masking. All tensors (B, L) int64 but the labels (B,)."""

    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    next_sentence_label: torch.Tensor  # (B,): 0 = B follows A, 1 = B is random (Hugging Face's convention)


def collate_pairs(pairs: Sequence[NspPair], cls_id: int, sep_id: int, pad_id: int) -> PretrainingBatch:
    """Lay pairs out as ``[CLS] A [SEP] B [SEP]`` rows padded on the right to the longest one."""
    if not pairs:
        raise ValueError("collate_pairs needs at least one pair")
    rows = [[cls_id, *p.tokens_a, sep_id, *p.tokens_b, sep_id] for p in pairs]
    length = max(map(len, rows))
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    token_type_ids = torch.zeros(len(rows), length, dtype=torch.long)
    attention_mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, (row, pair) in enumerate(zip(rows, pairs, strict=True)):
        input_ids[i, : len(row)] = torch.tensor(row)
        token_type_ids[i, len(pair.tokens_a) + 2 : len(row)] = 1
        attention_mask[i, : len(row)] = 1
    labels = torch.tensor([0 if p.is_next else 1 for p in pairs], dtype=torch.long)
    return PretrainingBatch(input_ids, token_type_ids, attention_mask, labels)


def word_starts(tokens: Sequence[str]) -> torch.Tensor:
    """(L,) bool: True where a token begins a word (is not a ``##`` continuation)."""
    return torch.tensor([not token.startswith("##") for token in tokens], dtype=torch.bool)


def mask_tokens(
    input_ids: torch.Tensor,
    special_ids: Sequence[int],
    mask_id: int,
    vocab_size: int,
    generator: torch.Generator,
    mlm_probability: float = 0.15,
    word_start: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose tokens to predict and corrupt them, BERT's way.

    input_ids: (B, L). special_ids: ids never chosen ([CLS], [SEP], [PAD], ...).
    In each row, ``max(1, round(mlm_probability * n))`` of its n ordinary tokens are chosen at
    random; each chosen token becomes ``[MASK]`` (80 %), a random ordinary token (10 %) or stays
    (10 %). word_start: (B, L) bool for whole-word masking: a word (a start and the ``##`` pieces
    after it) is chosen or left whole, until the row's quota is reached.
    Returns (corrupted input_ids (B, L), labels (B, L): the original id at chosen positions,
    -100 elsewhere).
    """
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (batch, length), got shape {tuple(input_ids.shape)}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    if word_start is not None and word_start.shape != input_ids.shape:
        raise ValueError(
            f"word_start has shape {tuple(word_start.shape)}, input_ids {tuple(input_ids.shape)}"
        )
    special = torch.tensor(sorted(set(special_ids)), device=input_ids.device)
    ordinary = ~torch.isin(input_ids, special)  # (B, L)
    chosen = torch.zeros_like(ordinary)
    for row in range(input_ids.shape[0]):
        positions = ordinary[row].nonzero().flatten()  # (n,)
        if positions.numel() == 0:
            continue
        quota = max(1, round(mlm_probability * positions.numel()))
        if word_start is None:
            order = torch.randperm(positions.numel(), generator=generator)
            chosen[row, positions[order[:quota]]] = True
            continue
        # Whole words: group each ordinary position with the word start before it.
        word_of = torch.cumsum(word_start[row] & ordinary[row], dim=0)[positions]  # (n,)
        words = torch.unique(word_of)
        taken = 0
        for word in words[torch.randperm(words.numel(), generator=generator)]:
            members = positions[word_of == word]
            if taken + members.numel() > quota and taken > 0:
                continue
            chosen[row, members] = True
            taken += members.numel()
            if taken >= quota:
                break
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    draw = torch.rand(input_ids.shape, generator=generator).to(input_ids.device)  # (B, L)
    corrupted = input_ids.clone()
    corrupted[chosen & (draw < 0.8)] = mask_id
    randomise = chosen & (draw >= 0.8) & (draw < 0.9)
    allowed = torch.ones(vocab_size, dtype=torch.bool)  # (V,): the ids a random replacement may take
    allowed[[i for i in {*special_ids, mask_id} if 0 <= i < vocab_size]] = False
    ordinary_ids = allowed.nonzero().flatten().to(input_ids.device)  # (V - specials,), ascending
    picks = torch.randint(len(ordinary_ids), (int(randomise.sum()),), generator=generator)
    corrupted[randomise] = ordinary_ids[picks.to(input_ids.device)]
    return corrupted, labels


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> list[list[list[int]]]:
    """Documents of sentences (strings) -> documents of sentences of token ids (no special tokens)."""
    return [[tokenizer.text_to_ids(sentence) for sentence in document] for document in documents]


def split_pairs(
    documents: Sequence[Sequence[str]], tokenizer, max_length: int, held_out: float = 0.1, seed: int = 0
) -> tuple[list[NspPair], list[NspPair]]:
    """Training and held-out NSP pairs, from disjoint documents (the last ``held_out`` share of them)."""
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"held_out must be a fraction in (0, 1), got {held_out}")
    ids = tokenize_documents(documents, tokenizer)
    cut = len(ids) - max(2, round(held_out * len(ids)))
    return make_nsp_pairs(ids[:cut], max_length, seed), make_nsp_pairs(ids[cut:], max_length, seed + 1)
