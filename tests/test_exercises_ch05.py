"""The checks of chapter 5 accept right answers and name the typical wrong ones."""

import unicodedata
from collections import Counter
from itertools import pairwise

import pytest

from bert_tutor.exercises import ch05
from bert_tutor.tokenization import BasicTokenizer, WordPiece, split_on_punctuation

# --- 5.1 WordPiece -----------------------------------------------------------------------------


def right_wordpiece(word, vocab):
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def test_wordpiece_right_answer_prints_one_line(capsys):
    ch05.check_wordpiece(right_wordpiece)
    assert capsys.readouterr().out == "✓ Exercise 5.1: WordPiece, greedy longest-match-first\n"


def test_wordpiece_package_and_tuple_answers_pass(capsys):
    ch05.check_wordpiece(lambda word, vocab: WordPiece(vocab).tokenize(word))
    ch05.check_wordpiece(lambda word, vocab: tuple(right_wordpiece(word, vocab)))
    assert capsys.readouterr().out.count("✓ Exercise 5.1") == 2


def test_wordpiece_shortest_match_first_is_named():
    def shortest(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(start + 1, len(word) + 1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
            else:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    with pytest.raises(AssertionError, match=r"Exercise 5\.1: .*you took the shortest match first"):
        ch05.check_wordpiece(shortest)


def test_wordpiece_missing_hashes_are_named():
    def no_hash(word, vocab):
        vocab = {token.removeprefix("##") for token in vocab}
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                if word[start:end] in vocab:
                    break
            else:
                return ["[UNK]"]
            pieces.append(word[start:end])
            start = end
        return pieces

    with pytest.raises(AssertionError, match=r"must be looked up \(and returned\) with '##'"):
        ch05.check_wordpiece(no_hash)


def test_wordpiece_partial_pieces_instead_of_unk_are_named():
    def partial(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
            else:
                return pieces
            pieces.append(piece)
            start = end
        return pieces

    with pytest.raises(AssertionError, match=r"the whole word becomes \['\[UNK\]'\], not the pieces"):
        ch05.check_wordpiece(partial)


def test_wordpiece_unk_in_place_of_the_missing_piece_is_named():
    def unk_piece(word, vocab):
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    break
            else:
                return [*pieces, "[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    with pytest.raises(AssertionError, match=r"return the single token \['\[UNK\]'\] for the whole word"):
        ch05.check_wordpiece(unk_piece)


@pytest.mark.parametrize(
    ("answer", "message"),
    [("un ##aff", r"should be a list, got str"), (None, r"should be a list, got NoneType")],
)
def test_wordpiece_wrong_types_are_reported(answer, message):
    with pytest.raises(AssertionError, match=message):
        ch05.check_wordpiece(lambda word, vocab: answer)


def test_wordpiece_unknown_mistake_shows_both_lists():
    with pytest.raises(AssertionError, match=r"your pieces of 'unaffable': got \['una'\], expected"):
        ch05.check_wordpiece(lambda word, vocab: right_wordpiece(word, vocab)[:1])


# --- 5.2 split one word --------------------------------------------------------------------------


def right_split_word(word):
    word = unicodedata.normalize("NFD", word.lower())
    word = "".join(char for char in word if unicodedata.category(char) != "Mn")
    return split_on_punctuation(word)


def test_split_word_right_answer_prints_one_line(capsys):
    ch05.check_split_word(right_split_word)
    assert capsys.readouterr().out == "✓ Exercise 5.2: lower-case, strip accents, split punctuation\n"


def test_split_word_package_passes(capsys):
    ch05.check_split_word(BasicTokenizer().split_word)
    assert "✓ Exercise 5.2" in capsys.readouterr().out


def test_split_word_nfc_instead_of_nfd_is_named():
    def nfc(word):
        word = unicodedata.normalize("NFC", word.lower())
        return split_on_punctuation("".join(c for c in word if unicodedata.category(c) != "Mn"))

    with pytest.raises(AssertionError, match=r"Exercise 5\.2: .*the accents are still there\. NFC composes"):
        ch05.check_split_word(nfc)


def test_split_word_dropped_punctuation_is_named():
    def dropped(word):
        return [w for w in right_split_word(word) if w.isalnum()]

    with pytest.raises(AssertionError, match=r"you dropped the punctuation"):
        ch05.check_split_word(dropped)


def test_split_word_missing_lower_case_is_named():
    def cased(word):
        word = unicodedata.normalize("NFD", word)
        return split_on_punctuation("".join(c for c in word if unicodedata.category(c) != "Mn"))

    with pytest.raises(AssertionError, match=r"lower-case the word too"):
        ch05.check_split_word(cased)


def test_split_word_without_cutting_punctuation_is_named():
    with pytest.raises(AssertionError, match=r"must be cut off as words of their own"):
        ch05.check_split_word(lambda word: ["".join(right_split_word(word))])


def test_split_word_wrong_types_are_reported():
    with pytest.raises(AssertionError, match=r"should be a list, got str"):
        ch05.check_split_word(lambda word: " ".join(right_split_word(word)))
    with pytest.raises(AssertionError, match=r"should hold only strs, got int"):
        ch05.check_split_word(lambda word: [1, 2])


# --- 5.3 token type ids and attention mask --------------------------------------------------------


def right_pair_inputs(len_a, len_b, max_length):
    used = len_a + len_b + 3
    types = [0] * (1 + len_a + 1) + [1] * (len_b + 1) + [0] * (max_length - used)
    mask = [1] * used + [0] * (max_length - used)
    return types, mask


def test_pair_inputs_right_answer_prints_one_line(capsys):
    ch05.check_pair_inputs(right_pair_inputs)
    assert capsys.readouterr().out == "✓ Exercise 5.3: token type ids and attention mask of a pair\n"


def test_pair_inputs_type_one_from_the_first_sep_is_named():
    def early(len_a, len_b, max_length):
        types, mask = right_pair_inputs(len_a, len_b, max_length)
        types[len_a + 1] = 1
        return types, mask

    with pytest.raises(AssertionError, match=r"Exercise 5\.3: .*start 1 at the first \[SEP\]"):
        ch05.check_pair_inputs(early)


def test_pair_inputs_last_sep_typed_zero_is_named():
    def last_zero(len_a, len_b, max_length):
        types, mask = right_pair_inputs(len_a, len_b, max_length)
        types[len_a + len_b + 2] = 0
        return types, mask

    with pytest.raises(AssertionError, match=r"your last \[SEP\] is typed 0"):
        ch05.check_pair_inputs(last_zero)


def test_pair_inputs_mask_on_padding_is_named():
    def all_ones(len_a, len_b, max_length):
        types, _ = right_pair_inputs(len_a, len_b, max_length)
        return types, [1] * max_length

    with pytest.raises(AssertionError, match=r"your attention mask is 1 on the padding"):
        ch05.check_pair_inputs(all_ones)


def test_pair_inputs_inverted_mask_is_named():
    def inverted(len_a, len_b, max_length):
        types, mask = right_pair_inputs(len_a, len_b, max_length)
        return types, [1 - m for m in mask]

    with pytest.raises(AssertionError, match=r"your attention mask is inverted"):
        ch05.check_pair_inputs(inverted)


def test_pair_inputs_padding_typed_one_is_named():
    def padded_one(len_a, len_b, max_length):
        types, mask = right_pair_inputs(len_a, len_b, max_length)
        return [0] * (len_a + 2) + [1] * (max_length - len_a - 2), mask

    with pytest.raises(AssertionError, match=r"your padding is typed 1"):
        ch05.check_pair_inputs(padded_one)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ([0] * 10, r"return two lists \(token_type_ids, attention_mask\)"),
        ("types", r"return two lists"),
        (([0.0] * 10, [1] * 10), r"should hold only ints, got float"),
        (([True] * 10, [1] * 10), r"should hold only ints, got bool"),
    ],
    ids=["one-list", "str", "floats", "bools"],
)
def test_pair_inputs_wrong_types_are_reported(answer, message):
    with pytest.raises(AssertionError, match=message):
        ch05.check_pair_inputs(lambda len_a, len_b, max_length: answer)


# --- 5.4 pair counts ----------------------------------------------------------------------------


def right_pair_counts(word_counts):
    counts = Counter()
    for word, count in word_counts.items():
        pieces = [word[0], *("##" + char for char in word[1:])]
        for pair in pairwise(pieces):
            counts[pair] += count
    return counts


def test_pair_counts_right_answer_prints_one_line(capsys):
    ch05.check_pair_counts(right_pair_counts)
    ch05.check_pair_counts(lambda word_counts: dict(right_pair_counts(word_counts)))
    assert capsys.readouterr().out == "✓ Exercise 5.4: pair counts\n" * 2


def test_pair_counts_unweighted_is_named():
    def unweighted(word_counts):
        return right_pair_counts(dict.fromkeys(word_counts, 1))

    with pytest.raises(AssertionError, match=r"add word_counts\[word\], not 1"):
        ch05.check_pair_counts(unweighted)


def test_pair_counts_without_hashes_is_named():
    def no_hash(word_counts):
        counts = Counter()
        for word, count in word_counts.items():
            for pair in pairwise(word):
                counts[pair] += count
        return counts

    with pytest.raises(AssertionError, match=r"your pairs have no '##'"):
        ch05.check_pair_counts(no_hash)


def test_pair_counts_across_words_is_named():
    def across(word_counts):
        pieces = [
            piece
            for word, count in word_counts.items()
            for _ in range(count)
            for piece in [word[0], *("##" + c for c in word[1:])]
        ]
        return Counter(pairwise(pieces))

    with pytest.raises(AssertionError, match=r"you counted pairs across word boundaries"):
        ch05.check_pair_counts(across)


def test_pair_counts_wrong_type_and_unknown_mistake_are_reported():
    with pytest.raises(AssertionError, match=r"return a dict \(or Counter\) of pair -> count, got list"):
        ch05.check_pair_counts(lambda word_counts: list(right_pair_counts(word_counts).items()))

    def off_by_one(word_counts):
        counts = right_pair_counts(word_counts)
        counts[("h", "##u")] += 1
        return counts

    with pytest.raises(AssertionError, match=r"differ for 1 pair\(s\), e\.g\. \('h', '##u'\): you gave 16"):
        ch05.check_pair_counts(off_by_one)
