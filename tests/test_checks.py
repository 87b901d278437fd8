"""bert_tutor.checks: the shared argument checks."""

import pytest

from bert_tutor.checks import check_positive_int


@pytest.mark.parametrize("value", [1, 7, 10**9])
def test_positive_ints_pass(value):
    check_positive_int("steps", value)


@pytest.mark.parametrize("value", [0, -3, True, 2.0, "4", None])
def test_anything_else_is_refused_with_the_name_and_the_value(value):
    with pytest.raises(ValueError, match=rf"^steps must be a positive int, got {value!r}$"):
        check_positive_int("steps", value)
