"""bert_tutor.files: a file is replaced whole or not at all."""

import pytest

from bert_tutor.files import read_text, write_atomically


def test_new_content_replaces_the_old_and_no_temporary_file_is_left(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    write_atomically(path, lambda temporary: temporary.write_text("new"))
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")

    def half_then_crash(temporary):
        temporary.write_text("ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_crash)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_read_text_drops_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfhello\n")
    assert read_text(path) == "hello\n"


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (None, FileNotFoundError, r"data file not found: .*in\.txt"),
        (b"ab\x00cd", ValueError, r"in\.txt: looks like a binary file"),
        (b"fine\nfine\nbad \xff\n", ValueError, r"in\.txt, line 3: not valid UTF-8"),
    ],
)
def test_read_text_names_the_file_and_line_of_what_is_wrong(tmp_path, content, error, message):
    path = tmp_path / "in.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=message):
        read_text(path, what="data file")
