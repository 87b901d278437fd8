"""bert_tutor.exercises.checking: the shared verdicts of every exercise check."""

import pytest
import torch

from bert_tutor.exercises.checking import check_tensor, passed


def test_passed_prints_one_stable_line(capsys):
    passed("2.2", "scaled dot-product attention")
    assert capsys.readouterr().out == "✓ Exercise 2.2: scaled dot-product attention\n"


def test_a_close_answer_passes_silently(capsys):
    check_tensor("1.1", torch.ones(2) + 1e-7, torch.ones(2))
    assert capsys.readouterr().out == ""


def test_a_known_mistake_gets_its_own_hint():
    expected = torch.tensor([0.2, 0.8])
    with pytest.raises(AssertionError, match=r"^Exercise 1\.1: wrong axis$"):
        check_tensor(
            "1.1", torch.tensor([0.5, 0.5]), expected, mistakes={"wrong axis": torch.tensor([0.5, 0.5])}
        )


def test_a_mistake_that_produces_nan_is_still_recognised():
    nan_row = torch.tensor([float("nan"), 1.0])
    with pytest.raises(AssertionError, match="filled with -inf"):
        check_tensor("2.3", nan_row.clone(), torch.zeros(2), mistakes={"filled with -inf": nan_row})


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([1.0, 2.0], "should be a torch.Tensor, got list"),
        (torch.ones(3), r"has shape \(3,\), expected \(2,\)"),
        (torch.tensor([float("nan"), 0.0]), "contains NaN"),
        (torch.tensor([1.0, 3.0]), r"largest difference 1\b.*did you"),
    ],
)
def test_unknown_wrong_answers_say_how_they_differ(answer, message):
    with pytest.raises(AssertionError, match=message):
        check_tensor("1.2", answer, torch.tensor([1.0, 2.0]), hint="did you ...?")
