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
    from bert_tutor.distributed import lost_contact, process_group
    from bert_tutor.recipes import PretrainingRun, run_pretraining
    from bert_tutor.reproducibility import seed_everything
    from bert_tutor.training import PretrainingConfig

    # Under torchrun: join the process group (and always leave it); plain: a one-process run.
    process = None
    try:
        with process_group(args.backend, args.timeout, args.threads, args.device) as process:
            seed_everything(args.seed, threads=process.threads)
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
                    accumulation_steps=args.accumulation_steps,
                    learning_rate=args.learning_rate,
                    warmup_steps=min(args.warmup_steps, args.steps),
                    seed=args.seed,
                ),
            )
            result = run_pretraining(
                run,
                output=args.output,
                resume=args.resume,
                device=process.device,
                checkpoint_every=args.checkpoint_every,
                progress=process.is_main,
            )
    except RuntimeError as error:  # in a process group: another process died, hung or is unreachable
        if process is None or process.backend is None or not lost_contact(error):
            raise
        first = str(error).strip().splitlines()[0]
        print(
            f"bert-tutor pretrain: error: rank {process.rank} of {process.world_size} lost contact with the "
            f"other processes ({first}); their own errors are in their output. The last checkpoint in "
            f"{args.output} is intact: run the same command with --resume to continue from it",
            file=sys.stderr,
        )
        return 1
    if process.is_main:
        metrics = result.held_out_metrics
        print(
            f"{len(result.train_pairs)} training pairs, vocabulary {len(result.tokenizer)}; "
            f"held-out: MLM accuracy {metrics['mlm_accuracy']:.3f}, "
            f"NSP accuracy {metrics['nsp_accuracy']:.3f}; saved to {args.output}"
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


def _finetune(args: argparse.Namespace) -> int:
    import torch

    from bert_tutor.bert import BertConfig, BertModel
    from bert_tutor.finetuning import (
        RECIPES,
        WORLD_TASKS,
        encode_task,
        evaluate_task,
        file_task,
        finetune,
        finetuning_model,
        save_finetuned,
        world_task,
    )
    from bert_tutor.recipes import CHAPTER7, MODEL_SIZES
    from bert_tutor.reproducibility import seed_everything
    from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab

    if (args.pretrained is None) != args.scratch:
        raise ValueError("give either --pretrained DIR (fine-tune that model) or --scratch (random weights)")
    recipe = RECIPES.get(args.task, RECIPES["world-fit"])
    steps, batch_size, learning_rate = (
        recipe[name] if given is None else given
        for name, given in (
            ("steps", args.steps),
            ("batch_size", args.batch_size),
            ("learning_rate", args.learning_rate),
        )
    )
    for option, value in (
        ("--steps", steps),
        ("--batch-size", batch_size),
        ("--max-length", args.max_length),
    ):
        if value is not None and value < 1:
            raise ValueError(f"{option} must be at least 1, got {value}")
    if not learning_rate > 0:
        raise ValueError(f"--learning-rate must be positive, got {learning_rate}")
    try:
        device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError:
        raise ValueError(f"--device {args.device!r} is not a device: use cpu or cuda (cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: this machine has no CUDA device (PyTorch sees none)")
    if args.task not in WORLD_TASKS and not Path(args.task).is_file():
        raise FileNotFoundError(f"--task {args.task}: no such file, and not one of {', '.join(WORLD_TASKS)}")

    seed_everything(args.seed, threads=args.threads)
    if args.task in WORLD_TASKS:
        task = world_task(args.task)
    else:
        task = file_task(args.task, args.eval_file, args.format)
    if args.scratch:  # a vocabulary of the training texts, a model of --size with random weights
        tokenizer = BertTokenizer(train_wordpiece_vocab(task.texts(), args.vocab_size))
        length = args.max_length or CHAPTER7.max_length
        config = BertConfig(
            vocab_size=len(tokenizer), max_position_embeddings=length, **MODEL_SIZES[args.size]
        )
        encoder = BertModel(config)
    else:
        encoder = BertModel.from_pretrained(args.pretrained)
        tokenizer = BertTokenizer.from_file(Path(args.pretrained) / "vocab.txt")
    longest = encoder.config.max_position_embeddings
    if args.max_length is not None and args.max_length > longest:
        raise ValueError(f"--max-length {args.max_length} is more than the model's {longest} positions")
    max_length = args.max_length or longest
    model = finetuning_model(
        task.model_class, encoder.to(device), len(task.label_names), scratch=args.scratch, seed=args.seed
    )
    data = encode_task(task, tokenizer, task.train, max_length)
    history = finetune(
        model,
        data,
        steps=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=args.seed,
        progress=True,
    )
    metrics = evaluate_task(task, model, tokenizer, task.test, max_length)
    report = {
        "task": args.task,
        "kind": task.kind,
        "pretrained": None if args.scratch else str(args.pretrained),
        "train_examples": len(task.train),
        "test_examples": len(task.test),
        "steps": steps,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": args.seed,
        "max_length": max_length,
        "device": str(device),
        "final_loss": history[-1]["loss"],
        "metrics": metrics,
    }
    save_finetuned(model, tokenizer, args.output, task.label_names, report)
    if task.kind == "ner":
        score = (
            f"entity F1 {metrics['f1']:.3f} (precision {metrics['precision']:.3f}, "
            f"recall {metrics['recall']:.3f})"
        )
    else:
        score = f"accuracy {metrics['accuracy']:.3f}"
    print(
        f"{task.name}: fine-tuned on {len(task.train)} examples, {score} on {len(task.test)} held-out "
        f"examples; saved to {args.output}"
    )
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
        "with checkpoint.pt to --resume from and history.json with the losses. The same command runs "
        "data-parallel under torchrun: torchrun --standalone --nproc-per-node 2 -m bert_tutor pretrain ...",
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
    pretrain.add_argument(
        "--accumulation-steps",
        type=int,
        default=training.accumulation_steps,
        help="micro-batches per optimizer step (gradient accumulation)",
    )
    pretrain.add_argument("--seed", type=int, default=0, help="seed of the data, masks and weights")
    pretrain.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads per process (default: PyTorch's; under torchrun, the cores divided among the "
        "processes of the machine)",
    )
    pretrain.add_argument(
        "--device",
        default=None,
        help="cpu or cuda (default: cuda when available; GPU LOCAL_RANK under torchrun)",
    )
    pretrain.add_argument("--output", required=True, help="directory to write the model to")
    pretrain.add_argument("--resume", action="store_true", help="continue the run saved in --output")
    pretrain.add_argument(
        "--checkpoint-every", type=int, default=100, help="steps between checkpoints (and one at the end)"
    )
    pretrain.add_argument(
        "--backend",
        choices=("gloo", "nccl"),
        default=None,
        help="under torchrun: how processes talk (default: nccl with CUDA, gloo otherwise)",
    )
    pretrain.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        help="under torchrun: seconds to wait for the other processes before failing (default 300)",
    )
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

    tune = commands.add_parser(
        "finetune",
        help="fine-tune a BERT (pretrained or from scratch) for sentence classification or NER",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Fine-tune a BERT for sentence classification or named entities, score it on held-out
examples, and write a directory that both bert_tutor and Hugging Face transformers load
(config.json with the label names, model.safetensors, vocab.txt), with metrics.json (the
held-out metrics and the settings).

TASK is one of
  world-fit   does the job in "X works as a J and ..." go with the work? (chapter 8)
  world-ner   tag people, places, jobs and animals (BIO tags; entity-level F1)
  FILE.tsv    text<TAB>label (or text_a<TAB>text_b<TAB>label) rows: classification
  FILE.conll  CoNLL-2003 columns (word ... tag, a blank line between sentences): NER
Files are tested on --eval-file, or on a tenth of them held out.""",
        epilog="""\
examples:
  bert-tutor pretrain --output runs/world
  bert-tutor finetune --task world-fit --pretrained runs/world --output runs/fit
  bert-tutor finetune --task world-fit --scratch --output runs/fit-scratch
  bert-tutor finetune --task mine.tsv --eval-file test.tsv --pretrained runs/world --output runs/mine""",
    )
    tune.add_argument(
        "--task", required=True, metavar="TASK", help="world-fit, world-ner, or a TSV or CoNLL file"
    )
    tune.add_argument(
        "--eval-file", metavar="FILE", default=None, help="a file of the same format to test on"
    )
    tune.add_argument(
        "--format", choices=("tsv", "conll"), default=None, help="the file's format (default: by suffix)"
    )
    tune.add_argument(
        "--pretrained",
        metavar="DIR",
        default=None,
        help="a model directory (bert-tutor pretrain, transformers)",
    )
    tune.add_argument("--scratch", action="store_true", help="start from random weights instead")
    tune.add_argument(
        "--size", choices=sorted(MODEL_SIZES), default="small", help="with --scratch: the model's size"
    )
    tune.add_argument(
        "--vocab-size",
        type=int,
        metavar="N",
        default=1000,
        help="with --scratch: a WordPiece vocabulary of the texts",
    )
    tune.add_argument(
        "--max-length",
        type=int,
        metavar="N",
        default=None,
        help="tokens per example (default: the model's longest)",
    )
    tune.add_argument(
        "--output", required=True, metavar="DIR", help="directory to write the fine-tuned model to"
    )
    tune.add_argument(
        "--steps",
        type=int,
        metavar="N",
        default=None,
        help="optimizer steps (default: chapter 8's, 300; 80 for world-ner)",
    )
    tune.add_argument(
        "--batch-size", type=int, metavar="N", default=None, help="examples per step (default 16)"
    )
    tune.add_argument(
        "--learning-rate", type=float, metavar="LR", default=None, help="peak learning rate (default 5e-4)"
    )
    tune.add_argument(
        "--seed", type=int, metavar="N", default=0, help="seed of the new weights and the order of examples"
    )
    tune.add_argument(
        "--threads", type=int, metavar="N", default=None, help="CPU threads (default: PyTorch's)"
    )
    tune.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    tune.set_defaults(run=_finetune)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"bert-tutor {args.command}: error: {error}", file=sys.stderr)
        return 2
