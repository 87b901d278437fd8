"""The ``bert-tutor`` command line (also ``python -m bert_tutor``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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


def _pretrain(args: argparse.Namespace) -> int:
    from bert_tutor.recipes import PretrainingRun, run_pretraining
    from bert_tutor.reproducibility import seed_everything
    from bert_tutor.training import PretrainingConfig

    seed_everything(args.seed, threads=args.threads)
    run = PretrainingRun(
        corpus=args.corpus,
        documents=args.documents,
        size=args.size,
        vocab_size=args.vocab_size,
        max_length=args.max_length,
        dropout=args.dropout,
        training=PretrainingConfig(
            steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            warmup_steps=min(args.warmup_steps, args.steps),
            seed=args.seed,
        ),
    )
    result = run_pretraining(run, output=args.output, resume=args.resume, device=args.device)
    metrics = result.held_out_metrics
    print(
        f"{len(result.train_pairs)} training pairs, vocabulary {len(result.tokenizer)}; "
        f"held-out: MLM accuracy {metrics['mlm_accuracy']:.3f}, NSP accuracy {metrics['nsp_accuracy']:.3f}; "
        f"saved to {args.output}"
    )
    return 0


def _fill_mask(args: argparse.Namespace) -> int:
    from bert_tutor.bert import BertForPreTraining
    from bert_tutor.probing import fill_mask
    from bert_tutor.tokenization import BertTokenizer

    tokenizer = BertTokenizer.from_file(Path(args.directory) / "vocab.txt")
    model = BertForPreTraining.from_pretrained(args.directory)
    for number, guesses in enumerate(fill_mask(model, tokenizer, args.text, top=args.top), start=1):
        print(f"[MASK] {number}: " + ", ".join(f"{token} ({p:.2f})" for token, p in guesses))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from bert_tutor.recipes import CHAPTER7, MODEL_SIZES

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

    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain a BERT (masked LM + next sentence prediction) on a corpus",
        description="Train a WordPiece vocabulary and a BERT on a corpus, then write a directory that "
        "both bert_tutor and Hugging Face transformers load (config.json, model.safetensors, vocab.txt), "
        "with checkpoint.pt to --resume from and history.json with the losses.",
    )
    run, training = CHAPTER7, CHAPTER7.training  # the defaults are chapter 7's run
    pretrain.add_argument(
        "--corpus", default=run.corpus, help="'world' (generated), 'pydoc' or a text file path"
    )
    pretrain.add_argument("--documents", type=int, default=run.documents, help="world documents to generate")
    pretrain.add_argument("--size", choices=sorted(MODEL_SIZES), default=run.size, help="model size")
    pretrain.add_argument("--vocab-size", type=int, default=run.vocab_size, help="WordPiece vocabulary size")
    pretrain.add_argument(
        "--max-length", type=int, default=run.max_length, help="tokens per pair, specials included"
    )
    pretrain.add_argument("--dropout", type=float, default=run.dropout, help="hidden and attention dropout")
    pretrain.add_argument("--steps", type=int, default=training.steps, help="optimizer steps")
    pretrain.add_argument(
        "--batch-size", type=int, default=training.batch_size, help="pairs per optimizer step"
    )
    pretrain.add_argument(
        "--warmup-steps", type=int, default=training.warmup_steps, help="steps of linear warm-up"
    )
    pretrain.add_argument(
        "--learning-rate", type=float, default=training.learning_rate, help="peak learning rate"
    )
    pretrain.add_argument("--seed", type=int, default=0, help="seed of the data, masks and weights")
    pretrain.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's)")
    pretrain.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    pretrain.add_argument("--output", required=True, help="directory to write the model to")
    pretrain.add_argument("--resume", action="store_true", help="continue the run saved in --output")
    pretrain.set_defaults(run=_pretrain)

    fill = commands.add_parser(
        "fill-mask",
        help="predict the [MASK] tokens of a text",
        description="Print the likeliest tokens "
        "for each [MASK] of TEXT, with their probabilities, from a pretrained model directory.",
    )
    fill.add_argument("directory", help="a directory written by `bert-tutor pretrain` (or transformers)")
    fill.add_argument("text", help='text with [MASK], e.g. "alba has a [MASK] that barks at night ."')
    fill.add_argument("--top", type=int, default=5, help="how many guesses to print")
    fill.set_defaults(run=_fill_mask)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"bert-tutor {args.command}: error: {error}", file=sys.stderr)
        return 2
