"""Data parallelism across processes (chapter 9): start-up from torchrun's environment, launchers, speed.

One process per device (a GPU, or a share of the CPU cores) holds a whole copy of the model, reads
its own shard of each batch, and averages its gradients with the others before every optimizer
step (:func:`bert_tutor.training.pretrain` does that part). This module starts such a process:

* :func:`process_group` reads what ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), chooses the backend (nccl with CUDA, gloo
  otherwise), one device per process, the CPU threads per process, joins the process group with a
  timeout and always leaves it (destroys it) on the way out. Without those variables it is a plain
  one-process run and forms no group. A mistake in the set-up raises :class:`DistributedSetupError`,
  one line that says what to fix.
* :func:`torchrun` runs ``python -m torch.distributed.run --standalone`` (a script or
  ``-m bert_tutor ...``) and :func:`launch` runs a function of an importable module in N processes;
  both kill every process they started, whatever happens.
* :func:`measure_speed` times training steps and the all-reduce of one step's gradients.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

__all__ = [
    "BACKENDS",
    "DistributedSetupError",
    "Process",
    "choose_backend",
    "choose_device",
    "default_threads",
    "free_port",
    "launch",
    "launch_variables",
    "lost_contact",
    "measure_speed",
    "process_group",
    "torchrun",
]

BACKENDS = ("gloo", "nccl")
DEFAULT_TIMEOUT = 300.0  # seconds a process waits for the others at a collective before giving up
_LAUNCHER_HINT = (
    "start the processes with torchrun, which sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and "
    "MASTER_PORT for each"
)


class DistributedSetupError(ValueError):
    """A mistake in how the processes were started, said in one line with what to fix."""


@dataclass(frozen=True)
class Process:
    """Who this process is. backend None: a plain run, no process group (rank 0 of 1).

    device: where its model lives (None: let the caller choose); threads: its CPU threads (None: left
    as PyTorch set them).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None
    device: torch.device | None = None
    threads: int | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, shows progress and writes files."""
        return self.rank == 0


# --- reading the set-up ------------------------------------------------------------------------


def _integer(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DistributedSetupError(f"{name}={value!r} is not a whole number") from None


def launch_variables(environ=None) -> dict | None:
    """torchrun's variables, checked: rank, world_size, local_rank, local_world_size, master_addr,
    master_port; None for a plain run (neither RANK nor WORLD_SIZE set)."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ and "WORLD_SIZE" not in environ:
        return None
    for present, missing in (("WORLD_SIZE", "RANK"), ("RANK", "WORLD_SIZE")):
        if missing not in environ:
            raise DistributedSetupError(
                f"{present}={environ[present]} is set but {missing} is not: {_LAUNCHER_HINT}, "
                f"or set {missing} in each process yourself"
            )
    world_size = _integer("WORLD_SIZE", environ["WORLD_SIZE"])
    rank = _integer("RANK", environ["RANK"])
    if world_size < 1:
        raise DistributedSetupError(f"WORLD_SIZE={world_size}: the number of processes must be at least 1")
    if not 0 <= rank < world_size:
        raise DistributedSetupError(
            f"RANK={rank} with WORLD_SIZE={world_size}: ranks run from 0 to {world_size - 1}, one per process"
        )
    local_rank = _integer("LOCAL_RANK", environ.get("LOCAL_RANK", str(rank)))
    local_world_size = _integer("LOCAL_WORLD_SIZE", environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if not 0 <= local_rank < local_world_size:
        raise DistributedSetupError(
            f"LOCAL_RANK={local_rank} with LOCAL_WORLD_SIZE={local_world_size}: local ranks run from 0 to "
            f"{local_world_size - 1} on each machine"
        )
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not environ.get(name):
            raise DistributedSetupError(
                f"{name} is not set: it names the machine and port of rank 0 (torchrun sets it from "
                f"--rdzv-endpoint HOST:PORT, or --standalone on one machine)"
            )
    return {
        "rank": rank,
        "world_size": world_size,
        "local_rank": local_rank,
        "local_world_size": local_world_size,
        "master_addr": environ["MASTER_ADDR"],
        "master_port": _integer("MASTER_PORT", environ["MASTER_PORT"]),
    }


def choose_backend(requested: str | None = None, cuda: bool | None = None) -> str:
    """nccl when CUDA GPUs are there, gloo otherwise; ``requested`` overrides, if it can work."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if requested is None:
        return "nccl" if cuda else "gloo"
    if requested not in BACKENDS:
        raise DistributedSetupError(f"backend {requested!r} is not one of {', '.join(BACKENDS)}")
    if requested == "nccl" and not cuda:
        raise DistributedSetupError(
            "the nccl backend needs CUDA GPUs and this PyTorch sees none (torch.cuda.is_available() is "
            "False): use --backend gloo on CPUs, or leave --backend out to choose automatically"
        )
    if requested == "nccl" and not dist.is_nccl_available():
        raise DistributedSetupError("this PyTorch was built without nccl: use --backend gloo")
    return requested


def choose_device(
    backend: str, local_rank: int, requested: str | None = None, gpus: int | None = None
) -> torch.device:
    """One device per process: ``cuda:LOCAL_RANK`` with nccl (or when CUDA is asked for), else the CPU."""
    gpus = (torch.cuda.device_count() if torch.cuda.is_available() else 0) if gpus is None else gpus
    kind = torch.device(requested).type if requested is not None else ("cuda" if backend == "nccl" else "cpu")
    if backend == "nccl" and kind != "cuda":
        raise DistributedSetupError(
            f"nccl runs on CUDA devices only, but --device {requested} was asked for: use --backend gloo"
        )
    if kind != "cuda":
        return torch.device(kind)
    if local_rank >= gpus:
        raise DistributedSetupError(
            f"LOCAL_RANK={local_rank} needs GPU {local_rank}, but this machine has {gpus}: start at most "
            f"{gpus} process(es) per machine (--nproc-per-node {max(gpus, 1)})"
        )
    return torch.device("cuda", local_rank)


def _cores() -> int:
    """CPU cores this process may run on (its affinity, which containers and taskset narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads(local_world_size: int, cores: int | None = None) -> int:
    """CPU threads per process so that the processes of one machine share its cores: cores // processes.

    torchrun sets OMP_NUM_THREADS=1 in each worker when more than one runs per machine and the variable
    is not set: safe, but it leaves most cores idle on a big machine. This divides them instead.
    """
    cores = _cores() if cores is None else cores
    return max(1, cores // max(1, local_world_size))


# --- the process group -------------------------------------------------------------------------


def _wait_for_master(address: str, port: int, timeout: float) -> None:
    """Connect to rank 0's store until it answers; fail in one line after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=max(0.1, min(1.0, timeout))).close()
            return
        except OSError as error:
            if time.monotonic() >= deadline:
                reason = error.strerror or type(error).__name__
                raise DistributedSetupError(
                    f"cannot reach rank 0 at {address}:{port} (MASTER_ADDR:MASTER_PORT) within {timeout:g} s "
                    f"({reason}): start rank 0 too, or correct the address and port (torchrun: "
                    f"--rdzv-endpoint HOST:PORT), and let that port through any firewall"
                ) from None
            time.sleep(0.1)


@contextlib.contextmanager
def process_group(
    backend: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    threads: int | None = None,
    device: str | None = None,
) -> Iterator[Process]:
    """Join the process group that torchrun's variables describe; yield this :class:`Process`.

    backend: "gloo" or "nccl" (default: nccl when CUDA is available, gloo otherwise). timeout:
    seconds to wait for rank 0 at start-up and for the other processes at each collective, after
    which this process fails instead of hanging. threads: CPU threads of this process (default:
    the machine's cores divided among its processes). device: "cpu" or "cuda" (default: the
    backend's; a CUDA process uses GPU ``LOCAL_RANK``).

    Without RANK and WORLD_SIZE in the environment it is a plain run: no group is formed and
    ``threads`` and ``device`` are passed through unchanged. On a clean exit every process waits
    for the others (rank 0 may still be writing files); on any exit the group is destroyed.
    """
    variables = launch_variables()
    if variables is None:
        yield Process(device=None if device is None else torch.device(device), threads=threads)
        return
    if timeout <= 0:
        raise DistributedSetupError(f"timeout must be a positive number of seconds, got {timeout}")
    rank, world_size, local_rank = variables["rank"], variables["world_size"], variables["local_rank"]
    backend = choose_backend(backend)
    chosen = choose_device(backend, local_rank, device)
    threads = threads if threads is not None else default_threads(variables["local_world_size"])
    torch.set_num_threads(threads)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if rank != 0:
        _wait_for_master(variables["master_addr"], variables["master_port"], timeout)
    address = f"{variables['master_addr']}:{variables['master_port']}"
    try:
        dist.init_process_group(
            backend, rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=timeout)
        )
    except RuntimeError as error:  # DistNetworkError, DistStoreError: a wrong address, a port in use
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DistributedSetupError(
            f"rank {rank} of {world_size} could not join the process group at {address} ({first}): "
            f"check MASTER_ADDR and MASTER_PORT (torchrun: --rdzv-endpoint), that the port is free on "
            f"rank 0's machine and that all {world_size} processes start within {timeout:g} s"
        ) from None
    try:
        yield Process(rank, world_size, local_rank, variables["local_world_size"], backend, chosen, threads)
        dist.barrier(device_ids=[chosen.index] if backend == "nccl" else None)
    finally:  # after an exception too; a process killed by a signal leaves it to the operating system
        dist.destroy_process_group()


def lost_contact(error: BaseException) -> bool:
    """Whether an error of a collective means another process died, hung or became unreachable."""
    words = ("gloo", "nccl", "connection", "timed out", "timeout", "peer")
    return isinstance(error, dist.DistError) or any(word in str(error).lower() for word in words)


# --- launching processes -----------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that nothing listens on now (the system's choice), for a rank 0 on this machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _child_environment(threads: int | None = None) -> dict[str, str]:
    """os.environ, with this checkout importable (for ``-m bert_tutor``) and without launch variables."""
    environment = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    root = str(Path(__file__).resolve().parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (root, environment.get("PYTHONPATH")) if p)
    if threads is not None:
        environment["OMP_NUM_THREADS"] = str(threads)
    return environment


def _descendants(pid: int) -> list[int]:
    """Process ids of the children of ``pid``, their children and so on, from /proc (Linux; [] elsewhere).

    torchrun starts each worker in a session of its own, so killing torchrun's process group does not
    reach them: they are found by their parents instead.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])  # fields after "(name)": state, ppid, ...
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, waiting = [], [pid]
    while waiting:
        for child in children.get(waiting.pop(), []):
            found.append(child)
            waiting.append(child)
    return found


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a running process and every process under it, then reap it."""
    tree = [process.pid, *_descendants(process.pid)]
    for pid in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    process.communicate()


def torchrun(
    arguments: Sequence[str],
    processes: int = 2,
    timeout: float = 600.0,
    threads: int | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``torchrun --standalone --nproc-per-node processes ARGUMENTS`` and wait for it.

    arguments: a script and its arguments, or ``["-m", "bert_tutor", "pretrain", ...]``. If the call
    times out or is interrupted, torchrun and every worker are killed, so nothing outlives it.
    threads: OMP_NUM_THREADS for the workers (torchrun's default is 1 when it starts several).
    check: raise a RuntimeError that ends with the last lines torchrun printed when it fails.
    Returns stdout and stderr as text.
    """
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        str(processes),
        *map(str, arguments),
    ]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_child_environment(threads)
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except BaseException:  # a timeout, or the learner interrupting the kernel
        _kill_tree(child)
        raise
    result = subprocess.CompletedProcess(command, child.returncode, stdout, stderr)
    if check and child.returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"torchrun exited with {child.returncode}; the end of what it printed:\n{tail}")
    return result


def _launched(local_rank, function, args, world_size, port, backend, threads, directory):
    """Body of each process started by :func:`launch`: torchrun's variables, the group, the call."""
    os.environ.update(
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    with process_group(backend=backend, threads=threads, timeout=60.0) as process:
        result = function(*args)
    torch.save(result, Path(directory) / f"rank{process.rank}.pt")


def launch(
    function: Callable,
    processes: int = 2,
    args: tuple = (),
    backend: str | None = "gloo",
    threads: int | None = 1,
    timeout: float = 300.0,
) -> list:
    """Call ``function(*args)`` in ``processes`` new processes that form a process group; return what
    each returned, in rank order.

    function must be importable by name (defined in a module, not in a notebook): the processes are
    started fresh ("spawn"), as torchrun starts them. If one fails the others are stopped and its
    error is raised; after ``timeout`` seconds all are killed.
    """
    context = torch.multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bert-tutor-launch-") as directory:
        workers = torch.multiprocessing.start_processes(
            _launched,
            args=(function, args, processes, free_port(), backend, threads, directory),
            nprocs=processes,
            join=False,
            start_method=context.get_start_method(),
        )
        deadline = time.monotonic() + timeout
        try:
            while not workers.join(timeout=max(0.0, min(1.0, deadline - time.monotonic()))):
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{processes} processes running {function.__name__} took over {timeout} s"
                    )
        except (
            torch.multiprocessing.ProcessRaisedException,
            torch.multiprocessing.ProcessExitedException,
        ) as error:
            lines = [line for line in str(error).strip().splitlines() if line.strip()]
            raise RuntimeError(f"rank {error.error_index} of {processes} failed: {lines[-1]}") from None
        finally:
            for worker in workers.processes:
                if worker.is_alive():
                    worker.kill()
                worker.join()
        return [
            torch.load(Path(directory) / f"rank{rank}.pt", weights_only=False) for rank in range(processes)
        ]


# --- speed -------------------------------------------------------------------------------------


def _speed_worker(model_fields: dict, batch_size: int, steps: int, length: int) -> dict:
    """In each process of a group: seconds per training step (the trainer's own loop) and per all-reduce
    of one step's gradients. ``batch_size`` is per process: the global batch is batch_size x processes."""
    from bert_tutor.bert import BertConfig, BertForPreTraining
    from bert_tutor.pretraining import NspPair
    from bert_tutor.training import PretrainingConfig, pretrain

    world_size = dist.get_world_size()
    on_gpu = dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    config = BertConfig(**model_fields)
    generator = torch.Generator().manual_seed(0)
    half = (length - 3) // 2  # [CLS] A [SEP] B [SEP] fills the length: no padding
    pairs = [
        NspPair(
            tuple(torch.randint(5, config.vocab_size, (half,), generator=generator).tolist()),
            tuple(torch.randint(5, config.vocab_size, (length - 3 - half,), generator=generator).tolist()),
            bool(i % 2),
        )
        for i in range(batch_size * world_size * steps)
    ]
    special = (2, 3, 0, 4, config.vocab_size)

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize()
        dist.barrier()

    def timed(n: int) -> tuple[float, int]:
        torch.manual_seed(0)
        model = BertForPreTraining(config).to(device)
        training = PretrainingConfig(steps=n, batch_size=batch_size * world_size, warmup_steps=0)
        synchronize()
        start = time.perf_counter()
        pretrain(model, pairs, special, training, progress=False)
        synchronize()
        return time.perf_counter() - start, sum(p.numel() for p in model.parameters())

    timed(2)  # warm-up: allocations, kernels, the first communication
    seconds, parameters = timed(steps)  # with the trainer's set-up (optimizer, DDP), small beside the steps
    flat = torch.ones(parameters, device=device)  # the bytes of one step's gradients
    for _ in range(2):
        dist.all_reduce(flat)
    synchronize()
    repeats = 10
    start = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(flat)
    synchronize()
    return {
        "step_seconds": seconds / steps,
        "all_reduce_seconds": (time.perf_counter() - start) / repeats if world_size > 1 else math.nan,
        "parameters": parameters,
        "threads": torch.get_num_threads(),
    }


def measure_speed(
    model_fields: dict,
    processes: int,
    batch_size: int = 16,
    steps: int = 20,
    length: int = 64,
    backend: str | None = None,
    threads: int | None = None,
    timeout: float = 600.0,
) -> dict:
    """Time training steps of a BERT (``BertConfig(**model_fields)``) in ``processes`` processes.

    batch_size: pairs per process per step; length: tokens per pair. Returns step_seconds (the
    slowest rank's), steps_per_second, examples_per_second (all processes together),
    all_reduce_seconds (one all-reduce of a step's gradients, NaN for one process), parameters,
    threads (per process; default the cores divided among the processes).
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    threads = threads if threads is not None else default_threads(processes)
    results = launch(
        _speed_worker,
        processes,
        args=(dict(model_fields), batch_size, steps, length),
        backend=backend,
        threads=threads,
        timeout=timeout,
    )
    step = max(r["step_seconds"] for r in results)
    all_reduce = max(r["all_reduce_seconds"] for r in results)
    return {
        "processes": processes,
        "threads": results[0]["threads"],
        "batch_per_process": batch_size,
        "global_batch": batch_size * processes,
        "step_seconds": step,
        "steps_per_second": 1.0 / step,
        "examples_per_second": batch_size * processes / step,
        "all_reduce_seconds": all_reduce,
        "parameters": results[0]["parameters"],
    }
