"""bert_tutor.pretraining: NSP pairs and MLM masking, checked statistically where they are random."""

import pytest
import torch

from bert_tutor.pretraining import IGNORE_INDEX, collate_pairs, make_nsp_pairs, mask_tokens, word_starts

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = (PAD, UNK, CLS, SEP, MASK)
VOCAB = 1000


def _documents(num_documents=40, seed=0):
    """Documents whose token ids say where they come from: document d, sentence s, word w."""
    g = torch.Generator().manual_seed(seed)
    docs = []
    for d in range(num_documents):
        n = int(torch.randint(2, 9, (1,), generator=g))
        docs.append(
            [
                [10 + d, 200 + s, *range(500, 500 + int(torch.randint(2, 12, (1,), generator=g)))]
                for s in range(n)
            ]
        )
    return docs


def test_nsp_pairs_are_half_real_and_half_random():
    pairs = make_nsp_pairs(_documents(2000), max_length=64)
    share = sum(p.is_next for p in pairs) / len(pairs)
    assert len(pairs) > 2000 and 0.45 < share < 0.55  # 0.05 is over 4 standard deviations here


def test_real_next_segments_continue_the_same_document_and_random_ones_do_not():
    documents = _documents(60)
    for pair in make_nsp_pairs(documents, max_length=64, seed=3):
        doc_a = {t for t in pair.tokens_a if 10 <= t < 200}
        doc_b = {t for t in pair.tokens_b if 10 <= t < 200}
        sent_a = [t for t in pair.tokens_a if 200 <= t < 500]
        sent_b = [t for t in pair.tokens_b if 200 <= t < 500]
        if pair.is_next:
            assert doc_a == doc_b or not doc_a or not doc_b
            if sent_a and sent_b:
                assert min(sent_b) == max(sent_a) + 1  # B starts where A stops
        elif doc_a and doc_b:
            assert doc_a.isdisjoint(doc_b)


@pytest.mark.parametrize("max_length", [8, 16, 64])
def test_pairs_fit_max_length_with_their_special_tokens(max_length):
    for pair in make_nsp_pairs(_documents(), max_length=max_length):
        assert len(pair.tokens_a) + len(pair.tokens_b) + 3 <= max_length
        assert pair.tokens_a and pair.tokens_b


def test_nsp_pairs_are_deterministic_per_seed():
    assert make_nsp_pairs(_documents(), 32, seed=1) == make_nsp_pairs(_documents(), 32, seed=1)
    assert make_nsp_pairs(_documents(), 32, seed=1) != make_nsp_pairs(_documents(), 32, seed=2)


def test_nsp_refuses_too_few_documents_and_tiny_lengths():
    with pytest.raises(ValueError, match="at least 2 documents"):
        make_nsp_pairs([[[5, 6], [7]], [[8]]], 32)
    with pytest.raises(ValueError, match="at least 5, got 4"):
        make_nsp_pairs(_documents(), 4)


def test_collate_lays_out_cls_a_sep_b_sep_with_token_types_and_padding():
    pairs = make_nsp_pairs(_documents(), 32)[:2]
    batch = collate_pairs(pairs, CLS, SEP, PAD)
    for i, pair in enumerate(pairs):
        n_a, n_b = len(pair.tokens_a), len(pair.tokens_b)
        row = batch.input_ids[i].tolist()
        assert row[: n_a + n_b + 3] == [CLS, *pair.tokens_a, SEP, *pair.tokens_b, SEP]
        assert set(row[n_a + n_b + 3 :]) <= {PAD}
        assert batch.token_type_ids[i].tolist() == [0] * (n_a + 2) + [1] * (n_b + 1) + [0] * (
            len(row) - n_a - n_b - 3
        )
        assert batch.attention_mask[i].sum() == n_a + n_b + 3
        assert batch.next_sentence_label[i] == (0 if pair.is_next else 1)


def _mlm_batch(rows=400, length=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (rows, length), generator=g)
    ids[:, 0] = CLS
    ids[:, 150] = SEP
    ids[:, -1] = SEP
    ids[::2, 250:] = PAD  # half the rows are padded
    return ids


def test_masking_rates_are_15_then_80_10_10_on_100k_tokens():
    ids = _mlm_batch()
    ordinary = ~torch.isin(ids, torch.tensor(SPECIAL))
    assert ordinary.sum() > 100_000
    corrupted, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(0))
    chosen = labels != IGNORE_INDEX
    assert abs(chosen.sum() / ordinary.sum() - 0.15) < 0.002
    as_mask = (corrupted[chosen] == MASK).float().mean()
    unchanged = (corrupted[chosen] == ids[chosen]).float().mean()
    random = 1 - as_mask - unchanged
    assert abs(as_mask - 0.8) < 0.01 and abs(unchanged - 0.1) < 0.01 and abs(random - 0.1) < 0.01
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(corrupted[~chosen], ids[~chosen])


def test_special_tokens_are_never_chosen_and_random_tokens_are_ordinary():
    ids = _mlm_batch(rows=100)
    corrupted, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(1))
    special = torch.isin(ids, torch.tensor(SPECIAL))
    assert (labels[special] == IGNORE_INDEX).all()
    replaced = (labels != IGNORE_INDEX) & (corrupted != MASK) & (corrupted != ids)
    assert not torch.isin(corrupted[replaced], torch.tensor(SPECIAL)).any()


def test_each_row_gets_its_quota_and_short_rows_at_least_one():
    ids = torch.tensor([[CLS, 7, 8, 9, SEP, PAD]])
    _, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(0))
    assert (labels != IGNORE_INDEX).sum() == 1
    ids = torch.randint(5, VOCAB, (3, 100))
    _, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(0))
    assert (labels != IGNORE_INDEX).sum(1).tolist() == [15, 15, 15]


def test_masking_is_dynamic_and_seeded():
    ids = _mlm_batch(rows=4)
    first = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(0))
    again = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(0))
    other = mask_tokens(ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(1))
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[1], other[1])


def test_whole_word_masking_takes_every_piece_of_a_word_or_none():
    tokens = ["[CLS]"] + ["play", "##ing", "##s", "cat", "un", "##aff", "##able", "dog"] * 10 + ["[SEP]"]
    ids = torch.tensor([[CLS] + [10 + i for i in range(len(tokens) - 2)] + [SEP]])
    starts = word_starts(tokens).unsqueeze(0)
    for seed in range(20):
        _, labels = mask_tokens(
            ids, SPECIAL, MASK, VOCAB, torch.Generator().manual_seed(seed), word_start=starts
        )
        chosen = (labels[0] != IGNORE_INDEX).tolist()
        word = 0
        groups = {}
        for position, (token, c) in enumerate(zip(tokens, chosen, strict=True)):
            if position and not token.startswith("##"):
                word += 1
            groups.setdefault(word, set()).add(c)
        assert all(len(g) == 1 for g in groups.values())
        assert 0 < sum(chosen) <= round(0.15 * 80) + 2


def test_bad_masking_arguments_are_refused():
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        mask_tokens(torch.tensor([5, 6]), SPECIAL, MASK, VOCAB, torch.Generator())
    with pytest.raises(ValueError, match="mlm_probability"):
        mask_tokens(torch.tensor([[5, 6]]), SPECIAL, MASK, VOCAB, torch.Generator(), mlm_probability=1.5)
