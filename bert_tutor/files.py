"""Files: text read with errors that name the file and line; writes that never leave half a file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["read_text", "write_atomically"]


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(temporary)`` on a file beside ``path``, flush it to disk, then rename it to ``path``.

    A reader sees the old file or the new one, never half of one; on any error the temporary
    file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(temporary)
    try:
        write(temporary)
        with temporary.open("rb") as file:
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_text(path: str | Path, what: str = "file") -> str:
    """The contents of a UTF-8 text file (a byte-order mark is dropped).

    Raises FileNotFoundError ("<what> not found: <path>") or ValueError naming the file, and the
    line for invalid UTF-8, when the file is missing, binary (holds NUL bytes) or not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    raw = path.read_bytes()
    if b"\x00" in raw:
        raise ValueError(f"{path}: looks like a binary file (it contains NUL bytes), not UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}, line {line}: not valid UTF-8 ({error.reason})") from None
