"""A toy translation task, generated locally from a seed (chapter 1).

The source language is English-like and puts the verb in the middle::

    [det] [adj]* noun   verb   [det] [adj]* noun   [prep [det] [adj]* noun]
    the big dog         sees   a cat                near the old king

The target language ("Tiki") uses other words and another order, so that a word-by-word
alignment is far from the diagonal:

* every word is replaced by its Tiki word (``dog`` -> ``hapo``, ``sees`` -> ``weta`` ...);
* inside a noun phrase the noun comes first, then the adjectives (in their order), then the
  determiner: ``the big old dog`` -> ``hapo ola kahu ta``;
* the prepositional phrase, if any, moves to the front of the sentence, and its preposition
  becomes a postposition after its noun phrase;
* then come the subject and the object, and the verb goes to the end (subject-object-verb).

So ``the big dog sees a cat near the old king`` becomes
``roha kahu ta pe  hapo ola ta  miru na  weta``.

Sentences have 3 to 14 source words; each source word has exactly one target word, so both
sides have the same length. :func:`translate` is the exact reference translator, and it also
returns the true alignment (which source word each target word comes from).

Shapes use ``B`` for the batch size, ``S`` for the longest source (with its ``<eos>``) and
``T`` for the longest target (with its ``<bos>`` or ``<eos>``).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from bert_tutor.checks import check_positive_int

__all__ = [
    "LENGTH_BUCKETS",
    "LEXICON",
    "Batch",
    "Pair",
    "ToyTranslation",
    "Vocab",
    "iterate_batches",
    "length_bucket",
    "make_batch",
    "make_toy_translation",
    "random_sentence",
    "translate",
]

# Source word -> target word, per part of speech. Every target word is distinct.
LEXICON: dict[str, dict[str, str]] = {
    "det": {"the": "ta", "a": "na", "every": "oki"},
    "adj": {"big": "ola", "small": "piti", "red": "rasa", "old": "kahu", "happy": "simo", "quiet": "nuvi"},
    "noun": {
        "cat": "miru",
        "dog": "hapo",
        "bird": "tiki",
        "fish": "salu",
        "child": "nene",
        "teacher": "koda",
        "farmer": "bami",
        "king": "roha",
    },
    "verb": {
        "sees": "weta",
        "likes": "amu",
        "follows": "sego",
        "finds": "lupa",
        "helps": "teso",
        "chases": "kuri",
    },
    "prep": {"near": "pe", "behind": "ru", "with": "ko", "under": "si"},
}
_POS = {word: pos for pos, words in LEXICON.items() for word in words}  # source word -> part of speech
_TARGET = {word: target for words in LEXICON.values() for word, target in words.items()}

# Source lengths (words, without <eos>) grouped for reporting accuracy: (name, shortest, longest).
LENGTH_BUCKETS: tuple[tuple[str, int, int], ...] = (("short", 3, 6), ("medium", 7, 10), ("long", 11, 14))


def length_bucket(num_words: int) -> str:
    """The name of the LENGTH_BUCKETS bucket that holds a source sentence of ``num_words`` words."""
    for name, shortest, longest in LENGTH_BUCKETS:
        if shortest <= num_words <= longest:
            return name
    raise ValueError(f"no length bucket holds {num_words} words (sentences have 3 to 14)")


@dataclass(frozen=True)
class Pair:
    """One sentence pair. ``alignment[i]`` is the index in ``source`` of target word ``i``."""

    source: tuple[str, ...]
    target: tuple[str, ...]
    alignment: tuple[int, ...]


def _split_words(sentence: str | Sequence[str]) -> list[str]:
    if isinstance(sentence, str):
        return sentence.split()
    words = list(sentence)
    if not all(isinstance(w, str) for w in words):
        raise ValueError(f"a sentence must be a string or a sequence of strings, got {sentence!r}")
    return words


def _noun_phrase(words: list[str], start: int, where: str) -> int:
    """Check that ``[det] adj* noun`` starts at ``start``; return the index after the noun."""
    i = start
    if i < len(words) and _POS[words[i]] == "det":
        i += 1
    while i < len(words) and _POS[words[i]] == "adj":
        i += 1
    if i >= len(words) or _POS[words[i]] != "noun":
        found = f"{words[i]!r} ({_POS[words[i]]})" if i < len(words) else "the end of the sentence"
        raise ValueError(f"the {where} must be '[det] [adj]* noun', but found {found} at word {i}")
    return i + 1


def _phrase_order(words: list[str], start: int, end: int) -> list[int]:
    """Source indices of the noun phrase words[start:end] in target order: noun, adjectives, det."""
    has_det = _POS[words[start]] == "det"
    adjectives = list(range(start + has_det, end - 1))
    return [end - 1] + adjectives + [start] * has_det


def translate(sentence: str | Sequence[str]) -> Pair:
    """Translate a source sentence exactly, by the rules of the module docstring.

    Raises ValueError for an unknown word or a sentence that does not follow the grammar.
    """
    words = _split_words(sentence)
    for i, word in enumerate(words):
        if word not in _POS:
            raise ValueError(f"unknown source word {word!r} at position {i}; known words: {sorted(_POS)}")
    subject_end = _noun_phrase(words, 0, "subject")
    if subject_end >= len(words) or _POS[words[subject_end]] != "verb":
        found = repr(words[subject_end]) if subject_end < len(words) else "the end of the sentence"
        raise ValueError(f"a verb must follow the subject, but found {found} at word {subject_end}")
    verb = subject_end
    object_end = _noun_phrase(words, verb + 1, "object")
    order = []
    if object_end < len(words):
        if _POS[words[object_end]] != "prep":
            raise ValueError(f"only a preposition may follow the object, found {words[object_end]!r}")
        prep = object_end
        end = _noun_phrase(words, prep + 1, "noun phrase after the preposition")
        if end != len(words):
            raise ValueError(f"the sentence should end after the prepositional phrase, found {words[end]!r}")
        order += _phrase_order(words, prep + 1, end) + [prep]
    order += _phrase_order(words, 0, subject_end) + _phrase_order(words, verb + 1, object_end) + [verb]
    return Pair(tuple(words), tuple(_TARGET[words[i]] for i in order), tuple(order))


def random_sentence(rng: random.Random) -> list[str]:
    """Draw one source sentence (3 to 14 words) with ``rng``."""

    def noun_phrase() -> list[str]:
        phrase = [rng.choice(list(LEXICON["det"]))] if rng.random() < 0.6 else []
        phrase += rng.sample(list(LEXICON["adj"]), k=rng.choice([0, 1, 1, 2, 2]))
        return phrase + [rng.choice(list(LEXICON["noun"]))]

    words = noun_phrase() + [rng.choice(list(LEXICON["verb"]))] + noun_phrase()
    if rng.random() < 0.6:
        words += [rng.choice(list(LEXICON["prep"]))] + noun_phrase()
    return words


class Vocab:
    """Words <-> integer ids. Ids 0, 1, 2 are always ``<pad>``, ``<bos>``, ``<eos>``."""

    PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, words: Sequence[str]):
        specials = [self.PAD, self.BOS, self.EOS]
        clash = sorted(set(words) & set(specials))
        if clash:
            raise ValueError(f"the special tokens {clash} cannot be ordinary words")
        self.itos: list[str] = specials + sorted(set(words))
        self.stoi: dict[str, int] = {word: i for i, word in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} words: {' '.join(self.itos[:8])} ...)"

    def encode(
        self, sentence: str | Sequence[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[int]:
        """Ids of the words of ``sentence`` (a string is split on spaces)."""
        ids = []
        for i, word in enumerate(_split_words(sentence)):
            if word not in self.stoi:
                raise ValueError(
                    f"unknown word {word!r} at position {i}; this vocabulary has {len(self)} words"
                )
            ids.append(self.stoi[word])
        return [self.bos_id] * add_bos + ids + [self.eos_id] * add_eos

    def decode(self, ids: Sequence[int] | torch.Tensor) -> list[str]:
        """Words of ``ids``, stopping at the first ``<eos>`` and leaving out ``<bos>`` and ``<pad>``."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        words = []
        for i in ids:
            if not isinstance(i, int) or not 0 <= i < len(self):
                raise ValueError(f"id {i!r} is not in this vocabulary (ids 0 to {len(self) - 1})")
            if i == self.eos_id:
                break
            if i not in (self.pad_id, self.bos_id):
                words.append(self.itos[i])
        return words


@dataclass
class ToyTranslation:
    """The data set: train and held-out (test) pairs, which share no source sentence."""

    train: list[Pair]
    test: list[Pair]
    source_vocab: Vocab
    target_vocab: Vocab
    seed: int


def make_toy_translation(seed: int = 0, num_train: int = 6000, num_test: int = 600) -> ToyTranslation:
    """Draw ``num_train + num_test`` distinct sentences from ``seed`` and split them.

    The same seed always gives the same pairs in the same order.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    check_positive_int("num_train", num_train)
    check_positive_int("num_test", num_test)
    if num_train + num_test > 200_000:
        raise ValueError(f"num_train + num_test must be at most 200000, got {num_train + num_test}")
    rng = random.Random(seed)
    seen: set[tuple[str, ...]] = set()
    pairs: list[Pair] = []
    while len(pairs) < num_train + num_test:
        words = tuple(random_sentence(rng))
        if words not in seen:  # distinct sentences: none can be in both splits
            seen.add(words)
            pairs.append(translate(words))
    source_vocab = Vocab([w for words in LEXICON.values() for w in words])
    target_vocab = Vocab([t for words in LEXICON.values() for t in words.values()])
    return ToyTranslation(pairs[num_test:], pairs[:num_test], source_vocab, target_vocab, seed)


@dataclass
class Batch:
    """Padded id tensors for a list of pairs.

    source (B, S): source ids, each followed by ``<eos>``, then ``<pad>``.
    source_lens (B,): number of real source ids (words + 1 for ``<eos>``).
    target_in (B, T): ``<bos>`` + target ids, the decoder's input under teacher forcing.
    target_out (B, T): target ids + ``<eos>``, what the decoder must predict at each step.
    target_lens (B,): number of real ids in each target row (words + 1).
    """

    source: torch.Tensor
    source_lens: torch.Tensor
    target_in: torch.Tensor
    target_out: torch.Tensor
    target_lens: torch.Tensor


def _pad(rows: list[list[int]], pad_id: int) -> torch.Tensor:
    longest = max(len(row) for row in rows)
    return torch.tensor([row + [pad_id] * (longest - len(row)) for row in rows], dtype=torch.long)


def make_batch(pairs: Sequence[Pair], source_vocab: Vocab, target_vocab: Vocab) -> Batch:
    """Encode and pad ``pairs`` into a :class:`Batch`."""
    if len(pairs) == 0:
        raise ValueError("cannot make a batch of no pairs")
    sources = [source_vocab.encode(p.source, add_eos=True) for p in pairs]
    targets = [target_vocab.encode(p.target) for p in pairs]
    return Batch(
        source=_pad(sources, source_vocab.pad_id),  # (B, S)
        source_lens=torch.tensor([len(s) for s in sources]),  # (B,)
        target_in=_pad([[target_vocab.bos_id] + t for t in targets], target_vocab.pad_id),  # (B, T)
        target_out=_pad([t + [target_vocab.eos_id] for t in targets], target_vocab.pad_id),  # (B, T)
        target_lens=torch.tensor([len(t) + 1 for t in targets]),  # (B,)
    )


def iterate_batches(
    pairs: Sequence[Pair],
    source_vocab: Vocab,
    target_vocab: Vocab,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> Iterator[Batch]:
    """One pass over ``pairs`` in batches: shuffled with ``generator`` if given, else in order.

    The last batch may be smaller.
    """
    check_positive_int("batch_size", batch_size)
    if generator is None:
        order = list(range(len(pairs)))
    else:
        order = torch.randperm(len(pairs), generator=generator).tolist()
    for start in range(0, len(order), batch_size):
        yield make_batch([pairs[i] for i in order[start : start + batch_size]], source_vocab, target_vocab)
