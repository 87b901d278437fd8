"""Checks for the exercises of chapter 5, tokenization.

Each ``check_*`` function calls the learner's function on inputs it makes itself, compares the
result with :mod:`bert_tutor.tokenization`, and prints ``✓ Exercise 5.N: ...`` or raises an
AssertionError that names the mistake when it recognises one. The answers here are lists of
strings and ints, so ``check_list`` plays the part ``check_tensor`` plays for tensors.

    5.1  check_wordpiece(my_wordpiece)            greedy longest-match-first pieces of one word, or [UNK]
    5.2  check_split_word(my_split_word)          lower-case, strip accents (NFD), cut punctuation off
    5.3  check_pair_inputs(my_pair_inputs)        token type ids and attention mask of a padded pair
    5.4  check_pair_counts(my_pair_counts)        counts of neighbouring pieces, the trainer's first step
"""

from __future__ import annotations

import itertools
import unicodedata
from collections import Counter
from collections.abc import Mapping

from bert_tutor.exercises.checking import passed
from bert_tutor.tokenization import UNK, BasicTokenizer, WordPiece, split_on_punctuation

__all__ = [
    "check_list",
    "check_pair_counts",
    "check_pair_inputs",
    "check_split_word",
    "check_wordpiece",
]


def check_list(
    number: str,
    answer,
    expected: list,
    name: str = "your result",
    mistakes: Mapping[str, list] | None = None,
    item_type: type = str,
) -> None:
    """Assert that ``answer`` is a list equal to ``expected``, or explain how it differs.

    mistakes maps a hint to what a typical wrong answer gives; when the learner's answer equals
    one of them, that hint is the message. Otherwise the message shows both lists.
    """
    prefix = f"Exercise {number}: "
    if isinstance(answer, tuple):
        answer = list(answer)
    if not isinstance(answer, list):
        raise AssertionError(f"{prefix}{name} should be a list, got {type(answer).__name__}: {answer!r:.80}")
    for item in answer:
        if not isinstance(item, item_type) or (item_type is int and isinstance(item, bool)):
            raise AssertionError(
                f"{prefix}{name} should hold only {item_type.__name__}s, "
                f"got {type(item).__name__} {item!r:.40}"
            )
    if answer == expected:
        return
    for hint, wrong in (mistakes or {}).items():
        if answer == wrong:
            raise AssertionError(prefix + hint)
    raise AssertionError(f"{prefix}{name}: got {answer!r}, expected {expected!r}")


# --- 5.1 ---------------------------------------------------------------------------------------

VOCAB_51 = ["[UNK]", "un", "una", "##aff", "##a", "##ff", "##able", "##ab", "##le", "play", "##ing", "##s",
            "p", "##l", "##a", "##y", "x", "h", "##u", "##g", "hug"]  # fmt: skip


def _shortest_first(word: str, vocab: set[str]) -> list[str]:
    pieces, start = [], 0
    while start < len(word):
        for end in range(start + 1, len(word) + 1):
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
        else:
            return [UNK]
        pieces.append(piece)
        start = end
    return pieces


def _greedy(word: str, vocab: set[str], prefix: str = "##", keep_partial: bool = False) -> list[str]:
    pieces, start = [], 0
    while start < len(word):
        for end in range(len(word), start, -1):
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocab:
                break
        else:
            return pieces if keep_partial else [UNK]
        pieces.append(piece)
        start = end
    return pieces


def check_wordpiece(my_wordpiece) -> None:
    """Exercise 5.1: ``my_wordpiece(word, vocab)`` -> list of pieces, greedy longest-match-first.

    vocab is a set of tokens; continuations carry ``##``; a word that cannot be cut entirely is
    ``["[UNK]"]``. (No length limit here.)
    """
    vocab = set(VOCAB_51)
    reference = WordPiece(vocab, max_input_chars_per_word=10_000)
    for word in ("unaffable", "playing", "plays", "hugs", "xyz", "una", "huge", "playable"):
        expected = reference.tokenize(word)
        answer = my_wordpiece(word, set(vocab))
        no_hash = _greedy(word, vocab | {t.removeprefix("##") for t in vocab}, prefix="")
        check_list(
            "5.1",
            answer,
            expected,
            name=f"your pieces of {word!r}",
            mistakes={
                f"your pieces of {word!r} are {answer!r}: you took the shortest match first. WordPiece "
                f"takes the longest piece of the vocabulary that starts here: try end positions from "
                f"the end of the word backwards, and stop at the first that is in the vocabulary": (
                    _shortest_first(word, vocab)
                ),
                f"your pieces of {word!r} are {answer!r}: a piece that continues a word must be "
                f"looked up (and returned) with '##' in front, e.g. '##' + word[start:end] when "
                f"start > 0": no_hash,
                f"your pieces of {word!r} are {answer!r}: when no piece matches at some position, "
                f"the whole word becomes ['[UNK]'], not the pieces found so far": _greedy(
                    word, vocab, keep_partial=True
                ),
                f"your pieces of {word!r} are {answer!r}: when no piece matches, return the single "
                f"token ['[UNK]'] for the whole word, not [UNK] in place of the missing piece": [
                    *_greedy(word, vocab, keep_partial=True),
                    UNK,
                ],
            },
        )
    passed("5.1", "WordPiece, greedy longest-match-first")


# --- 5.2 ---------------------------------------------------------------------------------------

WORDS_52 = ("Café!", "naïve,", "Crème-brûlée", "Dvořák's", "(Ångström)", "HELLO", "don't", "señor?")


def _nfc_strip(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFC", word) if unicodedata.category(c) != "Mn")


def check_split_word(my_split_word) -> None:
    """Exercise 5.2: ``my_split_word(word)`` -> words, as BERT's uncased basic tokenizer cuts one
    whitespace-free word: lower-case, strip accents (NFD, drop marks Mn), cut off punctuation."""
    basic = BasicTokenizer(do_lower_case=True)
    for word in WORDS_52:
        expected = basic.split_word(word)
        answer = my_split_word(word)
        lowered = word.lower()
        check_list(
            "5.2",
            answer,
            expected,
            name=f"your words for {word!r}",
            mistakes={
                f"your words for {word!r} are {answer!r}: the accents are still there. NFC composes "
                f"characters ('e' + U+0301 -> 'é'), so there is no mark left to drop: decompose with "
                f"unicodedata.normalize('NFD', ...) and drop the characters of category 'Mn'": (
                    split_on_punctuation(_nfc_strip(lowered))
                ),
                f"your words for {word!r} are {answer!r}: you dropped the punctuation. BERT keeps "
                f"each punctuation character as a word of its own": [
                    w for w in expected if not all(not c.isalnum() for c in w)
                ],
                f"your words for {word!r} are {answer!r}: lower-case the word too (the uncased "
                f"model's vocabulary has no capital letters)": BasicTokenizer(
                    do_lower_case=False, strip_accents=True
                ).split_word(word),
                f"your words for {word!r} are {answer!r}: the punctuation must be cut off as "
                f"words of their own: 'don't' -> ['don', \"'\", 't']": ["".join(expected)],
            },
        )
    passed("5.2", "lower-case, strip accents, split punctuation")


# --- 5.3 ---------------------------------------------------------------------------------------


def check_pair_inputs(my_pair_inputs) -> None:
    """Exercise 5.3: ``my_pair_inputs(len_a, len_b, max_length)`` -> (token_type_ids, attention_mask)
    for ``[CLS] A [SEP] B [SEP]`` padded on the right to max_length; A has len_a tokens, B len_b."""
    for len_a, len_b, max_length in ((3, 2, 10), (1, 4, 8), (2, 2, 7), (4, 1, 12)):
        used = len_a + len_b + 3
        padding = max_length - used
        types = [0] * (len_a + 2) + [1] * (len_b + 1) + [0] * padding
        mask = [1] * used + [0] * padding
        case = f"for len_a={len_a}, len_b={len_b}, max_length={max_length}"
        answer = my_pair_inputs(len_a, len_b, max_length)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise AssertionError(
                f"Exercise 5.3: {case}, return two lists (token_type_ids, attention_mask), "
                f"got {type(answer).__name__}: {answer!r:.80}"
            )
        answer_types, answer_mask = answer
        check_list(
            "5.3",
            answer_types,
            types,
            name=f"your token_type_ids {case}",
            item_type=int,
            mistakes={
                f"{case}, your token_type_ids start 1 at the first [SEP]: that [SEP] closes A and "
                f"belongs to segment 0; type 1 starts after it": [0] * (len_a + 1)
                + [1] * (len_b + 2)
                + [0] * padding,
                f"{case}, your last [SEP] is typed 0: it closes B, so it is type 1 like B": [0] * (len_a + 2)
                + [1] * len_b
                + [0] * (padding + 1),
                f"{case}, your padding is typed 1: padding gets token type 0 (and attention mask 0)": [0]
                * (len_a + 2)
                + [1] * (len_b + 1 + padding),
                f"{case}, your [CLS] is typed 1 or A is typed 1: [CLS] A [SEP] are all type 0": [1]
                * (len_a + 2)
                + [0] * (len_b + 1)
                + [0] * padding,
            },
        )
        check_list(
            "5.3",
            answer_mask,
            mask,
            name=f"your attention_mask {case}",
            item_type=int,
            mistakes={
                f"{case}, your attention mask is 1 on the padding: it must be 1 on every real token "
                f"(special tokens included) and 0 on [PAD]": [1] * max_length,
                f"{case}, your attention mask is 0 on the special tokens: [CLS] and [SEP] are real "
                f"tokens the model attends to, so they get 1": [0]
                + [1] * len_a
                + [0]
                + [1] * len_b
                + [0] * (1 + padding),
                f"{case}, your attention mask is inverted: 1 means 'attend to this token', so "
                f"tokens get 1 and padding 0": [1 - m for m in mask],
            },
        )
    passed("5.3", "token type ids and attention mask of a pair")


# --- 5.4 ---------------------------------------------------------------------------------------


def _pieces(word: str) -> list[str]:
    return [word[0], *("##" + c for c in word[1:])]


def check_pair_counts(my_pair_counts) -> None:
    """Exercise 5.4: ``my_pair_counts(word_counts)`` -> {(left, right): count} of neighbouring pieces.

    word_counts maps each word to how often it appears; each word starts as its characters,
    ``"hugs" -> h ##u ##g ##s``; a pair is counted once per occurrence, times the word's count,
    never across two words.
    """
    word_counts = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5, "a": 3}
    expected = Counter()
    no_weight, no_hash, across = Counter(), Counter(), Counter()
    for word, count in word_counts.items():
        for pair in itertools.pairwise(_pieces(word)):
            expected[pair] += count
            no_weight[pair] += 1
        for pair in itertools.pairwise(word):
            no_hash[pair] += count
    all_pieces = [p for word, count in word_counts.items() for _ in range(count) for p in _pieces(word)]
    across.update(itertools.pairwise(all_pieces))
    answer = my_pair_counts(dict(word_counts))
    if not isinstance(answer, Mapping):
        raise AssertionError(
            f"Exercise 5.4: return a dict (or Counter) of pair -> count, got {type(answer).__name__}"
        )
    answer = {tuple(k) if isinstance(k, (list, tuple)) else k: v for k, v in answer.items() if v}
    if answer == dict(expected):
        passed("5.4", "pair counts")
        return
    mistakes = {
        "each pair must be counted as often as its word appears: add word_counts[word], not 1": no_weight,
        "your pairs have no '##': each word starts as h ##u ##g, so the pairs are ('h', '##u'), "
        "('##u', '##g'), ...": no_hash,
        "you counted pairs across word boundaries: the pieces of two different words never merge, "
        "so count pairs inside each word only": across,
    }
    for hint, wrong in mistakes.items():
        if answer == dict(wrong):
            raise AssertionError(f"Exercise 5.4: {hint}")
    bad = sorted(set(answer) ^ set(expected) | {p for p in expected if answer.get(p) != expected[p]}, key=str)
    raise AssertionError(
        f"Exercise 5.4: your counts differ for {len(bad)} pair(s), e.g. {bad[0]!r}: you gave "
        f"{answer.get(bad[0], 0)}, expected {expected.get(bad[0], 0)}"
    )
