"""`bert-tutor finetune`: world tasks and your files, pretrained or from scratch, loaded by transformers."""

import json

import pytest
import torch
import transformers

from bert_tutor.bert import BertConfig, BertForPreTraining, BertForSequenceClassification
from bert_tutor.cli import main
from bert_tutor.corpus import world_documents
from bert_tutor.finetuning import FIT_LABELS, NER_LABELS
from bert_tutor.tokenization import BertTokenizer, train_wordpiece_vocab

FAST = ["--steps", "3", "--batch-size", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny BertForPreTraining with a vocabulary of the world, saved as `bert-tutor pretrain` saves it."""
    sentences = [sentence for document in world_documents(100) for sentence in document]
    tokenizer = BertTokenizer(train_wordpiece_vocab(sentences, 200))
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=48,
    )
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("pretrained") / "model"
    BertForPreTraining(config).save_pretrained(directory, tokenizer=tokenizer)
    return directory


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_world_fit_from_a_pretrained_directory_writes_what_transformers_loads(pretrained, tmp_path, capsys):
    output = tmp_path / "fit"
    assert (
        main(
            [
                "finetune",
                "--task",
                "world-fit",
                "--pretrained",
                str(pretrained),
                "--output",
                str(output),
                *FAST,
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert captured.out.startswith("world-fit: fine-tuned on 400 examples, accuracy ")
    assert "on 400 held-out examples; saved to" in captured.out
    assert "fine-tuning" in captured.err and "3/3" in captured.err  # the progress bar
    assert {"config.json", "model.safetensors", "vocab.txt", "metrics.json"} <= {
        p.name for p in output.iterdir()
    }
    report = json.loads((output / "metrics.json").read_text())
    assert report["steps"] == 3 and report["pretrained"] == str(pretrained) and report["max_length"] == 48
    assert 0 <= report["metrics"]["accuracy"] <= 1
    assert report["device"] == ("cuda" if torch.cuda.is_available() else "cpu")  # the default device
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(output).eval()
    assert theirs.config.id2label == dict(enumerate(FIT_LABELS))
    ours = BertForSequenceClassification.from_pretrained(output)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).logits, theirs(ids).logits, atol=1e-5, rtol=1e-5)
    # the encoder started from the pretrained one: its position table (not trained by 3 steps at
    # a small learning rate, far from the inputs) is still close to it
    start = BertForPreTraining.from_pretrained(pretrained).bert.embeddings.position_embeddings.weight
    torch.testing.assert_close(ours.bert.embeddings.position_embeddings.weight, start, atol=0.01, rtol=0)


def test_world_ner_from_scratch_trains_its_own_vocabulary(tmp_path, capsys):
    output = tmp_path / "ner"
    argv = ["finetune", "--task", "world-ner", "--scratch", "--size", "tiny", "--vocab-size", "150"]
    assert main([*argv, "--output", str(output), *FAST]) == 0
    assert "world-ner: fine-tuned on 200 examples, entity F1 " in capsys.readouterr().out
    report = json.loads((output / "metrics.json").read_text())
    assert report["pretrained"] is None and set(report["metrics"]) >= {
        "f1",
        "precision",
        "recall",
        "per_type",
    }
    theirs = transformers.AutoModelForTokenClassification.from_pretrained(output)
    assert theirs.config.id2label == dict(enumerate(NER_LABELS)) and theirs.config.hidden_size == 64
    assert len((output / "vocab.txt").read_text().splitlines()) <= 150


def test_your_tsv_and_conll_files(pretrained, tmp_path, capsys):
    rows = "".join(
        f"{name} has a {animal} .\t{animal}\n"
        for name in ("alba", "bruno", "kira")
        for animal in ("dog", "cat")
    )
    train = _write(tmp_path / "pets.tsv", "text\tlabel\n" + rows)
    test = _write(tmp_path / "pets-test.tsv", "vera has a dog .\tdog\nvera has a cat .\tcat\n")
    output = tmp_path / "pets"
    argv = ["finetune", "--task", str(train), "--eval-file", str(test), "--pretrained", str(pretrained)]
    assert main([*argv, "--output", str(output), *FAST, "--batch-size", "4"]) == 0
    assert "pets.tsv: fine-tuned on 6 examples, accuracy " in capsys.readouterr().out
    config = json.loads((output / "config.json").read_text())
    assert config["id2label"] == {"0": "cat", "1": "dog"}
    assert config["architectures"] == ["BertForSequenceClassification"]

    conll = "\n".join(  # "alba lives in harlow ." and four more, a word and its tag per line
        f"{name} B-PER\nlives O\nin O\nharlow B-LOC\n. O\n"
        for name in ("alba", "bruno", "kira", "vera", "nils")
    )
    path = _write(tmp_path / "people.conll", conll)
    output = tmp_path / "people"
    argv = ["finetune", "--task", str(path), "--scratch", "--size", "tiny", "--output", str(output)]
    assert main([*argv, *FAST, "--batch-size", "2"]) == 0
    assert "people.conll: fine-tuned on 4 examples, entity F1 " in capsys.readouterr().out  # one held out
    labels = json.loads((output / "config.json").read_text())["id2label"]
    assert list(labels.values()) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_help_names_the_tasks_and_options(capsys):
    with pytest.raises(SystemExit) as done:
        main(["finetune", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for part in (
        "world-fit",
        "world-ner",
        "FILE.tsv",
        "FILE.conll",
        "--pretrained DIR",
        "--scratch",
        "--eval-file",
        "--steps",
        "--batch-size",
        "--learning-rate",
        "--seed",
        "--device",
        "transformers",
    ):
        assert part in text, part


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "world-fit"], "give either --pretrained DIR"),
        (
            ["--task", "world-fit", "--scratch", "--pretrained", "{pretrained}"],
            "give either --pretrained DIR",
        ),
        (
            ["--task", "world-qa", "--scratch"],
            "--task world-qa: no such file, and not one of world-fit, world-ner",
        ),
        (["--task", "world-fit", "--pretrained", "{tmp}/nowhere"], "no model directory at"),
        (["--task", "world-fit", "--scratch", "--steps", "0"], "--steps must be at least 1, got 0"),
        (["--task", "world-fit", "--scratch", "--learning-rate", "-1"], "--learning-rate must be positive"),
        (
            ["--task", "world-fit", "--scratch", "--batch-size", "1000"],
            "400 examples are fewer than one batch of 1000",
        ),
        (
            ["--task", "world-fit", "--pretrained", "{pretrained}", "--max-length", "100"],
            "more than the model's 48",
        ),
        (["--task", "world-fit", "--scratch", "--device", "gpu"], "--device 'gpu' is not a device"),
        (["--task", "{tmp}/data.txt", "--scratch"], "cannot tell the format from the suffix"),
        (["--task", "{tmp}/data.txt", "--format", "tsv", "--scratch"], "line 1: 1 tab-separated column"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_error(pretrained, tmp_path, capsys, argv, message):
    _write(tmp_path / "data.txt", "no tabs here\n")
    argv = [a.replace("{pretrained}", str(pretrained)).replace("{tmp}", str(tmp_path)) for a in argv]
    assert (
        main(["finetune", *argv, "--size", "tiny", "--output", str(tmp_path / "out"), "--threads", "1"]) == 2
    )
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and error.startswith("bert-tutor finetune: error: ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_it_is_a_one_line_error(tmp_path, capsys):
    argv = [
        "finetune",
        "--task",
        "world-fit",
        "--scratch",
        "--device",
        "cuda",
        "--output",
        str(tmp_path / "x"),
    ]
    assert main(argv) == 2
    assert "has no CUDA device" in capsys.readouterr().err
