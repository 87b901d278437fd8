"""bert_tutor.bertviz_offline: bertviz's views as one self-contained HTML output each.

What is checked here is the HTML: the weights and tokens it carries, rounded; no script loaded from
elsewhere; element ids that depend on the content only. That the views draw in a browser, offline, is
checked by tests/test_browser.py.
"""

import json
import re
import tomllib
from collections import Counter
from fnmatch import fnmatch

import pytest
import torch

from bert_tutor import bertviz_offline
from bert_tutor.bert import BertConfig, BertModel
from bert_tutor.bertviz_offline import head_view, head_view_html, model_view, model_view_html
from bert_tutor.tokenization import SPECIAL_TOKENS, BertTokenizer

from .conftest import ROOT

TOKENS = ["[CLS]", "alba", "barks", "[SEP]", "it", "[SEP]"]


@pytest.fixture(autouse=True)
def _fresh_ids(monkeypatch):
    """Each test starts as a fresh kernel would: no view made yet."""
    monkeypatch.setattr(bertviz_offline, "_emitted", Counter())
    torch.manual_seed(0)


def _weights(layers=2, heads=3, n=6) -> torch.Tensor:
    return torch.softmax(torch.randn(layers, heads, n, n), dim=-1)  # (L, H, n, n)


def _params(html: str) -> dict:
    """The parameters the view's script was given (bertviz's PYTHON_PARAMS)."""
    found = re.findall(r"const params = (.*?); // HACK", html)
    assert len(found) == 1, "the parameters must be in the output once"
    return json.loads(found[0])


def _element_id(html: str) -> str:
    return re.match(r'<div id="(bertviz-[0-9a-f]{32})"', html).group(1)


def test_head_view_carries_the_tokens_and_the_rounded_weights_of_every_layer():
    weights = _weights()
    html = head_view_html(weights, TOKENS[:4] + ["."] * 2, layer=1)
    params = _params(html)
    assert params["root_div_id"] == _element_id(html)
    assert params["include_layers"] == [0, 1] and params["layer"] == 1 and params["heads"] is None
    (everything,) = params["attention"]
    assert everything["name"] is None and everything["left_text"] == TOKENS[:4] + ["."] * 2
    torch.testing.assert_close(
        torch.tensor(everything["attn"], dtype=torch.float64), weights.double(), atol=0.005, rtol=0
    )
    numbers = re.findall(r"\d+\.\d+", json.dumps(everything["attn"]))
    assert numbers and all(len(number.split(".")[1]) <= 2 for number in numbers)


def test_a_pair_gets_bertvizs_menu_of_its_four_blocks():
    weights = _weights()
    params = _params(head_view_html(weights, TOKENS, sentence_b_start=4, decimals=3))
    names = [entry["name"] for entry in params["attention"]]
    assert names == [
        "All",
        "Sentence A -> Sentence A",
        "Sentence B -> Sentence B",
        "Sentence A -> Sentence B",
        "Sentence B -> Sentence A",
    ]
    a_to_b = params["attention"][3]
    assert a_to_b["left_text"] == TOKENS[:4] and a_to_b["right_text"] == TOKENS[4:]
    torch.testing.assert_close(
        torch.tensor(a_to_b["attn"], dtype=torch.float64), weights[:, :, :4, 4:].double(), atol=5e-4, rtol=0
    )


def test_the_output_loads_nothing_and_brings_its_own_require():
    html = head_view_html(_weights(), TOKENS)
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script type="text/javascript">'], "one inline script, no src"
    local_require = html.index("var require = { config:")
    assert local_require < html.rindex("require.config(") and local_require < html.rindex("requirejs([")
    assert "d3-selection/ v1.4.2" in html and "d3-color/ v1.4.1" in html  # inlined, with their notices


def test_element_ids_depend_on_the_content_and_differ_for_a_repeated_view(monkeypatch):
    weights = _weights()
    first = _element_id(head_view_html(weights, TOKENS))
    again = _element_id(head_view_html(weights, TOKENS))
    assert first != again  # two identical views on one page must not share an id
    other = _element_id(head_view_html(weights.flip(0), TOKENS))
    monkeypatch.setattr(bertviz_offline, "_emitted", Counter())  # a fresh kernel
    assert _element_id(head_view_html(weights, TOKENS)) == first
    assert _element_id(head_view_html(weights.flip(0), TOKENS)) == other != first
    assert re.fullmatch(r"bertviz-[0-9a-f]{32}", first)


def test_nbvals_sanitiser_hides_the_element_id():
    config = (ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    patterns = re.findall(r"^regex: (.*)$", config, flags=re.MULTILINE)
    html = head_view_html(_weights(), TOKENS)
    assert any(re.fullmatch(pattern, _element_id(html)) for pattern in patterns)


def test_a_token_cannot_break_out_of_the_script():
    tokens = ["[CLS]", "</script><script>alert(1)</script>", "<!--", "[SEP]"]
    html = head_view_html(_weights(n=4), tokens)
    assert html.count("</script>") == 1 and "<!--" not in html
    assert _params(html)["attention"][0]["left_text"] == tokens


def test_model_view_carries_the_chosen_layers_and_heads():
    weights = _weights(layers=3, heads=4)
    params = _params(model_view_html(weights, TOKENS, include_layers=[0, 2], include_heads=[1, 3]))
    assert (params["include_layers"], params["include_heads"], params["total_heads"]) == ([0, 2], [1, 3], 4)
    assert params["display_mode"] == "light"
    expected = weights[[0, 2]][:, [1, 3]].double()
    torch.testing.assert_close(
        torch.tensor(params["attention"][0]["attn"], dtype=torch.float64), expected, atol=0.005, rtol=0
    )


def test_the_models_per_layer_tuple_is_taken_as_bertviz_takes_it():
    weights = _weights()
    as_tuple = tuple(layer[None] for layer in weights)  # L tensors (1, H, n, n)
    assert (
        _params(head_view_html(as_tuple, TOKENS))["attention"]
        == _params(head_view_html(weights, TOKENS))["attention"]
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(tokens=TOKENS[:3]), "6 positions but 3 tokens"),
        (dict(sentence_b_start=6), r"sentence_b_start must be None or a position in \[1, 6\)"),
        (dict(layer=1, include_layers=[0]), r"layer 1 is not among the layers shown, include_layers = \[0\]"),
        (dict(heads=[3]), r"heads must hold ints in \[0, 3\), got 3"),
        (dict(decimals=9), "decimals must be an int from 0 to 6"),
    ],
)
def test_head_view_html_names_what_is_wrong(options, message):
    arguments = dict(tokens=TOKENS) | options
    with pytest.raises(ValueError, match=message):
        head_view_html(_weights(), **arguments)


def test_model_view_html_names_what_is_wrong():
    with pytest.raises(ValueError, match="display_mode must be 'light' or 'dark'"):
        model_view_html(_weights(), TOKENS, display_mode="blue")
    with pytest.raises(ValueError, match="include_heads must name at least one head"):
        model_view_html(_weights(), TOKENS, include_heads=[])
    with pytest.raises(ValueError, match=r"\(layers, heads, n, n\)"):
        model_view_html(torch.rand(3, 6, 6), TOKENS)


def test_views_of_a_model_show_its_tokens_for_a_sentence_and_a_pair():
    tokenizer = BertTokenizer([*SPECIAL_TOKENS, "alba", "barks", "it", "."])
    model = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=8, num_heads=2, intermediate_size=16))
    view = head_view(model, tokenizer, "alba barks .")
    assert _params(view.data)["attention"][0]["left_text"] == ["[CLS]", "alba", "barks", ".", "[SEP]"]
    pair = _params(model_view(model, tokenizer, "alba barks .", "it barks .").data)
    assert pair["attention"][2]["left_text"] == ["it", "barks", ".", "[SEP]"]  # B -> B
    assert pair["total_heads"] == 2 and len(pair["attention"][0]["attn"]) == 2  # layers
    assert model.fused_attention  # left as it was


def test_a_head_view_of_a_short_sentence_is_small_enough_to_store():
    html = head_view_html(_weights(layers=2, heads=4, n=12), [f"t{i}" for i in range(12)])
    assert len(html) < 50_000


def test_every_vendored_library_has_its_licence_beside_it_and_ships_as_package_data():
    folder = ROOT / "bert_tutor" / "js"
    libraries = sorted(path.name for path in folder.glob("*.min.js"))
    assert libraries == ["d3-color.min.js", "d3-selection.min.js"]
    for library in libraries:
        licence = folder / f"LICENSE-{library.removesuffix('.min.js')}"
        assert "Redistribution and use in source and binary forms" in licence.read_text()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [f"js/{path.name}" for path in folder.iterdir() if path.is_file()]
    assert all(any(fnmatch(name, glob) for glob in package_data["bert_tutor"]) for name in shipped), shipped
