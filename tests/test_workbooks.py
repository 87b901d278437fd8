"""bert_tutor.workbooks and `bert-tutor workbooks`: solutions out, outputs cleared, work kept."""

import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from bert_tutor.cli import main
from bert_tutor.workbooks import BEGIN, END, EXERCISE_PATTERN, make_workbook, strip_solutions, write_workbooks

from .conftest import CHAPTERS

SOLUTION_REGION = re.compile(rf"^[ \t]*{re.escape(BEGIN)}\n(.*?)^[ \t]*{re.escape(END)}[ \t]*$", re.S | re.M)
STUB = re.compile(r'^([ \t]*)raise NotImplementedError\("Exercise (\d+\.\d+)"\)$', re.M)


def _toy_chapter():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Chapter 9\n# BEGIN SOLUTION in prose is left alone"),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(
            "# Exercise 9.1: add\ndef add(a, b):\n"
            "    # BEGIN SOLUTION\n    return a + b\n    # END SOLUTION\n"
        ),
        nbformat.v4.new_code_cell("assert add(1, 2) == 3\nprint('✓ Exercise 9.1: add')"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nb.cells[1].execution_count = 1
    return nb


def test_solution_region_becomes_an_indented_not_implemented_error():
    source = (
        "# Exercise 2.3: attention\ndef f(x):\n"
        "    # BEGIN SOLUTION\n    y = x\n    return y\n    # END SOLUTION"
    )
    assert strip_solutions(source) == (
        '# Exercise 2.3: attention\ndef f(x):\n    raise NotImplementedError("Exercise 2.3")'
    )


def test_cells_without_markers_are_unchanged():
    assert strip_solutions("a = 1\n# a comment") == "a = 1\n# a comment"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("# BEGIN SOLUTION\nx\n# END SOLUTION", "no '# Exercise N.M' line"),
        ("# Exercise 1.1: x\n# BEGIN SOLUTION\nx", "never closed"),
        ("# Exercise 1.1: x\nx\n# END SOLUTION", "line 3.*without"),
        ("# Exercise 1.1: x\n# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION", "line 3.*inside another"),
    ],
)
def test_malformed_markers_are_refused_with_the_place(source, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(source, where="01_x.ipynb, cell 4")


def test_make_workbook_clears_outputs_and_keeps_everything_else():
    chapter = _toy_chapter()
    workbook = make_workbook(chapter, name="09_toy.ipynb")
    assert [c.cell_type for c in workbook.cells] == [c.cell_type for c in chapter.cells]
    assert workbook.cells[0].source == chapter.cells[0].source
    assert all(c.outputs == [] and c.execution_count is None for c in workbook.cells if c.cell_type == "code")
    assert "return a + b" not in workbook.cells[2].source
    assert chapter.cells[1].outputs, "the chapter itself must not be modified"


def test_written_workbook_raises_not_implemented_at_the_exercise(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    nbformat.write(_toy_chapter(), chapters / "09_toy.ipynb")
    assert write_workbooks(chapters, tmp_path / "wb") == {tmp_path / "wb" / "09_toy.ipynb": "written"}
    namespace = {}
    workbook = nbformat.read(tmp_path / "wb" / "09_toy.ipynb", as_version=4)
    for cell in workbook.cells[1:3]:
        exec(cell.source, namespace)
    with pytest.raises(NotImplementedError, match="Exercise 9.1"):
        namespace["add"](1, 2)


def test_an_edited_workbook_is_kept_unless_forced(tmp_path):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    nbformat.write(_toy_chapter(), chapters / "09_toy.ipynb")
    target = tmp_path / "wb" / "09_toy.ipynb"
    write_workbooks(chapters, tmp_path / "wb")
    assert write_workbooks(chapters, tmp_path / "wb") == {target: "written"}  # untouched: refreshed
    workbook = nbformat.read(target, as_version=4)
    workbook.cells[2].source = workbook.cells[2].source.replace(
        "raise NotImplementedError", "return a + b  #"
    )
    nbformat.write(workbook, target)
    assert write_workbooks(chapters, tmp_path / "wb") == {target: "kept"}
    assert "return a + b  #" in target.read_text()
    assert write_workbooks(chapters, tmp_path / "wb", force=True) == {target: "written"}
    assert "return a + b  #" not in target.read_text()


def test_missing_chapters_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        write_workbooks(tmp_path / "nowhere", tmp_path / "wb")


def test_cli_writes_workbooks_and_reports_errors_in_one_line(tmp_path, capsys):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    nbformat.write(_toy_chapter(), chapters / "09_toy.ipynb")
    assert main(["workbooks", "--chapters", str(chapters), "--output", str(tmp_path / "wb")]) == 0
    assert "written" in capsys.readouterr().out
    assert main(["workbooks", "--chapters", str(tmp_path / "missing")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "missing" in error


# --- the real chapters ----------------------------------------------------------------


@pytest.fixture(scope="module")
def workbooks(tmp_path_factory):
    out = tmp_path_factory.mktemp("workbooks")
    write_workbooks(CHAPTERS[0].parent, out)
    return out


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_text_survives_and_restoring_gives_the_chapter_back(chapter, workbooks):
    original = nbformat.read(chapter, as_version=4)
    workbook = nbformat.read(workbooks / chapter.name, as_version=4)
    assert len(workbook.cells) == len(original.cells)
    exercises = 0
    for cell, original_cell in zip(workbook.cells, original.cells, strict=True):
        solutions = SOLUTION_REGION.findall(original_cell.source)
        exercises += bool(solutions)
        if cell.cell_type == "code":
            assert BEGIN not in cell.source and END not in cell.source
            assert cell.outputs == [] and cell.execution_count is None
        for solution in solutions:
            assert solution.strip() and solution.strip() not in cell.source
        # Put each solution back where its stub stands: the chapter's cell must come back.
        pieces = iter(SOLUTION_REGION.finditer(original_cell.source))
        restored = STUB.sub(lambda _, pieces=pieces: next(pieces).group(0), cell.source)
        assert restored.rstrip("\n") == original_cell.source.rstrip("\n")
    assert exercises >= 3, f"{chapter.name} has {exercises} exercises; the course asks for at least 3"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_running_a_workbook_stops_first_at_its_first_exercise(chapter, workbooks):
    workbook_path = workbooks / chapter.name
    workbook = nbformat.read(workbook_path, as_version=4)
    first = next(EXERCISE_PATTERN.search(c.source).group(1) for c in workbook.cells if STUB.search(c.source))
    client = NotebookClient(workbook, timeout=600, resources={"metadata": {"path": str(chapter.parent)}})
    with pytest.raises(CellExecutionError) as error:
        client.execute()
    assert error.value.ename == "NotImplementedError", str(error.value)[-2000:]
    assert error.value.evalue == f"Exercise {first}"
