"""Pretraining loop: AdamW, warm-up then linear decay, clipping, accumulation, exact resume, DDP.

Randomness is made a function of position, so that a run can stop and resume bit for bit:
the order of the pairs in epoch e comes from ``(seed, e)``, and the masks of optimizer step s,
micro-batch k from ``(seed, s, k)``. A checkpoint then needs only the model, the optimizer, the
scheduler, the step and PyTorch's RNG state (for dropout).

Under ``torchrun`` (a process group formed by :func:`bert_tutor.distributed.process_group`) the same
loop is data-parallel, and computes what one process computes with the same batch size:

* the order is PyTorch's ``DistributedSampler`` with ``set_epoch(e)`` every epoch; step s uses the
  same pairs as on one process, and rank r of W takes every W-th of them from r (its shard);
* every rank draws the masks of the whole micro-batch from ``(seed, s, k)``, as one process does,
  and keeps its own rows, so the masks do not depend on the number of processes;
* the model is wrapped in ``DistributedDataParallel``, which averages the gradients over the ranks
  during the backward pass; each rank weights its masked-LM loss by its share of the micro-batch's
  masked tokens, so the average is the loss of the whole micro-batch;
* accumulation skips that averaging (``no_sync``) on all but the last micro-batch of a step;
* only rank 0 shows progress and writes checkpoints; every rank resumes from the same one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from bert_tutor.checks import check_positive_int
from bert_tutor.files import write_atomically
from bert_tutor.optimization import parameter_groups, warmup_linear_decay
from bert_tutor.pretraining import IGNORE_INDEX, NspPair, collate_pairs, mask_tokens

__all__ = [
    "PretrainingConfig",
    "evaluate_pretraining",
    "load_checkpoint",
    "pretrain",
    "process_rank",
    "save_checkpoint",
    "special_ids",
    "step_examples",
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
            check_positive_int(name, getattr(self, name))
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


def _mix(*numbers: int) -> int:
    """One seed from a tuple of ints, so each (seed, step, micro-batch) has its own stream."""
    mixed = 0
    for number in numbers:
        mixed = (mixed * 1_000_003 + number) % (2**63 - 1)
    return mixed


def _generator(*numbers: int) -> torch.Generator:
    """A generator seeded from a tuple of ints (see :func:`_mix`)."""
    return torch.Generator().manual_seed(_mix(*numbers))


_DROPOUT_STREAM = 0xD0  # tags the seeds of each rank's dropout, apart from the data's streams


def process_rank() -> tuple[int, int]:
    """(rank, world size) of this process in the default process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _samplers(num_pairs: int, config: PretrainingConfig, rank: int, world_size: int):
    """(the whole epoch's order, this rank's shard of it): two ``DistributedSampler``, one of them
    for a single process. Its seed is ``_mix(seed, 0)``, so that the ``seed + epoch`` it seeds each
    epoch's permutation with is ``_mix(seed, epoch)``: one process keeps the order it always had."""
    seed = _mix(config.seed, 0)
    everyone = DistributedSampler(range(num_pairs), num_replicas=1, rank=0, shuffle=True, seed=seed)
    mine = DistributedSampler(range(num_pairs), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return everyone, mine


def _step_plan(order, shard, index: int, config: PretrainingConfig, rank: int, world_size: int):
    """[(a micro-batch's pair indices, this rank's share of them)] for step ``index`` of an epoch.

    order: the epoch's order; shard: this rank's part of it. Micro-batch k of the step is slice k of
    the step's slice of ``order``; rank r's share is every W-th pair of it from r, which is what its
    ``DistributedSampler`` gives it, in order.
    """
    size = config.batch_size // config.accumulation_steps  # pairs in a micro-batch, all ranks together
    start = index * config.batch_size
    plan = []
    for k in range(config.accumulation_steps):
        first = start + k * size
        micro = order[first : first + size]
        share = shard[first // world_size : (first + size) // world_size]
        if share != micro[rank::world_size]:
            raise AssertionError("a rank's shard is not its share of the micro-batch")  # cannot happen
        plan.append((micro, share))
    return plan


def _check_split(config: PretrainingConfig, world_size: int) -> None:
    size = config.batch_size // config.accumulation_steps
    if size % world_size:
        raise ValueError(
            f"a micro-batch of {size} pairs (batch_size {config.batch_size} / accumulation_steps "
            f"{config.accumulation_steps}) cannot be shared equally by {world_size} processes: choose a "
            f"batch size divisible by {config.accumulation_steps * world_size}"
        )


def step_examples(
    num_pairs: int, config: PretrainingConfig, step: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """Indices of the pairs that rank ``rank`` of ``world_size`` trains on at optimizer step ``step``,
    one list per micro-batch. The ranks' lists together are the one-process step's, micro-batch by
    micro-batch."""
    _check_split(config, world_size)
    per_epoch = num_pairs // config.batch_size
    if per_epoch < 1:
        raise ValueError(f"{num_pairs} pairs are fewer than one batch of {config.batch_size}")
    epoch, index = divmod(step, per_epoch)
    everyone, mine = _samplers(num_pairs, config, rank, world_size)
    everyone.set_epoch(epoch)
    mine.set_epoch(epoch)
    plan = _step_plan(list(everyone), list(mine), index, config, rank, world_size)
    return [share for _, share in plan]


def _micro_batches(pairs: Sequence[NspPair], config: PretrainingConfig, step: int):
    """The pairs of optimizer step ``step``: a slice of the epoch's shuffled order, in micro-batches."""
    return [[pairs[i] for i in micro] for micro in step_examples(len(pairs), config, step)]


def _rows(batch: dict, rank: int, world_size: int, device) -> dict:
    """Rank ``rank``'s rows of a masked micro-batch (every W-th from r), without the padding columns
    that none of them needs, on ``device``."""
    if world_size == 1:
        return {name: tensor.to(device) for name, tensor in batch.items()}
    rows = {name: tensor[rank::world_size] for name, tensor in batch.items()}
    length = int(rows["attention_mask"].sum(1).max())
    return {
        name: (tensor[:, :length] if tensor.dim() == 2 else tensor).to(device)
        for name, tensor in rows.items()
    }


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
    path: str | Path,
    model,
    optimizer,
    scheduler,
    step: int,
    config: PretrainingConfig,
    history,
    rank_rng: list[dict] | None = None,
):
    """Write everything needed to resume, atomically: a crash mid-write leaves the old file intact.

    rank_rng: under DDP, every rank's generator states (:func:`_rng_state`, gathered by rank 0, the
    one that writes), so that each rank's dropout resumes where it stopped.
    """
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
    if rank_rng is not None:
        state["rank_rng"] = rank_rng
    write_atomically(path, lambda temporary: torch.save(state, temporary))


def _rng_state(device: torch.device) -> dict:
    """This process's generator states: the CPU's, and its own GPU's when it trains on one."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def _set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def load_checkpoint(
    path: str | Path, model, optimizer=None, scheduler=None, config: PretrainingConfig | None = None
):
    """Restore a checkpoint into model (and optimizer, scheduler); return (step, history).

    Refuses, naming the file, a missing, truncated or corrupt file and one written for a different
    model or training configuration. Under DDP each rank takes back its own generator states; from a
    checkpoint of another number of processes, each rank's dropout is seeded afresh from
    (seed, step, rank) (the data and masks do not depend on the number of processes).
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
    rank, world_size = process_rank()
    if world_size > 1:
        device = next(model.parameters()).device
        saved = state.get("rank_rng") or []
        if len(saved) == world_size:
            _set_rng_state(saved[rank], device)
        else:
            torch.manual_seed(_mix(state["config"]["seed"], _DROPOUT_STREAM, state["step"], rank))
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

    In a process group (torchrun), every process calls this with the same arguments; each trains on
    its share of every micro-batch, and the history is that of the whole batch, the same on every rank.
    """
    if len(pairs) < config.batch_size:
        raise ValueError(f"{len(pairs)} pairs are fewer than one batch of {config.batch_size}")
    rank, world_size = process_rank()
    _check_split(config, world_size)
    distributed = dist.is_available() and dist.is_initialized()
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay), lr=config.learning_rate)
    scheduler = warmup_linear_decay(optimizer, config.warmup_steps, config.steps)
    step, history = 0, []
    if resume:
        if checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        step, history = load_checkpoint(checkpoint, model, optimizer, scheduler, config)
    elif world_size > 1:  # each rank its own dropout (the model's weights are the same everywhere)
        torch.manual_seed(_mix(config.seed, _DROPOUT_STREAM, 0, rank))
    # DDP copies rank 0's weights to the others, then averages the gradients during each backward pass.
    net = (
        DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
        if distributed
        else model
    )
    per_epoch = len(pairs) // config.batch_size
    everyone, mine = _samplers(len(pairs), config, rank, world_size)
    order = shard = epoch_read = None
    end = config.steps if stop_after is None else min(config.steps, step + stop_after)
    model.train()
    bar = tqdm(
        range(step, end),
        desc="pretraining",
        disable=not progress or rank != 0,
        initial=step,
        total=config.steps,
    )
    for step in bar:
        epoch, index = divmod(step, per_epoch)
        if epoch != epoch_read:  # a new epoch: a new order, the same on every rank
            everyone.set_epoch(epoch)
            mine.set_epoch(epoch)
            order, shard, epoch_read = list(everyone), list(mine), epoch
        optimizer.zero_grad(set_to_none=True)
        record = dict.fromkeys(("loss", "mlm_loss", "nsp_loss"), 0.0)
        plan = _step_plan(order, shard, index, config, rank, world_size)
        for k, (micro, _) in enumerate(plan):
            whole = _masked_batch(
                [pairs[i] for i in micro],
                special,
                _generator(config.seed, step, k),
                config.mlm_probability,
                "cpu",
            )
            batch = _rows(whole, rank, world_size, device)
            # The masked-LM loss is a mean over this rank's masked tokens; weighted by world_size x its
            # share of the micro-batch's, DDP's average over the ranks is the mean over all of them.
            weight = (
                world_size * batch["masked_positions"].sum().item() / whole["masked_positions"].sum().item()
            )
            last = k == config.accumulation_steps - 1
            with net.no_sync() if distributed and not last else contextlib.nullcontext():
                out = net(**batch)
                loss = out.mlm_loss * weight + out.nsp_loss  # one process: weight 1.0, out.loss
                (loss / config.accumulation_steps).backward()
            record["loss"] += loss.item() / config.accumulation_steps
            record["mlm_loss"] += (out.mlm_loss * weight).item() / config.accumulation_steps
            record["nsp_loss"] += out.nsp_loss.item() / config.accumulation_steps
        if distributed:  # the whole batch's losses: the mean of the ranks' records
            values = torch.tensor([record[n] for n in ("loss", "mlm_loss", "nsp_loss")], dtype=torch.float64)
            values = values.to(device)
            dist.all_reduce(values)
            record = dict(zip(("loss", "mlm_loss", "nsp_loss"), (values / world_size).tolist(), strict=True))
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
            states = None
            if world_size > 1:  # every rank's generators, gathered by rank 0, which writes
                states = [None] * world_size
                dist.all_gather_object(states, _rng_state(device))
            if rank == 0:
                save_checkpoint(checkpoint, model, optimizer, scheduler, done, config, history, states)
    return history
