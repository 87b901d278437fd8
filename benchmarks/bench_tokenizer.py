"""Our BERT tokenizer against Hugging Face's two, and our vocabulary trainer against ``tokenizers``'.

Encoding: the help topics that ship with Python (``pydoc_data``, 79 texts, about 0.5 MB), each
text encoded with ``[CLS]``/``[SEP]`` into input ids, token type ids and attention mask, by

* ours (``bert_tutor.tokenization.BertTokenizer``), a fresh one each round so that its
  word cache starts empty, and once more with the cache already full;
* transformers' pure-Python ``BertTokenizerLegacy``;
* transformers' Rust-backed ``BertTokenizer``, one text per call, and all texts in one batch call
  (which the Rust library spreads over the CPU cores).

All use the same ``vocab.txt`` (trained by our trainer on the same text) and must give the same
ids. Times are medians over REPEATS rounds after a warm-up; the tokenizers take turns.

Training: a vocabulary learned from about 1 MB of text (the help topics and the docstrings of
some standard-library modules) by our trainer, with either score, and by ``tokenizers``'
WordPieceTrainer: seconds, how much of ``tokenizers``' vocabulary ours shares, and the average
number of tokens per word when each vocabulary tokenizes the help topics.

Run:  python benchmarks/bench_tokenizer.py [--quick]      (about a minute; --quick: seconds)
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import statistics
import tempfile
import time
from collections.abc import Callable
from pydoc_data.topics import topics

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers import BertTokenizer as RustBertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from bert_tutor.tokenization import SPECIAL_TOKENS, BasicTokenizer, BertTokenizer, train_wordpiece_vocab

HELP_TOPICS = list(topics.values())
DOCSTRING_MODULES = (
    "argparse asyncio collections csv datetime decimal email functools http.client inspect itertools json "
    "logging os pathlib pickle re shutil socket sqlite3 statistics string subprocess tarfile threading "
    "typing unittest urllib.request zipfile ssl random fractions enum dataclasses textwrap difflib calendar "
    "configparser"
).split()


def docstrings() -> list[str]:
    """The docstrings of some standard-library modules, their classes, functions and methods."""
    texts = []
    for name in DOCSTRING_MODULES:
        module = importlib.import_module(name)
        for obj in [module, *(value for _, value in inspect.getmembers(module))]:
            if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj):
                texts.append(inspect.getdoc(obj) or "")
            if inspect.isclass(obj):
                texts += [
                    inspect.getdoc(method) or "" for _, method in inspect.getmembers(obj, inspect.isroutine)
                ]
    return [text for text in dict.fromkeys(texts) if text]


def median_seconds(steps: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall time of each step over ``repeats`` rounds, one warm-up first; steps take turns."""
    times = [[] for _ in steps]
    for round_ in range(repeats + 1):
        for step, step_times in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            if round_ > 0:
                step_times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def train_with_tokenizers(texts: list[str], vocab_size: int) -> list[str]:
    """``tokenizers``' WordPiece trainer with BERT's normalizer and pre-tokenizer; tokens in id order."""
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        texts,
        trainers.WordPieceTrainer(
            vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False
        ),
    )
    vocab = tokenizer.get_vocab()
    return sorted(vocab, key=vocab.get)


def tokens_per_word(vocab: list[str], texts: list[str]) -> float:
    tokenizer, basic = BertTokenizer(vocab), BasicTokenizer()
    return sum(len(tokenizer.tokenize(text)) for text in texts) / sum(
        len(basic.tokenize(text)) for text in texts
    )


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A Markdown table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    cells = lambda row: [
        row[0].ljust(widths[0]),
        *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
    ]
    print("| " + " | ".join(cells(header)) + " |")
    print("|" + "|".join(["-" * (widths[0] + 2), *("-" * (width + 1) + ":" for width in widths[1:])]) + "|")
    for row in rows:
        print("| " + " | ".join(cells(row)) + " |")


def bench_encoding(vocab: list[str], repeats: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        legacy = BertTokenizerLegacy(str(BertTokenizer(vocab).save(directory)))
    rust = RustBertTokenizer(vocab={token: index for index, token in enumerate(vocab)})
    ours_warm = BertTokenizer(vocab)
    ids = [ours_warm.encode(text)["input_ids"] for text in HELP_TOPICS]
    assert ids == legacy(HELP_TOPICS)["input_ids"] == rust(HELP_TOPICS)["input_ids"], (
        "the tokenizers disagree"
    )
    num_tokens = sum(map(len, ids))

    def ours_from_scratch():  # a new tokenizer: its word cache starts empty
        tokenizer = BertTokenizer(vocab)
        return [tokenizer.encode(text) for text in HELP_TOPICS]

    steps = {
        "ours, empty word cache": ours_from_scratch,
        "ours, full word cache": lambda: [ours_warm.encode(text) for text in HELP_TOPICS],
        "HF BertTokenizerLegacy (Python)": lambda: [legacy(text) for text in HELP_TOPICS],
        "HF BertTokenizer (Rust), per text": lambda: [rust(text) for text in HELP_TOPICS],
        "HF BertTokenizer (Rust), one batch": lambda: rust(HELP_TOPICS),
    }
    seconds = dict(zip(steps, median_seconds(list(steps.values()), repeats), strict=True))
    python, rust_per_text = (
        seconds["HF BertTokenizerLegacy (Python)"],
        seconds["HF BertTokenizer (Rust), per text"],
    )
    print(
        f"Encoding the {len(HELP_TOPICS)} help topics ({sum(map(len, HELP_TOPICS)) / 1e6:.2f} MB, "
        f"{num_tokens:,} tokens, vocabulary of {len(vocab):,}), median of {repeats} rounds:\n"
    )
    print_table(
        ["tokenizer", "seconds", "tokens/s", "vs Python", "vs Rust"],
        [
            [name, f"{s:.3f}", f"{num_tokens / s:,.0f}", f"{python / s:.2f}x", f"{rust_per_text / s:.2f}x"]
            for name, s in seconds.items()
        ],
    )
    print("\n(vs X: speed relative to X, X one text per call; above 1 is faster)\n")


def bench_training(texts: list[str], vocab_size: int) -> list[str]:
    """Train with ``tokenizers`` and with ours (both scores), compare; return ours with the default score."""
    vocabs, seconds = {}, {}
    trainers_ = {
        "tokenizers WordPieceTrainer (Rust)": lambda: train_with_tokenizers(texts, vocab_size),
        "ours, score=frequency (default)": lambda: train_wordpiece_vocab(
            texts, vocab_size, score="frequency"
        ),
        "ours, score=likelihood": lambda: train_wordpiece_vocab(texts, vocab_size, score="likelihood"),
    }
    for name, train in trainers_.items():
        start = time.perf_counter()
        vocabs[name] = train()
        seconds[name] = time.perf_counter() - start
    theirs = set(vocabs["tokenizers WordPieceTrainer (Rust)"])
    megabytes = sum(len(text.encode()) for text in texts) / 1e6
    print(f"Training a {vocab_size:,}-token vocabulary on {len(texts):,} texts ({megabytes:.2f} MB):\n")
    rows = []
    for name, vocab in vocabs.items():
        shared = len(set(vocab) & theirs)
        rows.append(
            [
                name,
                f"{seconds[name]:.2f}",
                f"{len(vocab):,}",
                f"{shared / len(theirs):.1%}",
                f"{shared / len(set(vocab) | theirs):.3f}",
                f"{tokens_per_word(vocab, HELP_TOPICS):.3f}",
            ]
        )
    print_table(["trainer", "seconds", "tokens", "shared with tokenizers'", "Jaccard", "tokens/word"], rows)
    print("\n(tokens/word: on the help topics, with our tokenizer on each vocabulary)\n")
    return vocabs["ours, score=frequency (default)"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round, training on the help topics only")
    parser.add_argument("--vocab-size", type=int, default=8000)
    args = parser.parse_args()
    texts = HELP_TOPICS if args.quick else HELP_TOPICS + docstrings()
    vocab = bench_training(texts, args.vocab_size)
    bench_encoding(vocab, repeats=1 if args.quick else 5)


if __name__ == "__main__":
    main()
