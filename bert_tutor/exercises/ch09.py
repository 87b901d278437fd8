"""Checks for the exercises of chapter 9, pretraining with DistributedDataParallel.

Each ``check_*`` function calls the learner's function on cases it makes itself, compares the result
with PyTorch (``DistributedSampler``) or the formula, and prints ``✓ Exercise 9.N: ...`` or raises an
AssertionError that names the mistake when it recognises one.

    9.1  check_shard(my_shard)                        the indices rank r reads in an epoch
    9.2  check_scaling(scale_for_processes)           effective batch and learning rate for N processes
    9.3  check_epoch_orders(orders_per_epoch)         set_epoch: a new order every epoch
    9.4  check_ring_all_reduce(ring_all_reduce_seconds)  the time of a ring all-reduce
"""

from __future__ import annotations

import math
import numbers

import torch
from torch.utils.data import DistributedSampler

from bert_tutor.exercises.checking import passed

__all__ = ["check_epoch_orders", "check_ring_all_reduce", "check_scaling", "check_shard"]


def _as_index_list(answer, number: str, what: str) -> list[int]:
    """A list of ints from a list, tuple, range or 1-d integer tensor; else an AssertionError."""
    if isinstance(answer, torch.Tensor):
        if answer.dim() != 1 or answer.is_floating_point():
            raise AssertionError(
                f"Exercise {number}: {what} should be a list of ints, got a tensor {answer.dtype}"
            )
        return answer.tolist()
    if not isinstance(answer, list | tuple | range):
        raise AssertionError(
            f"Exercise {number}: {what} should be a list of ints, got {type(answer).__name__}"
        )
    values = list(answer)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise AssertionError(f"Exercise {number}: {what} should hold ints (indices of examples)")
    return [int(v) for v in values]


# --- 9.1 ---------------------------------------------------------------------------------------


def _shuffled(n: int, seed: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def _padded(order: list[int], world_size: int) -> list[int]:
    total = math.ceil(len(order) / world_size) * world_size
    return (order * math.ceil(total / len(order)))[:total]


_SHARD_CASES = ((10, 3, 1, 2, 5), (10, 3, 2, 0, 5), (8, 2, 0, 1, 0), (12, 4, 3, 3, 7))  # n, W, r, epoch, seed


def check_shard(my_shard) -> None:
    """Exercise 9.1: ``my_shard(num_examples, world_size, rank, epoch, seed)`` returns the indices
    that ``DistributedSampler(dataset, world_size, rank, shuffle=True, seed=seed)`` yields after
    ``set_epoch(epoch)``: a permutation drawn with a generator seeded by ``seed + epoch``, padded
    with its own first indices to a multiple of ``world_size``, then every ``world_size``-th index
    from ``rank``."""
    for n, world_size, rank, epoch, seed in _SHARD_CASES:
        sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        expected = list(sampler)
        case = f"for {n} examples, world_size={world_size}, rank={rank}, epoch={epoch}, seed={seed}"
        answer = _as_index_list(my_shard(n, world_size, rank, epoch, seed), "9.1", "your shard")
        if answer == expected:
            continue
        order = _shuffled(n, seed + epoch)
        size = math.ceil(n / world_size)
        mistakes = [
            (
                _padded(order, world_size)[rank * size : (rank + 1) * size],
                "you gave rank r a contiguous block. DistributedSampler interleaves: rank r takes "
                "positions r, r + W, r + 2W, ... of the shuffled, padded list (indices[rank::world_size])",
            ),
            (
                _padded(list(range(n)), world_size)[rank::world_size],
                "you did not shuffle: draw torch.randperm(n, generator=g) with g seeded by seed + epoch",
            ),
            (
                _padded(_shuffled(n, seed), world_size)[rank::world_size],
                "your order ignores the epoch: seed the generator with seed + epoch, which is what "
                "set_epoch changes. Without it every epoch would repeat the same order",
            ),
            (
                order[rank::world_size],
                "you did not pad: when n is not a multiple of world_size, DistributedSampler repeats the "
                "first indices of the shuffled list until it is, so every rank gets ceil(n / W) indices "
                "and takes the same number of steps",
            ),
            (
                _padded(_shuffled(n, seed * epoch), world_size)[rank::world_size],
                "the generator's seed is seed + epoch, not seed * epoch",
            ),
        ]
        for wrong, hint in mistakes:
            if answer == wrong:
                raise AssertionError(f"Exercise 9.1: {case}, {hint}")
        raise AssertionError(
            f"Exercise 9.1: {case}, you returned {answer}, expected {expected}: shuffle with seed + epoch, "
            f"pad to a multiple of world_size, then take indices[rank::world_size]"
        )
    passed("9.1", "which examples rank r reads")


# --- 9.2 ---------------------------------------------------------------------------------------

_SCALING_CASES = ((1e-3, 32, 16, 4, 2), (2e-3, 16, 8, 2, 1), (5e-4, 64, 4, 8, 4))


def check_scaling(scale_for_processes) -> None:
    """Exercise 9.2: ``scale_for_processes(base_lr, base_batch, batch_per_process, processes,
    accumulation_steps)`` returns ``(effective_batch, learning_rate)``: the examples behind one
    optimizer step, and the learning rate given by the linear scaling rule (Goyal et al., 2017),
    ``base_lr`` tuned at ``base_batch`` times ``effective_batch / base_batch``."""
    for base_lr, base_batch, per_process, processes, accumulation in _SCALING_CASES:
        case = (
            f"for base_lr={base_lr:g}, base_batch={base_batch}, batch_per_process={per_process}, "
            f"processes={processes}, accumulation_steps={accumulation}"
        )
        answer = scale_for_processes(base_lr, base_batch, per_process, processes, accumulation)
        if not isinstance(answer, tuple | list) or len(answer) != 2:
            raise AssertionError(
                f"Exercise 9.2: return a pair (effective_batch, learning_rate), got {answer!r}"
            )
        batch, rate = answer
        if not isinstance(batch, numbers.Number) or not isinstance(rate, numbers.Number):
            raise AssertionError(f"Exercise 9.2: {case}, both values should be numbers, got {answer!r}")
        effective = per_process * processes * accumulation
        expected_rate = base_lr * effective / base_batch
        batch_hints = {
            per_process * processes: "each optimizer step also adds up accumulation_steps micro-batches: "
            "multiply by accumulation_steps too",
            per_process * accumulation: "DDP averages the gradients of all the processes, so one step sees "
            "batch_per_process x processes examples (x accumulation_steps)",
            per_process: "one step sees every process's micro-batches: batch_per_process x processes x "
            "accumulation_steps",
        }
        if batch != effective:
            hint = batch_hints.get(
                batch, "multiply the three: batch_per_process x processes x accumulation_steps"
            )
            raise AssertionError(
                f"Exercise 9.2: {case}, your effective batch is {batch}, expected {effective}: {hint}"
            )
        rate_hints = [
            (
                base_lr,
                "the learning rate is unchanged: the linear scaling rule multiplies it by "
                "effective_batch / base_batch",
            ),
            (
                base_lr * math.sqrt(effective / base_batch),
                "that is the square-root rule (sometimes used "
                "with Adam); this exercise asks for the linear rule, base_lr x effective_batch / base_batch",
            ),
            (
                base_lr * base_batch / effective,
                "your ratio is upside down: a larger batch gets a larger "
                "learning rate, base_lr x effective_batch / base_batch",
            ),
            (base_lr * effective, "divide by base_batch: base_lr was tuned for base_batch examples per step"),
        ]
        if not math.isclose(rate, expected_rate, rel_tol=1e-9):
            for wrong, hint in rate_hints:
                if math.isclose(rate, wrong, rel_tol=1e-9):
                    raise AssertionError(f"Exercise 9.2: {case}, {hint}")
            raise AssertionError(
                f"Exercise 9.2: {case}, your learning rate is {rate:g}, expected {expected_rate:g}"
            )
    passed("9.2", "effective batch and learning rate")


# --- 9.3 ---------------------------------------------------------------------------------------


def check_epoch_orders(orders_per_epoch) -> None:
    """Exercise 9.3: ``orders_per_epoch(sampler, epochs)`` returns a list with, for each epoch 0, 1,
    ..., epochs - 1, the list of indices that ``sampler`` (a DistributedSampler) yields in that epoch,
    as a training loop would read them."""
    sampler = DistributedSampler(range(12), num_replicas=2, rank=1, shuffle=True, seed=3)
    epochs = 4

    def order(epoch):
        sampler.set_epoch(epoch)
        return list(sampler)

    expected = [order(e) for e in range(epochs)]
    fresh = DistributedSampler(range(12), num_replicas=2, rank=1, shuffle=True, seed=3)
    answer = orders_per_epoch(fresh, epochs)
    if not isinstance(answer, list | tuple) or len(answer) != epochs:
        raise AssertionError(f"Exercise 9.3: return a list of {epochs} lists, one per epoch, got {answer!r}")
    if any(not isinstance(o, list | tuple) for o in answer):
        raise AssertionError(
            "Exercise 9.3: each epoch's order should be a list: iterate the sampler, list(sampler), "
            "rather than keeping the sampler or an iterator"
        )
    answer = [list(o) for o in answer]
    if answer == expected:
        passed("9.3", "a new order every epoch")
        return
    mistakes = [
        (
            [expected[0]] * epochs,
            "every epoch has the same order: call sampler.set_epoch(epoch) before each epoch. "
            "DistributedSampler seeds its shuffle with seed + epoch, and without set_epoch the epoch stays "
            "0, so the model would see the examples in the same order, and the same shards, every epoch",
        ),
        (
            [expected[0], *expected[: epochs - 1]],
            "you call set_epoch after reading the epoch: epoch e then gets epoch e - 1's order (and epochs "
            "0 and 1 the same). Call sampler.set_epoch(epoch) first, then iterate",
        ),
        (
            [order(e + 1) for e in range(epochs)],
            "your epochs are off by one: set_epoch(epoch) with epoch = 0, 1, ..., epochs - 1",
        ),
    ]
    for wrong, hint in mistakes:
        if answer == wrong:
            raise AssertionError(f"Exercise 9.3: {hint}")
    raise AssertionError(f"Exercise 9.3: you returned {answer}, expected {expected}")


# --- 9.4 ---------------------------------------------------------------------------------------

# (bytes, processes, bytes/s). N = 4 first: there every typical mistake gives a time of its own (at
# N = 2 some coincide with each other, or with the right answer).
_RING_CASES = ((4e8, 4, 1e10), (4e8, 2, 1e10), (1e9, 8, 2.5e10), (2e6, 16, 1e9))


def check_ring_all_reduce(ring_all_reduce_seconds) -> None:
    """Exercise 9.4: ``ring_all_reduce_seconds(num_bytes, processes, bandwidth)`` returns the seconds a
    ring all-reduce of ``num_bytes`` takes between ``processes`` processes, when each sends to its
    neighbour at ``bandwidth`` bytes per second (all links at once), ignoring latency:
    a reduce-scatter then an all-gather, each of N - 1 steps that send one chunk of num_bytes / N."""
    for num_bytes, processes, bandwidth in _RING_CASES:
        case = f"for {num_bytes:g} bytes, {processes} processes, {bandwidth:g} bytes/s"
        answer = ring_all_reduce_seconds(num_bytes, processes, bandwidth)
        if isinstance(answer, torch.Tensor) and answer.numel() == 1:
            answer = answer.item()
        if not isinstance(answer, numbers.Real) or isinstance(answer, bool):
            raise AssertionError(
                f"Exercise 9.4: {case}, return a number of seconds, got {type(answer).__name__}"
            )
        chunk = num_bytes / processes
        expected = 2 * (processes - 1) * chunk / bandwidth
        if math.isclose(answer, expected, rel_tol=1e-6):
            continue
        mistakes = [
            (
                (processes - 1) * chunk / bandwidth,
                "that is one phase of two: the reduce-scatter leaves each process with one summed chunk, "
                "and an all-gather (N - 1 more steps) gives everyone all of them: 2(N - 1) steps",
            ),
            (
                2 * (processes - 1) * num_bytes / bandwidth,
                "each step of the ring sends one chunk, num_bytes / N, not the whole tensor",
            ),
            (
                (processes - 1) * num_bytes / bandwidth,
                "that is a parameter server's time: one process receives all N - 1 gradients over its one "
                "link. The ring shares the work: each process sends 2(N - 1)/N of the data, whatever N",
            ),
            (
                2 * num_bytes / bandwidth,
                "the factor is 2(N - 1)/N, not 2: it tends to 2 for many processes, but is 1 for two",
            ),
        ]
        for wrong, hint in mistakes:
            if math.isclose(answer, wrong, rel_tol=1e-6):
                raise AssertionError(f"Exercise 9.4: {case}, {hint}")
        raise AssertionError(f"Exercise 9.4: {case}, you computed {answer:.4g} s, expected {expected:.4g} s")
    passed("9.4", "ring all-reduce time")
