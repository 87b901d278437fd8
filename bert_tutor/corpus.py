"""Text to pretrain on, nothing downloaded: a generated world, Python's own help text, your files.

Every corpus is a list of documents, and a document is a list of sentences (strings), which
is what next sentence prediction needs. Three sources:

* :func:`world_documents` generates a small made-up world: each document is about one
  person, the facts about them recur inside the document, and some words can only be guessed
  from words to their *right* ("Alba has a [MASK] that barks" -> dog). :func:`world_probes`
  marks such blanks so that chapter 7 can measure bidirectional against left-to-right context.
* :func:`pydoc_documents` splits the help topics that ship with Python (``pydoc_data``).
* :func:`read_documents` reads your own UTF-8 file in BERT's format: one sentence per line, a
  blank line between documents.
"""

from __future__ import annotations

import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from bert_tutor.checks import check_positive_int
from bert_tutor.files import read_text

__all__ = [
    "Probe",
    "pydoc_documents",
    "read_documents",
    "world_documents",
    "world_probes",
]

# --- the world -------------------------------------------------------------------------
# Made-up names and places; real jobs and animals, each with the words that give them away.
NAMES = (
    "alba bruno celia dario elin farid greta hugo ines jonas kira lars mira nils olga pavel "
    "rosa sami tilda umar vera wim xenia yusuf zora anton bea cyril dora emil"
).split()
PLACES = (
    "varnholm brisket caldera dunmore elmstead fairwick glenrow harlow istmar jorvik "
    "kelbrook lunden marrow norwick"
).split()
JOBS = {  # job -> what a person with that job does, a phrase that names the job unambiguously
    "baker": "bakes bread",
    "farmer": "grows wheat",
    "pilot": "flies planes",
    "doctor": "heals patients",
    "teacher": "teaches children",
    "fisher": "catches fish",
    "painter": "paints houses",
    "tailor": "sews coats",
    "miner": "digs coal",
    "singer": "sings songs",
}
ANIMALS = {  # animal -> the sound that names it
    "dog": "barks",
    "cat": "meows",
    "cow": "moos",
    "duck": "quacks",
    "horse": "neighs",
    "owl": "hoots",
    "sheep": "bleats",
    "lion": "roars",
    "frog": "croaks",
    "bee": "buzzes",
}
COLOURS = "red blue green yellow black white brown grey".split()
OBJECTS = "bicycle boat lamp kite drum chair clock scarf".split()


@dataclass(frozen=True)
class Probe:
    """A blank in a world document: ``sentences[sentence][word]`` is ``answer``.

    side: "right" when only words to the right of the blank (in the same document) give the
    answer away, "left" when words to its left do.
    """

    sentences: tuple[str, ...]
    sentence: int
    word: int
    answer: str
    side: str


def _world_document(rng: random.Random) -> tuple[list[str], list[tuple[int, int, str, str]]]:
    """One document about one person, and its probes as (sentence, word, answer, side)."""
    person, place = rng.choice(NAMES), rng.choice(PLACES)
    job, animal = rng.choice(list(JOBS)), rng.choice(list(ANIMALS))
    colour, thing = rng.choice(COLOURS), rng.choice(OBJECTS)
    # First mentions: the job and the animal are given away only by the words after them.
    opening = [
        f"{person} lives in {place} .",
        f"{person} works as a {job} and {JOBS[job]} every day .",
        f"{person} has a {animal} that {ANIMALS[animal]} at night .",
        f"{person} owns a {colour} {thing} .",
    ]
    # Facts that recur: each names something the opening already said. Some of them, in this order:
    # every document tells its story in the same order, so a segment that really follows another
    # goes on where it stopped, which next sentence prediction can learn (with the names).
    later = [
        f"the {job} from {place} is called {person} .",
        f"the {colour} {thing} belongs to {person} .",
        f"every morning the {animal} of {person} {ANIMALS[animal]} loudly .",
        f"people in {place} buy from the {job} .",
        f"{person} carries the {colour} {thing} through {place} .",
        f"when {person} comes home , the {animal} is happy .",
    ]
    kept = sorted(rng.sample(range(len(later)), rng.randint(3, len(later))))
    sentences = opening + [later[i] for i in kept]
    probes = []
    for s, text in enumerate(sentences):
        words = text.split()
        for w, word in enumerate(words):
            earlier = " ".join(sentences[:s] + [" ".join(words[:w])]).split()
            if word in JOBS or word in ANIMALS:
                side = "left" if word in earlier else "right"
                probes.append((s, w, word, side))
    return sentences, probes


def world_documents(num_documents: int, seed: int = 0) -> list[list[str]]:
    """``num_documents`` documents of the generated world, the same for the same seed.

    Each document is 7-10 sentences about one person (lower case, words separated by spaces), in a
    fixed order: where they live, their job, their animal, their thing, then 3-6 recurring facts.
    """
    check_positive_int("num_documents", num_documents)
    rng = random.Random(seed)
    return [_world_document(rng)[0] for _ in range(num_documents)]


def world_probes(num_documents: int, seed: int = 0) -> list[Probe]:
    """The blanks of ``world_documents(num_documents, seed)``: every mention of a job or an animal.

    A probe's side is "right" at a first mention (only the following words tell which job or
    animal it is) and "left" at a repeated one.
    """
    check_positive_int("num_documents", num_documents)
    rng = random.Random(seed)
    probes = []
    for _ in range(num_documents):
        sentences, found = _world_document(rng)
        probes += [Probe(tuple(sentences), s, w, answer, side) for s, w, answer, side in found]
    return probes


# --- Python's help topics ------------------------------------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'])")


def pydoc_documents(min_sentences: int = 2) -> list[list[str]]:
    """Python's help topics (``pydoc_data.topics``) as documents of sentences.

    One document per topic, one per paragraph-joined sentence; code blocks (indented lines)
    are dropped. Documents with fewer than ``min_sentences`` sentences are left out.
    """
    from pydoc_data.topics import topics

    documents = []
    for name in sorted(topics):
        prose = [line.strip() for line in topics[name].splitlines() if line and not line.startswith(" ")]
        text = " ".join(line for line in prose if not set(line) <= set("*=-~^"))
        sentences = [s.strip() for s in _SENTENCE_END.split(text) if len(s.split()) >= 3]
        if len(sentences) >= min_sentences:
            documents.append(sentences)
    return documents


# --- your own text ------------------------------------------------------------------------
def read_documents(path: str | Path, min_sentences: int = 2) -> list[list[str]]:
    """Read a UTF-8 text file in BERT's format: one sentence per line, blank line between documents.

    Raises FileNotFoundError / ValueError naming the file (and line) for a missing, empty,
    binary or non-UTF-8 file. Documents shorter than ``min_sentences`` are dropped with a
    warning that names their first line (next sentence prediction needs two sentences).
    """
    path = Path(path)
    text = read_text(path, what="corpus file")
    documents, current, start = [], [], 1
    for number, line in enumerate(text.splitlines() + [""], start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line.strip())
            continue
        if current and len(current) < min_sentences:
            warnings.warn(
                f"{path}, line {start}: document of {len(current)} sentence(s) skipped "
                f"(next sentence prediction needs at least {min_sentences})",
                stacklevel=2,
            )
        elif current:
            documents.append(current)
        current = []
    if not documents:
        raise ValueError(f"{path}: no document with at least {min_sentences} sentences (is the file empty?)")
    return documents
