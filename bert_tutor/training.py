"""Pretraining loop: AdamW, warm-up then linear decay, clipping, accumulation, exact resume.

Randomness is made a function of position, so that a run can stop and resume bit for bit:
the order of the pairs in epoch e comes from ``seed + e``, and the masks of optimizer step s,
micro-batch k from ``(seed, s, k)``. A checkpoint then needs only the model, the optimizer, the
scheduler, the step and PyTorch's RNG state (for dropout).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from bert_tutor.files import write_atomically
from bert_tutor.pretraining import IGNORE_INDEX, NspPair, collate_pairs, mask_tokens

__all__ = [
    "PretrainingConfig",
    "evaluate_pretraining",
    "load_checkpoint",
    "parameter_groups",
    "pretrain",
    "save_checkpoint",
    "special_ids",
    "warmup_linear_decay",
]

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class PretrainingConfig:
    """How to train. ``batch_size`` is per optimizer step: ``accumulation_steps`` micro-batches of
    ``batch_size // accumulation_steps`` pairs each."""

    steps: int = 300
    batch_size: int = 32
    accumulation_steps: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 30
    max_grad_norm: float = 1.0
    mlm_probability: float = 0.15
    seed: int = 0

    def __post_init__(self):
        for name in ("steps", "batch_size", "accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size % self.accumulation_steps:
            raise ValueError(
                f"batch_size {self.batch_size} is not divisible by "
                f"accumulation_steps {self.accumulation_steps}"
            )
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}], got {self.warmup_steps}")
        if self.learning_rate <= 0 or self.max_grad_norm <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"learning_rate and max_grad_norm must be positive and weight_decay non-negative, got "
                f"{self.learning_rate}, {self.max_grad_norm}, {self.weight_decay}"
            )


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay the weight matrices, not the biases nor the LayerNorm parameters."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if not parameter.requires_grad:
                continue
            exempt = name.endswith("bias") or isinstance(module, nn.LayerNorm)
            (no_decay if exempt else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_linear_decay(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """Learning-rate factor rising linearly from 0 to 1 over warm-up, then falling linearly to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _generator(*numbers: int) -> torch.Generator:
    """A generator seeded from a tuple of ints, so each (seed, step, micro-batch) has its own stream."""
    mixed = 0
    for number in numbers:
        mixed = (mixed * 1_000_003 + number) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


def _micro_batches(pairs: Sequence[NspPair], config: PretrainingConfig, step: int):
    """The pairs of optimizer step ``step``: a slice of the epoch's shuffled order, in micro-batches."""
    per_epoch = len(pairs) // config.batch_size
    epoch, index = divmod(step, per_epoch)
    order = torch.randperm(len(pairs), generator=_generator(config.seed, epoch))
    chosen = order[index * config.batch_size : (index + 1) * config.batch_size].tolist()
    size = config.batch_size // config.accumulation_steps
    return [[pairs[i] for i in chosen[k * size : (k + 1) * size]] for k in range(config.accumulation_steps)]


def _masked_batch(pairs, special, generator, mlm_probability, device):
    """Collate NSP pairs, mask them; return the model's keyword arguments on ``device``."""
    cls_id, sep_id, pad_id, mask_id, vocab_size = special
    batch = collate_pairs(pairs, cls_id, sep_id, pad_id)
    ids, labels = mask_tokens(
        batch.input_ids, (cls_id, sep_id, pad_id, mask_id), mask_id, vocab_size, generator, mlm_probability
    )
    return {
        "input_ids": ids.to(device),
        "token_type_ids": batch.token_type_ids.to(device),
        "attention_mask": batch.attention_mask.to(device),
        "masked_positions": (labels != IGNORE_INDEX).to(device),
        "mlm_labels": labels.to(device),
        "next_sentence_label": batch.next_sentence_label.to(device),
    }


def special_ids(tokenizer, vocab_size: int) -> tuple[int, int, int, int, int]:
    """(cls, sep, pad, mask, vocab size) from a tokenizer, the ids the data pipeline needs."""
    return (
        tokenizer.cls_token_id,
        tokenizer.sep_token_id,
        tokenizer.pad_token_id,
        tokenizer.mask_token_id,
        vocab_size,
    )


@torch.no_grad()
def evaluate_pretraining(
    model, pairs: Sequence[NspPair], special, batch_size: int = 64, seed: int = 1234
) -> dict:
    """MLM accuracy and loss, NSP accuracy and loss on ``pairs``, with masks fixed by ``seed``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals = dict.fromkeys(("mlm_correct", "mlm_count", "mlm_loss", "nsp_correct", "nsp_loss"), 0.0)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = _masked_batch(chunk, special, _generator(seed, start), 0.15, device)
        out = model(**batch)
        labels = batch["mlm_labels"][batch["masked_positions"]]  # (M,)
        totals["mlm_correct"] += (out.mlm_logits.argmax(-1) == labels).sum().item()
        totals["mlm_count"] += labels.numel()
        totals["mlm_loss"] += out.mlm_loss.item() * labels.numel()
        totals["nsp_correct"] += (out.nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum().item()
        totals["nsp_loss"] += out.nsp_loss.item() * len(chunk)
    model.train(was_training)
    return {
        "mlm_accuracy": totals["mlm_correct"] / totals["mlm_count"],
        "mlm_loss": totals["mlm_loss"] / totals["mlm_count"],
        "nsp_accuracy": totals["nsp_correct"] / len(pairs),
        "nsp_loss": totals["nsp_loss"] / len(pairs),
    }


# --- checkpoints ---------------------------------------------------------------------------
def save_checkpoint(
    path: str | Path, model, optimizer, scheduler, step: int, config: PretrainingConfig, history
):
    """Write everything needed to resume, atomically: a crash mid-write leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "version": CHECKPOINT_VERSION,
        "step": step,
        "config": dataclasses.asdict(config),
        "model_config": dataclasses.asdict(model.config) if hasattr(model, "config") else {},
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "history": history,
    }
    write_atomically(path, lambda temporary: torch.save(state, temporary))


def load_checkpoint(
    path: str | Path, model, optimizer=None, scheduler=None, config: PretrainingConfig | None = None
):
    """Restore a checkpoint into model (and optimizer, scheduler); return (step, history).

    Refuses, naming the file, a missing, truncated or corrupt file and one written for a different
    model or training configuration.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path}: not a readable checkpoint (truncated or corrupt?): {error}") from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a bert-tutor checkpoint of version {CHECKPOINT_VERSION}")
    if hasattr(model, "config") and state["model_config"] != dataclasses.asdict(model.config):
        differing = sorted(
            k for k, v in dataclasses.asdict(model.config).items() if state["model_config"].get(k) != v
        )
        raise ValueError(f"{path}: written for a different model config (differs in {', '.join(differing)})")
    if config is not None:
        saved = {k: v for k, v in state["config"].items() if k != "steps"}
        wanted = {k: v for k, v in dataclasses.asdict(config).items() if k != "steps"}
        if saved != wanted:
            differing = sorted(k for k in wanted if saved.get(k) != wanted[k])
            raise ValueError(
                f"{path}: written with a different training config (differs in {', '.join(differing)})"
            )
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return state["step"], state["history"]


# --- the loop --------------------------------------------------------------------------------
def pretrain(
    model,
    pairs: Sequence[NspPair],
    special: tuple[int, int, int, int, int],
    config: PretrainingConfig,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
) -> list[dict]:
    """Train ``model`` (a BertForPreTraining) for ``config.steps`` optimizer steps; return the history.

    history: one dict per step (step, loss, mlm_loss, nsp_loss, learning_rate). With ``checkpoint``,
    the state is saved every ``checkpoint_every`` steps and at the end; ``resume`` continues from it.
    ``stop_after``: stop after that many steps of this call (to show resuming).
    """
    if len(pairs) < config.batch_size:
        raise ValueError(f"{len(pairs)} pairs are fewer than one batch of {config.batch_size}")
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.learning_rate)
    scheduler = warmup_linear_decay(optimizer, config.warmup_steps, config.steps)
    step, history = 0, []
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        step, history = load_checkpoint(checkpoint, model, optimizer, scheduler, config)
    end = config.steps if stop_after is None else min(config.steps, step + stop_after)
    model.train()
    bar = tqdm(range(step, end), desc="pretraining", disable=not progress, initial=step, total=config.steps)
    for step in bar:
        optimizer.zero_grad(set_to_none=True)
        record = dict.fromkeys(("loss", "mlm_loss", "nsp_loss"), 0.0)
        for k, micro in enumerate(_micro_batches(pairs, config, step)):
            batch = _masked_batch(
                micro, special, _generator(config.seed, step, k), config.mlm_probability, device
            )
            out = model(**batch)
            (out.loss / config.accumulation_steps).backward()
            for name in record:
                record[name] += getattr(out, name).item() / config.accumulation_steps
        nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        record |= {"step": step + 1, "learning_rate": scheduler.get_last_lr()[0]}
        optimizer.step()
        scheduler.step()
        if not math.isfinite(record["loss"]):
            raise FloatingPointError(
                f"loss became {record['loss']} at step {step + 1}: lower the learning rate"
            )
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        done = step + 1
        if checkpoint is not None and (done % checkpoint_every == 0 or done == end):
            save_checkpoint(checkpoint, model, optimizer, scheduler, done, config, history)
    return history
