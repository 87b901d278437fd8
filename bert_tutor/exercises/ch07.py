"""Checks for the exercises of chapter 7, pretraining.

Each ``check_*`` function calls the learner's function on inputs it makes itself (from its own
seeded generator, so the learner's random state is left alone), compares the result with
:mod:`bert_tutor.pretraining` and :mod:`bert_tutor.bert`, and prints ``✓ Exercise 7.N: ...`` or
raises an AssertionError that names the mistake when it recognises one.

    7.1  check_collate(my_collate)              NSP pairs -> padded [CLS] A [SEP] B [SEP] rows and labels
    7.2  check_corruption(corrupt)              80 % [MASK] / 10 % random / 10 % unchanged, and the labels
    7.3  check_masked_count(how_many_masked)    how many tokens of a row mask_tokens chooses
    7.4  check_masked_lm_loss(masked_lm_loss)   the MLM loss with the head run on the masked positions only
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from bert_tutor.exercises.checking import check_tensor, passed, seeded_generator, unpack_answer
from bert_tutor.pretraining import IGNORE_INDEX, NspPair, collate_pairs, mask_tokens

__all__ = ["check_collate", "check_corruption", "check_masked_count", "check_masked_lm_loss"]

CLS, SEP, PAD, MASK = 2, 3, 0, 4  # the special ids of the course's tokenizers


def _first_equal(answer: torch.Tensor, mistakes: dict[str, torch.Tensor]) -> str | None:
    """The hint of the first mistake ``answer`` equals exactly (any shape), or None."""
    for hint, wrong in mistakes.items():
        if answer.shape == wrong.shape and torch.equal(answer.long(), wrong.long()):
            return hint
    return None


# --- 7.1 ---------------------------------------------------------------------------------------

_PAIRS_71 = (  # different lengths of A and B, one B follows A and one does not: every mistake shows
    NspPair((11, 12, 13), (14, 15), True),
    NspPair((21,), (22, 23, 24, 25, 26), False),
    NspPair((31, 32), (33,), True),
)


def _rows(pairs, order: str = "ab", final_sep: bool = True, cls: bool = True) -> list[list[int]]:
    rows = []
    for p in pairs:
        first, second = (p.tokens_a, p.tokens_b) if order == "ab" else (p.tokens_b, p.tokens_a)
        rows.append([CLS] * cls + [*first, SEP, *second] + [SEP] * final_sep)
    return rows


def _pad_left(rows: list[list[int]], value: int) -> torch.Tensor:
    length = max(map(len, rows))
    return torch.tensor([[value] * (length - len(row)) + row for row in rows])


def _pad_right(rows: list[list[int]], value: int) -> torch.Tensor:
    length = max(map(len, rows))
    return torch.tensor([row + [value] * (length - len(row)) for row in rows])


def check_collate(my_collate) -> None:
    """Exercise 7.1: ``my_collate(pairs, cls_id, sep_id, pad_id)`` lays NSP pairs out for the model.

    pairs: a list of :class:`NspPair` (tokens_a, tokens_b, is_next). Returns four tensors
    (input_ids (B, L), token_type_ids (B, L), attention_mask (B, L), next_sentence_label (B,)):
    each row ``[CLS] A [SEP] B [SEP]`` padded on the right with pad_id to the longest row; token
    type 0 on ``[CLS] A [SEP]``, 1 on ``B [SEP]``, 0 on padding; attention mask 1 on the tokens,
    0 on padding; label 0 when B follows A, 1 when B is random (Hugging Face's convention).
    """
    pairs = list(_PAIRS_71)
    expected = collate_pairs(pairs, CLS, SEP, PAD)
    answer = unpack_answer(
        "7.1",
        my_collate(list(pairs), CLS, SEP, PAD),
        ("input_ids", "token_type_ids", "attention_mask", "next_sentence_label"),
        "my_collate",
    )
    answer = [torch.as_tensor(a) if isinstance(a, list | tuple) else a for a in answer]
    ids, types, mask, labels = answer
    lengths = torch.tensor([len(p.tokens_a) + len(p.tokens_b) + 3 for p in pairs])  # (B,)
    L = int(lengths.max())
    positions = torch.arange(L)  # (L,)
    real = positions < lengths[:, None]  # (B, L)
    start_b = torch.tensor([len(p.tokens_a) + 2 for p in pairs])[:, None]  # (B, 1): first token of B

    if isinstance(ids, torch.Tensor):
        hint = _first_equal(
            ids,
            {
                "your rows lack the final [SEP]: B is closed by a [SEP] too, "
                "[CLS] A [SEP] B [SEP]": _pad_right(_rows(pairs, final_sep=False), PAD),
                "your rows lack the [CLS] at the front: every row starts with it, and the NSP head reads "
                "its final hidden state": _pad_right(_rows(pairs, cls=False), PAD),
                "your rows put B before A: the order is [CLS] A [SEP] B [SEP]": _pad_right(
                    _rows(pairs, order="ba"), PAD
                ),
                "you padded on the left: pad on the right, so that [CLS] stays at position 0 and the "
                "positions of the tokens do not depend on the batch": _pad_left(_rows(pairs), PAD),
            },
        )
        if hint:
            raise AssertionError("Exercise 7.1: " + hint)
    check_tensor("7.1", ids, expected.input_ids, name="your input_ids")

    segment_b = (positions >= start_b) & real  # (B, L)
    check_tensor(
        "7.1",
        types,
        expected.token_type_ids,
        name="your token_type_ids",
        mistakes={
            "your token_type_ids start 1 at the [SEP] that closes A: that [SEP] belongs to segment 0; "
            "type 1 starts with B's first token": ((positions >= start_b - 1) & real).long(),
            "your token_type_ids are 1 on the padding too: padding gets type 0 (the attention mask "
            "hides it anyway)": (positions >= start_b).long(),
            "your token_type_ids are all 0: the tokens of B [SEP] get type 1, so that the model can "
            "tell the two segments apart": torch.zeros_like(segment_b).long(),
            "your token_type_ids are the other way round: 0 on [CLS] A [SEP], 1 on B [SEP], 0 on padding": (
                ~segment_b & real
            ).long(),
            "your token_type_ids leave the final [SEP] in segment 0: it closes B and gets type 1": (
                segment_b & (positions < lengths[:, None] - 1)
            ).long(),
        },
    )
    check_tensor(
        "7.1",
        mask,
        expected.attention_mask,
        name="your attention_mask",
        mistakes={
            "your attention_mask is inverted: 1 marks the real tokens (to attend to), 0 the padding": (
                ~real
            ).long(),
            "your attention_mask is 1 everywhere: padding must get 0, or every token attends to it": (
                torch.ones_like(real).long()
            ),
        },
    )
    check_tensor(
        "7.1",
        labels,
        expected.next_sentence_label,
        name="your next_sentence_label",
        mistakes={
            "your next_sentence_label is the other way round: 0 means B follows A (is_next), 1 means B "
            "is random, Hugging Face's convention": torch.tensor([int(p.is_next) for p in pairs]),
        },
    )
    for name, tensor, use in (
        ("input_ids", ids, "the embedding tables look rows up by integer id"),
        ("token_type_ids", types, "the segment embedding looks rows up by integer id"),
        ("next_sentence_label", labels, "F.cross_entropy takes class indices as integers"),
    ):
        if tensor.dtype not in (torch.long, torch.int):
            raise AssertionError(
                f"Exercise 7.1: your {name} holds the right values as {tensor.dtype}: make it "
                f"torch.long; {use}"
            )
    passed("7.1", "NSP pairs as a batch")


# --- 7.2 ---------------------------------------------------------------------------------------


def _corruption_inputs():
    """input_ids, chosen, draw, random_ids (each (B, L)) with every band of draws, chosen or not."""
    g = seeded_generator(72)
    B, L = 4, 24
    input_ids = torch.randint(10, 90, (B, L), generator=g)  # (B, L)
    draw = torch.rand(B, L, generator=g)  # (B, L) in [0, 1)
    draw[:, :6] = torch.tensor([0.05, 0.5, 0.79, 0.8, 0.85, 0.95])  # every band, at chosen positions
    draw[:, 6:12] = torch.tensor([0.1, 0.6, 0.82, 0.88, 0.9, 0.99])  # every band, at other positions
    chosen = torch.zeros(B, L, dtype=torch.bool)
    chosen[:, :6] = True
    chosen |= torch.rand(B, L, generator=g) < 0.15
    chosen[:, 6:12] = False
    random_ids = torch.randint(90, 100, (B, L), generator=g)  # never equal to an original id
    return input_ids, chosen, draw, random_ids


def check_corruption(corrupt) -> None:
    """Exercise 7.2: ``corrupt(input_ids, chosen, draw, random_ids, mask_id)`` -> (corrupted, labels).

    All (B, L). chosen: bool, the positions to predict. draw: a uniform number in [0, 1) per
    position. At a chosen position, draw < 0.8 -> mask_id, 0.8 <= draw < 0.9 -> random_ids there,
    draw >= 0.9 -> the token stays. Positions not chosen stay. labels: the original id at chosen
    positions, -100 elsewhere. input_ids itself must be left unchanged.
    """
    input_ids, chosen, draw, random_ids = _corruption_inputs()
    given = input_ids.clone()
    answer = corrupt(given, chosen.clone(), draw.clone(), random_ids.clone(), MASK)
    corrupted, labels = unpack_answer("7.2", answer, ("corrupted", "labels"), "corrupt")
    if not torch.equal(given, input_ids):
        raise AssertionError(
            "Exercise 7.2: you changed input_ids in place: the labels need the original tokens, and "
            "the caller's batch must stay as it was. Work on input_ids.clone()"
        )

    masked, randomised = draw < 0.8, (draw >= 0.8) & (draw < 0.9)

    def corrupt_with(to_mask: torch.Tensor, to_randomise: torch.Tensor) -> torch.Tensor:
        out = torch.where(to_randomise, random_ids, input_ids)
        return torch.where(to_mask, torch.full_like(input_ids, MASK), out)

    expected = corrupt_with(chosen & masked, chosen & randomised)
    check_tensor(
        "7.2",
        corrupted,
        expected,
        name="your corrupted ids",
        mistakes={
            "every chosen token became [MASK]: only 80 % do (draw < 0.8); 10 % get a random token "
            "(0.8 <= draw < 0.9) and 10 % stay as they are": corrupt_with(chosen, torch.zeros_like(chosen)),
            "you corrupted positions that were not chosen: apply the draws only where chosen is True": (
                corrupt_with(masked, randomised)
            ),
            "you swapped the last two bands: 0.8 <= draw < 0.9 gives the random token, draw >= 0.9 "
            "leaves the token unchanged": corrupt_with(chosen & masked, chosen & (draw >= 0.9)),
            "your bands run the other way: [MASK] is the first band, draw < 0.8 (then random "
            "below 0.9, unchanged above)": corrupt_with(
                chosen & (draw >= 0.2), chosen & (draw >= 0.1) & (draw < 0.2)
            ),
            "no token got a random replacement: 0.8 <= draw < 0.9 takes random_ids at that position": (
                corrupt_with(chosen & masked, torch.zeros_like(chosen))
            ),
        },
    )
    unchosen = torch.full_like(input_ids, IGNORE_INDEX)
    check_tensor(
        "7.2",
        labels,
        torch.where(chosen, input_ids, unchosen),
        name="your labels",
        mistakes={
            "your labels are the original ids everywhere: positions not chosen get -100, which the "
            "loss skips": input_ids,
            "your labels are the corrupted ids: the model must predict the *original* token, also "
            "where it sees [MASK] or a random one": torch.where(chosen, expected, unchosen),
            "your labels are 0 where nothing is predicted: use -100, the ignore_index of "
            "F.cross_entropy (0 is a real token id, [PAD])": torch.where(chosen, input_ids, 0),
            "your labels cover only the [MASK]ed positions: the random and unchanged 10 % are "
            "predicted too (that is why they exist)": torch.where(chosen & masked, input_ids, unchosen),
        },
    )
    passed("7.2", "80/10/10 corruption")


# --- 7.3 ---------------------------------------------------------------------------------------

_ORDINARY_73 = (2, 5, 13, 27, 30, 47, 61)  # ordinary tokens per row: each mistake counts its own way
_PADDING_73 = (9, 0, 20, 0, 4, 0, 0)


def _rows_73() -> list[torch.Tensor]:
    """Rows [CLS] A [SEP] B [SEP] [PAD]... with the numbers of ordinary tokens above, as (L,) ids."""
    g = seeded_generator(73)
    rows = []
    for n, padding in zip(_ORDINARY_73, _PADDING_73, strict=True):
        tokens = torch.randint(10, 100, (n,), generator=g).tolist()
        cut = max(1, n // 3)
        rows.append(torch.tensor([CLS, *tokens[:cut], SEP, *tokens[cut:], SEP] + [PAD] * padding))
    return rows


def _row_mistakes(n: int, length: int) -> dict[str, int]:
    """What typical mistakes count for a row of ``length`` ids, ``n`` of them ordinary tokens."""
    x = 0.15 * n
    return {
        "you counted every position, [CLS], [SEP] and [PAD] included: only ordinary tokens are "
        "chosen, never a special token": max(1, round(0.15 * length)),
        "you counted [CLS] and the two [SEP]: only ordinary tokens are chosen": max(1, round(0.15 * (n + 3))),
        "a short row gets 0: mask_tokens chooses at least one token per row, max(1, round(0.15 * n))": round(
            x
        ),
        "you rounded down (int or floor): mask_tokens rounds to the nearest, max(1, round(0.15 * n))": max(
            1, math.floor(x)
        ),
        "you rounded up (ceil): mask_tokens rounds to the nearest, max(1, round(0.15 * n))": max(
            1, math.ceil(x)
        ),
        "you rounded halves up: mask_tokens uses Python's round, which sends a half to the even "
        "neighbour (round(4.5) == 4)": max(1, math.floor(x + 0.5)),
        "you returned the number of ordinary tokens n: 15 % of them are chosen": n,
    }


def _count_mistakes() -> dict[str, list[int]]:
    """The counts that each typical mistake gives on the rows of :func:`_rows_73`, with its hint."""
    per_row = [_row_mistakes(n, n + 3 + pad) for n, pad in zip(_ORDINARY_73, _PADDING_73, strict=True)]
    return {hint: [counts[hint] for counts in per_row] for hint in per_row[0]}


def check_masked_count(how_many_masked) -> None:
    """Exercise 7.3: ``how_many_masked(input_ids, special_ids)`` -> an int, the number of tokens of one
    row that ``mask_tokens`` chooses (15 %).

    input_ids: (L,) one row ``[CLS] A [SEP] B [SEP]`` with padding; special_ids: the ids never chosen.
    Checked on rows of several lengths; a typical mistake is recognised by its counts on all of them.
    """
    special = (CLS, SEP, PAD, MASK)
    cases, expected, answers = [], [], []
    for row in _rows_73():
        n = int((~torch.isin(row, torch.tensor(special))).sum())
        _, labels = mask_tokens(row[None], special, MASK, 100, seeded_generator(7300 + n))
        expected.append(int((labels != IGNORE_INDEX).sum()))
        case = f"for a row of {len(row)} ids ({n} ordinary tokens, {int((row == PAD).sum())} [PAD])"
        answer = how_many_masked(row.clone(), special)
        if isinstance(answer, torch.Tensor) and answer.numel() == 1 and not answer.is_floating_point():
            answer = answer.item()
        if isinstance(answer, float | torch.Tensor):
            raise AssertionError(
                f"Exercise 7.3: {case}, you returned {answer!r:.40}: a count of tokens is an int; "
                f"round 0.15 * n to the nearest int"
            )
        if not isinstance(answer, numbers.Integral) or isinstance(answer, bool):
            raise AssertionError(
                f"Exercise 7.3: {case}, the count should be an int, got {type(answer).__name__}"
            )
        cases.append(case)
        answers.append(int(answer))
    if answers == expected:
        passed("7.3", "how many tokens are masked")
        return
    first = next(i for i, (a, e) in enumerate(zip(answers, expected, strict=True)) if a != e)
    where = f"{cases[first]}, you counted {answers[first]}, expected {expected[first]}"
    for hint, wrong in _count_mistakes().items():
        if answers == wrong:
            raise AssertionError(f"Exercise 7.3: {where}: {hint}")
    raise AssertionError(
        f"Exercise 7.3: {where}: count the ordinary tokens n (those not in special_ids), then "
        f"max(1, round(0.15 * n))"
    )


# --- 7.4 ---------------------------------------------------------------------------------------


class _RecordingHead(nn.Module):
    """A masked-LM head (Linear(h, V)) that remembers how many positions it was run on."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight, self.bias = nn.Parameter(weight), nn.Parameter(bias)
        self.rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows += x.shape[:-1].numel()
        return F.linear(x, self.weight, self.bias)  # (..., V)


def check_masked_lm_loss(masked_lm_loss) -> None:
    """Exercise 7.4: ``masked_lm_loss(hidden, labels, head)`` -> the masked-LM loss, a scalar tensor.

    hidden: (B, n, h) the encoder's output; labels: (B, n), the original id at the M predicted
    positions, -100 elsewhere; head: a module (..., h) -> (..., V). Run the head on the M predicted
    positions only, (M, h) -> (M, V), and return the mean cross-entropy over them.
    """
    g = seeded_generator(74)
    B, n, h, V = 3, 10, 8, 30
    hidden = torch.randn(B, n, h, generator=g)  # (B, n, h)
    chosen = torch.rand(B, n, generator=g) < 0.25
    chosen[:, 1] = True  # M >= B
    labels = torch.where(chosen, torch.randint(5, V, (B, n), generator=g), IGNORE_INDEX)  # (B, n)
    weight, bias = torch.randn(V, h, generator=g), torch.randn(V, generator=g)
    head = _RecordingHead(weight.clone(), bias.clone())

    M = int(chosen.sum())
    logits = F.linear(hidden[chosen], weight, bias)  # (M, V)
    targets = labels[chosen]  # (M,)
    expected = F.cross_entropy(logits, targets)
    per_position = F.cross_entropy(logits, targets, reduction="none")  # (M,)
    picked = logits.gather(1, targets[:, None]).squeeze(1)  # (M,): the right token's logit

    given = hidden.clone().requires_grad_(True)
    answer = masked_lm_loss(given, labels.clone(), head)
    if isinstance(answer, numbers.Real) and not isinstance(answer, bool):
        raise AssertionError(
            "Exercise 7.4: you returned a Python number: return the loss tensor itself (no .item()), "
            "so that loss.backward() can train the model"
        )
    if isinstance(answer, torch.Tensor) and answer.numel() == 1 and answer.dim() > 0:
        answer = answer.reshape(())
    check_tensor(
        "7.4",
        answer,
        expected,
        name="your loss",
        mistakes={
            "you summed the losses of the masked positions: take their mean (F.cross_entropy's default), "
            "so that the loss does not grow with the batch": per_position.sum(),
            "you divided by every position of the batch (B * n), not by the M predicted ones: the "
            "loss would shrink with the masking rate": per_position.sum() / (B * n),
            "you took the probability of the right token, not its log: cross-entropy is the mean of "
            "-log softmax(logits)[label]": -logits.softmax(-1).gather(1, targets[:, None]).mean(),
            "you used the raw logit of the right token: cross-entropy needs the log-softmax, "
            "-log softmax(logits)[label], F.cross_entropy(logits, labels)": -picked.mean(),
            "your loss is NaN: no position was counted. Did you select labels == -100 (the positions "
            "*not* predicted)? Select labels != -100": torch.tensor(float("nan")),
        },
    )
    if not answer.requires_grad:
        raise AssertionError(
            "Exercise 7.4: your loss has the right value but is cut off from the graph (no grad_fn): "
            "compute it with torch operations on hidden and head, without .item(), .detach() or "
            "torch.tensor(...)"
        )
    if head.rows > M:
        raise AssertionError(
            f"Exercise 7.4: the loss is right, but the head was run on {head.rows} positions: select the "
            f"M = {M} predicted positions first, hidden[labels != -100] (M, h), then run the head on "
            f"them; that is the saving of BERT's masked_positions"
        )
    passed("7.4", "masked-LM loss on the masked positions only")
