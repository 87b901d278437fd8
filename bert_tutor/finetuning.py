"""Fine-tuning BERT for language understanding: sentence classification and named entities (chapter 8).

Read it top to bottom:

* Two tasks generated from chapter 7's world, so that a model pretrained on it has something to
  bring: :func:`consistency_task` (does a statement agree with a short document about a person?)
  and :func:`world_ner` (tag people, places, jobs and animals with BIO tags; ``unseen_names=True``
  gives people and places that the world never names, to test generalisation).
* Your own data, in the ecosystem's usual formats: :func:`read_classification_tsv` (text, label)
  and :func:`read_conll` (CoNLL-2003 columns).
* Encoding: :func:`encode_classification` (pairs through the tokenizer's ``encode_batch``) and
  :func:`encode_ner`, which tokenizes word by word and labels only the first piece of each word
  (:func:`align_labels`); the other pieces and ``[CLS]``/``[SEP]``/``[PAD]`` get -100, which the
  loss skips.
* Metrics: :func:`accuracy`; entity-level precision, recall and F1 (:func:`bio_entities`,
  :func:`entity_scores`), as CoNLL's ``conlleval`` counts them.
* The loop: :func:`finetune` (AdamW, warm-up then linear decay, clipping) and the ``evaluate_*``
  helpers, the same for both tasks.

Shapes: B examples, L tokens (padded), W words of a sentence.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from bert_tutor.bert import IGNORE_INDEX
from bert_tutor.corpus import ANIMALS, COLOURS, JOBS, NAMES, OBJECTS, PLACES, world_documents
from bert_tutor.files import read_text
from bert_tutor.training import parameter_groups, warmup_linear_decay

__all__ = [
    "CONSISTENCY_LABELS",
    "NER_LABELS",
    "accuracy",
    "align_labels",
    "bio_entities",
    "bio_label_names",
    "consistency_task",
    "encode_classification",
    "encode_ner",
    "entity_scores",
    "evaluate_classification",
    "evaluate_ner",
    "finetune",
    "load_pretrained_encoder",
    "predict",
    "predict_tags",
    "read_classification_tsv",
    "read_conll",
    "world_ner",
]

Example = tuple[str, str | None, int]  # (text_a, text_b or None, label id)
TaggedSentence = tuple[list[str], list[str]]  # (words, one BIO tag per word)


def _check_count(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


# --- task 1: does a statement agree with a document? ---------------------------------------------
CONSISTENCY_LABELS = ("contradicts", "agrees")  # label 0, label 1
_MAX_WORDS = 36  # in A and B together: with [CLS], [SEP], [SEP] and a 400-token vocabulary, < 64 tokens


def _facts(document: list[str]) -> dict[str, str]:
    """person, place, job and animal of a world document (its first sentence is "X lives in P .")."""
    words = " ".join(document).split()
    return {
        "person": document[0].split()[0],
        "place": document[0].split()[-2],
        "job": next(word for word in words if word in JOBS),
        "animal": next(word for word in words if word in ANIMALS),
    }


def _mentions(sentence: str, kind: str, value: str) -> bool:
    """Does the sentence give away the fact: the place, the job or its work, the animal or its sound?"""
    words = sentence.split()
    if kind == "job":
        return value in words or JOBS[value] in sentence
    if kind == "animal":
        return value in words or ANIMALS[value] in words
    return value in words


def _statement(kind: str, person: str, value: str, rng: random.Random) -> str:
    """A one-sentence claim about the person; jobs and animals are named or only described."""
    if kind == "place":
        return f"{person} lives in {value} ."
    if kind == "job":
        return rng.choice([f"{person} works as a {value} .", f"{person} {JOBS[value]} ."])
    return rng.choice([f"{person} has a {value} .", f"{person} owns an animal that {ANIMALS[value]} ."])


def consistency_task(size: int, seed: int = 0) -> tuple[list[Example], tuple[str, str]]:
    """Sentence-pair classification on the world: does statement B agree with document A?

    A is 2-4 sentences of a world document, in order, one of which gives away the fact the
    statement is about (fewer when A and B would pass 36 words, to stay under 64 tokens).
    B claims the person's place, job or animal (the three kinds in turn). Half the statements
    (label 1, "agrees") state the document's fact, half (label 0, "contradicts") another value of
    the same kind. A job may be claimed by its work ("bakes bread") where the document only names
    it ("baker"), and an animal by its sound: knowledge that pretraining on the world brings.
    Returns (examples (text_a, text_b, label), CONSISTENCY_LABELS); the same for the same seed.
    """
    _check_count("size", size)
    rng = random.Random(f"consistency {seed}")
    labels = [index % 2 for index in range(size)]
    rng.shuffle(labels)
    choices = {"place": PLACES, "job": list(JOBS), "animal": list(ANIMALS)}
    examples = []
    for index, (document, label) in enumerate(zip(world_documents(size, seed), labels, strict=True)):
        facts = _facts(document)
        kind = ("place", "job", "animal")[index % 3]
        value = facts[kind]
        telling = [s for s, sentence in enumerate(document) if _mentions(sentence, kind, value)]
        chosen = rng.choice(telling)
        others = rng.sample([s for s in range(len(document)) if s != chosen], rng.randint(1, 3))
        claimed = value if label == 1 else rng.choice([v for v in choices[kind] if v != value])
        text_b = _statement(kind, facts["person"], claimed, rng)
        length = [len(sentence.split()) for sentence in document]
        while (
            len(others) > 1 and sum(length[s] for s in [chosen, *others]) + len(text_b.split()) > _MAX_WORDS
        ):
            others.pop()
        text_a = " ".join(document[s] for s in sorted([chosen, *others]))
        examples.append((text_a, text_b, label))
    return examples, CONSISTENCY_LABELS


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


def world_ner(num_sentences: int, seed: int = 0, unseen_names: bool = False) -> list[TaggedSentence]:
    """Sentences of world documents with a BIO tag per word: PER, LOC, JOB, ANIMAL (``NER_LABELS``).

    Half the people get a made-up surname ("alba korin": B-PER I-PER). With ``unseen_names`` every
    person and place is replaced by a made-up one that the world never uses (and the surnames come
    from another list), so a tagger must read the context ("... lives in X", "... is called X")
    rather than remember names. Returns (words, tags) pairs, as :func:`read_conll` does; the same
    for the same seed.
    """
    _check_count("num_sentences", num_sentences)
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
def load_pretrained_encoder(model: nn.Module, pretrained: nn.Module) -> nn.Module:
    """Copy a pretrained BERT (``pretrained.bert``, e.g. chapter 7's BertForPreTraining) into a
    fine-tuning model's ``model.bert``; the new classifier keeps its fresh weights. Returns model."""
    state = pretrained.bert.state_dict()
    if model.bert.pooler is None:  # token classification has no pooler
        state = {name: value for name, value in state.items() if not name.startswith("pooler.")}
    model.bert.load_state_dict(state)
    return model


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
    _check_count("steps", steps)
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
