"""bert_tutor.probing: fill-mask, the world's probes scored per side, the unigram baseline."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from bert_tutor.bert import BertConfig, BertForPreTraining
from bert_tutor.corpus import Probe, world_documents, world_probes
from bert_tutor.pretraining import NspPair
from bert_tutor.probing import fill_mask, probe_accuracy, probe_texts, unigram_accuracy
from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab


@pytest.fixture(scope="module")
def tokenizer():
    documents = world_documents(100)
    return BertTokenizer(train_wordpiece_vocab((s for d in documents for s in d), 300))


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    return BertForPreTraining(BertConfig(vocab_size=len(tokenizer), max_position_embeddings=64)).eval()


def test_fill_mask_gives_the_softmax_of_each_mask_in_order(model, tokenizer):
    text = "alba has a [MASK] that barks at [MASK] ."
    guesses = fill_mask(model, tokenizer, text, top=3)
    encoding = tokenizer.encode_batch([text])
    with torch.no_grad():
        logits = model(**encoding).mlm_logits[0]  # (L, V)
    where = (encoding["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten()
    assert len(guesses) == 2
    for position, guess in zip(where, guesses, strict=True):
        best = logits[position].softmax(-1).topk(3)
        assert [token for token, _ in guess] == tokenizer.convert_ids_to_tokens(best.indices.tolist())
        assert [p for _, p in guess] == pytest.approx(best.values.tolist(), abs=1e-4)


def test_fill_mask_without_a_mask_says_so(model, tokenizer):
    with pytest.raises(ValueError, match=r"no \[MASK\] token to fill: 'alba has a dog'"):
        fill_mask(model, tokenizer, "alba has a dog")


def test_fill_mask_refuses_a_text_longer_than_the_model(model, tokenizer):
    with pytest.raises(ValueError, match="more than the model's max_position_embeddings 64"):
        fill_mask(model, tokenizer, "alba " * 70 + "[MASK]")


def test_probe_texts_blank_the_answer_and_keep_what_fits(tokenizer):
    probe = Probe(("alba lives in dunmore .", "alba has a dog that barks ."), 1, 3, "dog", "right")
    masks = " ".join(["[MASK]"] * len(tokenizer.tokenize("dog")))
    blank = f"alba has a {masks} that barks ."
    assert probe_texts([probe], tokenizer, 64) == [f"alba lives in dunmore . {blank}"]
    fits = len(tokenizer.tokenize(blank)) + 2  # [CLS] blank [SEP]: the first sentence must go
    assert probe_texts([probe], tokenizer, fits) == [blank]
    with pytest.raises(ValueError, match=f"longer than max_length {fits - 1}"):
        probe_texts([probe], tokenizer, fits - 1)


class _Oracle(nn.Module):
    """Predicts each blank's answer (from a table) or a wrong token; shaped like a pretraining model."""

    def __init__(self, tokenizer, answers: dict[str, str], wrong_sides=()):
        super().__init__()
        self.config = SimpleNamespace(max_position_embeddings=64)
        self.tokenizer, self.answers, self.wrong_sides = tokenizer, answers, wrong_sides
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, token_type_ids, attention_mask, masked_positions):
        rows = []
        for ids, where in zip(input_ids, masked_positions, strict=True):
            text = self.tokenizer.decode(ids[ids != self.tokenizer.pad_token_id].tolist())
            answer, side = self.answers[text]
            pieces = self.tokenizer.convert_tokens_to_ids(self.tokenizer.tokenize(answer))
            if side in self.wrong_sides:
                pieces = [self.tokenizer.convert_tokens_to_ids(".")] * len(pieces)
            assert len(pieces) == int(where.sum())
            rows += [
                torch.nn.functional.one_hot(torch.tensor(p), len(self.tokenizer)).float() for p in pieces
            ]
        return SimpleNamespace(mlm_logits=torch.stack(rows))


def test_probe_accuracy_scores_each_side(tokenizer):
    probes = world_probes(12, seed=5)
    texts = probe_texts(probes, tokenizer, 64)
    answers = {f"[CLS] {t} [SEP]": (p.answer, p.side) for t, p in zip(texts, probes, strict=True)}
    assert probe_accuracy(_Oracle(tokenizer, answers), tokenizer, probes, batch_size=5) == {
        "left": 1.0,
        "right": 1.0,
    }
    assert probe_accuracy(_Oracle(tokenizer, answers, ["right"]), tokenizer, probes) == {
        "left": 1.0,
        "right": 0.0,
    }


def test_an_untrained_model_is_near_chance_on_probes(model, tokenizer):
    accuracy = probe_accuracy(model, tokenizer, world_probes(20))
    assert set(accuracy) == {"left", "right"} and max(accuracy.values()) < 0.2


def test_probe_accuracy_needs_probes(model, tokenizer):
    with pytest.raises(ValueError, match="at least one probe"):
        probe_accuracy(model, tokenizer, [])


def test_unigram_accuracy_is_the_share_of_the_commonest_training_token():
    train = [NspPair((5, 5, 6), (5, 7), True), NspPair((6,), (5,), False)]  # 5 is commonest (4 of 7)
    held_out = [NspPair((5, 8), (9, 5), True), NspPair((6, 6), (5, 1), False)]  # 3 of 8 are 5
    assert unigram_accuracy(train, held_out) == (5, 3 / 8)
    with pytest.raises(ValueError, match="needs training pairs and held-out pairs"):
        unigram_accuracy([], held_out)
