"""bert_tutor.seq2seq: the GRU encoder-decoder with and without attention."""

import pytest
import torch

from bert_tutor import seq2seq
from bert_tutor.seq2seq import (
    Decoder,
    Seq2Seq,
    Seq2SeqConfig,
    evaluate,
    greedy_decode,
    predict,
    train_seq2seq,
    translate,
)
from bert_tutor.toy_translation import make_batch, make_toy_translation
from bert_tutor.toy_translation import translate as reference_translation


@pytest.fixture(scope="module")
def data():
    return make_toy_translation(seed=0, num_train=400, num_test=100)


def make_model(data, attention=True, seed=0, **sizes):
    torch.manual_seed(seed)
    config = Seq2SeqConfig(len(data.source_vocab), len(data.target_vocab), attention=attention, **sizes)
    return Seq2Seq(config).eval()


def sentences(data, *texts):
    return make_batch([reference_translation(t) for t in texts], data.source_vocab, data.target_vocab)


SHORT, LONG = "a cat sees the dog", "every small old fish likes the red bird near a big quiet king"


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_size": 63}, "hidden_size must be even"),
        ({"embed_size": 0}, "embed_size must be a positive int, got 0"),
        ({"source_vocab_size": 10.0}, "source_vocab_size must be a positive int"),
        ({"pad_id": 40}, "pad_id must be a valid id"),
    ],
)
def test_bad_config_raises_value_error_naming_the_field(kwargs, message):
    sizes = {"source_vocab_size": 30, "target_vocab_size": 30} | kwargs
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig(**sizes)


# --- encoder -----------------------------------------------------------------------------


def test_encoder_gives_one_annotation_per_source_position_and_zero_in_padding(data):
    model = make_model(data)
    batch = sentences(data, SHORT, LONG)
    annotations, summary = model.encoder(batch.source, batch.source_lens)
    assert annotations.shape == (2, batch.source.shape[1], 64) and summary.shape == (2, 64)
    assert (annotations[0, batch.source_lens[0] :] == 0).all()


def test_padding_does_not_change_a_sentences_annotations_or_summary(data):
    model = make_model(data)
    alone = sentences(data, SHORT)
    padded = sentences(data, SHORT, LONG)
    with torch.no_grad():
        a1, s1 = model.encoder(alone.source, alone.source_lens)
        a2, s2 = model.encoder(padded.source, padded.source_lens)
    n = int(alone.source_lens[0])
    torch.testing.assert_close(a2[0, :n], a1[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(s2[0], s1[0], atol=1e-6, rtol=1e-5)


def test_encoder_rejects_lengths_that_do_not_fit_the_source(data):
    model = make_model(data)
    batch = sentences(data, SHORT)
    with pytest.raises(ValueError, match=r"source_lens must hold one length in \[1, 6\]"):
        model.encoder(batch.source, torch.tensor([7]))
    with pytest.raises(ValueError, match="source_lens"):
        model.encoder(batch.source, torch.tensor([0]))


# --- teacher-forced forward --------------------------------------------------------------


def test_forward_shapes_with_and_without_attention(data):
    batch = sentences(data, SHORT, LONG)
    B, S, T, V = 2, batch.source.shape[1], batch.target_in.shape[1], len(data.target_vocab)
    logits, weights = make_model(data, attention=True)(batch.source, batch.source_lens, batch.target_in)
    assert logits.shape == (B, T, V) and weights.shape == (B, T, S)
    logits, weights = make_model(data, attention=False)(batch.source, batch.source_lens, batch.target_in)
    assert logits.shape == (B, T, V) and weights is None


def test_padded_source_positions_get_exactly_zero_attention(data):
    batch = sentences(data, SHORT, LONG)
    with torch.no_grad():
        _, weights = make_model(data)(batch.source, batch.source_lens, batch.target_in)
    n = int(batch.source_lens[0])
    assert (weights[0, :, n:] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, batch.target_in.shape[1]))


def test_a_sentence_gets_the_same_logits_alone_and_in_a_padded_batch(data):
    model = make_model(data)
    alone, padded = sentences(data, SHORT), sentences(data, SHORT, LONG)
    with torch.no_grad():
        logits1, _ = model(alone.source, alone.source_lens, alone.target_in)
        logits2, _ = model(padded.source, padded.source_lens, padded.target_in)
    T = alone.target_in.shape[1]
    torch.testing.assert_close(logits2[0, :T], logits1[0], atol=1e-5, rtol=1e-4)


def test_forward_rejects_mismatched_batches(data):
    batch = sentences(data, SHORT, LONG)
    with pytest.raises(ValueError, match="same B"):
        make_model(data)(batch.source, batch.source_lens, batch.target_in[:1])


# --- greedy decoding ---------------------------------------------------------------------


class ScriptedDecoder(Decoder):
    """A decoder that writes a fixed script of ids per sentence (then keeps repeating <eos>)."""

    def __init__(self, config, scripts):
        super().__init__(config)
        self.scripts, self.t = scripts, 0

    def step(self, previous, state, annotations, source_lens, summary):
        logits, state, weights = super().step(previous, state, annotations, source_lens, summary)
        chosen = torch.tensor([s[self.t] if self.t < len(s) else 2 for s in self.scripts])
        self.t += 1
        return torch.nn.functional.one_hot(chosen, logits.shape[-1]).float(), state, weights


def test_greedy_decoding_stops_each_sentence_at_its_eos_and_pads_after_it(data):
    model = make_model(data)
    model.decoder = ScriptedDecoder(model.config, [[5, 2], [5, 6, 7, 2]])
    batch = sentences(data, SHORT, LONG)
    tokens, lengths, weights = greedy_decode(model, batch.source, batch.source_lens, max_len=20)
    assert tokens.tolist() == [[5, 2, 0, 0], [5, 6, 7, 2]]  # stopped after 4 steps, not 20
    assert lengths.tolist() == [1, 3]
    assert weights.shape == (2, 4, batch.source.shape[1])
    assert (weights[0, 2:] == 0).all() and (weights[1].sum(-1) > 0.99).all()


def test_greedy_decoding_without_eos_stops_at_max_len(data):
    model = make_model(data, attention=False)
    model.decoder = ScriptedDecoder(model.config, [[5] * 50])
    batch = sentences(data, SHORT)
    tokens, lengths, weights = greedy_decode(model, batch.source, batch.source_lens, max_len=7)
    assert tokens.tolist() == [[5] * 7] and lengths.tolist() == [7] and weights is None


def test_translate_returns_words_and_one_weight_row_per_word_plus_eos(data):
    model = make_model(data)
    model.decoder = ScriptedDecoder(model.config, [[5, 6, 2]])
    words, weights = translate(model, SHORT, data.source_vocab, data.target_vocab)
    assert words == [data.target_vocab.itos[5], data.target_vocab.itos[6]]
    assert weights.shape == (3, len(SHORT.split()) + 1)
    assert (
        translate(make_model(data, attention=False), SHORT, data.source_vocab, data.target_vocab)[1] is None
    )


def test_translate_rejects_unknown_words(data):
    with pytest.raises(ValueError, match="unknown word 'zebra'"):
        translate(make_model(data), "a zebra sees the dog", data.source_vocab, data.target_vocab)


# --- training and evaluation -------------------------------------------------------------


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "no-attention"])
def test_short_training_lowers_the_loss_and_is_deterministic(data, attention):
    def run():
        model = make_model(data, attention=attention, hidden_size=32, embed_size=16)
        return train_seq2seq(model, data.train, data.source_vocab, data.target_vocab, num_steps=25, lr=1e-2)

    losses = run()
    assert len(losses) == 25
    assert sum(losses[-5:]) / 5 < 0.75 * sum(losses[:5]) / 5
    assert losses == run()


def test_training_passes_over_the_data_more_than_once_when_needed(data):
    model = make_model(data, hidden_size=16, embed_size=8)
    pairs = data.train[:20]  # 3 batches of 8 per pass, so 7 steps need 3 passes
    losses = train_seq2seq(model, pairs, data.source_vocab, data.target_vocab, num_steps=7, batch_size=8)
    assert len(losses) == 7 and not model.training


def test_training_rejects_bad_budgets_and_empty_data(data):
    model = make_model(data)
    with pytest.raises(ValueError, match="num_steps must be a positive int"):
        train_seq2seq(model, data.train, data.source_vocab, data.target_vocab, num_steps=0)
    with pytest.raises(ValueError, match="no pairs"):
        train_seq2seq(model, [], data.source_vocab, data.target_vocab, num_steps=1)


def test_predict_returns_one_word_tuple_per_pair_in_order(data):
    predictions = predict(
        make_model(data), data.test[:10], data.source_vocab, data.target_vocab, batch_size=4
    )
    assert len(predictions) == 10 and all(isinstance(p, tuple) for p in predictions)


def test_a_special_token_written_mid_sentence_stays_in_the_prediction_and_counts_as_wrong(data):
    model = make_model(data)
    model.decoder = ScriptedDecoder(model.config, [[5, 0, 6, 2]])
    pairs = [reference_translation(SHORT)]
    words = data.target_vocab.itos
    assert predict(model, pairs, data.source_vocab, data.target_vocab) == [(words[5], "<pad>", words[6])]
    model.decoder.t = 0
    assert translate(model, SHORT, data.source_vocab, data.target_vocab)[1].shape == (4, 6)


def test_evaluate_counts_exact_sentences_overall_and_by_length(data, monkeypatch):
    pairs = [reference_translation(t) for t in (SHORT, "a cat sees the dog with a bird", LONG, LONG + " ")]
    pairs[3] = reference_translation("the big dog sees a cat near the old king")  # medium
    right = [p.target for p in pairs]
    right[1] = right[1][:-1]  # one word missing: the whole sentence is wrong
    monkeypatch.setattr(seq2seq, "predict", lambda *args, **kwargs: right)
    accuracy = evaluate(make_model(data), pairs, data.source_vocab, data.target_vocab)
    assert accuracy == {"all": 0.75, "short": 1.0, "medium": 0.5, "long": 1.0}


def test_evaluate_rejects_no_pairs(data):
    with pytest.raises(ValueError, match="no pairs"):
        evaluate(make_model(data), [], data.source_vocab, data.target_vocab)
