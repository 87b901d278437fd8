"""Data-parallel pretraining speed: 1 process against 2, with bert_tutor's own trainer under DDP.

For each model, three settings, each in fresh processes (``bert_tutor.distributed.measure_speed``):

    1 process    the whole batch B, all the cores (threads = cores)
    1 x 1 thread the same on one thread: what one core does (for reference, no efficiency)
    2 x B/2      two processes share the same batch B (what chapter 9 runs: the same steps, faster or not)
    2 x B        each of two processes takes a batch of B (the usual way: twice the examples per step)

A step is the trainer's (``bert_tutor.training.pretrain``): masking, forward, backward, the gradients'
all-reduce (DDP, in buckets, during the backward pass), clipping and AdamW. Its time is a run of n
steps divided by n, after a warm-up run of 2 steps (the trainer's own set-up, the optimizer and the
DDP wrapper, is counted in, small beside the steps); the slowest rank's time counts. "all-reduce" is one
``all_reduce`` of a tensor the size of all the gradients, timed on its own (10 times, after 2): the
communication a step needs if none of it overlapped the backward pass. Speed-up is examples/s with N
processes / examples/s with 1 process (all the cores); scaling efficiency is speed-up / N.

On a CPU the settings share the same cores (one process already uses them all through its threads),
so the best to hope for is a speed-up near 1, an efficiency near 1/N: data parallelism does not add
cores. With GPUs each process brings a device of its own, and the ideal is a speed-up of N.

Models: "course" is chapter 7's (``CHAPTER7``: BertConfig's small defaults, a vocabulary of 1000,
pairs of 48 tokens, batch 64); "base-2L" is BERT-base's width (768 hidden, 12 heads, vocabulary
30522) with 2 layers, pairs of 128 tokens, batch 8.

Run:  python benchmarks/bench_ddp.py [--steps N] [--models course,base-2L] [--backend nccl --device cuda]
      (about two minutes on an idle 2-core machine). With CUDA, the default backend is nccl and each
      process needs a GPU of its own: on a one-GPU machine only the 1-process rows can run.
"""

from __future__ import annotations

import argparse
import math
import os
import platform

import torch

from bert_tutor.distributed import DistributedSetupError, measure_speed
from bert_tutor.recipes import CHAPTER7, MODEL_SIZES

MODELS = {
    "course": (
        {
            "vocab_size": CHAPTER7.vocab_size,
            "max_position_embeddings": CHAPTER7.max_length,
            "hidden_dropout": 0.0,
            "attention_dropout": 0.0,
            **MODEL_SIZES[CHAPTER7.size],
        },
        CHAPTER7.max_length,
        CHAPTER7.training.batch_size,
    ),
    "base-2L": (
        {
            "vocab_size": 30522,
            "max_position_embeddings": 128,
            **MODEL_SIZES["base"],
            "num_layers": 2,
        },
        128,
        8,
    ),
}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--models", default="course,base-2L", help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--backend", default=None, help="gloo or nccl (default: nccl with CUDA)")
    args = parser.parse_args()

    cores = _cores()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "CPU"
    print(
        f"torch {torch.__version__}, {cores} CPU cores for this process, "
        f"{'CUDA: ' + device if torch.cuda.is_available() else 'no GPU'}, "
        f"load average before: {', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    header = (
        f"{'model':<8} {'setting':<12} {'procs':>5} {'thr/proc':>8} {'batch/proc':>10} {'step ms':>8} "
        f"{'steps/s':>8} {'examples/s':>10} {'all-reduce ms':>13} {'share':>6} {'speed-up':>8} "
        f"{'efficiency':>10}"
    )
    print(header)
    print("-" * len(header))
    for name in args.models.split(","):
        fields, length, batch = MODELS[name]
        baseline = None
        for setting, processes, per_process, threads in (
            ("1 process", 1, batch, None),
            ("1 x 1 thread", 1, batch, 1),
            (f"2 x {batch // 2}", 2, batch // 2, None),
            (f"2 x {batch}", 2, batch, None),
        ):
            try:
                speed = measure_speed(
                    fields,
                    processes,
                    per_process,
                    steps=args.steps,
                    length=length,
                    backend=args.backend,
                    threads=threads,
                )
            except (DistributedSetupError, RuntimeError) as error:
                print(f"{name:<8} {setting:<12} {processes:>5}  not run: {str(error).splitlines()[0][:90]}")
                continue
            if threads is None and processes == 1:
                baseline = speed["examples_per_second"]
            all_reduce = speed["all_reduce_seconds"]
            share = all_reduce / speed["step_seconds"] if not math.isnan(all_reduce) else math.nan
            speedup = speed["examples_per_second"] / baseline if baseline else math.nan
            efficiency = speedup / processes
            if threads is not None:  # a reference row: one core's worth, not a scaling figure
                speedup = efficiency = math.nan
            print(
                f"{name:<8} {setting:<12} {processes:>5} {speed['threads']:>8} {per_process:>10} "
                f"{1000 * speed['step_seconds']:>8.1f} {speed['steps_per_second']:>8.2f} "
                f"{speed['examples_per_second']:>10.1f} {1000 * all_reduce:>13.1f} {share:>6.0%} "
                f"{speedup:>8.2f} {efficiency:>10.0%}"
            )
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
