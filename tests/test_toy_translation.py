"""bert_tutor.toy_translation: the generated language pair, vocabularies and batches."""

import random

import pytest
import torch

from bert_tutor.toy_translation import (
    LEXICON,
    Pair,
    Vocab,
    iterate_batches,
    length_bucket,
    make_batch,
    make_toy_translation,
    random_sentence,
    translate,
)


@pytest.fixture(scope="module")
def data():
    return make_toy_translation(seed=0, num_train=2000, num_test=300)


# --- the language pair -------------------------------------------------------------------


def test_translation_fronts_the_prepositional_phrase_and_puts_the_verb_last():
    pair = translate("the big dog sees a cat near the old king")
    assert pair.target == ("roha", "kahu", "ta", "pe", "hapo", "ola", "ta", "miru", "na", "weta")
    assert pair.alignment == (9, 8, 7, 6, 2, 1, 0, 5, 4, 3)


def test_noun_phrases_put_the_noun_first_then_the_adjectives_then_the_determiner():
    pair = translate("the big old dog sees cat")
    assert pair.target == ("hapo", "ola", "kahu", "ta", "miru", "weta")
    assert pair.alignment == (3, 1, 2, 0, 5, 4)


def test_alignment_points_each_target_word_at_its_source_word():
    rng = random.Random(1)
    for _ in range(200):
        pair = translate(random_sentence(rng))
        assert sorted(pair.alignment) == list(range(len(pair.source)))  # a permutation
        source_of = {target: source for words in LEXICON.values() for source, target in words.items()}
        assert [source_of[t] for t in pair.target] == [pair.source[i] for i in pair.alignment]


def test_reordering_is_present_in_every_sentence_so_alignment_is_not_the_diagonal(data):
    for pair in data.train + data.test:
        assert pair.alignment != tuple(range(len(pair.source)))
    # ... and in a sentence with a prepositional phrase it is not even a reversal
    pair = translate("a cat sees the dog with every child")
    assert pair.alignment not in (tuple(range(8)), tuple(range(7, -1, -1)))


def test_sentence_lengths_range_from_3_to_14_words_with_many_long_ones(data):
    lengths = [len(p.source) for p in data.train]
    assert min(lengths) == 3 and max(lengths) == 14
    assert sum(n >= 11 for n in lengths) / len(lengths) > 0.2
    assert all(len(p.target) == len(p.source) for p in data.train)


def test_length_buckets_cover_every_length_and_reject_others():
    assert [length_bucket(n) for n in (3, 6, 7, 10, 11, 14)] == ["short"] * 2 + ["medium"] * 2 + ["long"] * 2
    with pytest.raises(ValueError, match="no length bucket holds 15 words"):
        length_bucket(15)


@pytest.mark.parametrize(
    ("sentence", "message"),
    [
        ("the dog sees a zebra", "unknown source word 'zebra' at position 4"),
        ("the dog a cat", "a verb must follow the subject"),
        ("big sees the cat", r"the subject must be '\[det\] \[adj\]\* noun', but found 'sees' \(verb\)"),
        ("the dog sees", "the object must be .* the end of the sentence"),
        ("the dog sees a cat the", "only a preposition may follow the object"),
        ("the dog sees a cat near the king cat", "should end after the prepositional phrase"),
    ],
)
def test_translate_rejects_bad_sentences_with_a_clear_message(sentence, message):
    with pytest.raises(ValueError, match=message):
        translate(sentence)


# --- the data set ------------------------------------------------------------------------


def test_same_seed_gives_the_same_data_and_another_seed_other_data(data):
    again = make_toy_translation(seed=0, num_train=2000, num_test=300)
    assert again.train == data.train and again.test == data.test
    other = make_toy_translation(seed=1, num_train=2000, num_test=300)
    assert other.test != data.test


def test_train_and_test_share_no_sentence(data):
    train = {p.source for p in data.train}
    assert len(train) == len(data.train)
    assert not train & {p.source for p in data.test}


def test_every_length_bucket_appears_in_the_held_out_set(data):
    assert {length_bucket(len(p.source)) for p in data.test} == {"short", "medium", "long"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": "0"}, "seed must be a non-negative int, got '0'"),
        ({"seed": 1.5}, "seed must be a non-negative int"),
        ({"seed": True}, "seed must be a non-negative int"),
        ({"seed": -1}, "seed must be a non-negative int"),
        ({"num_train": 0}, "num_train must be a positive int, got 0"),
        ({"num_test": 2.0}, "num_test must be a positive int"),
        ({"num_train": 10**6}, "at most 200000"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_toy_translation(**kwargs)


# --- vocabularies ------------------------------------------------------------------------


def test_vocab_reserves_pad_bos_eos_as_ids_0_1_2(data):
    for vocab in (data.source_vocab, data.target_vocab):
        assert vocab.itos[:3] == ["<pad>", "<bos>", "<eos>"]
        assert (vocab.pad_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2)
    assert len(data.source_vocab) == 3 + sum(len(words) for words in LEXICON.values())


def test_encode_then_decode_gives_the_words_back(data):
    vocab = data.source_vocab
    ids = vocab.encode("the old king helps a fish", add_bos=True, add_eos=True)
    assert ids[0] == vocab.bos_id and ids[-1] == vocab.eos_id
    assert vocab.decode(ids) == ["the", "old", "king", "helps", "a", "fish"]


def test_decode_stops_at_eos_and_skips_padding(data):
    vocab = data.target_vocab
    ids = vocab.encode("hapo weta") + [vocab.eos_id] + vocab.encode("miru") + [vocab.pad_id]
    assert vocab.decode(torch.tensor(ids)) == ["hapo", "weta"]


def test_vocab_errors_name_the_unknown_word_or_id(data):
    with pytest.raises(ValueError, match="unknown word 'hapo' at position 1"):
        data.source_vocab.encode(["the", "hapo"])
    with pytest.raises(ValueError, match="id 99 is not in this vocabulary"):
        data.source_vocab.decode([3, 99])
    with pytest.raises(ValueError, match="special tokens"):
        Vocab(["cat", "<eos>"])
    with pytest.raises(ValueError, match="sequence of strings"):
        data.source_vocab.encode([1, 2])


# --- batches -----------------------------------------------------------------------------


def test_batch_pads_with_pad_id_and_reports_valid_lengths(data):
    pairs = [
        translate("a cat sees the dog"),
        translate("every small old fish likes the red bird near a king"),
    ]
    batch = make_batch(pairs, data.source_vocab, data.target_vocab)
    assert batch.source.shape == (2, 12) and batch.source_lens.tolist() == [6, 12]
    assert batch.source[0, 5] == data.source_vocab.eos_id
    assert (batch.source[0, 6:] == data.source_vocab.pad_id).all()
    assert batch.target_in.shape == batch.target_out.shape == (2, 12)
    assert batch.target_lens.tolist() == [6, 12]


def test_decoder_input_is_the_target_shifted_right_behind_bos(data):
    batch = make_batch([translate("a cat sees the dog")], data.source_vocab, data.target_vocab)
    vocab = data.target_vocab
    assert batch.target_in[0, 0] == vocab.bos_id
    assert batch.target_out[0, -1] == vocab.eos_id
    assert torch.equal(batch.target_in[0, 1:], batch.target_out[0, :-1])
    assert vocab.decode(batch.target_out[0]) == ["miru", "na", "hapo", "ta", "weta"]


def test_iterate_batches_visits_every_pair_once_and_shuffles_by_generator(data):
    pairs = data.train[:50]

    def order(generator):
        batches = iterate_batches(pairs, data.source_vocab, data.target_vocab, 16, generator)
        return [tuple(data.source_vocab.decode(row)) for b in batches for row in b.source]

    in_order = order(None)
    assert in_order == [p.source for p in pairs]
    shuffled = order(torch.Generator().manual_seed(0))
    assert sorted(shuffled) == sorted(in_order) and shuffled != in_order
    assert shuffled == order(torch.Generator().manual_seed(0))


def _vocabs(data):
    return data.source_vocab, data.target_vocab


def test_batch_errors_on_empty_input_and_bad_batch_size(data):
    with pytest.raises(ValueError, match="no pairs"):
        make_batch([], *_vocabs(data))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        next(iterate_batches(data.train, *_vocabs(data), batch_size=0))


def test_pairs_are_hashable_values():
    assert Pair(("a",), ("b",), (0,)) == Pair(("a",), ("b",), (0,))
    assert len({translate("a cat sees the dog"), translate("a cat sees the dog")}) == 1
