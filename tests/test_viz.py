"""bert_tutor.viz: the plots are pure functions returning labelled Figures; the head statistics
equal hand-computed values; the explorer redraws through a pure function when its widgets change."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bert_tutor.bert import BertConfig, BertForPreTraining  # noqa: E402
from bert_tutor.corpus import world_documents  # noqa: E402
from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab  # noqa: E402
from bert_tutor.viz import (  # noqa: E402
    HEAD_STATISTICS,
    _png,
    attention_explorer,
    attention_statistics,
    explorer_figure,
    head_statistics,
    plot_all_layers,
    plot_attention,
    plot_attention_grid,
    plot_curves,
    plot_head,
    plot_head_statistics,
    plot_layer,
    sentence_attention,
    stack_attention,
)


def test_plot_attention_puts_words_on_the_axes_and_does_not_leak_figures():
    before = len(plt.get_fignums())
    weights = torch.softmax(torch.randn(2, 3), dim=-1)
    fig = plot_attention(weights, ["a", "b"], ["x", "y", "z"], title="alignment")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert ax.get_title() == "alignment" and ax.get_xlabel() and ax.get_ylabel()
    assert ax.images[0].get_array().shape == (2, 3)
    assert len(plt.get_fignums()) == before


def test_plot_attention_draws_on_a_given_axis():
    fig, ax = plt.subplots()
    assert plot_attention(torch.eye(3), ax=ax) is fig
    plt.close(fig)


@pytest.mark.parametrize(
    ("weights", "queries", "keys", "message"),
    [
        (torch.rand(2, 3), ["a"], None, "2 positions but 1 labels"),
        (torch.rand(2, 3), None, ["x"], "3 positions but 1 labels"),
        (torch.rand(2, 3, 4), None, None, r"\(queries, keys\) matrix"),
    ],
)
def test_plot_attention_refuses_mismatched_labels_and_shapes(weights, queries, keys, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(weights, queries, keys)


def test_grid_draws_one_panel_per_matrix_on_one_scale():
    weights = torch.softmax(torch.randn(5, 3, 3), dim=-1)
    fig = plot_attention_grid(weights, columns=3, suptitle="heads")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 5
    assert {ax.get_title() for ax in panels} == {f"head {i}" for i in range(5)}
    assert len({ax.images[0].get_clim() for ax in panels}) == 1


def test_grid_refuses_wrong_number_of_titles():
    with pytest.raises(ValueError, match="2 matrices but 1 titles"):
        plot_attention_grid(torch.rand(2, 3, 3), titles=["only one"])


def test_plot_curves_draws_each_series_with_its_label():
    fig = plot_curves([1, 2, 3], {"a": [1, 2, 3], "b": [3, 2, 1]}, "x", "y", "t", logy=True)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    assert ax.get_yscale() == "log" and ax.get_title() == "t"


def test_plot_curves_refuses_series_of_the_wrong_length():
    with pytest.raises(ValueError, match="series 'a' has 2 values but x has 3"):
        plot_curves([1, 2, 3], {"a": [1, 2]}, "x", "y", "t")


# --- a small BERT, randomly initialised, and its tokenizer ---------------------------------------


@pytest.fixture(scope="module")
def sentences():
    return [sentence for document in world_documents(60) for sentence in document]


@pytest.fixture(scope="module")
def tokenizer(sentences):
    return BertTokenizer(train_wordpiece_vocab(sentences, 300))


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_heads=4, intermediate_size=64)
    return BertForPreTraining(config)


def test_sentence_attention_gives_rows_that_sum_to_one_and_leaves_the_model_as_it_was(model, tokenizer):
    model.train()
    assert model.bert.fused_attention
    first = sentence_attention(model, tokenizer, "alba has a dog .")
    again = sentence_attention(model.bert, tokenizer, "alba has a dog .")
    assert model.training and model.bert.fused_attention  # both switches put back
    assert first.tokens[0] == "[CLS]" and first.tokens[-1] == "[SEP]" and first.sentence_b_start is None
    n = len(first.tokens)
    assert first.weights.shape == (2, 4, n, n)
    torch.testing.assert_close(first.weights.sum(-1), torch.ones(2, 4, n))
    torch.testing.assert_close(first.weights, again.weights)  # eval mode: no dropout on the weights


def test_sentence_attention_of_a_pair_says_where_the_second_text_starts(model, tokenizer):
    attention = sentence_attention(model, tokenizer, "alba has a dog .", "it barks .")
    b = attention.sentence_b_start
    assert attention.tokens[b - 1] == "[SEP]" and attention.tokens[b:] == [
        *tokenizer.tokenize("it barks ."),
        "[SEP]",
    ]


def test_sentence_attention_refuses_a_text_longer_than_the_positions_and_other_models(model, tokenizer):
    with pytest.raises(ValueError, match=r"the text has 131 tokens .* max_position_embeddings \(128\)"):
        sentence_attention(model, tokenizer, " ".join(["dog"] * 129))
    with pytest.raises(TypeError, match="bert_tutor BertModel"):
        sentence_attention(torch.nn.Linear(2, 2), tokenizer, "a dog")


def test_stack_attention_takes_the_models_per_layer_tuple_or_a_tensor():
    layers = tuple(torch.rand(1, 3, 5, 5) for _ in range(2))
    torch.testing.assert_close(stack_attention(layers), torch.cat(layers))
    assert stack_attention(torch.rand(2, 3, 5, 5)).shape == (2, 3, 5, 5)
    with pytest.raises(ValueError, match=r"\(layers, heads, n, n\).*got \(2, 3, 5, 4\)"):
        stack_attention(torch.rand(2, 3, 5, 4))
    with pytest.raises(ValueError, match="differ in shape"):
        stack_attention([torch.rand(1, 3, 5, 5), torch.rand(1, 3, 4, 4)])


# --- heatmaps of a BERT's heads ------------------------------------------------------------------

TOKENS = ["[CLS]", "alba", "barks", "[SEP]"]


def test_plot_head_shows_that_heads_weights_with_the_tokens_on_both_axes():
    weights = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    ax = plot_head(weights, TOKENS, layer=1, head=2).axes[0]
    assert ax.get_title() == "layer 1, head 2"
    assert [t.get_text() for t in ax.get_xticklabels()] == TOKENS
    assert [t.get_text() for t in ax.get_yticklabels()] == TOKENS
    torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array()), weights[1, 2])


@pytest.mark.parametrize(
    ("layer", "head", "tokens", "message"),
    [
        (2, 0, TOKENS, r"layer must be an int in \[0, 2\) \(2 layers\), got 2"),
        (0, -1, TOKENS, r"head must be an int in \[0, 3\)"),
        (0, 0, TOKENS[:3], "4 positions but 3 tokens"),
    ],
)
def test_plot_head_names_what_is_wrong(layer, head, tokens, message):
    with pytest.raises(ValueError, match=message):
        plot_head(torch.rand(2, 3, 4, 4), tokens, layer, head)


def test_plot_layer_draws_every_head_of_that_layer():
    weights = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    fig = plot_layer(weights, TOKENS, layer=1, columns=2)
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["head 0", "head 1", "head 2"]
    torch.testing.assert_close(torch.as_tensor(panels[2].images[0].get_array()), weights[1, 2])
    assert fig.get_suptitle() == "layer 1: every head"


def test_plot_all_layers_draws_a_row_per_layer_and_a_column_per_head():
    weights = torch.softmax(torch.randn(2, 3, 4, 4), dim=-1)
    fig = plot_all_layers(weights, TOKENS)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 6 and len({ax.images[0].get_clim() for ax in panels}) == 1
    torch.testing.assert_close(torch.as_tensor(panels[4].images[0].get_array()), weights[1, 1])
    assert [ax.get_title() for ax in panels[:3]] == ["head 0", "head 1", "head 2"]
    assert [panels[0].get_ylabel(), panels[3].get_ylabel()] == ["layer 0", "layer 1"]
    assert [t.get_text() for t in panels[3].get_yticklabels()] == TOKENS
    assert [t.get_text() for t in panels[5].get_xticklabels()] == TOKENS  # bottom row: keys
    assert not panels[0].get_xticklabels() and not panels[4].get_yticklabels()  # inner panels: none


# --- head statistics on hand-made heads ---------------------------------------------------------

CLS_ID, SEP_ID = 2, 3
IDS = torch.tensor([[CLS_ID, 7, 8, SEP_ID]])  # [CLS] a b [SEP]


def _hand_made_heads() -> torch.Tensor:
    """One layer, one sentence of 4 tokens, 4 heads: (1, 1, 4, 4, 4) = (L, B, H, n, n)."""
    previous = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])  # row 0: itself
    uniform = torch.full((4, 4), 0.25)
    following = torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1]])  # last: itself
    to_sep = torch.zeros(4, 4)
    to_sep[:, 3] = 1.0
    return torch.stack([previous, uniform, following, to_sep])[None, None]


def test_statistics_of_hand_made_heads_equal_the_values_worked_out_by_hand():
    stats = attention_statistics(_hand_made_heads(), IDS, cls_token_id=CLS_ID, sep_token_id=SEP_ID)
    assert set(stats) == set(HEAD_STATISTICS)
    expected = {  # heads: previous token, uniform, next token, all on [SEP]
        "entropy": [0.0, math.log(4), 0.0, 0.0],
        "cls": [2 / 4, 1 / 4, 0.0, 0.0],  # rows 0 and 1 of the first head look at [CLS]
        "sep": [0.0, 1 / 4, 2 / 4, 1.0],
        "previous": [1.0, 1 / 4, 0.0, 0.0],  # over queries 1..3, which have a token before them
        "next": [0.0, 1 / 4, 1.0, 1 / 3],  # over queries 0..2; the [SEP] head: only query 2 -> 3
        "self": [1 / 4, 1 / 4, 1 / 4, 1 / 4],
    }
    for name, values in expected.items():
        torch.testing.assert_close(stats[name], torch.tensor([values]), msg=name)


def test_statistics_average_over_real_tokens_and_skip_padding():
    uniform4 = torch.full((1, 4, 4), 0.25)
    uniform3 = torch.zeros(1, 4, 4)
    uniform3[:, :, :3] = 1 / 3  # the padded key gets nothing; the padded query's row is ignored
    uniform3[:, 3] = torch.tensor([0.0, 0.0, 0.0, 0.0])
    attentions = (torch.stack([uniform4, uniform3]),)  # L = 1 tensor (B=2, H=1, 4, 4)
    ids = torch.tensor([[CLS_ID, 7, 8, SEP_ID], [CLS_ID, 7, SEP_ID, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    stats = attention_statistics(attentions, ids, mask, cls_token_id=CLS_ID, sep_token_id=SEP_ID)
    # 7 real queries: 4 with entropy log 4, 3 with log 3
    torch.testing.assert_close(stats["entropy"], torch.tensor([[(4 * math.log(4) + 3 * math.log(3)) / 7]]))
    torch.testing.assert_close(stats["cls"], torch.tensor([[(4 / 4 + 3 / 3) / 7]]))
    # previous: 3 pairs of real neighbours in the first, 2 in the second
    torch.testing.assert_close(stats["previous"], torch.tensor([[(3 / 4 + 2 / 3) / 5]]))


@pytest.mark.parametrize(
    ("attentions", "ids", "message"),
    [
        (torch.rand(1, 1, 4, 4), IDS, r"\(L, B, H, n, n\); got shape \(1, 1, 4, 4\)"),
        (_hand_made_heads(), IDS[:, :3], r"input_ids must have shape \(B, n\) = \(1, 4\)"),
        (_hand_made_heads() * 2, IDS, "sum to 1 over the keys"),
    ],
)
def test_statistics_name_what_is_wrong_with_their_input(attentions, ids, message):
    with pytest.raises(ValueError, match=message):
        attention_statistics(attentions, ids, cls_token_id=CLS_ID, sep_token_id=SEP_ID)


def test_head_statistics_of_a_model_equal_those_of_its_weights_whatever_the_batch_size(
    model, tokenizer, sentences
):
    texts = sentences[:5]
    stats = head_statistics(model, tokenizer, texts, batch_size=2)
    assert all(value.shape == (2, 4) for value in stats.values())
    whole = head_statistics(model, tokenizer, texts, batch_size=16)
    for name in HEAD_STATISTICS:
        torch.testing.assert_close(stats[name], whole[name], msg=name)
    one = sentence_attention(model, tokenizer, texts[0])
    ids = torch.tensor([tokenizer.convert_tokens_to_ids(one.tokens)])
    by_hand = attention_statistics(
        one.weights[:, None], ids, cls_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id
    )
    for name, value in head_statistics(model, tokenizer, texts[:1]).items():
        torch.testing.assert_close(value, by_hand[name], msg=name)
    # a random model attends almost uniformly: entropy close to log n, below it
    assert float(stats["entropy"].max()) <= math.log(max(len(tokenizer.tokenize(t)) + 2 for t in texts))


def test_head_statistics_of_pairs_see_two_seps(model, tokenizer, sentences):
    stats = head_statistics(model, tokenizer, sentences[:3], sentences[3:6])
    single = head_statistics(model, tokenizer, sentences[:3])
    assert float(stats["sep"].mean()) > float(single["sep"].mean())  # near-uniform heads, twice the [SEP]s


def test_head_statistics_refuse_bad_sentences(model, tokenizer):
    with pytest.raises(ValueError, match="non-empty list of str"):
        head_statistics(model, tokenizer, "one string")
    with pytest.raises(ValueError, match=r"as long as texts \(2\)"):
        head_statistics(model, tokenizer, ["a", "b"], ["c"])


def test_plot_head_statistics_sorts_the_heads_by_each_statistic():
    stats = {
        "cls": torch.tensor([[0.1, 0.9], [0.5, 0.3]]),
        "entropy": torch.tensor([[2.0, 0.5], [1.0, 1.5]]),
    }
    fig = plot_head_statistics(stats)
    entropy_ax, cls_ax = (ax for ax in fig.axes if ax.patches)  # in the order of HEAD_STATISTICS
    assert cls_ax.get_title() == "share of attention to [CLS]"
    assert [t.get_text() for t in cls_ax.get_yticklabels()] == ["L0 H1", "L1 H0", "L1 H1", "L0 H0"]
    assert [round(bar.get_width(), 3) for bar in cls_ax.patches] == [0.9, 0.5, 0.3, 0.1]
    assert [t.get_text() for t in entropy_ax.get_yticklabels()] == ["L0 H0", "L1 H1", "L1 H0", "L0 H1"]
    assert cls_ax.get_xlim() == (0.0, 1.0) and entropy_ax.get_xlabel() == "nats"
    top = plot_head_statistics(stats, names=["entropy"], top=2)
    assert [t.get_text() for t in top.axes[0].get_yticklabels()] == ["L0 H0", "L1 H1"]


def test_plot_head_statistics_names_what_is_wrong():
    with pytest.raises(ValueError, match="no statistic 'next'; the statistics given are cls"):
        plot_head_statistics({"cls": torch.rand(2, 2)}, names=["next"])
    with pytest.raises(ValueError, match="same shape"):
        plot_head_statistics({"cls": torch.rand(2, 2), "sep": torch.rand(2, 3)})
    with pytest.raises(ValueError, match=r"top must be an int from 1 to the number of heads \(4\)"):
        plot_head_statistics({"cls": torch.rand(2, 2)}, top=5)


# --- the explorer: set the widgets as a learner would, check what it draws ------------------------


def _ticks(fig):
    return [t.get_text() for t in fig.axes[0].get_xticklabels()]


def test_explorer_starts_on_the_first_sentence_at_the_given_layer_and_head(model, tokenizer, sentences):
    explorer = attention_explorer(model, tokenizer, sentences[:3], layer=1, head=2)
    assert explorer.sentence.value == sentences[0] and list(explorer.sentence.options) == sentences[:3]
    assert (explorer.layer.max, explorer.head.max) == (1, 3)  # 2 layers, 4 heads
    assert explorer.figure.axes[0].get_title() == "layer 1, head 2"
    assert _ticks(explorer.figure) == ["[CLS]", *tokenizer.tokenize(sentences[0]), "[SEP]"]
    assert explorer.image.value == _png(explorer_figure(model, tokenizer, sentences[0], 1, 2), explorer.dpi)
    assert "bert-tutor-explorer" in explorer.widget._dom_classes
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()


def test_moving_a_slider_redraws_that_head(model, tokenizer, sentences):
    explorer = attention_explorer(model, tokenizer, sentences[:3])
    before = explorer.image.value
    explorer.layer.value = 1
    assert explorer.figure.axes[0].get_title() == "layer 1, head 0"
    assert explorer.image.value != before
    explorer.head.value = 3
    assert explorer.image.value == _png(explorer_figure(model, tokenizer, sentences[0], 1, 3), explorer.dpi)
    assert explorer.message.value.startswith("layer 1, head 3")


def test_choosing_or_typing_a_sentence_redraws_it(model, tokenizer, sentences):
    explorer = attention_explorer(model, tokenizer, sentences[:3])
    explorer.sentence.value = sentences[2]
    assert _ticks(explorer.figure) == ["[CLS]", *tokenizer.tokenize(sentences[2]), "[SEP]"]
    explorer.sentence.value = "the dog barks ."
    assert _ticks(explorer.figure) == ["[CLS]", *tokenizer.tokenize("the dog barks ."), "[SEP]"]


def test_a_typed_sentence_too_long_for_the_model_says_so_and_keeps_the_picture(model, tokenizer, sentences):
    explorer = attention_explorer(model, tokenizer, sentences[:3])
    before = explorer.image.value
    explorer.sentence.value = " ".join(["dog"] * 200)
    assert "max_position_embeddings (128)" in explorer.message.value
    assert explorer.image.value == before


def test_explorer_refuses_bad_arguments(model, tokenizer):
    with pytest.raises(ValueError, match="non-empty list of str"):
        attention_explorer(model, tokenizer, "one string")
    with pytest.raises(ValueError, match=r"head must be an int in \[0, 4\)"):
        attention_explorer(model, tokenizer, ["a dog ."], head=4)
