"""Pictures of attention and training, as pure functions that return matplotlib Figures.

Nothing here calls ``plt.show()``: a notebook displays the returned Figure, a test inspects
it, and the explorer redraws them from widgets.

- Heatmaps: one attention matrix (``plot_attention``), a grid of them (``plot_attention_grid``);
  for a BERT, one head (``plot_head``), every head of a layer (``plot_layer``), every layer
  (``plot_all_layers``), with the tokens on the axes. Curves: ``plot_curves``.
- What the heads do (chapter 10, after Clark et al. 2019, "What Does BERT Look At?"):
  ``attention_statistics`` (from weights) and ``head_statistics`` (from a model and sentences)
  give each head's entropy and its share of attention to [CLS], to [SEP], to the previous and
  the next token and to itself; ``plot_head_statistics`` sorts the heads by each of them.
- ``attention_explorer``: ipywidgets to choose a sentence (or type one), a layer and a head; it
  redraws through ``explorer_figure``, a pure function.
- bertviz's head and model views, offline: ``bert_tutor.bertviz_offline``.

Shapes use these letters: L layers, H heads, B sentences, n tokens (queries and keys).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from bert_tutor.checks import check_positive_int

__all__ = [
    "HEAD_STATISTICS",
    "AttentionExplorer",
    "SentenceAttention",
    "attention_explorer",
    "attention_statistics",
    "explorer_figure",
    "head_statistics",
    "plot_all_layers",
    "plot_attention",
    "plot_attention_grid",
    "plot_curves",
    "plot_head",
    "plot_head_statistics",
    "plot_layer",
    "sentence_attention",
    "stack_attention",
]


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


# --- a BERT's attention for one sentence (or pair) ----------------------------------------------


class SentenceAttention(NamedTuple):
    """One sentence (or pair) through a BERT: weights (L, H, n, n), row i = where token i looks;
    tokens: the n tokens, ``[CLS]`` and ``[SEP]`` included; sentence_b_start: the position of the
    second text's first token for a pair, else None."""

    weights: torch.Tensor
    tokens: list[str]
    sentence_b_start: int | None


def _encoder(model):
    """The ``BertModel`` in ``model``: the model itself, or its ``.bert`` (a model with heads)."""
    bert = getattr(model, "bert", model)
    if not (hasattr(bert, "fused_attention") and hasattr(bert, "config") and hasattr(bert, "encoder")):
        raise TypeError(
            "model must be a bert_tutor BertModel or a model holding one in .bert, "
            f"got {type(model).__name__}"
        )
    return bert


def _model_attention(model, encoding: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Every layer's attention weights for a batch: encoding as ``tokenizer.encode_batch`` gives it,
    input_ids, token_type_ids, attention_mask each (B, n) -> (L, B, H, n, n), on the CPU.

    Runs in eval mode (no dropout on the weights) on the naive attention path, which forms the
    weights, and puts both switches back as they were.
    """
    bert = _encoder(model)
    lengths = encoding["attention_mask"].sum(dim=1).tolist()  # (B,) tokens of each sequence
    limit = bert.config.max_position_embeddings
    for index, length in enumerate(lengths):
        if length > limit:
            which = "the text" if len(lengths) == 1 else f"text {index}"
            raise ValueError(
                f"{which} has {length} tokens ([CLS] and [SEP] included), more than the model's "
                f"max_position_embeddings ({limit}); shorten it"
            )
    device = next(bert.parameters()).device
    was_training, was_fused = bert.training, bert.fused_attention
    try:
        bert.eval()
        bert.fused_attention = False
        with torch.no_grad():
            out = bert(
                encoding["input_ids"].to(device),
                token_type_ids=encoding["token_type_ids"].to(device),
                attention_mask=encoding["attention_mask"].to(device),
                output_attentions=True,
            )
    finally:
        bert.train(was_training)
        bert.fused_attention = was_fused
    return torch.stack(out.attentions).float().cpu()  # (L, B, H, n, n)


def sentence_attention(model, tokenizer, text: str, pair: str | None = None) -> SentenceAttention:
    """Run one text (or the pair ``text``, ``pair``) through a BERT and keep every head's weights.

    model: a ``BertModel`` or a model with one in ``.bert`` (``BertForPreTraining`` ...); its
    attention switches (training mode, fused path) are left as they were.
    tokenizer: the model's ``BertTokenizer``. Returns :class:`SentenceAttention` (weights (L, H, n, n)).
    """
    encoding = tokenizer.encode_batch([text], None if pair is None else [pair])  # each (1, n)
    weights = _model_attention(model, encoding)[:, 0]  # (L, H, n, n)
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"][0])
    b_start = None if pair is None else int(encoding["token_type_ids"][0].argmax())  # first 1
    return SentenceAttention(weights, tokens, b_start)


def stack_attention(attentions) -> torch.Tensor:
    """One sequence's attention as one tensor (L, H, n, n).

    attentions: a (L, H, n, n) tensor, or the model's ``output_attentions`` for one sequence: L
    tensors (1, H, n, n) (or (H, n, n)), as bertviz takes them.
    """
    if isinstance(attentions, torch.Tensor):
        w = attentions.detach()
    else:
        layers = [torch.as_tensor(layer).detach() for layer in attentions]
        if not layers:
            raise ValueError("attentions holds no layers")
        layers = [layer[0] if layer.dim() == 4 and layer.shape[0] == 1 else layer for layer in layers]
        shapes = {tuple(layer.shape) for layer in layers}
        if len(shapes) != 1:
            raise ValueError(f"the layers' attentions differ in shape: {sorted(shapes)}")
        w = torch.stack(layers)
    if w.dim() != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(
            "attention must have shape (layers, heads, n, n), or be L tensors (1, heads, n, n) for one "
            f"sequence; got {tuple(w.shape)}"
        )
    return w.float().cpu()


def _check_tokens(tokens: Sequence[str], n: int) -> list[str]:
    tokens = list(tokens)
    if len(tokens) != n:
        raise ValueError(f"the attention covers {n} positions but {len(tokens)} tokens were given")
    return tokens


def _check_index(value: int, size: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ValueError(f"{name} must be an int in [0, {size}) ({size} {name}s), got {value!r}")
    return value


# --- heatmaps of a BERT's heads -----------------------------------------------------------------


def plot_head(attentions, tokens: Sequence[str], layer: int, head: int, ax=None) -> Figure:
    """Heatmap of one head: row i shows where token i looks.

    attentions: (L, H, n, n) (see ``stack_attention``); tokens: n strings, on both axes.
    """
    w = stack_attention(attentions)
    tokens = _check_tokens(tokens, w.shape[-1])
    _check_index(layer, w.shape[0], "layer")
    _check_index(head, w.shape[1], "head")
    return plot_attention(w[layer, head], tokens, tokens, ax=ax, title=f"layer {layer}, head {head}")


def plot_layer(attentions, tokens: Sequence[str], layer: int, columns: int = 4) -> Figure:
    """Every head of one layer, side by side on one colour scale. attentions: (L, H, n, n)."""
    w = stack_attention(attentions)
    tokens = _check_tokens(tokens, w.shape[-1])
    _check_index(layer, w.shape[0], "layer")
    return plot_attention_grid(
        w[layer], tokens, tokens, columns=columns, suptitle=f"layer {layer}: every head"
    )


def plot_all_layers(attentions, tokens: Sequence[str]) -> Figure:
    """Every head of every layer: a row per layer, a column per head, on one colour scale.

    attentions: (L, H, n, n). The tokens label the left column (queries) and the bottom row (keys).
    """
    w = stack_attention(attentions)
    tokens = _check_tokens(tokens, w.shape[-1])
    num_layers, num_heads, n = w.shape[:3]
    side = max(1.6, 0.12 * n)
    fig, axes = plt.subplots(
        num_layers,
        num_heads,
        figsize=(1.0 + side * num_heads, 0.8 + side * num_layers),
        squeeze=False,
        layout="constrained",
    )
    plt.close(fig)
    vmax = max(float(w.max()), 1e-9)
    fontsize = 7 if n <= 24 else 5
    for (layer, head), ax in zip(
        ((layer, head) for layer in range(num_layers) for head in range(num_heads)), axes.flat, strict=True
    ):
        image = ax.imshow(w[layer, head].numpy(), cmap="Reds", vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        if layer == 0:
            ax.set_title(f"head {head}", fontsize=9)
        if head == 0:
            ax.set_yticks(range(n), tokens, fontsize=fontsize)
            ax.set_ylabel(f"layer {layer}")
        if layer == num_layers - 1:
            ax.set_xticks(range(n), tokens, rotation=90, fontsize=fontsize)
    fig.colorbar(image, ax=axes, label="attention weight", shrink=0.6)
    fig.suptitle("every head of every layer (rows: queries, columns: keys)")
    return fig


# --- what the heads do --------------------------------------------------------------------------

HEAD_STATISTICS = ("entropy", "cls", "sep", "previous", "next", "self")
_STATISTIC_TITLES = {
    "entropy": "entropy of the weights (nats)",
    "cls": "share of attention to [CLS]",
    "sep": "share of attention to [SEP]",
    "previous": "share to the previous token",
    "next": "share to the next token",
    "self": "share to the token itself",
}


def _statistic_sums(
    attentions, input_ids, attention_mask, cls_token_id: int, sep_token_id: int
) -> dict[str, tuple[torch.Tensor, int]]:
    """Each statistic summed over the query positions it covers: name -> (sum (L, H), count)."""
    if isinstance(attentions, torch.Tensor):
        a = attentions.detach()
    else:
        a = torch.stack([torch.as_tensor(layer).detach() for layer in attentions])
    if a.dim() != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            "attentions must be L tensors (B, H, n, n), as output_attentions gives them, or one tensor "
            f"(L, B, H, n, n); got shape {tuple(a.shape)}"
        )
    a = a.double().cpu()  # (L, B, H, n, n)
    batch, n = a.shape[1], a.shape[-1]
    input_ids = torch.as_tensor(input_ids).cpu()
    if tuple(input_ids.shape) != (batch, n):
        raise ValueError(
            f"input_ids must have shape (B, n) = {(batch, n)} to match the attentions, "
            f"got {tuple(input_ids.shape)}"
        )
    if attention_mask is None:
        real = torch.ones(batch, n, dtype=torch.bool)
    else:
        real = torch.as_tensor(attention_mask).cpu().bool()
        if tuple(real.shape) != (batch, n):
            raise ValueError(f"attention_mask must have shape (B, n) = {(batch, n)}, got {tuple(real.shape)}")
    rows = a.sum(dim=-1).permute(1, 3, 0, 2)[real]  # (real queries, L, H): each row's total weight
    if a.min() < 0 or not torch.allclose(rows, torch.ones_like(rows), atol=1e-3):
        raise ValueError(
            "attention weights must be >= 0 and sum to 1 over the keys (the last axis) for every real "
            f"query; the row sums run from {float(rows.min()):.4f} to {float(rows.max()):.4f}"
        )

    def over(values: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, int]:
        """values (L, B, H, m) summed over the query positions where queries (B, m) is True."""
        weight = queries[None, :, None, :].double()  # (1, B, 1, m)
        return (values * weight).sum(dim=(1, 3)), int(queries.sum())

    plogp = torch.where(a > 0, a * a.clamp_min(1e-300).log(), torch.zeros_like(a))
    is_cls = ((input_ids == cls_token_id) & real)[None, :, None, None, :]  # (1, B, 1, 1, n) keys
    is_sep = ((input_ids == sep_token_id) & real)[None, :, None, None, :]
    neighbours = real[:, 1:] & real[:, :-1]  # (B, n - 1): both tokens of the pair are real
    return {
        "entropy": over(-plogp.sum(dim=-1), real),  # (L, B, H, n)
        "cls": over((a * is_cls).sum(dim=-1), real),
        "sep": over((a * is_sep).sum(dim=-1), real),
        # diagonal(offset=-1)[..., j] = a[..., j + 1, j]: query j + 1 looking at the token before it
        "previous": over(a.diagonal(offset=-1, dim1=-2, dim2=-1), neighbours),
        # diagonal(offset=1)[..., j] = a[..., j, j + 1]: query j looking at the token after it
        "next": over(a.diagonal(offset=1, dim1=-2, dim2=-1), neighbours),
        "self": over(a.diagonal(dim1=-2, dim2=-1), real),
    }


def _means(sums: Mapping[str, tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    return {
        name: (total / count if count else torch.full_like(total, math.nan)).float()
        for name, (total, count) in sums.items()
    }


def attention_statistics(
    attentions, input_ids, attention_mask=None, *, cls_token_id: int, sep_token_id: int
) -> dict[str, torch.Tensor]:
    """What each head does, from its weights: a dict of (L, H) tensors, keys ``HEAD_STATISTICS``.

    attentions: L tensors (B, H, n, n) (``output_attentions``) or one (L, B, H, n, n); every real
    query's row must sum to 1. input_ids: (B, n), to find [CLS] and [SEP]; attention_mask: (B, n),
    1 on real tokens, 0 on padding (None: all real). Each value is a mean over real query positions,
    every token of every sentence counting once:

    - ``entropy``: -sum_k w_k log w_k of the query's weights, in nats (log n for uniform attention
      over n keys, 0 for attention on one key);
    - ``cls``, ``sep``: the weight on [CLS], on the [SEP] tokens;
    - ``previous``, ``next``: the weight on the token just before, just after the query (over the
      queries that have one: a head that always looks one token back scores exactly 1);
    - ``self``: the weight on the query's own token.
    """
    return _means(_statistic_sums(attentions, input_ids, attention_mask, cls_token_id, sep_token_id))


def head_statistics(
    model, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, *, batch_size: int = 16
) -> dict[str, torch.Tensor]:
    """``attention_statistics`` of a BERT over sentences (or pairs ``texts[i], pairs[i]``): dict of (L, H).

    The sentences run in batches of ``batch_size``; every token of every sentence counts once.
    """
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts:
        raise ValueError(f"texts must be a non-empty list of str, got {texts!r:.80}")
    if pairs is not None and (isinstance(pairs, str) or len(pairs) != len(texts)):
        raise ValueError(f"pairs must be a list as long as texts ({len(texts)}), got {pairs!r:.80}")
    check_positive_int("batch_size", batch_size)
    totals: dict[str, tuple[torch.Tensor, int]] = {}
    for start in range(0, len(texts), batch_size):
        chunk = slice(start, start + batch_size)
        encoding = tokenizer.encode_batch(texts[chunk], None if pairs is None else pairs[chunk])  # (b, n)
        sums = _statistic_sums(
            _model_attention(model, encoding),  # (L, b, H, n, n)
            encoding["input_ids"],
            encoding["attention_mask"],
            tokenizer.cls_token_id,
            tokenizer.sep_token_id,
        )
        for name, (total, count) in sums.items():
            previous_total, previous_count = totals.get(name, (0.0, 0))
            totals[name] = (previous_total + total, previous_count + count)
    return _means(totals)


def plot_head_statistics(
    statistics: Mapping[str, torch.Tensor], names: Sequence[str] | None = None, top: int | None = None
) -> Figure:
    """One bar chart per statistic, the heads sorted by it, largest at the top.

    statistics: name -> (L, H), as ``head_statistics`` returns; names: which to draw, in order
    (default: those of ``HEAD_STATISTICS`` present); top: draw only the first ``top`` heads of each
    (default: all, up to 48 heads; else 20). Bars are coloured by layer; labels read "L1 H3".
    """
    names = [name for name in HEAD_STATISTICS if name in statistics] if names is None else list(names)
    if not names:
        raise ValueError(f"no statistic to draw: expected some of {', '.join(HEAD_STATISTICS)}")
    unknown = [name for name in names if name not in statistics]
    if unknown:
        raise ValueError(f"no statistic {unknown[0]!r}; the statistics given are {', '.join(statistics)}")
    values = {name: torch.as_tensor(statistics[name]).detach().float().cpu() for name in names}
    shapes = {tuple(v.shape) for v in values.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ValueError(f"each statistic must be one (layers, heads) tensor of the same shape, got {shapes}")
    num_layers, num_heads = next(iter(shapes))
    count = num_layers * num_heads
    if top is None:
        top = count if count <= 48 else 20
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= count:
        raise ValueError(f"top must be an int from 1 to the number of heads ({count}), got {top!r}")
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(4.2 * columns, 0.8 + rows * (0.6 + 0.2 * top)),
        squeeze=False,
        layout="constrained",
    )
    plt.close(fig)
    colours = plt.get_cmap("tab10")
    for ax, name in zip(axes.flat, names, strict=False):
        flat = values[name].reshape(-1)  # (L * H,), head (l, h) at l * H + h
        order = torch.argsort(flat, descending=True, stable=True)[:top].tolist()
        labels = [f"L{i // num_heads} H{i % num_heads}" for i in order]
        bars = ax.barh(
            range(len(order)), flat[order].tolist(), color=[colours(i // num_heads % 10) for i in order]
        )
        for bar, i in zip(bars, order, strict=True):
            bar.set_label(f"layer {i // num_heads}")
        ax.set_yticks(range(len(order)), labels, fontsize=8)
        ax.invert_yaxis()  # the largest at the top
        ax.set_title(_STATISTIC_TITLES.get(name, name))
        ax.set_xlabel("nats" if name == "entropy" else "share of the attention")
        if name in _STATISTIC_TITLES and name != "entropy":
            ax.set_xlim(0.0, 1.0)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(layer % 10)) for layer in range(num_layers)]
    fig.legend(
        handles, [f"layer {layer}" for layer in range(num_layers)], loc="outside lower center", ncols=8
    )
    fig.suptitle(f"what each head attends to: the heads sorted by each statistic ({count} heads)")
    return fig


# --- the explorer -------------------------------------------------------------------------------


def explorer_figure(model, tokenizer, text: str, layer: int, head: int) -> Figure:
    """What the explorer shows for these choices: the heatmap of one head on one sentence."""
    attention = sentence_attention(model, tokenizer, text)
    return plot_head(attention.weights, attention.tokens, layer, head)


def _png(fig: Figure, dpi: int) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


class AttentionExplorer:
    """Widgets to look at one head of a BERT on one sentence; ``attention_explorer`` builds it.

    ``widget``: the box a notebook displays (the explorer displays as it, too). Its parts, which a
    test sets and reads like a learner would: ``sentence`` (a Combobox: choose one or type one,
    Enter to draw), ``layer`` and ``head`` (IntSliders), ``image`` (the PNG drawn, an Image widget),
    ``message`` (an HTML line: what is shown, or what is wrong with a typed sentence).
    ``figure``: the last Figure drawn, by ``plot_head`` as in ``explorer_figure``.
    """

    def __init__(
        self, model, tokenizer, sentences: Sequence[str], layer: int = 0, head: int = 0, dpi: int = 90
    ):
        import ipywidgets as widgets

        if isinstance(sentences, str) or not isinstance(sentences, Sequence) or not sentences:
            raise ValueError(f"sentences must be a non-empty list of str, got {sentences!r:.80}")
        if not all(isinstance(s, str) for s in sentences):
            raise ValueError("every sentence must be a str")
        config = _encoder(model).config
        _check_index(layer, config.num_layers, "layer")
        _check_index(head, config.num_heads, "head")
        self.model, self.tokenizer, self.dpi = model, tokenizer, dpi
        self.figure: Figure | None = None
        self._attention: dict[str, SentenceAttention] = {}  # text -> its attention, computed once
        self.sentence = widgets.Combobox(
            value=sentences[0],
            options=list(dict.fromkeys(sentences)),
            ensure_option=False,
            continuous_update=False,
            description="sentence",
            placeholder="choose a sentence or type one, then Enter",
            layout=widgets.Layout(width="95%"),
        )
        self.layer = widgets.IntSlider(value=layer, min=0, max=config.num_layers - 1, description="layer")
        self.head = widgets.IntSlider(value=head, min=0, max=config.num_heads - 1, description="head")
        self.image = widgets.Image(
            format="png", layout=widgets.Layout(align_self="flex-start")
        )  # unstretched
        self.message = widgets.HTML()
        for control in (self.sentence, self.layer, self.head):
            control.observe(self._redraw, names="value")
        self.widget = widgets.VBox(
            [self.sentence, widgets.HBox([self.layer, self.head]), self.message, self.image]
        )
        self.widget.add_class("bert-tutor-explorer")
        self._redraw()

    def _redraw(self, change=None) -> None:
        text = self.sentence.value
        try:
            if text not in self._attention:
                self._attention[text] = sentence_attention(self.model, self.tokenizer, text)
            attention = self._attention[text]
            self.figure = plot_head(attention.weights, attention.tokens, self.layer.value, self.head.value)
        except ValueError as error:
            self.message.value = f"<b>Cannot draw this sentence:</b> {_escape(str(error))}"
            return
        self.image.value = _png(self.figure, self.dpi)
        self.message.value = (
            f"layer {self.layer.value}, head {self.head.value}: {len(attention.tokens)} tokens; "
            "row i shows where token i looks"
        )

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def attention_explorer(
    model, tokenizer, sentences: Sequence[str], layer: int = 0, head: int = 0
) -> AttentionExplorer:
    """An :class:`AttentionExplorer` on ``sentences`` (the first is drawn), starting at layer, head."""
    return AttentionExplorer(model, tokenizer, sentences, layer=layer, head=head)
