"""`bert-tutor pretrain` and `fill-mask`: a tiny run end to end, resumed, loaded by transformers."""

import json

import pytest
import torch
import transformers

from bert_tutor.bert import BertForPreTraining
from bert_tutor.cli import main

TINY = ["--size", "tiny", "--documents", "60", "--vocab-size", "200", "--batch-size", "8", "--threads", "1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    output = tmp_path_factory.mktemp("run") / "model"
    assert main(["pretrain", *TINY, "--steps", "3", "--warmup-steps", "2", "--output", str(output)]) == 0
    return output


def test_pretrain_writes_a_directory_transformers_loads(run):
    assert {"config.json", "model.safetensors", "vocab.txt", "checkpoint.pt", "history.json"} <= {
        p.name for p in run.iterdir()
    }
    theirs = transformers.BertForPreTraining.from_pretrained(run).eval()
    ours = BertForPreTraining.from_pretrained(run)
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    with torch.no_grad():
        torch.testing.assert_close(ours(ids).mlm_logits, theirs(ids).prediction_logits, atol=1e-5, rtol=1e-5)


def test_resume_continues_the_saved_run(run, capsys):
    assert (
        main(["pretrain", *TINY, "--steps", "5", "--warmup-steps", "2", "--output", str(run), "--resume"])
        == 0
    )
    history = json.loads((run / "history.json").read_text())["history"]
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5]
    assert "held-out: MLM accuracy" in capsys.readouterr().out


def test_fill_mask_prints_guesses_for_each_mask(run, capsys):
    assert main(["fill-mask", str(run), "alba has a [MASK] that [MASK] .", "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["[MASK] 1", "[MASK] 2"]
    assert all(line.count("(") == 3 for line in lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fill-mask", "{run}", "no mask here"], "no [MASK] token"),
        (["pretrain", *TINY, "--output", "{run}"], "already holds a run; pass --resume"),
        (["pretrain", *TINY, "--output", "{run}/../elsewhere", "--resume"], "no checkpoint at"),
        (
            ["pretrain", *TINY, "--corpus", "{run}/missing.txt", "--output", "{run}/../x"],
            "corpus file not found",
        ),
        (["fill-mask", "{run}/../nowhere", "a [MASK]"], "nowhere"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_error(run, capsys, argv, message):
    assert main([a.replace("{run}", str(run)) for a in argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
