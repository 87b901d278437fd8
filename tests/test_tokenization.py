"""bert_tutor.tokenization: character classes, basic tokenizer, WordPiece, BertTokenizer, trainer.

The equality with Hugging Face's tokenizers is in test_tokenization_reference.py.
"""

import itertools
import re
import unicodedata
from collections import Counter
from pydoc_data.topics import topics

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_tutor.tokenization import (
    SPECIAL_TOKENS,
    BasicTokenizer,
    BertTokenizer,
    WordPiece,
    count_words,
    is_cjk,
    is_control,
    is_punctuation,
    is_whitespace,
    split_on_punctuation,
    strip_accents,
    train_wordpiece_vocab,
)

# A vocabulary small enough to check by hand.
VOCAB = [
    *SPECIAL_TOKENS,
    "un",
    "##aff",
    "##able",
    "aff",
    "able",
    "the",
    "cat",
    "sat",
    "##s",
    "!",
    ",",
    "'",
    "a",
    "##a",
    "b",
    "##b",
    "中",
    "文",
    "cafe",
    "café",
    "hello",
    "world",
    "##ing",
    "play",
    "runn",
]


@pytest.fixture
def tokenizer():
    return BertTokenizer(VOCAB)


# --- character classes --------------------------------------------------------------------


def test_ascii_symbols_count_as_punctuation_though_unicode_calls_them_symbols():
    for char in "$+<=>^`|~!\"#%&'()*,-./:;?@[\\]_{}":
        assert is_punctuation(char), char
    assert unicodedata.category("$").startswith("S")


def test_unicode_punctuation_counts_and_letters_digits_and_other_symbols_do_not():
    for char in "¿«»–—“”…、。「」":
        assert is_punctuation(char), char
    for char in "aZ09é中 €©😀":
        assert not is_punctuation(char), char


def test_tab_newline_return_and_space_separators_are_whitespace_not_control():
    for char in " \t\n\r\u00a0\u2009\u3000":
        assert is_whitespace(char) and not is_control(char), repr(char)
    assert not is_whitespace("\u200b") and not is_whitespace("a")


def test_other_characters_are_control_whitespace_aside():
    for char in "\x00\x07\x0b\x0c\x1f\x7f\x85\u200b\u00ad\ufeff\ue000\u0378":  # Cc, Cf, Co, Cn
        assert is_control(char), repr(char)
    for char in "a \t\n\r.😀":
        assert not is_control(char), repr(char)


@pytest.mark.parametrize(
    "low, high",
    [
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    ],
)
def test_cjk_blocks_include_their_first_and_last_characters(low, high):
    assert is_cjk(chr(low)) and is_cjk(chr(high))


def test_characters_just_outside_the_cjk_blocks_are_not_cjk():
    for code in (
        0x33FF,
        0x4DC0,
        0x4DFF,
        0xA000,
        0x1FFFF,
        0x2A6E0,
        0x2A6FF,
        0x2CEB0,
        0xF8FF,
        0xFB00,
        0x2F7FF,
        0x2FA20,
    ):
        assert not is_cjk(chr(code)), hex(code)


def test_hangul_kana_and_fullwidth_latin_are_not_cjk():
    assert not any(is_cjk(char) for char in "한국カタひらＡ")


# --- basic tokenizer ----------------------------------------------------------------------


def test_strip_accents_removes_combining_marks_only():
    assert strip_accents("Crème brûlée, naïve") == "Creme brulee, naive"
    assert strip_accents("e\u0301") == "e" and strip_accents("ß中") == "ß中"


def test_punctuation_is_cut_off_as_words_of_its_own():
    assert split_on_punctuation("don't") == ["don", "'", "t"]
    assert split_on_punctuation("...hi!") == [".", ".", ".", "hi", "!"]
    assert split_on_punctuation("") == []


def test_ascii_shortcuts_cut_punctuation_as_the_character_test_says():
    for char in map(chr, range(128)):
        cut = is_punctuation(char)
        assert split_on_punctuation(f"x{char}y") == (["x", char, "y"] if cut else [f"x{char}y"]), repr(char)
        assert split_on_punctuation(f"é{char}é") == (["é", char, "é"] if cut else [f"é{char}é"]), repr(char)
        assert strip_accents(f"x{char}y") == f"x{char}y"


def test_basic_tokenizer_lowercases_strips_accents_and_splits_punctuation():
    assert BasicTokenizer().tokenize("  Héllo,\tWORLD!\n") == ["hello", ",", "world", "!"]


def test_accents_stay_when_cased_and_can_be_stripped_or_kept_independently():
    assert BasicTokenizer(do_lower_case=False).tokenize("Héllo") == ["Héllo"]
    assert BasicTokenizer(do_lower_case=False, strip_accents=True).tokenize("Héllo") == ["Hello"]
    assert BasicTokenizer(do_lower_case=True, strip_accents=False).tokenize("Héllo") == ["héllo"]


def test_every_cjk_character_is_a_word_unless_switched_off():
    assert BasicTokenizer().tokenize("我爱NLP模型") == ["我", "爱", "nlp", "模", "型"]
    assert BasicTokenizer(tokenize_chinese_chars=False).tokenize("我爱NLP") == ["我爱nlp"]


def test_control_characters_vanish_and_whitespace_characters_separate():
    assert BasicTokenizer().tokenize("a\x00b\u200bc\ufffdd e\u3000f\u00a0g") == ["abcd", "e", "f", "g"]


def test_decomposed_and_composed_accents_give_the_same_word():
    cased = BasicTokenizer(do_lower_case=False)
    assert cased.tokenize("cafe\u0301") == cased.tokenize("café") == ["café"]


def test_never_split_words_are_kept_exactly():
    basic = BasicTokenizer(never_split=["[MASK]"])
    assert basic.tokenize("the [MASK] sat") == ["the", "[MASK]", "sat"]
    assert BasicTokenizer().tokenize("[MASK]") == ["[", "mask", "]"]


def test_empty_and_whitespace_only_text_give_no_words():
    assert BasicTokenizer().tokenize("") == [] and BasicTokenizer().tokenize(" \t\n\x00 ") == []


# --- WordPiece ----------------------------------------------------------------------------


def test_wordpiece_takes_the_longest_prefix_then_continuations():
    wordpiece = WordPiece(VOCAB)
    assert wordpiece.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert wordpiece.tokenize("cats") == ["cat", "##s"]


def test_a_word_that_cannot_be_cut_entirely_is_one_unknown_token():
    assert WordPiece(VOCAB).tokenize("catz") == ["[UNK]"]


def test_words_longer_than_the_limit_are_unknown():
    wordpiece = WordPiece(VOCAB, max_input_chars_per_word=100)
    assert wordpiece.tokenize("a" * 100) == ["a"] + ["##a"] * 99
    assert wordpiece.tokenize("a" * 101) == ["[UNK]"]
    assert WordPiece(VOCAB, max_input_chars_per_word=3).tokenize("cats") == ["[UNK]"]


# --- BertTokenizer: text -> tokens -> ids -------------------------------------------------


def test_tokenize_runs_basic_tokenization_then_wordpiece(tokenizer):
    assert tokenizer.tokenize("Unaffable cats, CAFÉ 中文!") == [
        "un",
        "##aff",
        "##able",
        "cat",
        "##s",
        ",",
        "cafe",
        "中",
        "文",
        "!",
    ]


def test_special_tokens_written_in_text_stay_whole(tokenizer):
    assert tokenizer.tokenize("the [MASK] sat[SEP]") == ["the", "[MASK]", "sat", "[SEP]"]
    assert tokenizer.tokenize("[mask]") == ["[UNK]", "[UNK]", "[UNK]"]


def test_tokens_and_ids_convert_both_ways(tokenizer):
    assert tokenizer.convert_tokens_to_ids(["[CLS]", "the", "nope"]) == [2, 10, 1]
    assert tokenizer.convert_tokens_to_ids("cat") == 11
    assert tokenizer.convert_ids_to_tokens([2, 10, 1]) == ["[CLS]", "the", "[UNK]"]
    assert tokenizer.convert_ids_to_tokens(torch.tensor([11, 13])) == ["cat", "##s"]
    assert tokenizer.convert_ids_to_tokens(3) == "[SEP]"


def test_special_token_ids_and_length(tokenizer):
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id) == (0, 1, 2)
    assert (tokenizer.sep_token_id, tokenizer.mask_token_id) == (3, 4)
    assert len(tokenizer) == len(VOCAB)


def test_remembered_words_give_the_same_tokens_as_the_uncached_steps(tokenizer):
    text = "The cat sat, the cat sat! Unaffable 中文 café"
    words = BasicTokenizer().tokenize(text)
    expected = [piece for word in words for piece in WordPiece(VOCAB).tokenize(word)]
    assert tokenizer.tokenize(text) == expected
    assert tokenizer.tokenize(text) == expected  # the second time from the cache


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.text(st.sampled_from("abcuntfhsl !,'中文é\u0301 \t[]MASK"), max_size=40))
def test_tokenizer_equals_basic_tokenizer_then_wordpiece_on_any_text(text):
    tokenizer = BertTokenizer(VOCAB)
    basic, wordpiece = BasicTokenizer(never_split=SPECIAL_TOKENS), WordPiece(VOCAB)
    parts = text.split("[MASK]")  # a special token in the text is one token of its own
    expected = []
    for index, part in enumerate(parts):
        expected += [piece for word in basic.tokenize(part) for piece in wordpiece.tokenize(word)]
        expected += ["[MASK]"] if index < len(parts) - 1 else []
    assert tokenizer.tokenize(text) == expected
    assert tokenizer.text_to_ids(text) == tokenizer.convert_tokens_to_ids(expected)


# --- BertTokenizer: model inputs ----------------------------------------------------------


def test_a_single_text_is_wrapped_in_cls_and_sep(tokenizer):
    assert tokenizer.encode("the cat") == {
        "input_ids": [2, 10, 11, 3],
        "token_type_ids": [0, 0, 0, 0],
        "attention_mask": [1, 1, 1, 1],
    }


def test_a_pair_gets_token_type_one_on_the_second_text_and_its_sep(tokenizer):
    assert tokenizer.encode("the cat", "sat") == {
        "input_ids": [2, 10, 11, 3, 12, 3],
        "token_type_ids": [0, 0, 0, 0, 1, 1],
        "attention_mask": [1, 1, 1, 1, 1, 1],
    }


def test_empty_text_still_gets_the_special_tokens(tokenizer):
    assert tokenizer.encode("")["input_ids"] == [2, 3]
    assert tokenizer.encode("", "")["input_ids"] == [2, 3, 3]


def test_truncation_cuts_the_longer_text_first_and_the_second_on_a_tie(tokenizer):
    a, b = "a " * 6, "b " * 3
    ids = tokenizer.encode(a, b, max_length=9, truncation=True)["input_ids"]  # 6 places: 6+3 -> 3+3
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "a", "a", "a", "[SEP]", "b", "b", "b", "[SEP]"]
    ids = tokenizer.encode(a, b, max_length=8, truncation=True)["input_ids"]  # 5 places: the tie goes to b
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "a", "a", "a", "[SEP]", "b", "b", "[SEP]"]
    ids = tokenizer.encode("a " * 10, max_length=5, truncation=True)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", "a", "a", "a", "[SEP]"]


def test_without_truncation_max_length_does_not_cut(tokenizer):
    assert len(tokenizer.encode("a " * 10, max_length=5)["input_ids"]) == 12


def test_padding_to_max_length_adds_pad_with_zero_mask_and_type(tokenizer):
    assert tokenizer.encode("cat", padding="max_length", max_length=5) == {
        "input_ids": [2, 11, 3, 0, 0],
        "token_type_ids": [0, 0, 0, 0, 0],
        "attention_mask": [1, 1, 1, 0, 0],
    }


def test_batches_pad_to_the_longest_as_int64_tensors(tokenizer):
    batch = tokenizer.encode_batch(["the cat sat", "cat"], ["a", "b b"])
    expected = {
        "input_ids": [[2, 10, 11, 12, 3, 17, 3], [2, 11, 3, 19, 19, 3, 0]],
        "token_type_ids": [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 0]],
        "attention_mask": [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]],
    }
    assert batch.keys() == expected.keys()
    for key, tensor in batch.items():
        assert tensor.dtype == torch.long
        torch.testing.assert_close(tensor, torch.tensor(expected[key]), rtol=0, atol=0)


def test_batches_pad_and_truncate_to_max_length(tokenizer):
    batch = tokenizer.encode_batch(
        ["the cat sat the cat", "cat"], max_length=4, truncation=True, padding="max_length"
    )
    torch.testing.assert_close(
        batch["input_ids"], torch.tensor([[2, 10, 11, 3], [2, 11, 3, 0]]), rtol=0, atol=0
    )


def test_an_empty_batch_gives_empty_tensors(tokenizer):
    assert tokenizer.encode_batch([])["input_ids"].shape == (0, 0)


# --- decoding -----------------------------------------------------------------------------


def test_decode_glues_continuations_and_can_skip_special_tokens(tokenizer):
    ids = tokenizer.encode("Unaffable cats!", "the [MASK]")["input_ids"]
    assert tokenizer.decode(ids) == "[CLS] unaffable cats ! [SEP] the [MASK] [SEP]"
    assert tokenizer.decode(torch.tensor(ids), skip_special_tokens=True) == "unaffable cats ! the"


def test_decode_keeps_a_leading_continuation_as_it_is(tokenizer):
    assert tokenizer.decode(tokenizer.convert_tokens_to_ids(["##s", "cat", "##s"])) == "##s cats"


# --- vocab.txt ----------------------------------------------------------------------------


def test_vocab_file_round_trips_with_one_token_a_line(tokenizer, tmp_path):
    path = tokenizer.save(tmp_path)
    assert path == tmp_path / "vocab.txt"
    assert path.read_text(encoding="utf-8").split("\n") == [*VOCAB, ""]
    for source in (path, tmp_path, str(path)):
        loaded = BertTokenizer.from_file(source)
        assert loaded.ids_to_tokens == VOCAB and loaded.vocab == tokenizer.vocab


def test_loading_passes_the_options_on(tokenizer, tmp_path):
    cased = BertTokenizer.from_file(tokenizer.save(tmp_path / "v.txt"), do_lower_case=False)
    assert cased.tokenize("Cafe") == ["[UNK]"] and tokenizer.tokenize("Cafe") == ["cafe"]


def test_a_vocab_file_without_a_final_newline_loads_the_same(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB), encoding="utf-8")
    assert BertTokenizer.from_file(path).ids_to_tokens == VOCAB


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["a list"]])
def test_non_string_text_is_a_type_error_naming_the_type(tokenizer, bad):
    with pytest.raises(TypeError, match=f"text must be a str, got {type(bad).__name__}"):
        tokenizer.encode(bad)
    with pytest.raises(TypeError, match="must be a str"):
        tokenizer.tokenize(bad)
    if bad is not None:  # no pair
        with pytest.raises(TypeError, match=f"pair must be a str, got {type(bad).__name__}"):
            tokenizer.encode("ok", bad)


def test_a_single_string_given_as_a_batch_is_a_type_error(tokenizer):
    with pytest.raises(TypeError, match="texts must be a list of str, got str"):
        tokenizer.encode_batch("the cat")
    with pytest.raises(ValueError, match="as long as texts"):
        tokenizer.encode_batch(["a", "b"], ["c"])


@pytest.mark.parametrize("missing", SPECIAL_TOKENS)
def test_a_vocab_without_a_special_token_is_a_value_error_naming_it(missing, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("".join(token + "\n" for token in VOCAB if token != missing), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(f"lacks the special token(s) {missing}")):
        BertTokenizer.from_file(path)


def test_a_missing_vocab_path_is_a_file_not_found_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no vocabulary file at .*nowhere.txt"):
        BertTokenizer.from_file(tmp_path / "nowhere.txt")
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTokenizer.from_file(tmp_path)  # a directory without vocab.txt


def test_duplicate_tokens_and_line_breaks_in_a_vocab_are_value_errors():
    with pytest.raises(ValueError, match="'cat' is in the vocabulary twice: ids 11 and 30"):
        BertTokenizer([*VOCAB, "cat"])
    with pytest.raises(ValueError, match="line break"):
        BertTokenizer([*VOCAB, "a\nb"])


def test_max_length_too_small_for_the_special_tokens_is_a_value_error_naming_the_lengths(tokenizer):
    with pytest.raises(ValueError, match="max_length=1 .* special tokens alone take 2"):
        tokenizer.encode("cat", max_length=1, truncation=True)
    with pytest.raises(ValueError, match="max_length=2 .* special tokens alone take 3"):
        tokenizer.encode("cat", "sat", max_length=2, truncation=True)


def test_truncation_or_max_length_padding_without_max_length_is_a_value_error(tokenizer):
    with pytest.raises(ValueError, match="truncation=True needs max_length"):
        tokenizer.encode("cat", truncation=True)
    with pytest.raises(ValueError, match="padding='max_length' needs max_length"):
        tokenizer.encode_batch(["cat"], padding="max_length")


def test_a_batch_longer_than_max_length_without_truncation_is_a_value_error(tokenizer):
    with pytest.raises(
        ValueError, match="a sequence has 5 tokens, more than max_length=4; pass truncation=True"
    ):
        tokenizer.encode_batch(["the cat sat"], max_length=4, padding="max_length")


def test_unknown_padding_and_out_of_range_ids_are_value_errors(tokenizer):
    with pytest.raises(ValueError, match="padding must be"):
        tokenizer.encode("cat", padding="left")
    with pytest.raises(ValueError, match="padding must be 'longest' or 'max_length'"):
        tokenizer.encode_batch(["cat"], padding=False)
    with pytest.raises(ValueError, match="id 99 is outside the vocabulary"):
        tokenizer.decode([2, 99])


# --- the vocabulary trainer ---------------------------------------------------------------

HUGS = ["hug " * 10 + "pug " * 5 + "pun " * 12 + "bun " * 4 + "hugs " * 5]  # the classic toy corpus


def test_vocab_starts_with_special_tokens_then_characters_then_continuations():
    vocab = train_wordpiece_vocab(HUGS, 19)
    assert vocab == [
        *SPECIAL_TOKENS,
        "b",
        "g",
        "h",
        "n",
        "p",
        "s",
        "u",
        "##b",
        "##g",
        "##h",
        "##n",
        "##p",
        "##s",
        "##u",
    ]


def test_punctuation_and_cjk_characters_get_no_continuation():
    vocab = train_wordpiece_vocab(["a, b. 中文"], 100)
    assert "," in vocab and "中" in vocab and "##," not in vocab and "##中" not in vocab and "##a" in vocab


def test_frequency_merges_the_most_frequent_pair_first():
    vocab = train_wordpiece_vocab(HUGS, 20, score="frequency")
    assert vocab[-1] == "##ug"  # u g: 20 times (hug 10, pug 5, hugs 5)


def test_likelihood_merges_the_pair_most_above_chance_first():
    vocab = train_wordpiece_vocab(HUGS, 20, score="likelihood")
    assert vocab[-1] == "##gs"  # g s: 5 / (20 * 5) beats every pair with u (36 times): x / (x * 36)


def test_training_stops_when_no_pair_is_left():
    assert train_wordpiece_vocab(["ab ab"], 100) == [*SPECIAL_TOKENS, "a", "b", "##a", "##b", "ab"]


def test_pairs_seen_fewer_than_min_pair_count_times_are_not_merged():
    assert train_wordpiece_vocab(["ab ab cd"], 100)[-1] == "ab"
    assert train_wordpiece_vocab(["ab ab cd"], 100, min_pair_count=1)[-2:] == ["ab", "cd"]


def test_training_counts_words_after_basic_tokenization():
    assert count_words(["The cat, the CAT!", "Café"], BasicTokenizer()) == Counter(
        {"the": 2, "cat": 2, ",": 1, "!": 1, "cafe": 1}
    )


def test_a_trained_vocab_tokenizes_its_own_text_without_unknowns():
    texts = ["the quick brown fox jumps over the lazy dog", "pack my box with five dozen liquor jugs"]
    tokenizer = BertTokenizer(train_wordpiece_vocab(texts, 60))
    assert "[UNK]" not in [token for text in texts for token in tokenizer.tokenize(text)]


def test_bad_trainer_arguments_are_errors():
    with pytest.raises(
        ValueError, match="vocab_size=10 is smaller than the 5 special tokens plus 7 characters"
    ):
        train_wordpiece_vocab(HUGS, 10)
    with pytest.raises(ValueError, match="score must be"):
        train_wordpiece_vocab(HUGS, 100, score="bpe")
    with pytest.raises(TypeError, match="text 1 must be a str"):
        train_wordpiece_vocab(["ok", 3], 100)


def recount_and_merge(texts, vocab_size, score, min_pair_count=2):
    """The trainer the slow way, as the notebook first writes it: recount every pair after each merge."""
    words = count_words(texts, BasicTokenizer())
    splits = {word: [word[0], *("##" + char for char in word[1:])] for word in words}
    alphabet = sorted({char for word in words for char in word})
    vocab = [
        *SPECIAL_TOKENS,
        *alphabet,
        *("##" + c for c in alphabet if not (is_punctuation(c) or is_cjk(c))),
    ]
    while len(vocab) < vocab_size:
        pieces, pairs = Counter(), Counter()
        for word, count in words.items():
            for piece in splits[word]:
                pieces[piece] += count
            for pair in itertools.pairwise(splits[word]):
                pairs[pair] += count
        scores = {
            pair: count if score == "frequency" else count / (pieces[pair[0]] * pieces[pair[1]])
            for pair, count in pairs.items()
            if count >= min_pair_count
        }
        if not scores:
            break
        first, second = min(scores, key=lambda pair: (-scores[pair], pair))
        merged = first + second[2:]
        for split in splits.values():
            i = 0
            while i < len(split) - 1:
                if split[i] == first and split[i + 1] == second:
                    split[i : i + 2] = [merged]
                i += 1
        if merged not in vocab:
            vocab.append(merged)
    return vocab


@pytest.mark.parametrize("score", ["frequency", "likelihood"])
def test_incremental_counts_give_the_vocab_of_recounting_after_every_merge(score):
    texts = list(topics.values())[:4]  # Python's help topics: 20 kB of English and code
    assert train_wordpiece_vocab(texts, 300, score=score) == recount_and_merge(texts, 300, score)
