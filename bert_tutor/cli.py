"""The ``bert-tutor`` command line (also ``python -m bert_tutor``)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _workbooks(args: argparse.Namespace) -> int:
    from bert_tutor.workbooks import write_workbooks

    results = write_workbooks(args.chapters, args.output, force=args.force)
    for path, what in results.items():
        if what == "kept":
            print(f"kept    {path}  (you have edited it; --force overwrites it)")
        else:
            print(f"written {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bert-tutor", description="Tools for the bert-tutor course (see README.md)."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    workbooks = commands.add_parser(
        "workbooks",
        help="write the exercise workbooks (chapters with the solutions removed)",
        description="Write workbooks/NN_*.ipynb from chapters/: each solution is replaced by "
        "`raise NotImplementedError`, outputs are cleared. Workbooks you have edited are kept.",
    )
    workbooks.add_argument("--chapters", default="chapters", help="folder of the chapter notebooks")
    workbooks.add_argument("--output", default="workbooks", help="folder to write the workbooks to")
    workbooks.add_argument("--force", action="store_true", help="overwrite workbooks you have edited")
    workbooks.set_defaults(run=_workbooks)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as error:
        print(f"bert-tutor {args.command}: error: {error}", file=sys.stderr)
        return 2
