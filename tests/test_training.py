"""bert_tutor.training: the loop, evaluation, checkpoints and bit-exact resume."""

import pytest
import torch

from bert_tutor.bert import BertConfig, BertForPreTraining
from bert_tutor.optimization import warmup_linear_decay
from bert_tutor.pretraining import make_nsp_pairs
from bert_tutor.training import (
    PretrainingConfig,
    _micro_batches,
    evaluate_pretraining,
    load_checkpoint,
    pretrain,
    save_checkpoint,
)

SPECIAL = (2, 3, 0, 4, 60)  # cls, sep, pad, mask, vocab size


def _pairs(seed=0):
    g = torch.Generator().manual_seed(seed)
    docs = [
        [
            torch.randint(5, 60, (int(torch.randint(3, 8, (1,), generator=g)),), generator=g).tolist()
            for _ in range(6)
        ]
        for _ in range(30)
    ]
    return make_nsp_pairs(docs, max_length=32, seed=seed)


def _model(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=60,
        hidden_size=32,
        num_layers=1,
        num_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    return BertForPreTraining(config)


CONFIG = PretrainingConfig(steps=8, batch_size=8, warmup_steps=2, learning_rate=3e-3)


def test_training_lowers_the_loss_and_evaluation_reports_accuracies():
    model, pairs = _model(), _pairs()
    history = pretrain(
        model,
        pairs,
        SPECIAL,
        PretrainingConfig(steps=40, batch_size=16, warmup_steps=4, learning_rate=3e-3),
        progress=False,
    )
    first = sum(h["loss"] for h in history[:5]) / 5
    last = sum(h["loss"] for h in history[-5:]) / 5
    assert last < first
    metrics = evaluate_pretraining(model, pairs[:40], SPECIAL)
    assert set(metrics) == {"mlm_accuracy", "mlm_loss", "nsp_accuracy", "nsp_loss"}
    assert 0 <= metrics["mlm_accuracy"] <= 1 and 0 <= metrics["nsp_accuracy"] <= 1


def test_resume_is_bit_identical_to_training_straight_through(tmp_path):
    pairs = _pairs()
    straight = pretrain(_model(), pairs, SPECIAL, CONFIG, progress=False)
    path = tmp_path / "ckpt.pt"
    first = pretrain(_model(), pairs, SPECIAL, CONFIG, checkpoint=path, stop_after=4, progress=False)
    assert len(first) == 4
    torch.manual_seed(999)  # whatever happens between the runs must not matter
    resumed = pretrain(_model(seed=5), pairs, SPECIAL, CONFIG, checkpoint=path, resume=True, progress=False)
    assert [h["loss"] for h in resumed] == [h["loss"] for h in straight]


def test_accumulated_micro_batches_see_the_same_pairs():
    pairs = _pairs()
    whole = _micro_batches(pairs, CONFIG, 3)
    split = _micro_batches(
        pairs, PretrainingConfig(steps=8, batch_size=8, accumulation_steps=4, warmup_steps=2), 3
    )
    assert whole[0] == [p for micro in split for p in micro] and len(split) == 4


def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model, path = _model(), tmp_path / "ckpt.pt"
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = warmup_linear_decay(optimizer, 1, 10)
    save_checkpoint(path, model, optimizer, scheduler, 3, CONFIG, [])
    before = path.read_bytes()

    def crash(state, temporary):
        temporary.write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, optimizer, scheduler, 4, CONFIG, [])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_truncated_checkpoint_is_refused_with_its_name(tmp_path):
    model, path = _model(), tmp_path / "ckpt.pt"
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(path, model, optimizer, warmup_linear_decay(optimizer, 1, 10), 3, CONFIG, [])
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"ckpt\.pt: not a readable checkpoint"):
        load_checkpoint(path, _model())


def test_checkpoint_of_another_model_or_training_config_is_refused(tmp_path):
    model, path = _model(), tmp_path / "ckpt.pt"
    optimizer = torch.optim.AdamW(model.parameters())
    save_checkpoint(path, model, optimizer, warmup_linear_decay(optimizer, 1, 10), 3, CONFIG, [])
    other = BertForPreTraining(
        BertConfig(
            vocab_size=60,
            hidden_size=64,
            num_layers=1,
            num_heads=2,
            intermediate_size=64,
            max_position_embeddings=32,
        )
    )
    with pytest.raises(ValueError, match="different model config.*hidden_size"):
        load_checkpoint(path, other)
    with pytest.raises(ValueError, match="different training config.*learning_rate"):
        load_checkpoint(path, _model(), config=PretrainingConfig(steps=8, batch_size=8, warmup_steps=2))
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_checkpoint(tmp_path / "nowhere.pt", _model())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be a positive int, got 0"),
        ({"batch_size": 10, "accumulation_steps": 3}, "not divisible"),
        ({"warmup_steps": 50}, "warmup_steps"),
    ],
)
def test_bad_training_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PretrainingConfig(**{"steps": 10, **kwargs})
