"""BERT's tokenizer: basic tokenization, WordPiece, and a WordPiece vocabulary trainer (chapter 5).

Text becomes ids in three steps:

1. ``BasicTokenizer`` cuts text into words: drop control characters, turn every whitespace
   character into a space, put spaces around CJK characters, split on whitespace; then, word by
   word, lower-case and strip accents (optional) and cut punctuation off as words of its own.
2. ``WordPiece`` cuts each word into pieces of the vocabulary, greedy longest-match-first:
   ``"unaffable" -> ["un", "##aff", "##able"]``; ``##`` marks a piece that continues a word.
   A word that cannot be cut (or is longer than ``max_input_chars_per_word``) becomes ``[UNK]``.
3. ``BertTokenizer`` maps pieces to ids and builds the model's inputs: ``[CLS] A [SEP] B [SEP]``,
   token type ids (0 for A, 1 for B), attention mask, truncation and padding.

``train_wordpiece_vocab`` learns a vocabulary from counts: start from characters, merge the
best pair of neighbouring pieces again and again.

The result equals Hugging Face's pure-Python ``BertTokenizerLegacy`` on the same ``vocab.txt``
(tests/test_tokenization_reference.py). Where Hugging Face's own two tokenizers disagree we
follow that Python one: it applies NFC to the text (Google's original BERT does not), and it
drops every character of Unicode category C* (Google's drops Cc and Cf only; the Rust one keeps
unassigned code points). The Rust ``BertTokenizer`` differs in a few more places: it lower-cases
a final sigma to ``σ`` (Python's ``str.lower`` gives ``ς``), its CJK block U+2B820-U+2CEAF starts
at U+2B920, its Unicode tables are of an older version, it does not keep a special token that
only appears once control characters are removed (``"[MA\\x00SK]"``), and when longest-first
truncation of a pair has an odd number of places to share, it gives the odd one to the second text.
"""

from __future__ import annotations

import heapq
import itertools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

__all__ = [
    "CLS",
    "MASK",
    "PAD",
    "SEP",
    "SPECIAL_TOKENS",
    "UNK",
    "BasicTokenizer",
    "BertTokenizer",
    "WordPiece",
    "is_cjk",
    "is_control",
    "is_punctuation",
    "is_whitespace",
    "split_on_punctuation",
    "strip_accents",
    "train_wordpiece_vocab",
]

PAD, UNK, CLS, SEP, MASK = SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# The CJK Unified Ideographs blocks, as in BERT. Hangul, Hiragana and Katakana are not among
# them: those scripts put spaces between words, so they are tokenized like any other.
CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


# --- character classes -------------------------------------------------------------------


def is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or any Unicode space separator (category Zs)."""
    return char in (" ", "\t", "\n", "\r") or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """Any Unicode "other" character (categories Cc, Cf, Cs, Co, Cn), except tab, newline and
    carriage return, which count as whitespace."""
    return char not in ("\t", "\n", "\r") and unicodedata.category(char).startswith("C")


def is_punctuation(char: str) -> bool:
    """Every ASCII character that is neither a letter, a digit, a space nor a control character
    (so ``$ + < = > ^ ` | ~`` too, which Unicode calls symbols), and Unicode punctuation (P*)."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def is_cjk(char: str) -> bool:
    """A CJK ideograph: a character of one of the ``CJK_RANGES`` blocks."""
    code = ord(char)
    return any(low <= code <= high for low, high in CJK_RANGES)


# --- basic tokenization ------------------------------------------------------------------


def strip_accents(text: str) -> str:
    """Decompose (NFD: ``"é" -> "e" + U+0301``) and drop the combining marks (category Mn)."""
    if text.isascii():  # nothing to decompose: a shortcut, not a different result
        return text
    return "".join(char for char in unicodedata.normalize("NFD", text) if unicodedata.category(char) != "Mn")


# the ASCII punctuation characters, and runs of other ASCII characters
_ASCII_WORDS_AND_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~]+")


def split_on_punctuation(word: str) -> list[str]:
    """Cut every punctuation character off as a word of its own: ``"don't" -> ["don", "'", "t"]``."""
    if word.isascii():  # a regular expression does the same for ASCII, faster
        return _ASCII_WORDS_AND_PUNCTUATION.findall(word)
    words, current = [], []
    for char in word:
        if is_punctuation(char):
            if current:
                words.append("".join(current))
                current = []
            words.append(char)
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


class _CharacterMap(dict):
    """A ``str.translate`` table that cleans text and spaces out CJK characters in one pass.

    It starts empty and fills in each character the first time it meets one: control characters,
    NUL and U+FFFD (the replacement character, left by bad decoding) map to nothing, whitespace to
    a space, a CJK character to itself between spaces, anything else to itself.
    """

    def __init__(self, tokenize_chinese_chars: bool):
        super().__init__()
        self.tokenize_chinese_chars = tokenize_chinese_chars

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        if code in (0, 0xFFFD) or is_control(char):
            value = None
        elif is_whitespace(char):
            value = " "
        elif self.tokenize_chinese_chars and is_cjk(char):
            value = f" {char} "
        else:
            value = char
        self[code] = value
        return value


class BasicTokenizer:
    """Text -> words, before WordPiece: ``"Héllo, 世界!" -> ["hello", ",", "世", "界", "!"]``.

    do_lower_case: lower-case every word.
    strip_accents: remove accents (``"é" -> "e"``); ``None`` means "as do_lower_case", as in BERT.
    tokenize_chinese_chars: put spaces around CJK characters, so that each is a word.
    never_split: words kept exactly as they are (not lower-cased, not cut), e.g. ``"[MASK]"``.
    """

    def __init__(
        self,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        never_split: Iterable[str] = (),
    ):
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.never_split = frozenset(never_split)
        self._character_map = _CharacterMap(tokenize_chinese_chars)

    def clean(self, text: str) -> str:
        """Drop control characters, turn whitespace into spaces, space out CJK characters, then
        compose characters (NFC), so that ``"e" + U+0301`` and ``"é"`` are the same word."""
        text = text.translate(self._character_map)
        return text if text.isascii() else unicodedata.normalize("NFC", text)

    def split_word(self, word: str) -> list[str]:
        """One whitespace-free word of cleaned text -> words: lower-case, strip accents, cut punctuation."""
        if word in self.never_split:
            return [word]
        if self.do_lower_case:
            word = word.lower()
        if self.strip_accents:
            word = strip_accents(word)
        return split_on_punctuation(word)

    def tokenize(self, text: str) -> list[str]:
        """Text -> words."""
        _check_text(text)
        return [piece for word in self.clean(text).split() for piece in self.split_word(word)]


# --- WordPiece ---------------------------------------------------------------------------


class WordPiece:
    """Cut a word into vocabulary pieces, greedy longest-match-first.

    From the start of the word, take the longest prefix that is in the vocabulary, then the
    longest ``##``-prefixed continuation from where it ended, and so on. If at some point no
    piece matches, the whole word is ``unk_token``: ``"unaffable" -> ["un", "##aff", "##able"]``.
    """

    def __init__(self, vocab: Iterable[str], unk_token: str = UNK, max_input_chars_per_word: int = 100):
        self.vocab = frozenset(vocab)
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        # no piece is longer than the longest vocabulary entry: no need to look further
        self.longest_piece = max(map(len, self.vocab), default=0)

    def tokenize(self, word: str) -> list[str]:
        """One word (no whitespace) -> its pieces, or ``[unk_token]``."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            for end in range(min(len(word), start + self.longest_piece), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


# --- the tokenizer -----------------------------------------------------------------------


def _check_text(text: object, name: str = "text") -> None:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a str, got {type(text).__name__}: {text!r:.80}")


def _join_pieces(tokens: Iterable[str]) -> str:
    """``["un", "##aff", "##able", "!"] -> "unaffable !"``: glue each ``##`` piece to the word before."""
    words = []
    for token in tokens:
        if token.startswith("##") and words:
            words[-1] += token[2:]
        else:
            words.append(token)
    return " ".join(words)


class BertTokenizer:
    """BERT's tokenizer: text -> ids and back, over a vocabulary of WordPiece tokens.

    vocab: the tokens in id order (``vocab[i]`` has id ``i``); it must hold the special tokens
        ``[PAD] [UNK] [CLS] [SEP] [MASK]``. ``from_file`` reads it from a ``vocab.txt``.
    do_lower_case, strip_accents, tokenize_chinese_chars: see ``BasicTokenizer``.
    max_input_chars_per_word: longer words become ``[UNK]``, as in BERT.

    A special token written in the text (``"Paris is the [MASK] of France."``) stays one token.
    """

    def __init__(
        self,
        vocab: Sequence[str],
        *,
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        max_input_chars_per_word: int = 100,
    ):
        self.ids_to_tokens = list(vocab)
        self.vocab = {}  # token -> id
        for index, token in enumerate(self.ids_to_tokens):
            _check_text(token, f"vocabulary entry {index}")
            if "\n" in token or "\r" in token:
                raise ValueError(
                    f"vocabulary entry {index} {token!r} holds a line break; vocab.txt cannot store it"
                )
            if token in self.vocab:
                raise ValueError(
                    f"token {token!r} is in the vocabulary twice: ids {self.vocab[token]} and {index}"
                )
            self.vocab[token] = index
        missing = [token for token in SPECIAL_TOKENS if token not in self.vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks the special token(s) {' '.join(missing)}")
        self.basic = BasicTokenizer(
            do_lower_case, strip_accents, tokenize_chinese_chars, never_split=SPECIAL_TOKENS
        )
        self.wordpiece = WordPiece(self.vocab, UNK, max_input_chars_per_word)
        self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = (
            self.vocab[token] for token in SPECIAL_TOKENS
        )
        self._special_tokens_in_text = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")
        self._word_cache: dict[str, tuple[list[str], list[int]]] = {}

    # --- vocab.txt: one token a line, id = line number ---

    @classmethod
    def from_file(cls, path: str | Path, **options) -> BertTokenizer:
        """Read a ``vocab.txt`` (or the one in directory ``path``); ``options`` go to ``__init__``."""
        path = Path(path)
        if path.is_dir():
            path = path / "vocab.txt"
        if not path.is_file():
            raise FileNotFoundError(f"no vocabulary file at {path}")
        with path.open(encoding="utf-8") as file:
            vocab = [line.removesuffix("\n") for line in file]
        return cls(vocab, **options)

    def save(self, path: str | Path) -> Path:
        """Write the vocabulary to ``path`` (to ``path/vocab.txt`` if a directory); return the file's path."""
        path = Path(path)
        if path.is_dir():
            path = path / "vocab.txt"
        path.write_text("".join(token + "\n" for token in self.ids_to_tokens), encoding="utf-8")
        return path

    def __len__(self) -> int:
        return len(self.ids_to_tokens)

    # --- text -> tokens -> ids ---

    def _words(self, text: str) -> list[str]:
        """Cleaned, whitespace-split words, a special token written in the text as a word of its own."""
        words = []
        for index, part in enumerate(self._special_tokens_in_text.split(text)):
            if index % 2:  # re.split puts the matched special tokens at odd positions
                words.append(part)
            else:
                words.extend(self.basic.clean(part).split())
        return words

    def _split_word(self, word: str) -> tuple[list[str], list[int]]:
        """A word -> (its WordPiece tokens, their ids), remembered: text repeats its words."""
        if word not in self._word_cache:
            if len(self._word_cache) >= 1 << 16:  # bound the memory it holds
                self._word_cache.clear()
            tokens = [
                piece for part in self.basic.split_word(word) for piece in self.wordpiece.tokenize(part)
            ]
            self._word_cache[word] = tokens, [self.vocab[token] for token in tokens]
        return self._word_cache[word]

    def tokenize(self, text: str) -> list[str]:
        """Text -> WordPiece tokens, no ``[CLS]``/``[SEP]``: ``"Unaffable!" -> un ##aff ##able !``."""
        _check_text(text)
        return [token for word in self._words(text) for token in self._split_word(word)[0]]

    def text_to_ids(self, text: str) -> list[int]:
        """Text -> ids of its tokens, without ``[CLS]``/``[SEP]``."""
        _check_text(text)
        return [index for word in self._words(text) for index in self._split_word(word)[1]]

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]) -> int | list[int]:
        """A token -> its id, or tokens -> their ids; a token not in the vocabulary gets ``[UNK]``'s id."""
        if isinstance(tokens, str):
            return self.vocab.get(tokens, self.unk_token_id)
        return [self.vocab.get(token, self.unk_token_id) for token in tokens]

    def convert_ids_to_tokens(self, ids: int | Iterable[int]) -> str | list[str]:
        """An id -> its token, or ids (a list or a 1-D tensor) -> their tokens."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if isinstance(ids, int):
            return self._token(ids)
        return [self._token(index) for index in ids]

    def _token(self, index: int) -> str:
        if not 0 <= index < len(self.ids_to_tokens):
            raise ValueError(f"id {index} is outside the vocabulary (ids 0 to {len(self.ids_to_tokens) - 1})")
        return self.ids_to_tokens[index]

    # --- model inputs ---

    def encode(
        self,
        text: str,
        pair: str | None = None,
        *,
        max_length: int | None = None,
        truncation: bool = False,
        padding: bool | str = False,
    ) -> dict[str, list[int]]:
        """One text (or pair of texts) -> model inputs, as lists of ints of equal length L.

        input_ids: ``[CLS] A [SEP]``, or ``[CLS] A [SEP] B [SEP]`` for a pair.
        token_type_ids: 0 on ``[CLS] A [SEP]``, 1 on ``B [SEP]``.
        attention_mask: 1 on tokens, 0 on padding.

        truncation: cut tokens (not special tokens) so that L <= max_length, "longest first":
            one token at a time from the end of the longer of A and B (of B when they tie).
        padding: ``"max_length"`` pads with ``[PAD]`` on the right up to max_length; ``False``,
            ``True`` or ``"longest"`` leave one sequence as it is.
        """
        _check_text(text)
        if pair is not None:
            _check_text(pair, "pair")
        num_special = 2 if pair is None else 3
        _check_lengths(max_length, truncation, padding, num_special)
        ids_a = self.text_to_ids(text)
        ids_b = None if pair is None else self.text_to_ids(pair)
        if truncation:
            ids_a, ids_b = _truncate_longest_first(ids_a, ids_b, max_length - num_special)
        input_ids = [self.cls_token_id, *ids_a, self.sep_token_id]
        token_type_ids = [0] * len(input_ids)
        if ids_b is not None:
            input_ids += [*ids_b, self.sep_token_id]
            token_type_ids += [1] * (len(ids_b) + 1)
        encoding = {
            "input_ids": input_ids,
            "token_type_ids": token_type_ids,
            "attention_mask": [1] * len(input_ids),
        }
        if padding == "max_length":
            encoding = self._pad(encoding, max_length)
        return encoding

    def encode_batch(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        truncation: bool = False,
        padding: bool | str = "longest",
    ) -> dict[str, torch.Tensor]:
        """A batch of texts (or of pairs ``texts[i], pairs[i]``) -> padded tensors, each (B, L) int64.

        Returns ``input_ids``, ``token_type_ids`` and ``attention_mask`` as in ``encode``. L is the
        longest sequence of the batch (``padding="longest"`` or ``True``) or max_length
        (``padding="max_length"``, which needs every sequence to fit: pass ``truncation=True``).
        """
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(
                f"texts must be a list of str, got {type(texts).__name__}; encode() takes one text"
            )
        if pairs is not None and (isinstance(pairs, str) or len(pairs) != len(texts)):
            raise ValueError(f"pairs must be a list as long as texts ({len(texts)} texts), got {pairs!r:.80}")
        if padding is False:
            raise ValueError("encode_batch pads to make tensors: padding must be 'longest' or 'max_length'")
        _check_lengths(max_length, truncation, padding, 2 if pairs is None else 3)
        rows = [
            self.encode(
                text, None if pairs is None else pairs[i], max_length=max_length, truncation=truncation
            )
            for i, text in enumerate(texts)
        ]
        length = max((len(row["input_ids"]) for row in rows), default=0)
        if padding == "max_length":
            if length > max_length:
                raise ValueError(
                    f"a sequence has {length} tokens, more than max_length={max_length}; pass truncation=True"
                )
            length = max_length
        rows = [self._pad(row, length) for row in rows]
        return {
            key: torch.tensor([row[key] for row in rows], dtype=torch.long).reshape(len(rows), length)
            for key in ("input_ids", "token_type_ids", "attention_mask")
        }

    def _pad(self, encoding: dict[str, list[int]], length: int) -> dict[str, list[int]]:
        """Pad on the right to ``length``: ``[PAD]`` ids, token type 0, attention mask 0."""
        extra = max(0, length - len(encoding["input_ids"]))
        return {
            "input_ids": encoding["input_ids"] + [self.pad_token_id] * extra,
            "token_type_ids": encoding["token_type_ids"] + [0] * extra,
            "attention_mask": encoding["attention_mask"] + [0] * extra,
        }

    # --- ids -> text ---

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Ids (a list or a 1-D tensor) -> text: tokens joined by spaces, ``##`` pieces glued to the
        word before. Lower-casing, stripped accents and spaces around punctuation stay as tokenized."""
        tokens = self.convert_ids_to_tokens(ids)
        if skip_special_tokens:
            tokens = [token for token in tokens if token not in SPECIAL_TOKENS]
        return _join_pieces(tokens)


def _check_lengths(max_length: int | None, truncation: bool, padding: bool | str, num_special: int) -> None:
    if padding not in (False, True, "longest", "max_length"):
        raise ValueError(f"padding must be False, True, 'longest' or 'max_length', got {padding!r}")
    if max_length is None:
        if truncation:
            raise ValueError("truncation=True needs max_length")
        if padding == "max_length":
            raise ValueError("padding='max_length' needs max_length")
        return
    if max_length < num_special:
        raise ValueError(
            f"max_length={max_length} leaves no room: the special tokens alone take {num_special} "
            f"({'[CLS] A [SEP]' if num_special == 2 else '[CLS] A [SEP] B [SEP]'})"
        )


def _truncate_longest_first(
    ids_a: list[int], ids_b: list[int] | None, budget: int
) -> tuple[list[int], list[int] | None]:
    """Drop tokens from the end of the longer sequence (of B on a tie) until both fit in ``budget``."""
    if ids_b is None:
        return ids_a[:budget], None
    length_a, length_b = len(ids_a), len(ids_b)
    while length_a + length_b > budget:
        if length_a > length_b:
            length_a -= 1
        else:
            length_b -= 1
    return ids_a[:length_a], ids_b[:length_b]


# --- learning a vocabulary ---------------------------------------------------------------


def count_words(texts: Iterable[str], basic: BasicTokenizer) -> Counter[str]:
    """How often each word (after basic tokenization) appears in the texts."""
    raw_counts = Counter()  # split_word is slow: run it once per distinct whitespace-split word
    for index, text in enumerate(texts):
        _check_text(text, f"text {index}")
        raw_counts.update(basic.clean(text).split())
    counts = Counter()
    for raw_word, count in raw_counts.items():
        for word in basic.split_word(raw_word):
            counts[word] += count
    return counts


def _merge_pair(pieces: list[str], first: str, second: str, merged: str) -> list[str]:
    """Replace each ``first second`` in ``pieces`` by ``merged``, left to right."""
    out, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == first and pieces[i + 1] == second:
            out.append(merged)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out


class _PairCounts:
    """Each distinct word split into pieces, with the corpus counts of pieces and of neighbouring
    pairs, updated merge by merge: only the words that hold the merged pair are re-counted."""

    def __init__(self, word_counts: Counter[str]):
        self.words = [[word[0], *("##" + char for char in word[1:])] for word in word_counts]
        self.word_counts = list(word_counts.values())
        self.piece_counts = Counter()
        self.pair_counts = Counter()
        self.words_with_pair = defaultdict(set)  # pair -> indices of the words that hold it
        self.pairs_with_piece = defaultdict(set)  # piece -> pairs it is part of (some may be gone)
        for index in range(len(self.words)):
            self._count_word(index, +1)

    def _count_word(self, index: int, sign: int) -> set[tuple[str, str]]:
        """Add (sign=+1) or remove (sign=-1) word ``index``'s pieces and pairs; return its pairs."""
        pieces, count = self.words[index], sign * self.word_counts[index]
        for piece in pieces:
            self.piece_counts[piece] += count
            if not self.piece_counts[piece]:
                del self.piece_counts[piece]
        pairs = set()
        for pair in itertools.pairwise(pieces):
            pairs.add(pair)
            self.pair_counts[pair] += count
            if not self.pair_counts[pair]:
                del self.pair_counts[pair]
        for pair in pairs:
            if sign > 0:
                self.words_with_pair[pair].add(index)
                self.pairs_with_piece[pair[0]].add(pair)
                self.pairs_with_piece[pair[1]].add(pair)
            elif pair not in self.pair_counts:
                del self.words_with_pair[pair]
            else:
                self.words_with_pair[pair].discard(index)
        return pairs

    def merge(self, first: str, second: str) -> tuple[str, set[tuple[str, str]]]:
        """Merge the pair in every word that holds it: ``h ##u`` -> ``hu``, ``##u ##g`` -> ``##ug``.
        Returns the merged piece and the pairs whose counts changed."""
        merged = first + second.removeprefix("##")
        changed = set()
        for index in list(self.words_with_pair[(first, second)]):
            changed |= self._count_word(index, -1)
            self.words[index] = _merge_pair(self.words[index], first, second, merged)
            changed |= self._count_word(index, +1)
        return merged, changed


def train_wordpiece_vocab(
    texts: Iterable[str],
    vocab_size: int,
    *,
    do_lower_case: bool = True,
    score: str = "frequency",
    min_pair_count: int = 2,
) -> list[str]:
    """Learn a WordPiece vocabulary from texts; returns its tokens in id order (``vocab.txt``'s lines).

    1. Count the words of the texts (``BasicTokenizer(do_lower_case)``, the tokenizer's first step).
    2. Start from the special tokens and the alphabet: every character seen, and ``##`` + every
       character but punctuation and CJK (those are always words of their own). Each word is
       its characters: ``"hugs" -> h ##u ##g ##s``.
    3. Find the best pair of neighbouring pieces, merge it in every word (``h ##u -> hu``), add
       it to the vocabulary; repeat until there are ``vocab_size`` tokens or no pair is left.

    score: which pair is best, counting pieces and pairs over the whole corpus.
        ``"frequency"`` (BPE's rule, the default): count(ab), the most frequent pair. It is what
        ``tokenizers``' WordPieceTrainer does (it trains BPE and keeps the pieces as a WordPiece
        vocabulary), and it spends the vocabulary on what the text uses most: on Python's help
        topics, 4000 tokens give 1.02 tokens per word.
        ``"likelihood"`` (WordPiece's rule): count(ab) / (count(a) * count(b)), how much more often
        a and b stand together than chance would put them (the exponential of their pointwise
        mutual information, up to a constant). Merging that pair raises the likelihood of the
        corpus under a model of independent pieces the most. It prefers pairs that belong
        together (``q ##u``) to pairs that are merely frequent (``##e ##s``), rare ones included:
        on the same text, 4000 tokens give 1.62 tokens per word.
    min_pair_count: pairs seen fewer times are never merged. A pair of two pieces seen once each
        would otherwise have the highest likelihood score there is, 1 / (1 * 1).

    Ties go to the alphabetically first pair, so training is deterministic. Counts are kept per
    distinct word and updated only where a merge changes them, and candidate pairs wait in a
    heap: a few thousand tokens from a megabyte of text take a few seconds.
    """
    if score not in ("likelihood", "frequency"):
        raise ValueError(f"score must be 'likelihood' or 'frequency', got {score!r}")
    counts = _PairCounts(count_words(texts, BasicTokenizer(do_lower_case)))
    alphabet = sorted({piece.removeprefix("##") for word in counts.words for piece in word})
    continuations = ["##" + char for char in alphabet if not (is_punctuation(char) or is_cjk(char))]
    vocab = [*SPECIAL_TOKENS, *alphabet, *continuations]
    if vocab_size < len(vocab):
        raise ValueError(
            f"vocab_size={vocab_size} is smaller than the {len(SPECIAL_TOKENS)} special tokens plus "
            f"{len(alphabet)} characters and {len(continuations)} ##-characters ({len(vocab)} tokens)"
        )

    def score_of(pair: tuple[str, str]) -> float | None:
        count = counts.pair_counts.get(pair, 0)
        if count < min_pair_count:
            return None
        if score == "frequency":
            return count
        return count / (counts.piece_counts[pair[0]] * counts.piece_counts[pair[1]])

    # A max-heap of (-score, pair). When a pair's score rises it is pushed again, and queued[pair]
    # remembers its newest entry: older entries of it are skipped when they come up. A score that
    # falls is noticed when its entry comes up, and the pair goes back in with its new score.
    queued = {pair: s for pair in counts.pair_counts if (s := score_of(pair)) is not None}
    heap = [(-s, pair) for pair, s in queued.items()]
    heapq.heapify(heap)
    known = set(vocab)
    while len(vocab) < vocab_size and heap:
        negative_score, pair = heapq.heappop(heap)
        if queued.get(pair) != -negative_score:
            continue
        del queued[pair]
        current = score_of(pair)
        if current is None:
            continue
        if current != -negative_score:
            queued[pair] = current
            heapq.heappush(heap, (-current, pair))
            continue
        merged, changed = counts.merge(*pair)
        if merged not in known:  # two different pairs can spell the same piece
            known.add(merged)
            vocab.append(merged)
        if score == "likelihood":  # fewer a's and b's now: every pair with a or b scores higher
            changed |= counts.pairs_with_piece[pair[0]] | counts.pairs_with_piece[pair[1]]
        for other in changed:
            new = score_of(other)
            if new is not None and new > queued.get(other, 0):
                queued[other] = new
                heapq.heappush(heap, (-new, other))
    return vocab
