"""The checks of chapter 9 accept right answers and name the typical wrong ones."""

import math

import pytest
import torch
from torch.utils.data import DistributedSampler

from bert_tutor.exercises import ch09

from .conftest import leaves_global_random_state_alone

# --- 9.1 which examples rank r reads -----------------------------------------------------------


def shard_with(shuffle=True, epoch_in_seed=True, pad=True, interleave=True, combine=lambda s, e: s + e):
    """A learner's DistributedSampler by hand whose steps can each go wrong."""

    def my_shard(n, world_size, rank, epoch, seed):
        if shuffle:
            generator = torch.Generator().manual_seed(combine(seed, epoch) if epoch_in_seed else seed)
            order = torch.randperm(n, generator=generator).tolist()
        else:
            order = list(range(n))
        per_rank = math.ceil(n / world_size)
        if pad:
            order = (order * 2)[: per_rank * world_size]
        if interleave:
            return order[rank::world_size]
        return order[rank * per_rank : (rank + 1) * per_rank]

    return my_shard


def test_shard_right_answer_prints_one_line(capsys):
    ch09.check_shard(shard_with())
    assert capsys.readouterr().out == "✓ Exercise 9.1: which examples rank r reads\n"


def test_shard_the_sampler_itself_and_a_tensor_pass(capsys):
    def sampler(n, world_size, rank, epoch, seed):
        s = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        s.set_epoch(epoch)
        return list(s)

    ch09.check_shard(sampler)
    ch09.check_shard(lambda *args: torch.tensor(sampler(*args)))
    assert capsys.readouterr().out.count("✓ Exercise 9.1") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (
            shard_with(interleave=False),
            r"you gave rank r a contiguous block\. DistributedSampler interleaves",
        ),
        (shard_with(shuffle=False), r"you did not shuffle"),
        (
            shard_with(epoch_in_seed=False),
            r"your order ignores the epoch: seed the generator with seed \+ epoch",
        ),
        (shard_with(pad=False), r"you did not pad"),
        (shard_with(combine=lambda s, e: s * e), r"seed \+ epoch, not seed \* epoch"),
    ],
    ids=["contiguous", "no-shuffle", "no-epoch", "no-padding", "seed-times-epoch"],
)
def test_shard_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 9\.1: for \d+ examples, .*" + hint):
        ch09.check_shard(wrong)


def test_shard_unknown_mistake_and_wrong_types_are_reported():
    with pytest.raises(AssertionError, match=r"you returned \[.*\], expected \[.*\]: shuffle with seed"):
        ch09.check_shard(lambda n, w, r, e, s: shard_with()(n, w, r, e, s)[::-1])
    with pytest.raises(AssertionError, match=r"should be a list of ints, got set"):
        ch09.check_shard(lambda *args: set(shard_with()(*args)))
    with pytest.raises(AssertionError, match=r"should hold ints"):
        ch09.check_shard(lambda *args: [float(i) for i in shard_with()(*args)])


def test_shard_check_leaves_global_random_state_alone():
    leaves_global_random_state_alone(ch09.check_shard, shard_with())


# --- 9.2 effective batch and learning rate ------------------------------------------------------


def scaling_with(processes=True, accumulation=True, rule="linear"):
    def scale_for_processes(base_lr, base_batch, batch_per_process, n, accumulation_steps):
        batch = batch_per_process * (n if processes else 1) * (accumulation_steps if accumulation else 1)
        ratio = batch / base_batch
        rate = {
            "linear": base_lr * ratio,
            "none": base_lr,
            "sqrt": base_lr * math.sqrt(ratio),
            "inverse": base_lr / ratio,
            "no-division": base_lr * batch,
        }[rule]
        return batch, rate

    return scale_for_processes


def test_scaling_right_answer_prints_one_line(capsys):
    ch09.check_scaling(scaling_with())
    ch09.check_scaling(lambda lr, b, p, n, a: [p * n * a, lr * p * n * a / b])
    assert capsys.readouterr().out == "✓ Exercise 9.2: effective batch and learning rate\n" * 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (scaling_with(accumulation=False), r"effective batch is 64, expected 128: each optimizer step also"),
        (scaling_with(processes=False), r"effective batch is 32, expected 128: DDP averages the gradients"),
        (scaling_with(processes=False, accumulation=False), r"is 16, expected 128: one step sees every"),
        (scaling_with(rule="none"), r"the learning rate is unchanged"),
        (scaling_with(rule="sqrt"), r"that is the square-root rule"),
        (scaling_with(rule="inverse"), r"your ratio is upside down"),
        (scaling_with(rule="no-division"), r"divide by base_batch"),
    ],
    ids=["no-accumulation", "no-processes", "per-process", "unscaled", "sqrt", "inverse", "no-division"],
)
def test_scaling_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 9\.2: for base_lr=0\.001, .*" + hint):
        ch09.check_scaling(wrong)


def test_scaling_wrong_shapes_and_unknown_rates_are_reported():
    with pytest.raises(AssertionError, match=r"return a pair \(effective_batch, learning_rate\)"):
        ch09.check_scaling(lambda *args: scaling_with()(*args)[1])
    with pytest.raises(AssertionError, match=r"both values should be numbers"):
        ch09.check_scaling(lambda *args: ("128", 0.004))
    with pytest.raises(AssertionError, match=r"your learning rate is 0\.008, expected 0\.004"):
        ch09.check_scaling(lambda *args: (scaling_with()(*args)[0], 2 * scaling_with()(*args)[1]))


# --- 9.3 a new order every epoch ----------------------------------------------------------------


def right_orders(sampler, epochs):
    orders = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    return orders


def late_set_epoch(sampler, epochs):
    orders = []
    for epoch in range(epochs):
        orders.append(list(sampler))
        sampler.set_epoch(epoch)
    return orders


def off_by_one(sampler, epochs):
    orders = []
    for epoch in range(1, epochs + 1):
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    return orders


def test_epoch_orders_right_answer_prints_one_line(capsys):
    ch09.check_epoch_orders(right_orders)
    assert capsys.readouterr().out == "✓ Exercise 9.3: a new order every epoch\n"


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda sampler, epochs: [list(sampler) for _ in range(epochs)], r"every epoch has the same order"),
        (late_set_epoch, r"you call set_epoch after reading the epoch"),
        (off_by_one, r"your epochs are off by one"),
        (
            lambda sampler, epochs: [iter(sampler) for _ in range(epochs)],
            r"each epoch's order should be a list",
        ),
    ],
    ids=["no-set-epoch", "set-epoch-after", "off-by-one", "iterators"],
)
def test_epoch_orders_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 9\.3: " + hint):
        ch09.check_epoch_orders(wrong)


def test_epoch_orders_wrong_length_and_unknown_mistake_are_reported():
    with pytest.raises(AssertionError, match=r"return a list of 4 lists, one per epoch"):
        ch09.check_epoch_orders(lambda sampler, epochs: right_orders(sampler, epochs - 1))
    with pytest.raises(AssertionError, match=r"you returned \[.*\], expected"):
        ch09.check_epoch_orders(lambda sampler, epochs: [o[::-1] for o in right_orders(sampler, epochs)])


# --- 9.4 ring all-reduce time -------------------------------------------------------------------


def test_ring_right_answers_print_one_line(capsys):
    ch09.check_ring_all_reduce(lambda size, n, bandwidth: 2 * (n - 1) / n * size / bandwidth)
    ch09.check_ring_all_reduce(lambda size, n, bandwidth: torch.tensor(2 * (n - 1) * size / (n * bandwidth)))
    assert capsys.readouterr().out == "✓ Exercise 9.4: ring all-reduce time\n" * 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda size, n, bw: (n - 1) / n * size / bw, r"that is one phase of two"),
        (lambda size, n, bw: 2 * (n - 1) * size / bw, r"each step of the ring sends one chunk"),
        (lambda size, n, bw: (n - 1) * size / bw, r"that is a parameter server's time"),
        (lambda size, n, bw: 2 * size / bw, r"the factor is 2\(N - 1\)/N, not 2"),
    ],
    ids=["one-phase", "whole-tensor-per-step", "parameter-server", "factor-2"],
)
def test_ring_typical_mistakes_are_named(wrong, hint):
    with pytest.raises(AssertionError, match=r"Exercise 9\.4: for 4e\+08 bytes, 4 processes, .*" + hint):
        ch09.check_ring_all_reduce(wrong)


def test_ring_unknown_mistake_and_non_numbers_are_reported():
    with pytest.raises(AssertionError, match=r"you computed 0\.4 s, expected 0\.06 s"):
        ch09.check_ring_all_reduce(lambda size, n, bw: 10 * size / bw)
    with pytest.raises(AssertionError, match=r"return a number of seconds, got str"):
        ch09.check_ring_all_reduce(lambda size, n, bw: "0.04 s")
