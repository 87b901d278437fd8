"""Checks for the exercises of chapter 8, fine-tuning.

Each ``check_*`` function calls the learner's function on inputs it makes itself, compares the
result with :mod:`bert_tutor.finetuning` (or the tokenizer), and prints ``✓ Exercise 8.N: ...`` or
raises an AssertionError that names the mistake when it recognises one.

    8.1  check_align_labels(my_align_labels)   word labels + pieces per word -> a label per piece
    8.2  check_entity_f1(my_entity_f1)         entity-level F1 of BIO tags, as conlleval counts it
    8.3  check_encode_pair(my_encode_pair)     [CLS] A [SEP] B [SEP] and its segment ids
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable, Sequence

import torch

from bert_tutor.bert import IGNORE_INDEX
from bert_tutor.exercises.checking import passed
from bert_tutor.finetuning import align_labels, bio_entities, entity_scores

__all__ = ["check_align_labels", "check_encode_pair", "check_entity_f1"]


def _as_int_list(number: str, answer, name: str) -> list[int]:
    """A list, tuple or 1-D tensor of ints as a list; anything else is reported."""
    prefix = f"Exercise {number}: "
    if isinstance(answer, torch.Tensor):
        if answer.dim() != 1 or answer.is_floating_point():
            raise AssertionError(
                f"{prefix}{name} should be a 1-D list of ints, got a tensor {answer.dtype} "
                f"of shape {tuple(answer.shape)}"
            )
        return answer.tolist()
    if not isinstance(answer, (list, tuple)):
        raise AssertionError(f"{prefix}{name} should be a list of ints, got {type(answer).__name__}")
    if not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in answer):
        kinds = sorted({type(x).__name__ for x in answer})
        raise AssertionError(f"{prefix}{name} should hold ints, got {', '.join(kinds)}")
    return [int(x) for x in answer]


# --- 8.1 ---------------------------------------------------------------------------------------

_ALIGN_CASES = (  # (word labels, pieces per word): words of one, two and three pieces
    ([3, 0, 5, 0], [2, 1, 3, 1]),
    ([1, 2, 0], [1, 2, 1]),
    ([0, 7], [1, 1]),
)


def _align_mistakes(labels: list[int], counts: list[int]) -> dict[str, list[int]]:
    """What typical mistakes return for one case, with the hint for each."""

    def pieces(first, rest):
        return [
            x
            for label, count in zip(labels, counts, strict=True)
            for x in first(label) + [rest(label)] * (count - 1)
        ]

    return {
        "you gave every piece its word's label: only the first piece keeps it, the others get -100, "
        "so that a word of three pieces counts once in the loss, not three times": pieces(
            lambda label: [label], lambda label: label
        ),
        'you gave the later pieces label 0 (the tag "O"): that teaches the model that they are outside '
        "every entity. Give them -100, which the loss skips": pieces(lambda label: [label], lambda label: 0),
        "you labelled the last piece of each word and ignored the first: label the first piece (the "
        "tagger reads each word's tag at its first piece) and give the others -100": [
            x
            for label, count in zip(labels, counts, strict=True)
            for x in [IGNORE_INDEX] * (count - 1) + [label]
        ],
        "you added -100 for [CLS] and [SEP]: this function aligns the words' pieces only (encode_ner "
        "adds the special tokens)": [IGNORE_INDEX, *align_labels(labels, counts), IGNORE_INDEX],
    }


def check_align_labels(my_align_labels: Callable) -> None:
    """Exercise 8.1: ``my_align_labels(word_labels, piece_counts)`` returns one label per piece.

    word_labels: a label id per word; piece_counts: how many WordPiece pieces each word became.
    The first piece of a word keeps the word's label; every later piece gets -100 (``IGNORE_INDEX``).
    ``my_align_labels([3, 0], [2, 1]) == [3, -100, 0]``.
    """
    for labels, counts in _ALIGN_CASES:
        case = f"for word_labels={labels}, piece_counts={counts}"
        expected = align_labels(labels, counts)
        answer = _as_int_list("8.1", my_align_labels(list(labels), list(counts)), "your labels")
        if answer == expected:
            continue
        for hint, wrong in _align_mistakes(labels, counts).items():
            if answer == wrong:
                raise AssertionError(f"Exercise 8.1: {case}, you returned {answer}: {hint}")
        if answer == labels:
            raise AssertionError(
                f"Exercise 8.1: {case}, you returned the word labels unchanged: the model sees pieces, so "
                f"return one label per piece, {sum(counts)} in all"
            )
        if len(answer) != len(expected):
            raise AssertionError(
                f"Exercise 8.1: {case}, you returned {len(answer)} labels, expected {len(expected)} (one per "
                f"piece: sum(piece_counts))"
            )
        raise AssertionError(f"Exercise 8.1: {case}, you returned {answer}, expected {expected}")
    passed("8.1", "labels aligned to pieces")


# --- 8.2 ---------------------------------------------------------------------------------------

# Gold and predicted tags of five sentences, chosen so that every mistake below gives its own number.
_GOLD = (
    ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
    ["B-PER", "O", "O", "O", "B-JOB", "O", "B-ANIMAL"],
    ["O", "B-LOC", "I-LOC", "O", "O", "O", "O", "O", "B-PER"],
    ["O", "B-JOB", "I-JOB", "O", "O"],
    ["B-PER", "O"],
)
_PREDICTED = (
    ["B-PER", "O", "O", "O", "B-LOC", "O"],  # PER cut short: a wrong span
    ["B-PER", "O", "O", "O", "B-ANIMAL", "O", "B-ANIMAL"],  # a JOB called an ANIMAL
    ["O", "B-LOC", "I-LOC", "O", "I-PER", "O", "O", "O", "B-PER"],  # an I-PER after O: a (wrong) entity
    ["O", "B-JOB", "O", "O", "O"],  # JOB cut short
    ["B-PER", "B-LOC"],  # an entity where there is none
)


def _f1(correct: int, predicted: int, gold: int) -> float:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _strict_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Entities that start with B- only: an I- that continues nothing is dropped (not conlleval's rule)."""
    found = []
    for kind, start, end in bio_entities(tags):
        if tags[start].startswith("B-"):
            found.append((kind, start, end))
    return found


def _entity_f1(gold, predicted, entities=bio_entities, key=lambda e: e) -> float:
    gold_set = {(n, key(e)) for n, tags in enumerate(gold) for e in entities(tags)}
    predicted_set = {(n, key(e)) for n, tags in enumerate(predicted) for e in entities(tags)}
    return _f1(len(gold_set & predicted_set), len(predicted_set), len(gold_set))


def _entity_f1_mistakes(gold, predicted) -> dict[str, float]:
    """What typical mistakes compute on these tags, with the hint for each."""
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    scores = entity_scores(gold, predicted)
    token_correct = sum(g == p != "O" for g, p in pairs)
    return {
        "you computed token accuracy: most tags are O, so a tagger that finds few entities still "
        "scores high. Count whole entities: (type, start, end) that match exactly": sum(
            g == p for g, p in pairs
        )
        / len(pairs),
        "you computed a token-level F1 (tags that match, O left out): an entity counts only when its "
        "whole span and its type are right, so a name tagged half right scores nothing": _f1(
            token_correct, sum(p != "O" for _, p in pairs), sum(g != "O" for g, _ in pairs)
        ),
        'you compared entities by start and type only: the end must match too ("alba" is not "alba korin")': (
            _entity_f1(gold, predicted, key=lambda e: (e[0], e[1]))
        ),
        "you compared entities by span only: the type must match too (a job called an animal is wrong)": (
            _entity_f1(gold, predicted, key=lambda e: (e[1], e[2]))
        ),
        "you dropped an I-X that continues nothing (after O): conlleval counts it as the start of an "
        "entity, so a stray I-PER is a predicted entity (a wrong one)": _entity_f1(
            gold, predicted, _strict_entities
        ),
        "you returned the precision (correct / predicted): F1 is the harmonic mean of precision and "
        "recall, 2PR / (P + R)": scores["precision"],
        "you returned the recall (correct / gold): F1 is the harmonic mean of precision and recall, "
        "2PR / (P + R)": scores["recall"],
        "you averaged the F1 of each sentence: count correct, predicted and gold entities over all "
        "sentences first, then compute one F1": sum(
            _entity_f1([g], [p]) for g, p in zip(gold, predicted, strict=True)
        )
        / len(gold),
    }


def check_entity_f1(my_entity_f1: Callable) -> None:
    """Exercise 8.2: ``my_entity_f1(gold, predicted)`` returns the entity-level F1 as a float.

    gold, predicted: lists of sentences, each a list of BIO tags. An entity is a B-X followed by
    I-X's (an I-X that does not continue an X starts a new one, as in conlleval); a predicted entity
    is correct when a gold one has exactly its type, start and end. F1 = 2PR / (P + R) with
    P = correct / predicted and R = correct / gold, counted over all sentences; 0 when P + R = 0.
    """
    cases = [
        (_GOLD, _PREDICTED),
        (_GOLD, _GOLD),  # perfect
        ((["B-PER", "O"],), (["O", "O"],)),  # nothing predicted: 0, not a ZeroDivisionError
    ]
    for number, (gold, predicted) in enumerate(cases):
        expected = entity_scores(gold, predicted)["f1"]
        try:
            answer = my_entity_f1([list(s) for s in gold], [list(s) for s in predicted])
        except ZeroDivisionError:
            raise AssertionError(
                "Exercise 8.2: with no predicted entity your function divides by zero: precision is 0 "
                "when nothing is predicted, and F1 is 0 when precision + recall is 0"
            ) from None
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if not isinstance(answer, numbers.Real) or isinstance(answer, bool):
            raise AssertionError(f"Exercise 8.2: the F1 should be a float, got {type(answer).__name__}")
        if abs(answer - expected) < 1e-6:
            continue
        if number == 0:
            for hint, wrong in _entity_f1_mistakes(gold, predicted).items():
                if abs(answer - wrong) < 1e-6:
                    raise AssertionError(
                        f"Exercise 8.2: your F1 is {answer:.4f}, expected {expected:.4f}: {hint}"
                    )
        if 1 < answer <= 100:
            raise AssertionError(f"Exercise 8.2: your F1 is {answer}: give it as a share between 0 and 1")
        raise AssertionError(
            f"Exercise 8.2: on case {number} your F1 is {answer:.4f}, expected {expected:.4f}. Extract "
            "the entities of each sentence as (type, start, end), count the exact matches, then "
            "F1 = 2PR / (P + R)"
        )
    passed("8.2", "entity-level F1")


# --- 8.3 ---------------------------------------------------------------------------------------

_PAIRS = (
    ("alba lives in harlow .", "alba works as a baker and bakes bread every day ."),
    ("the owl of bruno hoots loudly .", "bruno has an owl ."),
)


@functools.lru_cache(maxsize=1)
def _tokenizer():
    from bert_tutor.corpus import world_documents
    from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab

    sentences = [sentence for document in world_documents(100, seed=8) for sentence in document]
    return BertTokenizer(train_wordpiece_vocab(sentences, 200))


def _pair_mistakes(tokenizer, a: str, b: str) -> dict[str, tuple[list[int], list[int]]]:
    """(ids, segment ids) that typical mistakes return for the pair (a, b), with the hint for each."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids_a, ids_b = tokenizer.text_to_ids(a), tokenizer.text_to_ids(b)
    right = [cls, *ids_a, sep, *ids_b, sep]
    segments = [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
    return {
        "your segment ids are all 0: B's tokens (and the [SEP] that closes B) get segment 1, so the "
        "model can tell the two sentences apart": (right, [0] * len(right)),
        "your segment ids put the [SEP] after A into segment 1: [CLS] A [SEP] is segment 0, B [SEP] is "
        "segment 1": (right, [0] * (len(ids_a) + 1) + [1] * (len(ids_b) + 2)),
        "your segment ids put the last [SEP] into segment 0: it closes B, so it is segment 1": (
            right,
            [0] * (len(ids_a) + 2) + [1] * len(ids_b) + [0],
        ),
        "there is no [SEP] between A and B: [CLS] A [SEP] B [SEP]": (
            [cls, *ids_a, *ids_b, sep],
            [0] * (len(ids_a) + 1) + [1] * (len(ids_b) + 1),
        ),
        "the final [SEP] is missing: [CLS] A [SEP] B [SEP]": (right[:-1], segments[:-1]),
        "[CLS] is missing: every input starts with it, and the sentence classifier reads its vector": (
            right[1:],
            segments[1:],
        ),
        "you put B first: the order is [CLS] A [SEP] B [SEP], text_a in segment 0": (
            [cls, *ids_b, sep, *ids_a, sep],
            [0] * (len(ids_b) + 2) + [1] * (len(ids_a) + 1),
        ),
    }


def check_encode_pair(my_encode_pair: Callable) -> None:
    """Exercise 8.3: ``my_encode_pair(tokenizer, text_a, text_b)`` returns (input_ids, token_type_ids).

    Both are lists of ints of the same length: ``[CLS] A [SEP] B [SEP]`` as ids (``tokenizer.text_to_ids``,
    ``tokenizer.cls_token_id``, ``tokenizer.sep_token_id``), and the segment of each: 0 for
    ``[CLS] A [SEP]``, 1 for ``B [SEP]``. No padding, no truncation.
    """
    tokenizer = _tokenizer()
    for a, b in _PAIRS:
        expected = tokenizer.encode(a, b)
        answer = my_encode_pair(tokenizer, a, b)
        if isinstance(answer, dict):
            raise AssertionError(
                "Exercise 8.3: return a tuple (input_ids, token_type_ids), not a dict "
                f"(you returned the keys {sorted(answer)})"
            )
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise AssertionError("Exercise 8.3: return two lists: (input_ids, token_type_ids)")
        if answer and isinstance(answer[0], (list, tuple)) and answer[0] and isinstance(answer[0][0], str):
            raise AssertionError(
                "Exercise 8.3: your input_ids are tokens (strings): the model takes their ids; "
                "tokenizer.text_to_ids(text) gives them"
            )
        ids = _as_int_list("8.3", answer[0], "input_ids")
        segments = _as_int_list("8.3", answer[1], "token_type_ids")
        case = f"for A = {a!r} and B = {b!r}"
        if (ids, segments) == (expected["input_ids"], expected["token_type_ids"]):
            continue
        for hint, wrong in _pair_mistakes(tokenizer, a, b).items():
            if (ids, segments) == wrong:
                raise AssertionError(f"Exercise 8.3: {case}, {hint}")
        if len(ids) != len(segments):
            raise AssertionError(
                f"Exercise 8.3: {case}, input_ids has {len(ids)} entries but token_type_ids {len(segments)}: "
                "one segment id per token"
            )
        if ids == expected["input_ids"]:
            raise AssertionError(
                f"Exercise 8.3: {case}, the ids are right but the segment ids are not: expected "
                f"{expected['token_type_ids']}, got {segments}"
            )
        tokens = tokenizer.convert_ids_to_tokens(expected["input_ids"])
        yours = tokenizer.convert_ids_to_tokens([i for i in ids if 0 <= i < len(tokenizer)])
        raise AssertionError(f"Exercise 8.3: {case}, expected the tokens {tokens}, got {yours}")
    passed("8.3", "a sentence pair encoded")
