"""Plots of attention and training, as pure functions that return matplotlib Figures.

Nothing here calls ``plt.show()``: a notebook displays the returned Figure, a test inspects
it, and later chapters redraw them from widgets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

__all__ = ["plot_attention", "plot_attention_grid", "plot_curves"]


def _as_matrix(weights, name: str = "weights") -> torch.Tensor:
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 2:
        raise ValueError(f"{name} must be a (queries, keys) matrix, got shape {tuple(w.shape)}")
    return w


def _check_labels(labels: Sequence[str] | None, size: int, axis: str) -> None:
    if labels is not None and len(labels) != size:
        raise ValueError(f"{axis} has {size} positions but {len(labels)} labels were given")


def _draw(ax, w: torch.Tensor, query_labels, key_labels, title, vmax):
    image = ax.imshow(w.numpy(), cmap="Reds", vmin=0.0, vmax=vmax, aspect="auto")
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), key_labels, rotation=90)
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), query_labels)
    ax.set_xlabel("keys (attended to)")
    ax.set_ylabel("queries (attending)")
    if title:
        ax.set_title(title)
    return image


def plot_attention(
    weights,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    ax=None,
    title: str | None = None,
) -> Figure:
    """Heatmap of one attention matrix: row i shows where query i looks.

    weights: (Q, K), each row a distribution over the keys. Labels: Q and K strings.
    Draws on ``ax`` when given (and returns its Figure), else on a new Figure.
    """
    w = _as_matrix(weights)
    _check_labels(query_labels, w.shape[0], "the query axis")
    _check_labels(key_labels, w.shape[1], "the key axis")
    if ax is None:
        fig, ax = plt.subplots(
            figsize=(1.2 + 0.45 * w.shape[1], 1.0 + 0.4 * w.shape[0]), layout="constrained"
        )
        plt.close(fig)  # the caller displays it; keep pyplot's list of figures empty
    image = _draw(ax, w, query_labels, key_labels, title, vmax=max(float(w.max()), 1e-9))
    ax.figure.colorbar(image, ax=ax, label="attention weight")
    return ax.figure


def plot_attention_grid(
    weights,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    suptitle: str | None = None,
) -> Figure:
    """A grid of heatmaps on one colour scale, e.g. every head of a layer.

    weights: (N, Q, K), N matrices drawn left to right, ``columns`` per row.
    titles: N strings (default "head 0", "head 1", ...).
    """
    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 3:
        raise ValueError(f"weights must have shape (N, queries, keys), got {tuple(w.shape)}")
    n = w.shape[0]
    titles = [f"head {i}" for i in range(n)] if titles is None else list(titles)
    if len(titles) != n:
        raise ValueError(f"{n} matrices but {len(titles)} titles")
    _check_labels(query_labels, w.shape[1], "the query axis")
    _check_labels(key_labels, w.shape[2], "the key axis")
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.0 * columns, 2.8 * rows), squeeze=False, layout="constrained"
    )
    plt.close(fig)
    vmax = max(float(w.max()), 1e-9)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        image = _draw(ax, w[i], query_labels, key_labels, titles[i], vmax)
        if i % columns:
            ax.set_ylabel("")
            ax.set_yticks([])
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_curves(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str,
    logx: bool = False,
    logy: bool = False,
    ax=None,
) -> Figure:
    """Line plot of several named series over the same x (curves, timings, accuracies)."""
    for label, ys in series.items():
        if len(ys) != len(x):
            raise ValueError(f"series {label!r} has {len(ys)} values but x has {len(x)}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        plt.close(fig)
    for label, ys in series.items():
        ax.plot(x, ys, marker="o", markersize=3, label=label)
    ax.set_xscale("log" if logx else "linear")
    ax.set_yscale("log" if logy else "linear")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax.figure
