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


MODEL_SIZES = {  # BertConfig fields; "small" is the course's model (BertConfig's defaults)
    "tiny": {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "intermediate_size": 256},
    "small": {},
    "base": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072},
}


def _documents(corpus: str, num_documents: int, seed: int) -> list[list[str]]:
    from bert_tutor.corpus import pydoc_documents, read_documents, world_documents

    if corpus == "world":
        return world_documents(num_documents, seed)
    if corpus == "pydoc":
        return pydoc_documents()
    return read_documents(corpus)


def _pretrain(args: argparse.Namespace) -> int:
    import json

    import torch

    from bert_tutor.bert import BertConfig, BertForPreTraining
    from bert_tutor.pretraining import split_pairs
    from bert_tutor.reproducibility import seed_everything
    from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab
    from bert_tutor.training import PretrainingConfig, evaluate_pretraining, pretrain, special_ids

    output = Path(args.output)
    checkpoint = output / "checkpoint.pt"
    if args.resume and not checkpoint.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint}")
    if not args.resume and checkpoint.exists():
        raise ValueError(
            f"{output} already holds a run; pass --resume to continue it or choose another --output"
        )
    seed_everything(args.seed, threads=args.threads)
    documents = _documents(args.corpus, args.documents, args.seed)
    if args.resume:
        tokenizer = BertTokenizer.from_file(output / "vocab.txt")
    else:
        sentences = (sentence for document in documents for sentence in document)
        tokenizer = BertTokenizer(train_wordpiece_vocab(sentences, args.vocab_size))
    train_pairs, held_out = split_pairs(documents, tokenizer, args.max_length, seed=args.seed)
    config = BertConfig(
        vocab_size=len(tokenizer), max_position_embeddings=args.max_length, **MODEL_SIZES[args.size]
    )
    model = BertForPreTraining(config).to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    training = PretrainingConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=min(args.warmup_steps, args.steps),
        seed=args.seed,
    )
    output.mkdir(parents=True, exist_ok=True)
    tokenizer.save(output)
    special = special_ids(tokenizer, len(tokenizer))
    print(f"{len(documents)} documents, {len(train_pairs)} training pairs, vocabulary {len(tokenizer)}")
    history = pretrain(model, train_pairs, special, training, checkpoint=checkpoint, resume=args.resume)
    metrics = evaluate_pretraining(model, held_out, special)
    model.save_pretrained(output, tokenizer=tokenizer)
    (output / "history.json").write_text(json.dumps({"history": history, "held_out": metrics}, indent=1))
    print(
        f"held-out: MLM accuracy {metrics['mlm_accuracy']:.3f}, NSP accuracy {metrics['nsp_accuracy']:.3f}; "
        f"saved to {output}"
    )
    return 0


def _fill_mask(args: argparse.Namespace) -> int:
    import torch

    from bert_tutor.bert import BertForPreTraining
    from bert_tutor.tokenization import BertTokenizer

    tokenizer = BertTokenizer.from_file(Path(args.directory) / "vocab.txt")
    model = BertForPreTraining.from_pretrained(args.directory)
    encoding = tokenizer.encode_batch([args.text])
    masked = encoding["input_ids"] == tokenizer.mask_token_id  # (1, n)
    if not masked.any():
        raise ValueError(f"the text has no {tokenizer.ids_to_tokens[tokenizer.mask_token_id]} token to fill")
    with torch.no_grad():
        logits = model(**encoding, masked_positions=masked).mlm_logits  # (M, V)
    for number, row in enumerate(logits.softmax(-1), start=1):
        top = row.topk(args.top)
        guesses = ", ".join(
            f"{tokenizer.convert_ids_to_tokens(int(i))} ({p:.2f})"
            for p, i in zip(top.values, top.indices, strict=True)
        )
        print(f"[MASK] {number}: {guesses}")
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

    pretrain = commands.add_parser(
        "pretrain",
        help="pretrain a BERT (masked LM + next sentence prediction) on a corpus",
        description="Train a WordPiece vocabulary and a BERT on a corpus, then write a directory that "
        "both bert_tutor and Hugging Face transformers load (config.json, model.safetensors, vocab.txt), "
        "with checkpoint.pt to --resume from and history.json with the losses.",
    )
    pretrain.add_argument(
        "--corpus", default="world", help="'world' (generated), 'pydoc' or a text file path"
    )
    pretrain.add_argument("--documents", type=int, default=3000, help="world documents to generate")
    pretrain.add_argument("--size", choices=sorted(MODEL_SIZES), default="small", help="model size")
    pretrain.add_argument("--vocab-size", type=int, default=1000, help="WordPiece vocabulary size")
    pretrain.add_argument("--max-length", type=int, default=64, help="tokens per pair, specials included")
    pretrain.add_argument("--steps", type=int, default=600, help="optimizer steps")
    pretrain.add_argument("--batch-size", type=int, default=32, help="pairs per optimizer step")
    pretrain.add_argument("--warmup-steps", type=int, default=30, help="steps of linear warm-up")
    pretrain.add_argument("--learning-rate", type=float, default=2e-3, help="peak learning rate")
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
