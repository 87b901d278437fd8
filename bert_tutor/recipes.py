"""Whole pretraining runs, from a corpus to a saved model directory.

:class:`PretrainingRun` holds every choice of a run (corpus, model size, vocabulary, sequence length,
training config); :func:`run_pretraining` carries it out: documents, a WordPiece vocabulary trained
on them, NSP pairs (the last tenth of the documents held out), a seeded model, the training loop,
held-out metrics and, given a directory, the files. ``bert-tutor pretrain`` is this function.

:data:`CHAPTER7` is chapter 7's run. :func:`world_model` returns its model, made once and cached
under ``artifacts/``, so that chapters 8 and 10 work whether or not chapter 7 has been run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from bert_tutor.bert import BertConfig, BertForPreTraining
from bert_tutor.checks import check_positive_int
from bert_tutor.corpus import pydoc_documents, read_documents, world_documents
from bert_tutor.files import write_atomically
from bert_tutor.pretraining import split_pairs
from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab
from bert_tutor.training import (
    PretrainingConfig,
    evaluate_pretraining,
    pretrain,
    process_rank,
    special_ids,
)

__all__ = [
    "CHAPTER7",
    "MODEL_SIZES",
    "PretrainingResult",
    "PretrainingRun",
    "artifacts_dir",
    "corpus_documents",
    "prepare_data",
    "run_pretraining",
    "world_model",
]

MODEL_SIZES = {  # BertConfig fields; "small" is the course's model (BertConfig's defaults)
    "tiny": {"hidden_size": 64, "num_layers": 1, "num_heads": 2, "intermediate_size": 256},
    "small": {},
    "base": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072},
}


@dataclass(frozen=True)
class PretrainingRun:
    """Every choice of a pretraining run.

    corpus: "world" (generated, ``documents`` of them), "pydoc" (Python's help) or a file path.
    size: a key of :data:`MODEL_SIZES`. dropout: hidden and attention dropout; short runs learn
    faster without it (Geiping and Goldstein, "Cramming", 2022, also drop it). causal: a
    left-to-right mask instead of BERT's bidirectional attention. The seed fixes the data, the masks
    and the initial weights.
    """

    corpus: str = "world"
    documents: int = 3000
    size: str = "small"
    vocab_size: int = 1000
    max_length: int = 64
    dropout: float = 0.1
    causal: bool = False
    training: PretrainingConfig = field(default_factory=PretrainingConfig)

    def __post_init__(self):
        if self.size not in MODEL_SIZES:
            raise ValueError(f"size must be one of {sorted(MODEL_SIZES)}, got {self.size!r}")
        for name in ("documents", "vocab_size"):
            check_positive_int(name, getattr(self, name))

    def model_config(self, vocab_size: int) -> BertConfig:
        """The model's config for a tokenizer of ``vocab_size`` tokens."""
        return BertConfig(
            vocab_size=vocab_size,
            max_position_embeddings=self.max_length,
            hidden_dropout=self.dropout,
            attention_dropout=self.dropout,
            causal=self.causal,
            **MODEL_SIZES[self.size],
        )

    def fingerprint(self) -> str:
        """12 hex digits that change with any field, model default or line of the code that makes the
        data and the model (:data:`MODEL_CODE`): the name of the run's cache."""
        model = dataclasses.asdict(self.model_config(vocab_size=1))  # the sizes, defaults included
        choices = {"run": dataclasses.asdict(self), "model": model, "code": _code_digest()}
        text = json.dumps(choices, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# The package's modules whose code decides a run's data and model. An edit to any of them (a comment
# included) gives runs new fingerprints, so a cache made by older code is never taken for this code's.
MODEL_CODE = (
    "attention",
    "transformer",
    "bert",
    "corpus",
    "tokenization",
    "pretraining",
    "optimization",
    "training",
    "recipes",
)
_PACKAGE = Path(__file__).resolve().parent


def _code_digest() -> str:
    """sha256 of the source files of :data:`MODEL_CODE`, in that order."""
    digest = hashlib.sha256()
    for name in MODEL_CODE:
        digest.update((_PACKAGE / f"{name}.py").read_bytes())
    return digest.hexdigest()


# Chapter 7's run: 800 steps of 64 pairs of at most 48 tokens, about a minute on two CPU cores.
CHAPTER7 = PretrainingRun(
    max_length=48,
    dropout=0.0,
    training=PretrainingConfig(steps=800, batch_size=64, learning_rate=2e-3, warmup_steps=100),
)


class PretrainingResult(NamedTuple):
    """What :func:`run_pretraining` returns: the trained model (in eval mode), its tokenizer, one
    history row per step, the held-out metrics and the training and held-out NSP pairs."""

    model: BertForPreTraining
    tokenizer: BertTokenizer
    history: list[dict]
    held_out_metrics: dict
    train_pairs: list
    held_out_pairs: list


def corpus_documents(corpus: str, num_documents: int = 3000, seed: int = 0) -> list[list[str]]:
    """Documents of sentences: "world" (``num_documents`` generated), "pydoc", or a file in BERT's format."""
    if corpus == "world":
        return world_documents(num_documents, seed)
    if corpus == "pydoc":
        return pydoc_documents()
    return read_documents(corpus)


def prepare_data(run: PretrainingRun, tokenizer: BertTokenizer | None = None):
    """(tokenizer, training NSP pairs, held-out NSP pairs) of a run; the tokenizer is trained on the
    corpus unless given. The last tenth of the documents is held out."""
    documents = corpus_documents(run.corpus, run.documents, run.training.seed)
    if tokenizer is None:
        sentences = (sentence for document in documents for sentence in document)
        tokenizer = BertTokenizer(train_wordpiece_vocab(sentences, run.vocab_size))
    train_pairs, held_out = split_pairs(documents, tokenizer, run.max_length, seed=run.training.seed)
    return tokenizer, train_pairs, held_out


def run_pretraining(
    run: PretrainingRun,
    output: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | torch.device | None = None,
    checkpoint_every: int = 100,
) -> PretrainingResult:
    """Carry out ``run``; with ``output``, write a directory that bert_tutor and ``transformers`` load.

    The directory holds config.json, model.safetensors, vocab.txt, checkpoint.pt (every state
    needed to continue: ``resume=True``; written every ``checkpoint_every`` steps and at the end) and
    history.json (the losses, held-out metrics, the number of processes and the training time).
    device: default CUDA when there is one (this process's GPU under torchrun), else the CPU.

    Under torchrun every process calls it alike: each prepares the same data and model, trains on its
    shard, and evaluates; only rank 0 shows progress and writes files.
    """
    output = None if output is None else Path(output)
    checkpoint = None if output is None else output / "checkpoint.pt"
    if resume and (checkpoint is None or not checkpoint.is_file()):
        raise FileNotFoundError(f"resume: no checkpoint at {checkpoint}")
    if not resume and checkpoint is not None and checkpoint.exists():
        raise ValueError(
            f"{output} already holds a run; pass --resume (resume=True) to continue it, "
            "or choose another output"
        )
    rank, world_size = process_rank()
    seed = run.training.seed
    tokenizer = BertTokenizer.from_file(output / "vocab.txt") if resume else None
    tokenizer, train_pairs, held_out = prepare_data(run, tokenizer)
    torch.manual_seed(seed)
    model = BertForPreTraining(run.model_config(len(tokenizer)))
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    special = special_ids(tokenizer, len(tokenizer))
    if output is not None and rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        tokenizer.save(output)
    start = time.perf_counter()
    history = pretrain(
        model,
        train_pairs,
        special,
        run.training,
        checkpoint=checkpoint,
        checkpoint_every=checkpoint_every,
        resume=resume,
        progress=progress,
    )
    seconds = time.perf_counter() - start
    metrics = evaluate_pretraining(model, held_out, special)
    model.eval()
    if output is not None and rank == 0:
        model.save_pretrained(output, tokenizer=tokenizer)
        record = {
            "run": dataclasses.asdict(run),
            "held_out": metrics,
            "history": history,
            "processes": world_size,
            "train_seconds": seconds,  # this call's steps only, when resumed
        }
        write_atomically(output / "history.json", lambda path: Path(path).write_text(json.dumps(record)))
    return PretrainingResult(model, tokenizer, history, metrics, train_pairs, held_out)


def artifacts_dir() -> Path:
    """Where runs are cached: $BERT_TUTOR_ARTIFACTS, else ``artifacts/`` of this checkout (git-ignored),
    else ~/.cache/bert-tutor for an installed package."""
    if "BERT_TUTOR_ARTIFACTS" in os.environ:
        return Path(os.environ["BERT_TUTOR_ARTIFACTS"])
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and os.access(checkout, os.W_OK):
        return checkout / "artifacts"
    return Path.home() / ".cache" / "bert-tutor"


def world_model(
    run: PretrainingRun = CHAPTER7, directory: str | Path | None = None, progress: bool = False
) -> PretrainingResult:
    """``run``'s result (model in eval mode, on the CPU), read from its cache directory, made first if absent.

    The directory, ``artifacts_dir() / f"pretrained-{run.fingerprint()}"`` unless given, is written
    under a temporary name and renamed when complete, so an interrupted run leaves nothing half-made.
    """
    final = Path(directory) if directory is not None else artifacts_dir() / f"pretrained-{run.fingerprint()}"
    if not (final / "history.json").is_file():
        temporary = final.with_name(f"{final.name}.partial-{os.getpid()}")
        shutil.rmtree(temporary, ignore_errors=True)
        run_pretraining(run, output=temporary, progress=progress)
        if final.exists():  # a complete copy appeared meanwhile (another process), or a broken one
            shutil.rmtree(final)
        temporary.rename(final)
    record = json.loads((final / "history.json").read_text())
    tokenizer, train_pairs, held_out = prepare_data(run, BertTokenizer.from_file(final / "vocab.txt"))
    model = BertForPreTraining.from_pretrained(final).eval()
    return PretrainingResult(model, tokenizer, record["history"], record["held_out"], train_pairs, held_out)
