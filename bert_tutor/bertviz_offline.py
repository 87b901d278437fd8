"""bertviz's head view and model view of a BERT, working offline and on the first run (chapter 10).

bertviz (Jesse Vig's) draws attention in the browser with d3. As shipped, each view loads
require.js, d3 and jQuery from a CDN: offline the cell shows nothing, and in JupyterLab 4, which has
no require.js, the first run fails with "require is not defined". Here each view is one
self-contained HTML output:

- the markup bertviz's script draws into (a layer menu, a menu of the sentence pair's parts);
- one ``<script>`` holding d3-selection and d3-color (copied from npm into ``bert_tutor/js`` with
  their licences, see its README), a dozen lines standing in for the few jQuery calls the views
  make (``bert_tutor/js/bertviz_offline.js``), and bertviz's own view script, read from the
  installed bertviz package and run unchanged, its ``PYTHON_PARAMS`` replaced by the tokens and
  weights.

Nothing is fetched when it runs, and nothing waits for a loader. The weights are rounded
(``decimals``) so that the output stays small enough to store in a notebook, and the element id
is a hash of the content (``bertviz-`` and 32 hex digits, like bertviz's random one), so a notebook
run again from the top gives the same output, which nbval compares.

``head_view`` and ``model_view`` take a model, its tokenizer and a sentence (or pair);
``head_view_html`` and ``model_view_html`` take weights and tokens, as bertviz's functions do.
Shapes: L layers, H heads, n tokens.
"""

from __future__ import annotations

import functools
import hashlib
import html
import importlib.util
import json
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch

from bert_tutor.viz import sentence_attention, stack_attention

__all__ = ["head_view", "head_view_html", "model_view", "model_view_html"]

_PAIR_PARTS = (  # bertviz's names for the blocks of a pair's attention: (name, queries, keys)
    ("Sentence A -> Sentence A", "a", "a"),
    ("Sentence B -> Sentence B", "b", "b"),
    ("Sentence A -> Sentence B", "a", "b"),
    ("Sentence B -> Sentence A", "b", "a"),
)
_FONT = "font-family:'Helvetica Neue', Helvetica, Arial, sans-serif;"
_emitted: Counter[str] = Counter()  # content hash -> views made with it so far, in this process


@functools.cache
def _bertviz_script(view: str) -> str:
    """bertviz's ``head_view.js`` or ``model_view.js``, from the installed package (not imported)."""
    spec = importlib.util.find_spec("bertviz")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("bertviz is not installed: pip install 'bertviz>=1.4,<2'")
    source = (Path(spec.origin).parent / f"{view}.js").read_text(encoding="utf-8")
    if "PYTHON_PARAMS" not in source or "requirejs(" not in source:
        raise RuntimeError(
            f"bertviz's {view}.js no longer has the PYTHON_PARAMS marker or the requirejs call that "
            "bert_tutor.bertviz_offline fills in; this bertviz version is not supported"
        )
    return source


@functools.cache
def _template() -> str:
    """bert_tutor/js/bertviz_offline.js with the two d3 modules in place; the view goes in later."""
    js = resources.files("bert_tutor") / "js"
    template = (js / "bertviz_offline.js").read_text(encoding="utf-8")
    for marker, library in (
        ("/*@D3_SELECTION@*/", "d3-selection.min.js"),
        ("/*@D3_COLOR@*/", "d3-color.min.js"),
    ):
        template = template.replace(marker, (js / library).read_text(encoding="utf-8"))
    return template


def _rounded(weights: torch.Tensor, decimals: int) -> list:
    """Nested lists of floats with at most ``decimals`` decimals (0.123, not 0.12300000339746475)."""
    scale = 10.0**decimals
    return (torch.round(weights.double() * scale) / scale).tolist()


def _checked_indices(indices: Sequence[int] | None, size: int, name: str) -> list[int]:
    """``indices`` (default: all of range(size)), each checked to be in range."""
    if indices is None:
        return list(range(size))
    indices = list(indices)
    if not indices:
        raise ValueError(f"{name} must name at least one {name.removeprefix('include_')[:-1]}")
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
            raise ValueError(f"{name} must hold ints in [0, {size}), got {index!r}")
    return indices


def _attention_data(
    weights: torch.Tensor, tokens: list[str], sentence_b_start: int | None, decimals: int
) -> list[dict]:
    """bertviz's list of what its menu can show: the whole sequence, and for a pair its four blocks.

    weights: (L', H', n, n), the layers and heads to show. Each entry: name, attn (L', H', q, k)
    as nested lists, left_text (the q query tokens), right_text (the k key tokens).
    """
    everything = {
        "name": None if sentence_b_start is None else "All",
        "attn": _rounded(weights, decimals),
        "left_text": tokens,
        "right_text": tokens,
    }
    if sentence_b_start is None:
        return [everything]
    parts = {"a": slice(0, sentence_b_start), "b": slice(sentence_b_start, len(tokens))}
    return [everything] + [
        {
            "name": name,
            "attn": _rounded(weights[:, :, parts[queries], parts[keys]], decimals),
            "left_text": tokens[parts[queries]],
            "right_text": tokens[parts[keys]],
        }
        for name, queries, keys in _PAIR_PARTS
    ]


def _checked(attention, tokens, sentence_b_start, decimals) -> tuple[torch.Tensor, list[str]]:
    weights = stack_attention(attention)  # (L, H, n, n)
    tokens = [str(token) for token in tokens]
    n = weights.shape[-1]
    if len(tokens) != n:
        raise ValueError(f"the attention covers {n} positions but {len(tokens)} tokens were given")
    if sentence_b_start is not None and (
        isinstance(sentence_b_start, bool)
        or not isinstance(sentence_b_start, int)
        or not 0 < sentence_b_start < n
    ):
        raise ValueError(f"sentence_b_start must be None or a position in [1, {n}), got {sentence_b_start!r}")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise ValueError(f"decimals must be an int from 0 to 6, got {decimals!r}")
    return weights, tokens


def _html(view: str, params: dict, markup: str, css_class: str) -> str:
    """The output: markup (with ``{id}`` for the element id) and the script, as one HTML string.

    The id hashes the view and its parameters, and how many identical views came before in this
    process, so that two identical views on one page still get different ids.
    """
    content = json.dumps(params, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(f"{view}\n{content}".encode()).hexdigest()
    occurrence = _emitted[digest]
    _emitted[digest] += 1
    element_id = "bertviz-" + hashlib.sha1(f"{digest}:{occurrence}".encode()).hexdigest()[:32]
    params = {**params, "root_div_id": element_id}
    # JSON inside <script>: escape <, > and & so that no token can close the script or open a comment
    data = json.dumps(params, separators=(",", ":"))
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    # bertviz's script names PYTHON_PARAMS twice, once in a comment: fill in the first only
    script = _template().replace(
        "/*@BERTVIZ_VIEW@*/", _bertviz_script(view).replace("PYTHON_PARAMS", data, 1)
    )
    body = markup.format(id=element_id, css_class=css_class, font=_FONT)
    return f'{body}\n<script type="text/javascript">\n{script}\n</script>\n'


def _filter_menu(attention_data: list[dict]) -> str:
    if len(attention_data) == 1:
        return ""
    options = "".join(
        f'<option value="{i}">{html.escape(entry["name"])}</option>' for i, entry in enumerate(attention_data)
    )
    return f'Attention: <select id="filter">{options}</select>'


def head_view_html(
    attention,
    tokens: Sequence[str],
    sentence_b_start: int | None = None,
    *,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    include_layers: Sequence[int] | None = None,
    decimals: int = 2,
) -> str:
    """bertviz's head view as one self-contained HTML string (see the module's docstring).

    attention: L tensors (1, H, n, n) (the model's ``output_attentions`` for one sequence) or one
    (L, H, n, n); tokens: the n tokens; sentence_b_start: the first position of the second text of
    a pair (a menu then shows A -> A, B -> B, A -> B, B -> A), or None.
    layer: the layer shown first (default: the first of include_layers); heads: the heads selected
    at first (default: all); include_layers: the layers in the menu (default: all);
    decimals: the weights are rounded to this many decimals.
    """
    weights, tokens = _checked(attention, tokens, sentence_b_start, decimals)
    include_layers = _checked_indices(include_layers, weights.shape[0], "include_layers")
    heads = None if heads is None else _checked_indices(heads, weights.shape[1], "heads")
    if layer is not None and layer not in include_layers:
        raise ValueError(f"layer {layer!r} is not among the layers shown, include_layers = {include_layers}")
    data = _attention_data(weights[include_layers], tokens, sentence_b_start, decimals)
    params = {
        "attention": data,
        "default_filter": "0",
        "layer": layer,
        "heads": heads,
        "include_layers": include_layers,
    }
    markup = (
        '<div id="{id}" class="{css_class}" style="{font}">\n'
        '  <span style="user-select:none">Layer: <select id="layer"></select> '
        + _filter_menu(data)
        + '</span>\n  <div id="vis"></div>\n</div>'
    )
    return _html("head_view", params, markup, "bert-tutor-bertviz bert-tutor-head-view")


def model_view_html(
    attention,
    tokens: Sequence[str],
    sentence_b_start: int | None = None,
    *,
    include_layers: Sequence[int] | None = None,
    include_heads: Sequence[int] | None = None,
    display_mode: str = "light",
    decimals: int = 2,
) -> str:
    """bertviz's model view (a thumbnail per layer and head; click one to enlarge) as HTML.

    attention, tokens, sentence_b_start, decimals: as in ``head_view_html``; include_layers,
    include_heads: the rows and columns shown (default: all); display_mode: "light" or "dark".
    """
    weights, tokens = _checked(attention, tokens, sentence_b_start, decimals)
    include_layers = _checked_indices(include_layers, weights.shape[0], "include_layers")
    include_heads = _checked_indices(include_heads, weights.shape[1], "include_heads")
    if display_mode not in ("light", "dark"):
        raise ValueError(f"display_mode must be 'light' or 'dark', got {display_mode!r}")
    shown = weights[include_layers][:, include_heads]  # (L', H', n, n)
    data = _attention_data(shown, tokens, sentence_b_start, decimals)
    params = {
        "attention": data,
        "default_filter": "0",
        "display_mode": display_mode,
        "include_layers": include_layers,
        "include_heads": include_heads,
        "total_heads": weights.shape[1],
    }
    markup = (
        '<div id="{id}" class="{css_class}" style="{font}">\n'
        '  <span style="user-select:none">' + _filter_menu(data) + "</span>\n"
        '  <div id="vis"></div>\n</div>'
    )
    return _html("model_view", params, markup, "bert-tutor-bertviz bert-tutor-model-view")


def head_view(
    model,
    tokenizer,
    text: str,
    pair: str | None = None,
    *,
    layer: int | None = None,
    heads: Sequence[int] | None = None,
    decimals: int = 2,
):
    """bertviz's head view of ``model`` on one text (or the pair ``text``, ``pair``), for a notebook.

    model: a ``BertModel`` or a model holding one in ``.bert``; tokenizer: its ``BertTokenizer``.
    Returns an ``IPython.display.HTML`` (the last line of a cell displays it; ``.data`` is the HTML).
    """
    from IPython.display import HTML

    weights, tokens, b_start = sentence_attention(model, tokenizer, text, pair)  # (L, H, n, n)
    return HTML(head_view_html(weights, tokens, b_start, layer=layer, heads=heads, decimals=decimals))


def model_view(
    model,
    tokenizer,
    text: str,
    pair: str | None = None,
    *,
    include_layers: Sequence[int] | None = None,
    include_heads: Sequence[int] | None = None,
    display_mode: str = "light",
    decimals: int = 2,
):
    """bertviz's model view of ``model`` on one text (or pair); see ``head_view``."""
    from IPython.display import HTML

    weights, tokens, b_start = sentence_attention(model, tokenizer, text, pair)  # (L, H, n, n)
    page = model_view_html(
        weights,
        tokens,
        b_start,
        include_layers=include_layers,
        include_heads=include_heads,
        display_mode=display_mode,
        decimals=decimals,
    )
    return HTML(page)
