"""bert_tutor.distributed and DDP in the trainer: real processes (gloo, 2 CPU cores), no mocks.

The proofs: two processes with half the batch each train the parameters that one process trains
with the whole batch; a killed worker makes the other one exit (no hang), the last checkpoint is
intact and resuming finishes the run bit for bit; a bad set-up is one line that says what to fix.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

from bert_tutor import distributed, training
from bert_tutor.bert import BertConfig, BertForPreTraining
from bert_tutor.cli import main
from bert_tutor.distributed import (
    DistributedSetupError,
    choose_backend,
    choose_device,
    default_threads,
    free_port,
    launch_variables,
    process_group,
)
from bert_tutor.training import PretrainingConfig, load_checkpoint, pretrain, step_examples

from .test_training import SPECIAL, _model, _pairs

ROOT = Path(__file__).resolve().parents[1]
STEPS, EVERY = 60, 5
TINY = [
    "pretrain",
    "--size",
    "tiny",
    "--documents",
    "60",
    "--vocab-size",
    "200",
    "--batch-size",
    "8",
    "--threads",
    "1",
    "--dropout",
    "0",
    "--steps",
    str(STEPS),
    "--warmup-steps",
    "5",
    "--checkpoint-every",
    str(EVERY),
    "--backend",  # on a machine with GPUs too: gloo on the CPU (a GPU cannot hold two nccl ranks)
    "gloo",
    "--device",
    "cpu",
]
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch):
    """No launch variables from outside, and PyTorch's thread count restored after each test."""
    for name in LAUNCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    assert not (dist.is_available() and dist.is_initialized()), "a test left a process group behind"


def _launched_as(monkeypatch, rank, world_size, port=None):
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port or free_port()))


def _parameters(directory):
    return load_file(Path(directory) / "model.safetensors")


# --- set-up --------------------------------------------------------------------------------------


def test_without_launch_variables_it_is_a_plain_run_with_no_group():
    assert launch_variables({}) is None
    with process_group(threads=3, device="cpu") as process:
        assert (process.rank, process.world_size, process.backend) == (0, 1, None)
        assert process.is_main and process.threads == 3 and process.device == torch.device("cpu")
        assert not dist.is_initialized()


def test_launch_variables_are_read_as_torchrun_sets_them():
    environ = dict(
        RANK="3",
        WORLD_SIZE="4",
        LOCAL_RANK="1",
        LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="node0",
        MASTER_PORT="29500",
    )
    assert launch_variables(environ) == {
        "rank": 3,
        "world_size": 4,
        "local_rank": 1,
        "local_world_size": 2,
        "master_addr": "node0",
        "master_port": 29500,
    }


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WORLD_SIZE": "2"}, r"WORLD_SIZE=2 is set but RANK is not: start the processes with torchrun"),
        ({"RANK": "0"}, r"RANK=0 is set but WORLD_SIZE is not: start the processes with torchrun"),
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2 with WORLD_SIZE=2: ranks run from 0 to 1"),
        ({"RANK": "one", "WORLD_SIZE": "2"}, r"RANK='one' is not a whole number"),
        (
            {"RANK": "0", "WORLD_SIZE": "2"},
            r"MASTER_ADDR is not set: it names the machine and port of rank 0",
        ),
        (
            {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"},
            r"LOCAL_RANK=2 with LOCAL_WORLD_SIZE=2",
        ),
    ],
    ids=[
        "world-size-without-rank",
        "rank-without-world-size",
        "rank-too-big",
        "not-a-number",
        "no-master",
        "local-rank-too-big",
    ],
)
def test_a_bad_environment_is_one_line_that_says_what_to_fix(environ, message):
    with pytest.raises(DistributedSetupError, match=message) as error:
        launch_variables(environ)
    assert "\n" not in str(error.value)


def test_backend_is_nccl_with_cuda_and_gloo_without_unless_asked():
    assert choose_backend(cuda=True) == "nccl"
    assert choose_backend(cuda=False) == "gloo"
    assert choose_backend("gloo", cuda=True) == "gloo"
    with pytest.raises(DistributedSetupError, match=r"nccl backend needs CUDA GPUs .*use --backend gloo"):
        choose_backend("nccl", cuda=False)


def test_each_process_gets_its_own_device():
    assert choose_device("nccl", 1, gpus=2) == torch.device("cuda", 1)
    assert choose_device("gloo", 1, gpus=2) == torch.device("cpu")
    assert choose_device("gloo", 1, "cuda", gpus=2) == torch.device("cuda", 1)
    with pytest.raises(
        DistributedSetupError, match=r"this machine has 2: start at most 2 .*--nproc-per-node 2"
    ):
        choose_device("nccl", 2, gpus=2)
    with pytest.raises(DistributedSetupError, match=r"nccl runs on CUDA devices only"):
        choose_device("nccl", 0, "cpu", gpus=1)


def test_processes_times_threads_never_exceed_the_cores():
    assert default_threads(1, cores=2) == 2
    assert default_threads(2, cores=2) == 1
    assert default_threads(2, cores=16) == 8
    assert default_threads(3, cores=2) == 1  # more processes than cores: one thread each, at least


def test_nccl_without_cuda_exits_2_with_one_line(monkeypatch, tmp_path, capsys):
    _launched_as(monkeypatch, 0, 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*TINY, "--backend", "nccl", "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "nccl backend needs CUDA GPUs" in error and "--backend gloo" in error
    assert not (tmp_path / "out").exists()


def test_an_unreachable_master_fails_within_the_timeout_with_one_line(monkeypatch, tmp_path, capsys):
    port = free_port()  # nothing listens there: rank 0 was never started
    _launched_as(monkeypatch, 1, 2, port)
    start = time.monotonic()
    assert main([*TINY, "--timeout", "2", "--output", str(tmp_path / "out")]) == 2
    assert time.monotonic() - start < 10
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"cannot reach rank 0 at 127.0.0.1:{port} (MASTER_ADDR:MASTER_PORT) within 2 s" in error
    assert "--rdzv-endpoint" in error


def test_the_group_is_destroyed_even_when_the_body_fails(monkeypatch):
    _launched_as(monkeypatch, 0, 1)
    with pytest.raises(KeyError), process_group(backend="gloo", threads=1) as process:
        assert dist.is_initialized() and process.backend == "gloo" and process.threads == 1
        assert torch.get_num_threads() == 1
        raise KeyError("a bug in the training code")
    assert not dist.is_initialized()


# --- data: samplers, shards, masks ---------------------------------------------------------------


@pytest.mark.parametrize(("world_size", "accumulation"), [(2, 1), (2, 2), (4, 1)])
def test_ranks_share_every_micro_batch_of_the_one_process_step(world_size, accumulation):
    config = PretrainingConfig(steps=20, batch_size=8, accumulation_steps=accumulation, warmup_steps=0)
    for step in (0, 1, 5, 6, 13):  # 50 pairs: 6 steps an epoch, so these cross three epochs
        alone = step_examples(50, config, step)
        ranks = [step_examples(50, config, step, rank, world_size) for rank in range(world_size)]
        for k, micro in enumerate(alone):
            shares = [r[k] for r in ranks]
            assert [i for share in shares for i in share] != [] and all(
                len(s) == len(micro) // world_size for s in shares
            )
            assert sorted(i for share in shares for i in share) == sorted(micro)  # disjoint, and the whole
            assert all(share == micro[rank::world_size] for rank, share in enumerate(shares))


def test_the_shards_of_an_epoch_are_disjoint_cover_it_and_change_every_epoch():
    config = PretrainingConfig(steps=20, batch_size=8, warmup_steps=0)

    def epoch(e, rank):  # 48 pairs, 6 steps an epoch
        return [i for s in range(6 * e, 6 * e + 6) for i in step_examples(48, config, s, rank, 2)[0]]

    first = [epoch(0, rank) for rank in (0, 1)]
    assert not set(first[0]) & set(first[1]) and sorted(first[0] + first[1]) == list(range(48))
    assert [epoch(1, rank) for rank in (0, 1)] != first  # set_epoch: a new order each epoch


def test_one_process_keeps_the_order_the_trainer_always_had():
    config = PretrainingConfig(steps=20, batch_size=8, warmup_steps=0, seed=7)
    order = torch.randperm(50, generator=training._generator(7, 2)).tolist()  # epoch 2: (seed, epoch)
    assert step_examples(50, config, 13) == [order[8:16]]  # step 13 = epoch 2, step 1 of it


def test_a_batch_that_processes_cannot_share_equally_is_refused():
    with pytest.raises(
        ValueError, match=r"micro-batch of 8 pairs .* cannot be shared equally by 3 processes"
    ):
        step_examples(50, PretrainingConfig(steps=5, batch_size=8, warmup_steps=0), 0, 0, 3)


# --- the trainer in a process group of one (in this process) --------------------------------------


def test_a_group_of_one_trains_exactly_as_no_group(monkeypatch, tmp_path):
    config = PretrainingConfig(steps=6, batch_size=8, accumulation_steps=2, warmup_steps=2)
    pairs = _pairs()
    torch.set_num_threads(1)
    plain_model = _model()
    plain = pretrain(plain_model, pairs, SPECIAL, config, progress=False)
    _launched_as(monkeypatch, 0, 1)
    with process_group(backend="gloo", threads=1):
        grouped_model = _model()
        grouped = pretrain(
            grouped_model, pairs, SPECIAL, config, checkpoint=tmp_path / "c.pt", progress=False
        )
    assert grouped == plain
    for (name, ours), theirs in zip(
        grouped_model.state_dict().items(), plain_model.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs), name


def test_accumulation_all_reduces_only_on_the_last_micro_batch(monkeypatch):
    """With DistributedDataParallel.no_sync on all but the last micro-batch, a step of 3 micro-batches
    all-reduces each gradient bucket once, as a step of one micro-batch does."""
    calls = []
    real = training.DistributedDataParallel

    def counting(module, **kwargs):
        ddp = real(module, **kwargs)

        def hook(state, bucket):
            calls.append(bucket.index())
            return default_hooks.allreduce_hook(state, bucket)

        ddp.register_comm_hook(None, hook)
        return ddp

    monkeypatch.setattr(training, "DistributedDataParallel", counting)
    _launched_as(monkeypatch, 0, 1)
    counts = []
    with process_group(backend="gloo", threads=1):
        for accumulation in (1, 3):
            calls.clear()
            config = PretrainingConfig(steps=2, batch_size=6, accumulation_steps=accumulation, warmup_steps=0)
            pretrain(_model(), _pairs(), SPECIAL, config, progress=False)
            counts.append(len(calls))
    assert counts[0] > 0 and counts[1] == counts[0]


# --- real processes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """`bert-tutor pretrain` under torchrun, 2 processes (gloo), run straight through."""
    output = tmp_path_factory.mktemp("ddp") / "run"
    result = distributed.torchrun(
        ["-m", "bert_tutor", *TINY, "--output", str(output)], processes=2, timeout=120
    )
    return output, result


def test_two_processes_with_half_the_batch_train_the_parameters_of_one_with_the_whole(ddp_run, tmp_path):
    output, _ = ddp_run
    alone = tmp_path / "alone"
    assert main([*TINY, "--output", str(alone)]) == 0
    ours, theirs = _parameters(output), _parameters(alone)
    assert ours.keys() == theirs.keys()
    # float32 after 60 AdamW steps: rounding only (measured 5e-6; 1e-2 without weighting each rank's
    # masked-LM loss by its share of the masked tokens)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], atol=5e-5, rtol=1e-4, msg=name)
    two, one = (json.loads((d / "history.json").read_text()) for d in (output, alone))
    assert (two["processes"], one["processes"]) == (2, 1)
    assert [h["step"] for h in two["history"]] == list(range(1, STEPS + 1))
    for a, b in zip(two["history"], one["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)


def test_only_rank_zero_prints_and_writes(ddp_run):
    output, result = ddp_run
    assert result.stdout.count("held-out: MLM accuracy") == 1
    assert sorted(p.name for p in output.iterdir()) == [
        "checkpoint.pt",
        "config.json",
        "history.json",
        "model.safetensors",
        "vocab.txt",
    ]


def _start_rank(rank, port, output, threads=1):
    """One worker as torchrun would start it, without torchrun, in its own process group."""
    environment = distributed._child_environment()
    environment.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "bert_tutor", *TINY, "--output", str(output), "--timeout", "30"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_a_killed_worker_stops_the_other_and_resuming_finishes_the_run_bit_for_bit(ddp_run, tmp_path):
    output = tmp_path / "run"
    port = free_port()
    workers = [_start_rank(rank, port, output) for rank in (0, 1)]
    try:
        deadline = time.monotonic() + 90
        while not (output / "checkpoint.pt").exists():  # the first checkpoint: step 5
            assert time.monotonic() < deadline, "no checkpoint was written"
            assert workers[0].poll() is None, workers[0].communicate()
            time.sleep(0.01)
        workers[1].kill()  # SIGKILL: no goodbye, as when a machine dies
        killed = time.monotonic()
        _, error = workers[0].communicate(timeout=60)
        assert time.monotonic() - killed < 60
        assert workers[0].returncode != 0
        assert "lost contact with the other processes" in error.strip().splitlines()[-1]
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.communicate()
    saved = torch.load(output / "checkpoint.pt", weights_only=True)  # intact: it loads, and resumes
    model = BertForPreTraining(BertConfig(**saved["model_config"]))
    step, history = load_checkpoint(output / "checkpoint.pt", model)
    assert step % EVERY == 0 and 0 < step < STEPS and len(history) == step

    distributed.torchrun(["-m", "bert_tutor", *TINY, "--output", str(output), "--resume"], timeout=120)
    record = json.loads((output / "history.json").read_text())
    assert [h["step"] for h in record["history"]] == list(range(1, STEPS + 1))
    straight = _parameters(ddp_run[0])
    for name, value in _parameters(output).items():
        assert torch.equal(value, straight[name]), name
    straight_history = json.loads((ddp_run[0] / "history.json").read_text())["history"]
    assert record["history"] == straight_history


def test_launch_runs_a_function_in_a_group_and_returns_each_ranks_result():
    assert distributed.launch(dist.get_world_size, 2) == [2, 2]


def test_torchrun_helper_leaves_no_process_behind_on_timeout(tmp_path):
    script = tmp_path / "sleeper.py"
    script.write_text(  # each worker writes its process id, then sleeps past the timeout
        "import os, pathlib, time\n"
        f"folder = pathlib.Path({str(tmp_path)!r})\n"
        "(folder / f'pid{os.environ[\"RANK\"]}').write_text(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        distributed.torchrun([script], processes=2, timeout=8)
    pids = [int(p.read_text()) for p in tmp_path.glob("pid*")]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids):
        assert time.monotonic() < deadline, "a worker outlived its torchrun"
        time.sleep(0.1)


def _running(pid):
    """Whether a process exists and is not a zombie (killed, waiting for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
