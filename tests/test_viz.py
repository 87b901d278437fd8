"""bert_tutor.viz: the plots are pure functions returning labelled Figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bert_tutor.viz import plot_attention, plot_attention_grid, plot_curves  # noqa: E402


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
