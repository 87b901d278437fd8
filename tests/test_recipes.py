"""bert_tutor.recipes: a run is the same as its steps done by hand; the world model is cached safely."""

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from bert_tutor import recipes
from bert_tutor.bert import BertForPreTraining
from bert_tutor.corpus import world_documents
from bert_tutor.pretraining import split_pairs
from bert_tutor.recipes import PretrainingRun, run_pretraining, world_model
from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab
from bert_tutor.training import PretrainingConfig, pretrain, special_ids

TINY = PretrainingRun(
    documents=60,
    size="tiny",
    vocab_size=200,
    max_length=32,
    dropout=0.0,
    training=PretrainingConfig(steps=3, batch_size=8, warmup_steps=1, seed=3),
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_run_is_exactly_its_steps_done_by_hand():
    """What chapter 7 writes out cell by cell must give the model that chapters 8 and 10 load."""
    result = run_pretraining(TINY, progress=False, device="cpu")
    documents = world_documents(TINY.documents, seed=3)
    tokenizer = BertTokenizer(train_wordpiece_vocab((s for d in documents for s in d), TINY.vocab_size))
    train_pairs, _ = split_pairs(documents, tokenizer, TINY.max_length, seed=3)
    torch.manual_seed(3)
    model = BertForPreTraining(TINY.model_config(len(tokenizer)))
    history = pretrain(
        model, train_pairs, special_ids(tokenizer, len(tokenizer)), TINY.training, progress=False
    )
    assert tokenizer.ids_to_tokens == result.tokenizer.ids_to_tokens
    assert history == result.history
    for (name, ours), theirs in zip(
        model.state_dict().items(), result.model.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name
    assert set(result.held_out_metrics) == {"mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss"}


def test_world_model_trains_once_then_loads_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BERT_TUTOR_ARTIFACTS", str(tmp_path))
    model, tokenizer, history, metrics, train_pairs, _ = world_model(TINY)
    directory = tmp_path / f"pretrained-{TINY.fingerprint()}"
    saved = json.loads((directory / "history.json").read_text())
    assert saved["run"] == dataclasses.asdict(TINY) and saved["history"] == history
    assert len(history) == TINY.training.steps and saved["held_out"] == metrics
    assert [p.name for p in tmp_path.iterdir()] == [directory.name]  # no partial directory left behind

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained again although the cache was there")

    monkeypatch.setattr(recipes, "run_pretraining", must_not_train)
    again, tokenizer_again, history_again, metrics_again, train_again, _ = world_model(TINY)
    assert (history_again, metrics_again, train_again) == (history, metrics, train_pairs)
    assert tokenizer_again.ids_to_tokens == tokenizer.ids_to_tokens
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        assert torch.equal(again(ids).mlm_logits, model(ids).mlm_logits)
    assert not again.training


def test_an_incomplete_cache_directory_is_made_again(tmp_path):
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "config.json").write_text("{")  # an interrupted copy: no history.json
    model = world_model(TINY, directory=directory).model
    assert (directory / "history.json").is_file()
    assert isinstance(model, BertForPreTraining)


def test_the_fingerprint_changes_with_the_model_sizes_behind_a_run(monkeypatch):
    before = TINY.fingerprint()
    monkeypatch.setitem(recipes.MODEL_SIZES, "tiny", {**recipes.MODEL_SIZES["tiny"], "num_heads": 1})
    assert TINY.fingerprint() != before


def test_the_fingerprint_changes_with_the_code_that_makes_the_model(monkeypatch, tmp_path):
    before = TINY.fingerprint()
    for name in recipes.MODEL_CODE:  # the same code, read from another folder: the same fingerprint
        shutil.copy(Path(recipes.__file__).with_name(f"{name}.py"), tmp_path)
    monkeypatch.setattr(recipes, "_PACKAGE", tmp_path)
    assert TINY.fingerprint() == before
    with (tmp_path / "corpus.py").open("a") as corpus:
        corpus.write("# an edit\n")
    assert TINY.fingerprint() != before


def test_the_fingerprint_changes_with_any_choice():
    changed = [
        dataclasses.replace(TINY, causal=True),
        dataclasses.replace(TINY, documents=61),
        dataclasses.replace(TINY, training=dataclasses.replace(TINY.training, learning_rate=1e-4)),
    ]
    assert len({TINY.fingerprint(), *(run.fingerprint() for run in changed)}) == 4
    assert TINY.fingerprint() == dataclasses.replace(TINY).fingerprint()


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(size="huge"), "size must be one of ['base', 'small', 'tiny'], got 'huge'"),
        (dict(documents=0), "documents must be a positive int, got 0"),
        (dict(vocab_size=2.5), "vocab_size must be a positive int, got 2.5"),
    ],
)
def test_a_bad_run_is_refused_naming_the_field(changes, message):
    with pytest.raises(ValueError) as error:
        dataclasses.replace(TINY, **changes)
    assert str(error.value) == message


def test_a_causal_run_builds_a_causal_model():
    assert dataclasses.replace(TINY, causal=True).model_config(100).causal
    assert not TINY.model_config(100).causal
