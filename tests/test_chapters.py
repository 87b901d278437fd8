"""Every chapter keeps the course's shape: seeded, executed, exercises checked, questions, glossary.

nbval (``make test``) re-runs the chapters and compares their outputs; these tests check what
nbval cannot see: that the stored outputs exist and that each chapter has all its parts.
"""

import re

import nbformat
import pytest

from bert_tutor.workbooks import BEGIN, EXERCISE_PATTERN

from .conftest import CHAPTERS, ROOT

# The chapters written so far; README.md marks the others as coming.
WRITTEN = [
    "01_attention",
    "02_self_attention",
    "03_multi_head_attention",
    "04_transformer",
    "05_tokenization",
    "06_bert",
    "07_pretraining",
    "08_finetuning",
    "09_ddp_pretraining",
    "10_attention_visualization",
]
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_written_chapter_is_there():
    assert [p.stem for p in CHAPTERS] == WRITTEN


def test_readme_lists_all_ten_chapters_in_order():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    numbers = re.findall(r"^\| (\d\d) \|", readme, re.M)
    assert numbers == [f"{n:02d}" for n in range(1, 11)]


@pytest.fixture(params=CHAPTERS, ids=lambda p: p.stem)
def chapter(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_opens_with_a_title_goals_and_time(chapter):
    path, nb = chapter
    first = nb.cells[0]
    number = int(path.name[:2])
    assert first.cell_type == "markdown" and first.source.startswith(f"# Chapter {number}")
    assert re.search(r"\d+\s*min", first.source), "say how long the chapter takes"


def test_is_seeded_and_fully_executed_in_order_without_errors(chapter):
    _, nb = chapter
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert "seed_everything(" in code[0].source
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "re-run top to bottom"
    for cell in code:
        assert not any(o.output_type == "error" for o in cell.outputs), cell.source[:80]


def test_ignored_outputs_still_assert_on_what_they_compute(chapter):
    _, nb = chapter
    for cell in nb.cells:
        if cell.cell_type == "code" and "NBVAL_IGNORE_OUTPUT" in cell.source:
            assert "assert" in cell.source, f"ignored cell asserts nothing:\n{cell.source[:200]}"


def test_at_least_three_exercises_each_followed_by_a_passing_check(chapter):
    path, nb = chapter
    number = int(path.name[:2])
    exercises = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or BEGIN not in cell.source:
            continue
        exercise = EXERCISE_PATTERN.match(cell.source)
        assert exercise, f"cell {i}: an exercise cell must start with '# Exercise N.M: title'"
        exercise = exercise.group(1)
        assert exercise.startswith(f"{number}."), f"exercise {exercise} in chapter {number}"
        check = nb.cells[i + 1]
        printed = "".join(o.get("text", "") for o in check.outputs if o.output_type == "stream")
        assert f"✓ Exercise {exercise}:" in printed, f"the check cell after exercise {exercise} did not pass"
        exercises.append(exercise)
    assert len(exercises) >= 3 and len(set(exercises)) == len(exercises), exercises


def test_key_questions_with_hidden_answers_glossary_and_next_steps(chapter):
    _, nb = chapter
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert prose.count("<details>") >= 5, "at least 5 key questions with hidden answers"
    glossary = prose[prose.lower().index("glossary") :]
    assert len(CJK.findall(glossary)) >= 10, "glossary English / 中文"
    assert re.search(r"what comes next", prose, re.I)
