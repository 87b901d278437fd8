"""Fine-tuning BERT for language understanding: sentence classification and named entities (chapter 8).

Read it top to bottom:

* Two tasks generated from chapter 7's world, so that a model pretrained on it has something to
  bring: :func:`world_fit_task` (does a job go with the work a sentence gives it? chapter 7's model
  learned every right pairing by filling in blanks) and :func:`world_ner` (tag people, places, jobs
  and animals with BIO tags; ``unseen_names=True`` gives people and places that the world never
  names, to test generalisation).
* Your own data, in the ecosystem's usual formats: :func:`read_classification_tsv` (text, label)
  and :func:`read_conll` (CoNLL-2003 columns).
* Encoding: :func:`encode_classification` (pairs through the tokenizer's ``encode_batch``) and
  :func:`encode_ner`, which tokenizes word by word and labels only the first piece of each word
  (:func:`align_labels`); the other pieces and ``[CLS]``/``[SEP]``/``[PAD]`` get -100, which the
  loss skips.
* Metrics: :func:`accuracy`; entity-level precision, recall and F1 (:func:`bio_entities`,
  :func:`entity_scores`), as CoNLL's ``conlleval`` counts them.
* The loop: :func:`finetuning_model` (a new head on a pretrained encoder, or all from scratch),
  :func:`finetune` (AdamW, warm-up then linear decay, clipping) and the ``evaluate_*`` helpers, the
  same for both tasks.
* Whole tasks, as ``bert-tutor finetune`` runs them: :class:`Task` from :func:`world_task` or
  :func:`file_task`, :func:`encode_task`, :func:`evaluate_task`, and :func:`save_finetuned`, which
  writes a directory that ``transformers`` loads, with the label names and the metrics.

Shapes: B examples, L tokens (padded), W words of a sentence.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn
from tqdm.auto import tqdm

from bert_tutor.bert import IGNORE_INDEX, BertForSequenceClassification, BertForTokenClassification
from bert_tutor.checks import check_positive_int
from bert_tutor.corpus import ANIMALS, COLOURS, JOBS, NAMES, OBJECTS, PLACES, world_documents
from bert_tutor.files import read_text, write_atomically
from bert_tutor.optimization import parameter_groups, warmup_linear_decay

__all__ = [
    "FIT_LABELS",
    "FIT_TEST",
    "FIT_TRAIN",
    "NER_LABELS",
    "NER_TEST",
    "NER_TRAIN",
    "RECIPES",
    "Task",
    "WORLD_TASKS",
    "accuracy",
    "align_labels",
    "bio_entities",
    "bio_label_names",
    "encode_classification",
    "encode_ner",
    "encode_task",
    "entity_scores",
    "evaluate_classification",
    "evaluate_ner",
    "evaluate_task",
    "file_task",
    "finetune",
    "finetuning_model",
    "load_pretrained_encoder",
    "predict",
    "predict_tags",
    "read_classification_tsv",
    "read_conll",
    "save_finetuned",
    "world_fit_task",
    "world_ner",
    "world_task",
]

Example = tuple[str, str | None, int]  # (text_a, text_b or None, label id)
TaggedSentence = tuple[list[str], list[str]]  # (words, one BIO tag per word)


# --- task 1: does a sentence fit the world? ------------------------------------------------------
FIT_LABELS = ("does not fit", "fits")  # label 0, label 1
_FIT_TEMPLATES = {  # kind -> (the things, each with the words that name it; the sentence that pairs them)
    "job": (JOBS, "{person} lives in {place} . {person} works as a {thing} and {cue} every day ."),
    "animal": (ANIMALS, "{person} lives in {place} . {person} has a {thing} that {cue} at night ."),
}


def world_fit_task(size: int, seed: int = 0, kinds: Sequence[str] = ("job",)) -> list[Example]:
    """Sentence classification on the world: does the job go with the work (label 1, "fits"), or is
    it another job's work (label 0, "does not fit")?

    Each text is the opening of a world document, "alba lives in harlow . alba works as a baker and
    bakes bread every day ." (the first sentence is there because every document chapter 7 trained on
    begins so); in half the examples the work phrase is another job's ("... a baker and heals
    patients ..."). Nothing but the pairing of job and work tells the labels apart, and the world
    has one right pairing per job: chapter 7's model learned them by filling in blanks, while a model
    trained from scratch must learn them from the labels alone, which a few hundred examples hardly
    teach. ``kinds=("job", "animal")`` adds animals with their own or another animal's sound, in
    turn: that helps only where chapter 7's model learned which animal makes which sound.
    Returns ``size`` examples (text, None, label) with different texts, labels balanced (a random
    half of them 1), so that the first n and the rest make a training and a test set with no text in
    common; the same for the same seed. FIT_LABELS names the labels.
    """
    check_positive_int("size", size)
    unknown = [kind for kind in kinds if kind not in _FIT_TEMPLATES]
    if unknown or not kinds:
        raise ValueError(f"kinds must be some of {sorted(_FIT_TEMPLATES)}, got {list(kinds)!r}")
    possible = sum(len(NAMES) * len(PLACES) * len(_FIT_TEMPLATES[kind][0]) for kind in kinds)
    if size > possible // 2:
        raise ValueError(f"size must be at most {possible // 2} for kinds {list(kinds)}, got {size}")
    rng = random.Random(f"fit {seed}")
    labels = [index % 2 for index in range(size)]
    rng.shuffle(labels)
    texts, examples = set(), []
    while len(examples) < size:
        label = labels[len(examples)]
        things, template = _FIT_TEMPLATES[kinds[len(examples) % len(kinds)]]
        thing = rng.choice(sorted(things))
        cue = things[thing] if label else things[rng.choice(sorted(set(things) - {thing}))]
        person, place = rng.choice(NAMES), rng.choice(PLACES)
        text = template.format(person=person, place=place, thing=thing, cue=cue)
        if text not in texts:  # a repeat is drawn again, so no text is both trained on and tested
            texts.add(text)
            examples.append((text, None, label))
    return examples


# --- task 2: named entities in the world -----------------------------------------------------------
NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-JOB", "I-JOB", "B-ANIMAL", "I-ANIMAL")

_SYLLABLES = (
    "ka lo ren mi tor sa vel dun bri cha fen gor hal jin kes lum nor pim ras sul tam vor yel zan".split()
)
_PLACE_ENDINGS = ("holm", "wick", "row", "brook", "stead")


def _made_up_words(count: int, rng: random.Random, taken: set[str], ending: tuple[str, ...] = ("",)):
    """``count`` new words of two syllables (and an ending), none of them in ``taken``; adds them to it."""
    words = []
    while len(words) < count:
        word = rng.choice(_SYLLABLES) + rng.choice(_SYLLABLES) + rng.choice(ending)
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _name_pools() -> dict[str, list[str]]:
    """Made-up surnames for training, and first names, surnames and places the world never uses."""
    rng = random.Random("made-up names")
    taken = {word for document in world_documents(50) for sentence in document for word in sentence.split()}
    taken |= {*NAMES, *PLACES, *JOBS, *ANIMALS, *COLOURS, *OBJECTS}
    return {
        "surnames": _made_up_words(20, rng, taken),
        "unseen_names": _made_up_words(30, rng, taken),
        "unseen_surnames": _made_up_words(20, rng, taken),
        "unseen_places": _made_up_words(14, rng, taken, _PLACE_ENDINGS),
    }


_POOLS = _name_pools()


def _facts(document: list[str]) -> dict[str, str]:
    """person, place, job and animal of a world document (its first sentence is "X lives in P .")."""
    words = " ".join(document).split()
    return {
        "person": document[0].split()[0],
        "place": document[0].split()[-2],
        "job": next(word for word in words if word in JOBS),
        "animal": next(word for word in words if word in ANIMALS),
    }


def world_ner(num_sentences: int, seed: int = 0, unseen_names: bool = False) -> list[TaggedSentence]:
    """Sentences of world documents with a BIO tag per word: PER, LOC, JOB, ANIMAL (``NER_LABELS``).

    Half the people get a made-up surname ("alba korin": B-PER I-PER). With ``unseen_names`` every
    person and place is replaced by a made-up one that the world never uses (and the surnames come
    from another list), so a tagger must read the context ("... lives in X", "... is called X")
    rather than remember names. Returns (words, tags) pairs, as :func:`read_conll` does; the same
    for the same seed.
    """
    check_positive_int("num_sentences", num_sentences)
    rng = random.Random(f"ner {seed}")
    sentences = []
    for document in world_documents(num_sentences // 7 + 1, seed):  # 7-10 sentences each
        facts = _facts(document)
        person, place = [facts["person"]], facts["place"]
        if unseen_names:
            person, place = [rng.choice(_POOLS["unseen_names"])], rng.choice(_POOLS["unseen_places"])
        if rng.random() < 0.5:
            person.append(rng.choice(_POOLS["unseen_surnames" if unseen_names else "surnames"]))
        for sentence in document:
            words, tags = [], []
            for word in sentence.split():
                if word == facts["person"]:
                    words += person
                    tags += ["B-PER"] + ["I-PER"] * (len(person) - 1)
                elif word == facts["place"]:
                    words.append(place)
                    tags.append("B-LOC")
                else:
                    words.append(word)
                    tags.append("B-JOB" if word in JOBS else "B-ANIMAL" if word in ANIMALS else "O")
            sentences.append((words, tags))
    return sentences[:num_sentences]


def bio_label_names(sentences: Sequence[TaggedSentence]) -> list[str]:
    """The label list for your tagged sentences: "O", then B-X, I-X for each entity type X, sorted."""
    types = sorted({_split_tag(tag)[1] for _, tags in sentences for tag in tags} - {""})
    return ["O"] + [f"{prefix}-{kind}" for kind in types for prefix in ("B", "I")]


# --- reading your own data -------------------------------------------------------------------------
def _read_lines(path: str | Path) -> tuple[Path, list[str]]:
    """The lines of a UTF-8 text file (a BOM is dropped); errors name the file, and the line."""
    path = Path(path)
    text = read_text(path, what="data file")
    if not text.strip():
        raise ValueError(f"{path}: the file is empty")
    return path, text.splitlines()


def _sorted_labels(labels: set[str]) -> list[str]:
    """Labels in order: by value when all are integers ("2" before "10"), else alphabetically."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


def read_classification_tsv(
    path: str | Path, label_names: Sequence[str] | None = None, header: bool | str = "auto"
) -> tuple[list[Example], list[str]]:
    """Read a tab-separated file of ``text<TAB>label`` or ``text_a<TAB>text_b<TAB>label`` lines.

    header: True (skip the first line), False, or "auto": skip it when its last column is "label".
    label_names: the labels in id order (pass the training file's to read its test file); None
    takes the file's labels, sorted. Blank lines are skipped.
    Returns (examples (text_a, text_b or None, label id), label_names). Raises ValueError naming
    the file and line for a wrong number of columns, an empty text or label, an unknown label,
    invalid UTF-8, or a file without examples.
    """
    path, lines = _read_lines(path)
    rows, columns = [], None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if columns is None:
            first = header is True or (header == "auto" and fields[-1].lower() == "label")
            columns = len(fields)
            if columns not in (2, 3):
                raise ValueError(
                    f"{path}, line {number}: {columns} tab-separated column(s); expected 2 (text, label) "
                    "or 3 (text_a, text_b, label)"
                )
            if first:
                continue
        if len(fields) != columns:
            raise ValueError(f"{path}, line {number}: {len(fields)} column(s), but the file has {columns}")
        if not all(fields):
            raise ValueError(f"{path}, line {number}: empty column {fields.index('') + 1}")
        rows.append((number, fields))
    if not rows:
        raise ValueError(f"{path}: no examples (only a header or blank lines)")
    names = list(label_names) if label_names is not None else _sorted_labels({f[-1] for _, f in rows})
    index = {name: i for i, name in enumerate(names)}
    examples = []
    for number, fields in rows:
        if fields[-1] not in index:
            raise ValueError(f"{path}, line {number}: label {fields[-1]!r} is not one of {names}")
        examples.append((fields[0], fields[1] if columns == 3 else None, index[fields[-1]]))
    return examples, names


def read_conll(path: str | Path, scheme: str | None = "BIO") -> list[TaggedSentence]:
    """Read a CoNLL-2003 file: a token per line, the word in the first column and the tag in the last.

    Blank lines end sentences; ``-DOCSTART-`` lines are skipped. Columns are separated by spaces
    or tabs, and every token line must have as many as the first. scheme="BIO": every tag must be
    "O", "B-TYPE" or "I-TYPE" (the original CoNLL-2003 files use IOB1, where an entity may start
    with I-: that passes too, and :func:`bio_entities` reads it); None: tags are not checked.
    Returns (words, tags) per sentence. Raises ValueError naming the file and line.
    """
    if scheme not in ("BIO", None):
        raise ValueError(f"scheme must be 'BIO' or None, got {scheme!r}")
    path, lines = _read_lines(path)
    sentences, words, tags, columns = [], [], [], None
    for number, line in enumerate([*lines, ""], start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
            continue
        if len(fields) < 2:
            raise ValueError(f"{path}, line {number}: a token line needs a word and a tag, got {line!r}")
        columns = columns or len(fields)
        if len(fields) != columns:
            raise ValueError(f"{path}, line {number}: {len(fields)} columns, but the file has {columns}")
        if scheme == "BIO":
            try:
                _split_tag(fields[-1])
            except ValueError as error:
                raise ValueError(f"{path}, line {number}: {error}") from None
        words.append(fields[0])
        tags.append(fields[-1])
    if not sentences:
        raise ValueError(f"{path}: no sentences (only -DOCSTART- or blank lines)")
    return sentences


# --- encoding ---------------------------------------------------------------------------------------
def encode_classification(tokenizer, examples: Sequence[Example], max_length: int = 64) -> dict:
    """Examples -> tensors: input_ids, token_type_ids, attention_mask (B, L) and labels (B,), int64.

    ``[CLS] A [SEP]`` or ``[CLS] A [SEP] B [SEP]`` (all examples one or the other), truncated to
    max_length (longest first) and padded to the longest.
    """
    if not examples:
        raise ValueError("no examples to encode")
    pairs = [text_b for _, text_b, _ in examples]
    if any(p is None for p in pairs) and not all(p is None for p in pairs):
        raise ValueError("either every example has a text_b or none has")
    data = tokenizer.encode_batch(
        [text_a for text_a, _, _ in examples],
        None if pairs[0] is None else pairs,
        max_length=max_length,
        truncation=True,
    )
    data["labels"] = torch.tensor([label for _, _, label in examples], dtype=torch.long)  # (B,)
    return data


def align_labels(word_labels: Sequence[int], piece_counts: Sequence[int]) -> list[int]:
    """Word labels -> piece labels: the first piece of each word keeps its word's label, the others
    get -100 (no loss, no prediction). ``align_labels([3, 0], [2, 1]) == [3, -100, 0]``."""
    if len(word_labels) != len(piece_counts):
        raise ValueError(f"{len(word_labels)} word labels for {len(piece_counts)} words")
    if any(count < 1 for count in piece_counts):
        raise ValueError(f"every word needs at least one piece, got counts {list(piece_counts)}")
    return [
        piece
        for label, count in zip(word_labels, piece_counts, strict=True)
        for piece in [label] + [IGNORE_INDEX] * (count - 1)
    ]


def _encode_words(tokenizer, word_lists, label_lists, max_length: int) -> dict:
    """Sentences as words, with a label id per word -> padded tensors (B, L); see :func:`encode_ner`."""
    if max_length < 3:
        raise ValueError(
            f"max_length must leave room for [CLS], a piece and [SEP]: at least 3, got {max_length}"
        )
    rows, row_labels = [], []
    for words, labels in zip(word_lists, label_lists, strict=True):
        pieces = [tokenizer.text_to_ids(word) or [tokenizer.unk_token_id] for word in words]
        ids = [i for word_ids in pieces for i in word_ids][: max_length - 2]
        aligned = align_labels(labels, [len(word_ids) for word_ids in pieces])[: max_length - 2]
        rows.append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
        row_labels.append([IGNORE_INDEX, *aligned, IGNORE_INDEX])
    length = max(map(len, rows))
    data = {
        "input_ids": torch.full((len(rows), length), tokenizer.pad_token_id, dtype=torch.long),
        "token_type_ids": torch.zeros(len(rows), length, dtype=torch.long),
        "attention_mask": torch.zeros(len(rows), length, dtype=torch.long),
        "labels": torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long),
    }
    for i, (row, labels) in enumerate(zip(rows, row_labels, strict=True)):
        data["input_ids"][i, : len(row)] = torch.tensor(row)
        data["attention_mask"][i, : len(row)] = 1
        data["labels"][i, : len(row)] = torch.tensor(labels)
    return data


def encode_ner(
    tokenizer,
    sentences: Sequence[TaggedSentence],
    label_names: Sequence[str] = NER_LABELS,
    max_length: int = 64,
) -> dict:
    """Tagged sentences -> tensors (B, L) int64: input_ids, token_type_ids, attention_mask, labels.

    Each word is tokenized on its own (a word with no piece becomes ``[UNK]``); labels are the tag
    ids of :func:`align_labels`, -100 on later pieces, ``[CLS]``, ``[SEP]`` and padding. Sentences
    longer than max_length tokens lose their last pieces.
    """
    if not sentences:
        raise ValueError("no sentences to encode")
    index = {name: i for i, name in enumerate(label_names)}
    label_lists = []
    for number, (words, tags) in enumerate(sentences):
        if len(words) != len(tags):
            raise ValueError(f"sentence {number}: {len(words)} words but {len(tags)} tags")
        unknown = [tag for tag in tags if tag not in index]
        if unknown:
            raise ValueError(f"sentence {number}: tag {unknown[0]!r} is not one of {list(label_names)}")
        label_lists.append([index[tag] for tag in tags])
    return _encode_words(tokenizer, [words for words, _ in sentences], label_lists, max_length)


# --- metrics -----------------------------------------------------------------------------------------
def accuracy(predictions: torch.Tensor | Sequence[int], labels: torch.Tensor | Sequence[int]) -> float:
    """The share of predictions equal to their labels."""
    predictions, labels = torch.as_tensor(predictions), torch.as_tensor(labels)
    if predictions.shape != labels.shape or labels.numel() == 0:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ or are empty"
        )
    return (predictions == labels).float().mean().item()


def _split_tag(tag: str) -> tuple[str, str]:
    """ "B-PER" -> ("B", "PER"), "O" -> ("O", "")."""
    if tag == "O":
        return "O", ""
    prefix, dash, kind = tag.partition("-")
    if prefix not in ("B", "I") or not dash or not kind:
        raise ValueError(f"invalid BIO tag {tag!r}: expected O, B-TYPE or I-TYPE")
    return prefix, kind


def bio_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of a BIO tag sequence, as (type, start, end) with ``end`` exclusive.

    An entity is a B-X followed by I-X's. As in conlleval, an I-X that does not continue an X
    (after O, after another type, at the start) begins a new entity.
    ``bio_entities(["B-PER", "I-PER", "O", "I-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]``.
    """
    entities, start, current = [], None, ""
    for position, tag in enumerate([*tags, "O"]):  # a final O closes the last entity
        prefix, kind = _split_tag(tag)
        continues = prefix == "I" and kind == current
        if start is not None and not continues:
            entities.append((current, start, position))
            start, current = None, ""
        if prefix in ("B", "I") and not continues:
            start, current = position, kind
    return entities


def _prf(correct: int, predicted: int, gold: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 over sentences of BIO tags, as conlleval computes them.

    A predicted entity counts only if a gold entity has exactly its span and type. Returns
    precision, recall, f1, the counts (correct, predicted, gold) and ``per_type``: the same three
    scores and the gold count for each type. With nothing predicted, precision is 0; with no gold
    entity, recall is 0; F1 is 0 when both are.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    gold_set, predicted_set = set(), set()
    for number, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted, strict=True)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(
                f"sentence {number}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted"
            )
        gold_set |= {(number, *entity) for entity in bio_entities(gold_tags)}
        predicted_set |= {(number, *entity) for entity in bio_entities(predicted_tags)}
    correct = gold_set & predicted_set
    scores = _prf(len(correct), len(predicted_set), len(gold_set))
    scores |= {"correct": len(correct), "predicted": len(predicted_set), "gold": len(gold_set)}
    per_type = {}
    for kind in sorted({entity[1] for entity in gold_set | predicted_set}):
        count = lambda entities: sum(entity[1] == kind for entity in entities)  # noqa: B023
        per_type[kind] = _prf(count(correct), count(predicted_set), count(gold_set)) | {
            "gold": count(gold_set)
        }
    return scores | {"per_type": per_type}


# --- the loop ------------------------------------------------------------------------------------------
def _encoder(pretrained: nn.Module) -> nn.Module:
    """The BertModel of a model with heads (``.bert``), or the BertModel itself."""
    return getattr(pretrained, "bert", pretrained)


def load_pretrained_encoder(model: nn.Module, pretrained: nn.Module) -> nn.Module:
    """Copy a pretrained BERT (a BertModel, or the ``.bert`` of e.g. chapter 7's BertForPreTraining)
    into a fine-tuning model's ``model.bert``; the new classifier keeps its fresh weights, and so does
    the pooler when the pretrained model has none. Returns model."""
    state = _encoder(pretrained).state_dict()
    if model.bert.pooler is None:  # token classification has no pooler
        state = {name: value for name, value in state.items() if not name.startswith("pooler.")}
    missing, unexpected = model.bert.load_state_dict(state, strict=False)
    if unexpected or any(not name.startswith("pooler.") for name in missing):
        raise ValueError(
            "the pretrained encoder does not fit the model: "
            f"missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    return model


def finetuning_model(
    model_class: type, pretrained: nn.Module, num_labels: int, *, scratch: bool = False, seed: int = 0
) -> nn.Module:
    """A new ``model_class`` (BertForSequenceClassification or BertForTokenClassification) of the
    pretrained model's sizes with ``num_labels`` outputs, on its device.

    Its encoder is a copy of the pretrained one, or, with ``scratch=True``, freshly initialised: the
    same architecture and sizes, nothing learned. The classifier is always new. ``seed`` seeds
    PyTorch's generator first, so the new weights are the same for the same seed.
    """
    encoder = _encoder(pretrained)
    config = dataclasses.replace(encoder.config, num_labels=num_labels)
    torch.manual_seed(seed)
    model = model_class(config)
    if not scratch:
        load_pretrained_encoder(model, encoder)
    return model.to(next(encoder.parameters()).device)


def _batch(data: dict, rows: Sequence[int] | slice, device) -> dict:
    """Rows of the encoded data, cut to their longest sequence, on ``device``: the model's arguments."""
    length = int(data["attention_mask"][rows].sum(1).max())
    return {
        key: (value[rows, :length] if value.dim() == 2 else value[rows]).to(device)
        for key, value in data.items()
    }


def finetune(
    model: nn.Module,
    data: dict,
    *,
    steps: int,
    batch_size: int = 32,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.01,
    warmup_steps: int | None = None,
    max_grad_norm: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> list[dict]:
    """Train a BertForSequenceClassification or BertForTokenClassification on encoded data.

    data: from :func:`encode_classification` or :func:`encode_ner` (tensors with B rows).
    Each step takes ``batch_size`` rows, in an order shuffled anew each epoch from ``seed``; AdamW
    (no decay on biases and LayerNorm), ``warmup_steps`` (default: a tenth of the steps) of linear
    warm-up then linear decay to 0, gradients clipped to ``max_grad_norm``. The default learning
    rate suits the course's small model (BERT-base is fine-tuned with 2e-5 to 5e-5). ``seed`` also seeds
    PyTorch's global generator, which dropout draws from, so a run is the same for the same seed.
    Returns the history: one dict per step (step, loss, learning_rate).
    """
    check_positive_int("steps", steps)
    size = len(data["input_ids"])
    if size < batch_size:
        raise ValueError(f"{size} examples are fewer than one batch of {batch_size}")
    warmup_steps = steps // 10 if warmup_steps is None else warmup_steps
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(parameter_groups(model, weight_decay), lr=learning_rate)
    scheduler = warmup_linear_decay(optimizer, warmup_steps, steps)
    model.train()
    history, order = [], []
    for step in tqdm(range(steps), desc="fine-tuning", disable=not progress):
        if len(order) < batch_size:  # a new epoch; the last, incomplete batch is dropped
            order = torch.randperm(size, generator=generator).tolist()
        rows, order = order[:batch_size], order[batch_size:]
        loss = model(**_batch(data, rows, device)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        history.append({"step": step + 1, "loss": loss.item(), "learning_rate": scheduler.get_last_lr()[0]})
        optimizer.step()
        scheduler.step()
    return history


@torch.no_grad()
def predict(model: nn.Module, data: dict, batch_size: int = 64) -> torch.Tensor:
    """The most likely label of each example, (B,), or of each token, (B, L), in eval mode."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    size, length = data["input_ids"].shape
    out = []
    for start in range(0, size, batch_size):
        batch = _batch(data, slice(start, start + batch_size), device)
        batch.pop("labels", None)
        found = model(**batch).logits.argmax(-1).cpu()  # (b,) or (b, l)
        if found.dim() == 2:  # pad back to the data's length
            found = nn.functional.pad(found, (0, length - found.shape[1]))
        out.append(found)
    model.train(was_training)
    return torch.cat(out)


def evaluate_classification(model: nn.Module, data: dict, batch_size: int = 64) -> dict[str, float]:
    """Accuracy of a sequence classifier on encoded data (from :func:`encode_classification`)."""
    return {"accuracy": accuracy(predict(model, data, batch_size), data["labels"])}


def predict_tags(
    model: nn.Module,
    tokenizer,
    word_lists: Sequence[Sequence[str]],
    label_names: Sequence[str] = NER_LABELS,
    max_length: int = 64,
    batch_size: int = 64,
) -> list[list[str]]:
    """A tag per word, read at the word's first piece; words cut off by max_length get "O"."""
    dummy = [[0] * len(words) for words in word_lists]
    data = _encode_words(tokenizer, word_lists, dummy, max_length)
    found = predict(model, data, batch_size)  # (B, L)
    tags = []
    for words, row, labels in zip(word_lists, found, data["labels"], strict=True):
        firsts = row[labels != IGNORE_INDEX].tolist()  # one per word that fits
        tags.append([label_names[i] for i in firsts] + ["O"] * (len(words) - len(firsts)))
    return tags


def evaluate_ner(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[TaggedSentence],
    label_names: Sequence[str] = NER_LABELS,
    max_length: int = 64,
    batch_size: int = 64,
) -> dict:
    """Entity-level precision, recall and F1 (:func:`entity_scores`) of a tagger on tagged sentences."""
    predicted = predict_tags(
        model, tokenizer, [words for words, _ in sentences], label_names, max_length, batch_size
    )
    return entity_scores([tags for _, tags in sentences], predicted)


# --- whole tasks, as `bert-tutor finetune` runs them -------------------------------------------------
class Task(NamedTuple):
    """A fine-tuning task: kind ("classification" or "ner"), the training and test examples
    (:data:`Example` tuples or tagged sentences) and the label names in id order."""

    name: str
    kind: str
    train: list
    test: list
    label_names: tuple[str, ...]

    @property
    def model_class(self) -> type:
        """BertForSequenceClassification for classification, BertForTokenClassification for NER."""
        return BertForSequenceClassification if self.kind == "classification" else BertForTokenClassification

    def texts(self) -> list[str]:
        """Every training text (both texts of a pair; a tagged sentence's words joined), e.g. to train
        a vocabulary on."""
        if self.kind == "ner":
            return [" ".join(words) for words, _ in self.train]
        return [text for a, b, _ in self.train for text in (a, b) if text is not None]


WORLD_TASKS = ("world-fit", "world-ner")
FIT_TRAIN, FIT_TEST = 400, 400  # world-fit: examples to fine-tune on, held-out examples
NER_TRAIN, NER_TEST = 200, 300  # world-ner: sentences to fine-tune on, held-out sentences
RECIPES = {  # chapter 8's budget for each task (finetune's arguments): seconds on one CPU core
    "world-fit": {"steps": 300, "batch_size": 16, "learning_rate": 5e-4},
    "world-ner": {"steps": 80, "batch_size": 16, "learning_rate": 5e-4},
}


def world_task(name: str) -> Task:
    """Chapter 8's tasks: "world-fit" (:func:`world_fit_task`, FIT_TRAIN examples to train on and the
    next FIT_TEST to test) or "world-ner" (:func:`world_ner`: NER_TRAIN sentences of seed 1 to train
    on, NER_TEST of seed 2, from other documents, to test)."""
    if name == "world-fit":
        examples = world_fit_task(FIT_TRAIN + FIT_TEST, seed=0)
        return Task(name, "classification", examples[:FIT_TRAIN], examples[FIT_TRAIN:], FIT_LABELS)
    if name == "world-ner":
        return Task(name, "ner", world_ner(NER_TRAIN, seed=1), world_ner(NER_TEST, seed=2), NER_LABELS)
    raise ValueError(f"unknown world task {name!r}: choose one of {', '.join(WORLD_TASKS)}")


_FORMATS = {".tsv": "tsv", ".conll": "conll", ".iob": "conll", ".bio": "conll"}


def file_task(path: str | Path, eval_path: str | Path | None = None, file_format: str | None = None) -> Task:
    """A task from your files: a TSV of (text, label) or (text_a, text_b, label) rows for
    classification (:func:`read_classification_tsv`), or CoNLL-2003 columns for NER (:func:`read_conll`).

    file_format: "tsv" or "conll"; None tells it from the file's suffix (.tsv; .conll, .iob, .bio).
    eval_path: a file of the same format to test on; without it a tenth of the examples (at least
    one), drawn at random with a fixed seed, is held out. Classification labels are the training
    file's, sorted; NER labels are "O" and B-/I- of every entity type of both files.
    """
    path = Path(path)
    if file_format is None:
        file_format = _FORMATS.get(path.suffix.lower())
        if file_format is None:
            raise ValueError(f"{path}: cannot tell the format from the suffix; pass --format tsv or conll")
    if file_format not in ("tsv", "conll"):
        raise ValueError(f"file_format must be 'tsv' or 'conll', got {file_format!r}")
    if file_format == "tsv":
        train, label_names = read_classification_tsv(path)
        test = None if eval_path is None else read_classification_tsv(eval_path, label_names)[0]
    else:
        train = read_conll(path)
        test = None if eval_path is None else read_conll(eval_path)
    if test is None:
        if len(train) < 2:
            raise ValueError(f"{path}: {len(train)} example(s); holding out a test set needs at least 2")
        order = list(range(len(train)))
        random.Random(0).shuffle(order)
        held_out = max(1, len(train) // 10)
        test, train = [train[i] for i in order[:held_out]], [train[i] for i in order[held_out:]]
    if file_format == "conll":
        label_names = bio_label_names([*train, *test])
    kind = "classification" if file_format == "tsv" else "ner"
    return Task(path.name, kind, train, test, tuple(label_names))


def encode_task(task: Task, tokenizer, examples: Sequence, max_length: int) -> dict:
    """Examples of ``task`` -> the tensors :func:`finetune` takes (:func:`encode_classification` or
    :func:`encode_ner`)."""
    if task.kind == "ner":
        return encode_ner(tokenizer, examples, task.label_names, max_length)
    return encode_classification(tokenizer, examples, max_length)


def evaluate_task(task: Task, model: nn.Module, tokenizer, examples: Sequence, max_length: int) -> dict:
    """Accuracy (classification) or entity-level precision, recall and F1 (NER) on examples of ``task``."""
    if task.kind == "ner":
        return evaluate_ner(model, tokenizer, examples, task.label_names, max_length)
    return evaluate_classification(model, encode_classification(tokenizer, examples, max_length))


def save_finetuned(
    model: nn.Module, tokenizer, directory: str | Path, label_names: Sequence[str], report: dict
) -> Path:
    """Write a fine-tuned model as ``transformers`` reads it, with its label names and what it scored.

    config.json, model.safetensors and vocab.txt (:meth:`save_pretrained`), with config.json's
    ``id2label``/``label2id`` holding ``label_names`` (so that ``transformers``' pipelines print
    them), and metrics.json holding ``report`` (the task, the settings, the metrics). Returns the
    directory.
    """
    directory = Path(model.save_pretrained(directory, tokenizer=tokenizer))
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if len(label_names) != len(config["id2label"]):
        raise ValueError(f"{len(label_names)} label names for a model with {len(config['id2label'])} labels")
    config["id2label"] = {str(i): name for i, name in enumerate(label_names)}
    config["label2id"] = {name: i for i, name in enumerate(label_names)}
    for name, content in (("config.json", config), ("metrics.json", report)):
        text = json.dumps(content, indent=2, sort_keys=True) + "\n"
        write_atomically(
            directory / name, lambda path, text=text: Path(path).write_text(text, encoding="utf-8")
        )
    return directory
