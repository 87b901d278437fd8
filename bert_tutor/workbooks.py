"""Workbooks: copies of the chapters with the exercise solutions taken out.

In a chapter, an exercise cell starts with ``# Exercise N.M: title`` and holds its answer
between the lines ``# BEGIN SOLUTION`` and ``# END SOLUTION``. The workbook keeps every cell
but replaces each such region by ``raise NotImplementedError("Exercise N.M")`` (indented like
the region) and clears all outputs. A workbook the learner has edited is never overwritten
unless they ask for it (``force=True``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nbformat

from bert_tutor.files import write_atomically

__all__ = ["EXERCISE_PATTERN", "make_workbook", "strip_solutions", "write_workbooks"]

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
EXERCISE_PATTERN = re.compile(r"^# Exercise (\d+\.\d+)\b", re.MULTILINE)
_METADATA_KEY = "bert_tutor"


def strip_solutions(source: str, where: str = "cell") -> str:
    """Replace every solution region of one cell's source; ``where`` names the cell in errors."""
    if BEGIN not in source and END not in source:
        return source
    found = EXERCISE_PATTERN.search(source)
    if found is None:
        raise ValueError(f"{where}: has {BEGIN!r} but no '# Exercise N.M' line naming the exercise")
    exercise = found.group(1)
    kept, inside = [], False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{where}, line {number}: {BEGIN!r} inside another solution region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            kept.append(f'{indent}raise NotImplementedError("Exercise {exercise}")')
        elif marker == END:
            if not inside:
                raise ValueError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN!r} is never closed by {END!r}")
    return "\n".join(kept)


def _fingerprint(notebook) -> str:
    """A hash of the cells' sources: it changes when the learner edits any cell."""
    sources = "\x00".join(cell.source for cell in notebook.cells)
    return hashlib.sha256(sources.encode("utf-8")).hexdigest()


def make_workbook(chapter, name: str = "notebook"):
    """Return a new notebook: ``chapter`` without solutions and without outputs."""
    workbook = nbformat.from_dict(chapter)  # a deep copy
    for index, cell in enumerate(workbook.cells):
        if cell.cell_type != "code":
            continue
        cell.source = strip_solutions(cell.source, where=f"{name}, cell {index}")
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    workbook.metadata[_METADATA_KEY] = {"generated_from": name, "fingerprint": _fingerprint(workbook)}
    return workbook


def _edited_by_learner(path: Path) -> bool:
    """True when ``path`` exists and its cells differ from what the tool wrote there."""
    if not path.exists():
        return False
    try:
        existing = nbformat.read(path, as_version=4)
    except Exception:
        return True  # unreadable: not ours to destroy
    recorded = existing.metadata.get(_METADATA_KEY, {}).get("fingerprint")
    return recorded != _fingerprint(existing)


def write_workbooks(
    chapters_dir: str | Path = "chapters", output_dir: str | Path = "workbooks", force: bool = False
) -> dict[Path, str]:
    """Write ``output_dir/NN_*.ipynb`` for every chapter; return {path: "written" | "kept"}.

    A workbook whose cells the learner has changed is kept (not overwritten) unless ``force``.
    """
    chapters_dir, output_dir = Path(chapters_dir), Path(output_dir)
    if not chapters_dir.is_dir():
        raise FileNotFoundError(f"chapters directory not found: {chapters_dir}")
    chapters = sorted(chapters_dir.glob("[0-9][0-9]_*.ipynb"))
    if not chapters:
        raise FileNotFoundError(f"no chapter notebooks (NN_*.ipynb) in {chapters_dir}")
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for chapter_path in chapters:
        target = output_dir / chapter_path.name
        if not force and _edited_by_learner(target):
            results[target] = "kept"
            continue
        workbook = make_workbook(nbformat.read(chapter_path, as_version=4), name=chapter_path.name)
        write_atomically(target, lambda temporary, workbook=workbook: nbformat.write(workbook, temporary))
        results[target] = "written"
    return results
