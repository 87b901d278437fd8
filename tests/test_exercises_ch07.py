"""The checks of chapter 7 accept right answers and name the typical wrong ones."""

import math

import pytest
import torch
import torch.nn.functional as F

from bert_tutor.exercises import ch07
from bert_tutor.pretraining import collate_pairs

from .conftest import leaves_global_random_state_alone

# --- 7.1 NSP pairs as a batch -------------------------------------------------------------------


def collate_with(
    final_sep=True,
    cls=True,
    swap=False,
    pad_left=False,
    type_from_sep=False,
    pad_type=0,
    mask_pad=0,
    flip=False,
):
    """A learner's collate whose steps can each go wrong."""

    def my_collate(pairs, cls_id, sep_id, pad_id):
        rows, types = [], []
        for p in pairs:
            a, b = (p.tokens_b, p.tokens_a) if swap else (p.tokens_a, p.tokens_b)
            row = [cls_id] * cls + [*a, sep_id, *b] + [sep_id] * final_sep
            start_b = len(a) + 1 + cls - type_from_sep
            rows.append(row)
            types.append([0] * start_b + [1] * (len(row) - start_b))
        length = max(map(len, rows))
        ids, segments, mask = [], [], []
        for row, segment in zip(rows, types, strict=True):
            extra = length - len(row)
            if pad_left:
                ids.append([pad_id] * extra + row)
                segments.append([pad_type] * extra + segment)
                mask.append([mask_pad] * extra + [1] * len(row))
            else:
                ids.append(row + [pad_id] * extra)
                segments.append(segment + [pad_type] * extra)
                mask.append([1] * len(row) + [mask_pad] * extra)
        labels = [int(p.is_next) if flip else int(not p.is_next) for p in pairs]
        return torch.tensor(ids), torch.tensor(segments), torch.tensor(mask), torch.tensor(labels)

    return my_collate


def test_collate_right_answer_prints_one_line(capsys):
    ch07.check_collate(collate_with())
    assert capsys.readouterr().out == "✓ Exercise 7.1: NSP pairs as a batch\n"


def test_collate_package_function_and_lists_pass(capsys):
    def package(pairs, cls_id, sep_id, pad_id):
        batch = collate_pairs(pairs, cls_id, sep_id, pad_id)
        return batch.input_ids, batch.token_type_ids, batch.attention_mask, batch.next_sentence_label

    ch07.check_collate(package)
    ch07.check_collate(lambda *args: tuple(t.tolist() for t in collate_with()(*args)))
    assert capsys.readouterr().out.count("✓ Exercise 7.1") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (collate_with(final_sep=False), r"your rows lack the final \[SEP\]"),
        (collate_with(cls=False), r"your rows lack the \[CLS\] at the front"),
        (collate_with(swap=True), r"your rows put B before A"),
        (collate_with(pad_left=True), r"you padded on the left"),
        (collate_with(type_from_sep=True), r"start 1 at the \[SEP\] that closes A"),
        (collate_with(pad_type=1), r"your token_type_ids are 1 on the padding too"),
        (collate_with(mask_pad=1), r"your attention_mask is 1 everywhere"),
        (collate_with(flip=True), r"your next_sentence_label is the other way round: 0 means B follows A"),
    ],
    ids=[
        "no-final-sep",
        "no-cls",
        "b-before-a",
        "left-padding",
        "type-at-sep",
        "pad-type",
        "mask-pad",
        "labels",
    ],
)
def test_collate_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 7\.1: .*" + hint):
        ch07.check_collate(wrong)


def test_collate_other_token_type_mistakes_are_named():
    def with_types(make_types):
        def my_collate(*args):
            ids, types, mask, labels = collate_with()(*args)
            return ids, make_types(types, mask), mask, labels

        return my_collate

    with pytest.raises(AssertionError, match=r"your token_type_ids are all 0"):
        ch07.check_collate(with_types(lambda types, mask: torch.zeros_like(types)))
    with pytest.raises(AssertionError, match=r"your token_type_ids are the other way round"):
        ch07.check_collate(with_types(lambda types, mask: (1 - types) * mask))
    with pytest.raises(AssertionError, match=r"leave the final \[SEP\] in segment 0"):
        ch07.check_collate(
            with_types(
                lambda types, mask: types * (torch.arange(types.shape[1]) < mask.sum(1, keepdim=True) - 1)
            )
        )
    with pytest.raises(AssertionError, match=r"your attention_mask is inverted"):
        ch07.check_collate(lambda *args: (lambda i, t, m, y: (i, t, 1 - m, y))(*collate_with()(*args)))


def test_collate_float_ids_and_bool_labels_are_reported():
    def with_dtypes(ids_dtype, labels_dtype):
        def my_collate(*args):
            ids, types, mask, labels = collate_with()(*args)
            return ids.to(ids_dtype), types, mask, labels.to(labels_dtype)

        return my_collate

    with pytest.raises(AssertionError, match=r"your input_ids holds the right values as torch\.float32"):
        ch07.check_collate(with_dtypes(torch.float32, torch.long))
    with pytest.raises(
        AssertionError, match=r"your next_sentence_label holds the right values as torch\.bool"
    ):
        ch07.check_collate(with_dtypes(torch.long, torch.bool))


def test_collate_wrong_return_is_reported():
    with pytest.raises(
        AssertionError, match=r"my_collate should return 4 tensors \(input_ids, .*got 3 items"
    ):
        ch07.check_collate(lambda *args: collate_with()(*args)[:3])
    with pytest.raises(AssertionError, match=r"should return 4 tensors .*got a single Tensor"):
        ch07.check_collate(lambda *args: collate_with()(*args)[0])


# --- 7.2 80/10/10 corruption --------------------------------------------------------------------


def corrupt_with(
    bands=(0.8, 0.9), everywhere=False, in_place=False, label_all=False, label_fill=-100, labels_from=None
):
    """A learner's corruption whose steps can each go wrong; labels_from: "corrupted" or "masked"."""

    def corrupt(input_ids, chosen, draw, random_ids, mask_id):
        where = torch.ones_like(chosen) if everywhere else chosen
        out = input_ids if in_place else input_ids.clone()
        original = input_ids.clone()
        to_mask = where & (draw < bands[0])
        to_randomise = where & (draw >= bands[0]) & (draw < bands[1])
        out[to_randomise] = random_ids[to_randomise]
        out[to_mask] = mask_id
        if labels_from == "corrupted":
            source, predicted = out, chosen
        elif labels_from == "masked":
            source, predicted = original, chosen & (draw < 0.8)
        else:
            source, predicted = original, chosen
        labels = source.clone() if label_all else torch.where(predicted, source, label_fill)
        return out, labels

    return corrupt


def test_corruption_right_answer_prints_one_line(capsys):
    ch07.check_corruption(corrupt_with())
    assert capsys.readouterr().out == "✓ Exercise 7.2: 80/10/10 corruption\n"


def test_corruption_with_torch_where_passes(capsys):
    def corrupt(input_ids, chosen, draw, random_ids, mask_id):
        out = torch.where(chosen & (draw >= 0.8) & (draw < 0.9), random_ids, input_ids)
        out = torch.where(chosen & (draw < 0.8), mask_id, out)
        return out, torch.where(chosen, input_ids, -100)

    ch07.check_corruption(corrupt)
    assert "✓ Exercise 7.2" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (corrupt_with(bands=(1.0, 1.0)), r"every chosen token became \[MASK\]: only 80 %"),
        (corrupt_with(everywhere=True), r"you corrupted positions that were not chosen"),
        (corrupt_with(bands=(0.8, 0.8)), r"no token got a random replacement"),
        (corrupt_with(in_place=True), r"you changed input_ids in place"),
        (corrupt_with(label_all=True), r"your labels are the original ids everywhere"),
        (corrupt_with(labels_from="corrupted"), r"your labels are the corrupted ids"),
        (corrupt_with(label_fill=0), r"your labels are 0 where nothing is predicted: use -100"),
        (corrupt_with(labels_from="masked"), r"your labels cover only the \[MASK\]ed positions"),
    ],
    ids=[
        "all-mask",
        "unchosen",
        "no-random",
        "in-place",
        "labels-everywhere",
        "labels-corrupted",
        "labels-0",
        "only-masked",
    ],
)
def test_corruption_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 7\.2: " + hint):
        ch07.check_corruption(wrong)


def test_corruption_band_order_mistakes_are_named():
    def swapped(input_ids, chosen, draw, random_ids, mask_id):
        out = torch.where(chosen & (draw >= 0.9), random_ids, input_ids)
        out = torch.where(chosen & (draw < 0.8), mask_id, out)
        return out, torch.where(chosen, input_ids, -100)

    def reversed_bands(input_ids, chosen, draw, random_ids, mask_id):
        out = torch.where(chosen & (draw >= 0.1) & (draw < 0.2), random_ids, input_ids)
        out = torch.where(chosen & (draw >= 0.2), mask_id, out)
        return out, torch.where(chosen, input_ids, -100)

    with pytest.raises(AssertionError, match=r"you swapped the last two bands"):
        ch07.check_corruption(swapped)
    with pytest.raises(AssertionError, match=r"your bands run the other way"):
        ch07.check_corruption(reversed_bands)


def test_corruption_wrong_return_and_unknown_mistake_are_reported():
    with pytest.raises(
        AssertionError, match=r"corrupt should return 2 tensors \(corrupted, labels\), got a single Tensor"
    ):
        ch07.check_corruption(lambda *args: corrupt_with()(*args)[0])
    with pytest.raises(AssertionError, match=r"your corrupted ids differs from the expected values"):
        ch07.check_corruption(lambda *args: (corrupt_with()(*args)[0] + 1, corrupt_with()(*args)[1]))


def test_corruption_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch07.check_corruption, corrupt_with())


# --- 7.3 how many tokens are masked ---------------------------------------------------------------


def count_with(rule=round, minimum=1, count="ordinary"):
    """A learner's count: count "ordinary" tokens, "non_pad" ones or "all"; round them with ``rule``."""

    def how_many_masked(input_ids, special_ids):
        if count == "ordinary":
            n = int((~torch.isin(input_ids, torch.tensor(special_ids))).sum())
        elif count == "non_pad":
            n = int((input_ids != 0).sum())
        else:
            n = len(input_ids)
        return max(minimum, rule(0.15 * n))

    return how_many_masked


def test_count_right_answer_prints_one_line(capsys):
    ch07.check_masked_count(count_with())
    assert capsys.readouterr().out == "✓ Exercise 7.3: how many tokens are masked\n"


def test_count_other_right_answers_pass(capsys):
    specials = lambda ids, special: sum(int(t) not in special for t in ids)
    ch07.check_masked_count(lambda ids, special: max(1, round(0.15 * specials(ids, special))))
    ch07.check_masked_count(lambda ids, special: torch.tensor(max(1, round(0.15 * specials(ids, special)))))
    assert capsys.readouterr().out.count("✓ Exercise 7.3") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (count_with(count="all"), r"you counted every position, \[CLS\], \[SEP\] and \[PAD\] included"),
        (count_with(count="non_pad"), r"you counted \[CLS\] and the two \[SEP\]"),
        (count_with(minimum=0), r"a short row gets 0: mask_tokens chooses at least one token"),
        (count_with(rule=math.floor), r"you rounded down"),
        (count_with(rule=math.ceil), r"you rounded up"),
        (count_with(rule=lambda x: math.floor(x + 0.5)), r"you rounded halves up"),
        (count_with(rule=lambda x: int(x / 0.15)), r"you returned the number of ordinary tokens n"),
    ],
    ids=["all", "specials", "no-minimum", "floor", "ceil", "half-up", "n"],
)
def test_count_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(
        AssertionError, match=r"Exercise 7\.3: for a row of \d+ ids .* you counted \d+, expected \d+: " + hint
    ):
        ch07.check_masked_count(wrong)


def test_every_typical_count_mistake_counts_its_own_way():
    expected = [max(1, round(0.15 * n)) for n in ch07._ORDINARY_73]
    counts = [tuple(c) for c in ch07._count_mistakes().values()]
    assert len(counts) == len(set(counts)) == 7
    assert tuple(expected) not in counts


def test_count_float_and_unknown_mistake_are_reported():
    with pytest.raises(AssertionError, match=r"you returned 0\.3.*: a count of tokens is an int"):
        ch07.check_masked_count(count_with(rule=lambda x: x, minimum=0))
    with pytest.raises(AssertionError, match=r"the count should be an int, got str"):
        ch07.check_masked_count(lambda ids, special: "1")
    with pytest.raises(AssertionError, match=r"you counted 2, expected 1: count the ordinary tokens n"):
        ch07.check_masked_count(lambda ids, special: count_with()(ids, special) + 1)


# --- 7.4 masked-LM loss on the masked positions ---------------------------------------------------


def right_loss(hidden, labels, head):
    predicted = labels != -100  # (B, n)
    logits = head(hidden[predicted])  # (M, V)
    return F.cross_entropy(logits, labels[predicted])


def test_loss_right_answer_prints_one_line(capsys):
    ch07.check_masked_lm_loss(right_loss)
    assert capsys.readouterr().out == "✓ Exercise 7.4: masked-LM loss on the masked positions only\n"


def test_loss_by_hand_log_softmax_passes(capsys):
    def by_hand(hidden, labels, head):
        predicted = labels != -100
        log_probs = head(hidden[predicted]).log_softmax(-1)  # (M, V)
        return -log_probs.gather(1, labels[predicted][:, None]).mean()

    ch07.check_masked_lm_loss(by_hand)
    assert "✓ Exercise 7.4" in capsys.readouterr().out


def loss_on_selected(reduce):
    def wrong(hidden, labels, head):
        predicted = labels != -100
        logits = head(hidden[predicted])
        return reduce(logits, labels[predicted], labels)

    return wrong


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (loss_on_selected(lambda z, y, _: F.cross_entropy(z, y, reduction="sum")), r"you summed the losses"),
        (
            loss_on_selected(lambda z, y, labels: F.cross_entropy(z, y, reduction="sum") / labels.numel()),
            r"you divided by every position of the batch \(B \* n\)",
        ),
        (
            loss_on_selected(lambda z, y, _: -z.softmax(-1).gather(1, y[:, None]).mean()),
            r"you took the probability of the right token, not its log",
        ),
        (loss_on_selected(lambda z, y, _: -z.gather(1, y[:, None]).mean()), r"you used the raw logit"),
        (
            lambda hidden, labels, head: F.cross_entropy(
                head(hidden[labels == -100]), labels[labels == -100]
            ),
            r"your loss is NaN: no position was counted",
        ),
        (
            lambda hidden, labels, head: torch.tensor(right_loss(hidden, labels, head).item()),
            r"your loss has the right value but is cut off from the graph",
        ),
        (
            lambda hidden, labels, head: F.cross_entropy(head(hidden).transpose(1, 2), labels),
            r"the loss is right, but the head was run on 30 positions: select the M = \d+ predicted",
        ),
    ],
    ids=[
        "sum",
        "all-positions-mean",
        "probability",
        "raw-logit",
        "unpredicted",
        "detached",
        "head-everywhere",
    ],
)
def test_loss_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 7\.4: " + hint):
        ch07.check_masked_lm_loss(wrong)


def test_loss_python_number_and_wrong_shape_are_reported():
    with pytest.raises(AssertionError, match=r"you returned a Python number"):
        ch07.check_masked_lm_loss(lambda h, y, head: right_loss(h, y, head).item())
    with pytest.raises(AssertionError, match=r"your loss has shape \(\d+,\), expected \(\)"):
        ch07.check_masked_lm_loss(
            lambda h, y, head: F.cross_entropy(head(h[y != -100]), y[y != -100], reduction="none")
        )


def test_loss_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch07.check_masked_lm_loss, right_loss)
