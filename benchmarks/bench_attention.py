"""Naive vs fused multi-head attention on the CPU, at BERT-base width (768 hidden, 12 heads).

For each sequence length n, one batch holds about TOKENS_PER_BATCH tokens (batch 32 at n = 64
down to 2 at n = 1024), so the projections cost the same at every n and the growth you see is
attention's n^2. Dropout is 0, so both paths do the same arithmetic.

Times: medians of REPEATS runs after a warm-up, for the forward pass alone (under no_grad) and
for forward + backward. The two paths run in turns, so a busy machine slows both alike.
Memory is measured, not computed: the peak of CPU bytes allocated during one forward + backward
step above what was held before it (gradients included), from the allocation events that
``torch.profiler`` records with ``profile_memory=True``. The last column is computed: the bytes
of one (batch, heads, n, n) float32 matrix, which the naive path materialises (several times)
and the fused path never does.

Run:  python benchmarks/bench_attention.py [--quick]      (about 1-2 minutes; --quick: seconds)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from bert_tutor.attention import MultiHeadAttention

HIDDEN, HEADS = 768, 12
TOKENS_PER_BATCH = 2048
MiB = 2**20


def median_seconds(steps: list[Callable[[], None]], repeats: int) -> list[float]:
    """Median wall time of each step over ``repeats`` rounds, one warm-up first; steps take turns."""
    times = [[] for _ in steps]
    for round_ in range(repeats + 1):
        for step, step_times in zip(steps, times, strict=True):
            start = time.perf_counter()
            step()
            if round_ > 0:  # round 0 warms up
                step_times.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def peak_bytes(step: Callable[[], None]) -> int:
    """Peak CPU bytes allocated while ``step`` runs, above what was allocated before it."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    allocated = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        allocated += event.nbytes()  # positive: allocated; negative: freed
        peak = max(peak, allocated)
    return peak


def forward_step(attention: MultiHeadAttention, x: torch.Tensor) -> Callable[[], None]:
    def step():
        with torch.no_grad():
            attention(x)

    return step


def forward_backward_step(attention: MultiHeadAttention, x: torch.Tensor) -> Callable[[], None]:
    def step():
        attention.zero_grad(set_to_none=True)  # every step allocates its gradients afresh
        x.grad = None
        output, _ = attention(x)
        output.sum().backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="lengths 64-256 and fewer repeats (a smoke test)"
    )
    args = parser.parse_args()
    lengths, repeats = ((64, 128, 256), 2) if args.quick else ((64, 128, 256, 512, 1024), 7)

    torch.set_num_threads(2)
    torch.manual_seed(0)
    naive = MultiHeadAttention(HIDDEN, HEADS, fused=False)
    fused = MultiHeadAttention(HIDDEN, HEADS, fused=True)
    fused.load_state_dict(naive.state_dict())
    print(
        f"hidden {HIDDEN}, heads {HEADS}, ~{TOKENS_PER_BATCH} tokens per batch, float32, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; times in ms (median of {repeats})"
    )
    header = (
        f"{'n':>5} {'batch':>5} | {'fwd naive':>9} {'fwd fused':>9} {'speed-up':>8} | "
        f"{'f+b naive':>9} {'f+b fused':>9} {'speed-up':>8} | "
        f"{'peak MiB naive':>14} {'peak MiB fused':>14} | {'one n x n MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    for n in lengths:
        batch = max(1, TOKENS_PER_BATCH // n)
        x = torch.randn(batch, n, HIDDEN, requires_grad=True)
        forward = median_seconds([forward_step(naive, x), forward_step(fused, x)], repeats)
        both = median_seconds([forward_backward_step(naive, x), forward_backward_step(fused, x)], repeats)
        peaks = []
        for attention in (naive, fused):
            attention.zero_grad(set_to_none=True)  # free the last gradients before counting
            x.grad = None
            peaks.append(peak_bytes(forward_backward_step(attention, x)))
        print(
            f"{n:>5} {batch:>5} | "
            f"{forward[0] * 1e3:>9.1f} {forward[1] * 1e3:>9.1f} {forward[0] / forward[1]:>7.2f}x | "
            f"{both[0] * 1e3:>9.1f} {both[1] * 1e3:>9.1f} {both[0] / both[1]:>7.2f}x | "
            f"{peaks[0] / MiB:>14.1f} {peaks[1] / MiB:>14.1f} | {batch * HEADS * n * n * 4 / MiB:>13.1f}"
        )


if __name__ == "__main__":
    main()
