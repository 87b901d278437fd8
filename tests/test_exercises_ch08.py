"""The checks of chapter 8 accept right answers and name the typical wrong ones."""

import pytest
import torch

from bert_tutor.exercises import ch08
from bert_tutor.finetuning import bio_entities, entity_scores

# --- 8.1 labels aligned to pieces ----------------------------------------------------------------


def align_with(rest="ignore", labelled="first", specials=False):
    """A learner's alignment whose choices can each go wrong."""

    def my_align_labels(word_labels, piece_counts):
        out = []
        for label, count in zip(word_labels, piece_counts, strict=True):
            other = {"ignore": -100, "same": label, "zero": 0}[rest]
            pieces = [label] + [other] * (count - 1)
            out += pieces if labelled == "first" else pieces[::-1]
        return [-100, *out, -100] if specials else out

    return my_align_labels


def test_align_labels_right_answer_prints_one_line(capsys):
    ch08.check_align_labels(align_with())
    assert capsys.readouterr().out == "✓ Exercise 8.1: labels aligned to pieces\n"


def test_align_labels_accepts_a_tensor_or_a_tuple(capsys):
    ch08.check_align_labels(lambda labels, counts: torch.tensor(align_with()(labels, counts)))
    ch08.check_align_labels(lambda labels, counts: tuple(align_with()(labels, counts)))
    assert capsys.readouterr().out.count("✓ Exercise 8.1") == 2


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (align_with(rest="same"), r"you gave every piece its word's label"),
        (align_with(rest="zero"), r"you gave the later pieces label 0"),
        (align_with(labelled="last"), r"you labelled the last piece of each word"),
        (align_with(specials=True), r"you added -100 for \[CLS\] and \[SEP\]"),
        (lambda labels, counts: list(labels), r"you returned the word labels unchanged"),
        (lambda labels, counts: align_with()(labels, counts)[:-1], r"you returned \d+ labels, expected \d+"),
        (lambda labels, counts: "3 -100 0", r"should be a list of ints, got str"),
        (
            lambda labels, counts: [float(x) for x in align_with()(labels, counts)],
            r"should hold ints, got float",
        ),
    ],
    ids=["all-pieces", "zero-not-ignored", "last-piece", "specials", "unchanged", "short", "str", "floats"],
)
def test_align_labels_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 8\.1: .*" + hint):
        ch08.check_align_labels(wrong)


# --- 8.2 entity-level F1 -------------------------------------------------------------------------


def right_f1(gold, predicted):
    gold_set = {(n, *e) for n, tags in enumerate(gold) for e in bio_entities(tags)}
    predicted_set = {(n, *e) for n, tags in enumerate(predicted) for e in bio_entities(tags)}
    correct = len(gold_set & predicted_set)
    p = correct / len(predicted_set) if predicted_set else 0.0
    r = correct / len(gold_set) if gold_set else 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def test_entity_f1_right_answer_prints_one_line(capsys):
    ch08.check_entity_f1(right_f1)
    ch08.check_entity_f1(lambda gold, predicted: entity_scores(gold, predicted)["f1"])
    assert capsys.readouterr().out == "✓ Exercise 8.2: entity-level F1\n" * 2


def test_entity_f1_mistakes_give_different_numbers_from_each_other_and_from_the_answer():
    values = list(ch08._entity_f1_mistakes(ch08._GOLD, ch08._PREDICTED).values())
    right = entity_scores(ch08._GOLD, ch08._PREDICTED)["f1"]
    assert len({round(v, 6) for v in [*values, right]}) == len(values) + 1


def token_accuracy(gold, predicted):
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    return sum(g == p for g, p in pairs) / len(pairs)


def token_f1(gold, predicted):
    pairs = [(g, p) for gs, ps in zip(gold, predicted, strict=True) for g, p in zip(gs, ps, strict=True)]
    correct = sum(g == p != "O" for g, p in pairs)
    p = correct / sum(p != "O" for _, p in pairs)
    r = correct / sum(g != "O" for g, _ in pairs)
    return 2 * p * r / (p + r)


def f1_by(key):
    def my_entity_f1(gold, predicted):
        gold_set = {(n, key(e)) for n, tags in enumerate(gold) for e in bio_entities(tags)}
        predicted_set = {(n, key(e)) for n, tags in enumerate(predicted) for e in bio_entities(tags)}
        correct = len(gold_set & predicted_set)
        p, r = correct / max(len(predicted_set), 1), correct / max(len(gold_set), 1)
        return 2 * p * r / (p + r) if p + r else 0.0

    return my_entity_f1


def strict_bio(gold, predicted):
    keep = lambda tags: [
        t if not t.startswith("I-") or (i and tags[i - 1][2:] == t[2:]) else "O" for i, t in enumerate(tags)
    ]  # noqa: E731
    return right_f1([keep(t) for t in gold], [keep(t) for t in predicted])


def per_sentence(gold, predicted):
    return sum(right_f1([g], [p]) for g, p in zip(gold, predicted, strict=True)) / len(gold)


def no_guard(gold, predicted):
    gold_set = {(n, *e) for n, tags in enumerate(gold) for e in bio_entities(tags)}
    predicted_set = {(n, *e) for n, tags in enumerate(predicted) for e in bio_entities(tags)}
    p = len(gold_set & predicted_set) / len(predicted_set)
    r = len(gold_set & predicted_set) / len(gold_set)
    return 2 * p * r / (p + r)


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (token_accuracy, r"you computed token accuracy"),
        (token_f1, r"you computed a token-level F1"),
        (f1_by(lambda e: (e[0], e[1])), r"you compared entities by start and type only"),
        (f1_by(lambda e: (e[1], e[2])), r"you compared entities by span only"),
        (strict_bio, r"you dropped an I-X that continues nothing"),
        (lambda g, p: entity_scores(g, p)["precision"], r"you returned the precision"),
        (lambda g, p: entity_scores(g, p)["recall"], r"you returned the recall"),
        (per_sentence, r"you averaged the F1 of each sentence"),
        (no_guard, r"divides by zero"),
        (lambda g, p: 100 * right_f1(g, p), r"give it as a share between 0 and 1"),
        (lambda g, p: str(right_f1(g, p)), r"should be a float, got str"),
        (lambda g, p: right_f1(g, p) / 2, r"Extract the entities of each sentence"),
    ],
    ids=[
        "token-accuracy",
        "token-f1",
        "start-only",
        "span-only",
        "strict-bio",
        "precision",
        "recall",
        "per-sentence",
        "zero-division",
        "percent",
        "str",
        "unknown",
    ],
)
def test_entity_f1_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 8\.2: .*" + hint):
        ch08.check_entity_f1(wrong)


# --- 8.3 a sentence pair encoded -----------------------------------------------------------------


def pair_with(first_sep_segment=0, last_sep_segment=1, middle_sep=True, final_sep=True, cls=True, swap=False):
    """A learner's pair encoding whose steps can each go wrong."""

    def my_encode_pair(tokenizer, text_a, text_b):
        if swap:
            text_a, text_b = text_b, text_a
        a, b = tokenizer.text_to_ids(text_a), tokenizer.text_to_ids(text_b)
        ids = ([tokenizer.cls_token_id] if cls else []) + a
        segments = [0] * len(ids)
        if middle_sep:
            ids, segments = ids + [tokenizer.sep_token_id], segments + [first_sep_segment]
        ids, segments = ids + b, segments + [1] * len(b)
        if final_sep:
            ids, segments = ids + [tokenizer.sep_token_id], segments + [last_sep_segment]
        return ids, segments

    return my_encode_pair


def test_encode_pair_right_answer_prints_one_line(capsys):
    ch08.check_encode_pair(pair_with())
    ch08.check_encode_pair(
        lambda t, a, b: tuple(torch.tensor(t.encode(a, b)[k]) for k in ("input_ids", "token_type_ids"))
    )
    assert capsys.readouterr().out == "✓ Exercise 8.3: a sentence pair encoded\n" * 2


@pytest.mark.parametrize(
    ("wrong", "hint"),
    [
        (
            lambda t, a, b: (pair_with()(t, a, b)[0], [0] * len(pair_with()(t, a, b)[0])),
            r"segment ids are all 0",
        ),
        (pair_with(first_sep_segment=1), r"put the \[SEP\] after A into segment 1"),
        (pair_with(last_sep_segment=0), r"put the last \[SEP\] into segment 0"),
        (pair_with(middle_sep=False), r"no \[SEP\] between A and B"),
        (pair_with(final_sep=False), r"the final \[SEP\] is missing"),
        (pair_with(cls=False), r"\[CLS\] is missing"),
        (pair_with(swap=True), r"you put B first"),
        (lambda t, a, b: t.encode(a, b), r"not a dict"),
        (lambda t, a, b: (t.tokenize(a), [0]), r"are tokens \(strings\)"),
        (lambda t, a, b: (pair_with()(t, a, b)[0], [0, 1]), r"one segment id per token"),
        (
            lambda t, a, b: (pair_with()(t, a, b)[0], [1] * len(pair_with()(t, a, b)[0])),
            r"the segment ids are not",
        ),
        (lambda t, a, b: (ids := t.text_to_ids(a + " " + b), [0] * len(ids)), r"expected the tokens"),
    ],
    ids=[
        "segments-zero",
        "first-sep-in-b",
        "last-sep-in-a",
        "no-middle-sep",
        "no-final-sep",
        "no-cls",
        "swapped",
        "dict",
        "tokens",
        "lengths",
        "segments-other",
        "unknown",
    ],
)
def test_encode_pair_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 8\.3: .*" + hint):
        ch08.check_encode_pair(wrong)
