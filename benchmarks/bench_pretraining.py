"""Pretraining speed: bert_tutor's BertForPreTraining against Hugging Face's, on the CPU.

One process, one run: for each config, the same weights (ours converted with ``bert_tutor.hf``), the
same batch and the same optimiser on three contenders:

    ours        bert_tutor.bert.BertForPreTraining (fused attention; masked-LM head on the masked
                positions only: ``masked_positions`` (B, n) and ``mlm_labels``)
    HF sdpa     transformers.BertForPreTraining, attn_implementation="sdpa"
    HF eager    transformers.BertForPreTraining, attn_implementation="eager"
                (both get mlm labels (B, n) with -100 where nothing is predicted: the head scores
                every position, as Hugging Face's does)

A training step is zero_grad, forward with both losses (masked-LM + next sentence), backward and one
AdamW step (``fused=True``, PyTorch's one-kernel AdamW, for every contender; ``--plain-adamw``: the
default, a loop of element-wise ops, which at base-2L costs about as much as all the matmuls);
dropout is the configs' default 0.1 in training (attention and hidden), as in real pretraining, unless
``--dropout`` says otherwise. With attention dropout, PyTorch's CPU flash kernel cannot run:
``F.scaled_dot_product_attention`` (ours and HF sdpa alike) falls back to its math path, which forms
the (B, H, n, n) weights; ``--dropout 0`` shows the flash kernel. Inference is one forward pass in
eval mode under no_grad, with the same inputs.

The batch: rows of ``[CLS] A [SEP] B [SEP]`` filling the whole length (pretraining packs pairs up to
the maximum length, so there is no padding; the attention mask, all ones, is still passed to
every contender), segments 0 then 1, and 15 % of the ordinary tokens chosen for prediction by
``bert_tutor.pretraining.mask_tokens`` (80/10/10).

Configs: "course" is BertConfig's defaults (128 hidden, 2 layers, 8 heads, 512 intermediate) with a
realistic vocabulary of 8000, sequences of 128, batch 32; "base-2L" is BERT-base's width (768 hidden,
12 heads, 3072 intermediate, vocabulary 30522) with 2 layers, sequences of 128, batch 8.

Timing: the contenders take turns (ours, HF sdpa, HF eager, ours, ...), after a warm-up round, so a
busy machine slows all of them alike; each figure is a median. ms/step is wall time; CPU ms is
``time.process_time`` of the process (all threads), less sensitive to other processes on a shared
machine. torch uses 2 threads.

FLOPs are counted, not measured: the matmuls of one forward pass are 2 x (weights used in matmuls)
per token they see, plus attention's two n x n products (2 x 2 x n x h per token per layer); a
training step is 3 x the forward pass (the backward pass computes two products per forward one).
Ours scores the vocabulary at the masked positions only; Hugging Face's head scores all B x n
positions, and those FLOPs are counted as its own (real work it does, not useful work). Achieved
GFLOP/s is each contender's own count over its own time; the peak is the rate of a 2048 x 2048
float32 matmul, timed in the same rounds.

Run:  python benchmarks/bench_pretraining.py [--quick] [--dropout P] [--plain-adamw]
      (a few minutes on an idle 2-core machine; --quick: 3 rounds instead of 7)
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from collections.abc import Callable

import torch
import transformers

from bert_tutor import hf
from bert_tutor.bert import BertConfig, BertForPreTraining
from bert_tutor.pretraining import mask_tokens

THREADS = 2
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4  # the special ids of the made-up vocabulary
PEAK_SIZE = 2048


@dataclasses.dataclass
class Setting:
    name: str
    config: BertConfig
    length: int
    batch: int


SETTINGS = [
    Setting("course", BertConfig(vocab_size=8000), length=128, batch=32),
    Setting("base-2L", BertConfig.base(num_layers=2), length=128, batch=8),
]


# --- the batch and the models -------------------------------------------------------------------


def make_batch(config: BertConfig, length: int, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Full rows ``[CLS] A [SEP] B [SEP]`` of random ordinary tokens, 15 % of them chosen to predict."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(MASK + 1, config.vocab_size, (batch, length), generator=g)
    split = torch.randint(length // 4, 3 * length // 4, (batch,), generator=g)  # where A ends
    positions = torch.arange(length)
    ids[:, 0] = CLS
    ids[torch.arange(batch), split] = SEP
    ids[:, -1] = SEP
    token_type_ids = (positions > split[:, None]).long()  # (B, n): A is 0 (with [CLS] and its [SEP]), B is 1
    input_ids, labels = mask_tokens(ids, (PAD, UNK, CLS, SEP, MASK), MASK, config.vocab_size, g)
    return dict(
        input_ids=input_ids,
        token_type_ids=token_type_ids,
        attention_mask=torch.ones_like(input_ids),
        labels=labels,  # (B, n): the original id where chosen, -100 elsewhere
        masked_positions=labels != -100,  # (B, n) bool
        next_sentence_label=torch.randint(0, 2, (batch,), generator=g),
    )


def hf_copy(ours: BertForPreTraining, attention: str) -> transformers.BertForPreTraining:
    """Hugging Face's BertForPreTraining with ``ours``' weights, through bert_tutor.hf's names."""
    config = transformers.BertConfig(
        **hf.config_to_hf(ours.config, "BertForPreTraining"), attn_implementation=attention
    )
    theirs = transformers.BertForPreTraining(config)
    missing, unexpected = theirs.load_state_dict(hf.hf_state_dict(ours), strict=False)
    tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"conversion failed: missing {missing}, unexpected {unexpected}")
    theirs.tie_weights()
    return theirs


def ours_step(model: BertForPreTraining, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(
        b["input_ids"],
        b["token_type_ids"],
        b["attention_mask"],
        masked_positions=b["masked_positions"],
        mlm_labels=b["labels"],
        next_sentence_label=b["next_sentence_label"],
    ).loss


def hf_step(model: transformers.BertForPreTraining, b: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(
        input_ids=b["input_ids"],
        token_type_ids=b["token_type_ids"],
        attention_mask=b["attention_mask"],
        labels=b["labels"],
        next_sentence_label=b["next_sentence_label"],
    ).loss


def training_step(model, forward, b, fused_adamw: bool) -> Callable[[], None]:
    # fused=False is PyTorch's default on the CPU: a loop of a dozen element-wise ops per parameter.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused_adamw)

    def step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        forward(model, b).backward()
        optimizer.step()

    return step


def inference_step(model, forward, b) -> Callable[[], None]:
    def step():
        model.eval()
        with torch.no_grad():
            forward(model, b)

    return step


def matmul_step(size: int = PEAK_SIZE) -> Callable[[], None]:
    a, b = torch.randn(size, size), torch.randn(size, size)
    return lambda: torch.mm(a, b)


# --- FLOPs --------------------------------------------------------------------------------------


def forward_flops(config: BertConfig, length: int, batch: int, scored: int) -> float:
    """Matmul FLOPs of one forward pass; ``scored``: positions where the head scores the vocabulary."""
    h, i, V = config.hidden_size, config.intermediate_size, config.vocab_size
    tokens = batch * length
    layer = 2 * tokens * (4 * h * h + 2 * h * i)  # Q, K, V, output; the feed-forward network
    layer += 2 * 2 * tokens * length * h  # scores Q K^T and weights @ V: n x n x h each, per sequence
    heads = 2 * scored * (h * h + h * V)  # masked-LM transform and decoder
    heads += 2 * batch * (h * h + 2 * h)  # pooler and next-sentence classifier
    return config.num_layers * layer + heads


# --- timing -------------------------------------------------------------------------------------


def median_times(steps: list[Callable[[], None]], repeats: int) -> tuple[list[float], list[float]]:
    """(median wall seconds, median CPU seconds) of each step over ``repeats`` rounds, in turns."""
    wall, cpu = [[] for _ in steps], [[] for _ in steps]
    for round_ in range(repeats + 1):
        for step, w, c in zip(steps, wall, cpu, strict=True):
            start, start_cpu = time.perf_counter(), time.process_time()
            step()
            if round_ > 0:  # round 0 warms up
                w.append(time.perf_counter() - start)
                c.append(time.process_time() - start_cpu)
    return [statistics.median(t) for t in wall], [statistics.median(t) for t in cpu]


def run(setting: Setting, repeats: int, fused_adamw: bool) -> None:
    config, n, B = setting.config, setting.length, setting.batch
    torch.manual_seed(0)
    ours = BertForPreTraining(config)
    contenders = {"ours": ours, "HF sdpa": hf_copy(ours, "sdpa"), "HF eager": hf_copy(ours, "eager")}
    forwards = {"ours": ours_step, "HF sdpa": hf_step, "HF eager": hf_step}
    b = make_batch(config, n, B)
    masked = int(b["masked_positions"].sum())

    # The same weights give the same losses (eval mode: no dropout).
    with torch.no_grad():
        losses = {name: float(forwards[name](m.eval(), b)) for name, m in contenders.items()}
    if max(losses.values()) - min(losses.values()) > 1e-3 * abs(losses["ours"]):
        raise RuntimeError(f"the contenders disagree on the loss: {losses}")

    names = list(contenders)
    train = [training_step(contenders[k], forwards[k], b, fused_adamw) for k in names]
    infer = [inference_step(contenders[k], forwards[k], b) for k in names]
    wall, cpu = median_times([*train, *infer, matmul_step()], repeats)
    train_wall, infer_wall, peak_wall = wall[:3], wall[3:6], wall[6]
    train_cpu, infer_cpu = cpu[:3], cpu[3:6]
    peak = 2 * PEAK_SIZE**3 / peak_wall  # FLOP/s

    print(
        f"\n{setting.name}: hidden {config.hidden_size}, {config.num_layers} layers, "
        f"{config.num_heads} heads, "
        f"intermediate {config.intermediate_size}, vocab {config.vocab_size}; batch {B} x {n} tokens, "
        f"{masked} masked ({masked / (B * n):.1%}); loss {losses['ours']:.4f} on all three"
    )
    print(f"matmul peak ({PEAK_SIZE}x{PEAK_SIZE} float32): {peak / 1e9:.1f} GFLOP/s")
    header = (
        f"{'contender':<9} | {'train ms':>8} {'CPU ms':>7} {'vs sdpa':>7} {'vs eager':>8} | "
        f"{'GFLOP':>6} {'GFLOP/s':>7} {'of peak':>7} | {'infer ms':>8} {'vs sdpa':>7} {'vs eager':>8}"
    )
    print(header)
    print("-" * len(header))
    for k, name in enumerate(names):
        scored = masked if name == "ours" else B * n
        flops = 3 * forward_flops(config, n, B, scored)
        rate = flops / train_wall[k]
        print(
            f"{name:<9} | {train_wall[k] * 1e3:>8.1f} {train_cpu[k] * 1e3:>7.0f} "
            f"{train_wall[1] / train_wall[k]:>6.2f}x {train_wall[2] / train_wall[k]:>7.2f}x | "
            f"{flops / 1e9:>6.1f} {rate / 1e9:>7.1f} {rate / peak:>7.0%} | "
            f"{infer_wall[k] * 1e3:>8.1f} {infer_wall[1] / infer_wall[k]:>6.2f}x "
            f"{infer_wall[2] / infer_wall[k]:>7.2f}x"
        )
    print(
        f"ours vs HF sdpa by CPU time: training {train_cpu[1] / train_cpu[0]:.2f}x, "
        f"inference {infer_cpu[1] / infer_cpu[0]:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7 (a smoke test)")
    parser.add_argument(
        "--dropout", type=float, default=0.1, help="hidden and attention dropout of every contender (0.1)"
    )
    parser.add_argument(
        "--plain-adamw",
        action="store_true",
        help="PyTorch's default AdamW, not fused=True, for every contender",
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    torch.set_num_threads(THREADS)
    transformers.logging.set_verbosity_error()
    print(
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, "
        f"float32; dropout {args.dropout} in training; AdamW {'default' if args.plain_adamw else 'fused'}; "
        f"medians of {repeats} rounds, contenders in turns"
    )
    for setting in SETTINGS:
        config = dataclasses.replace(
            setting.config, hidden_dropout=args.dropout, attention_dropout=args.dropout
        )
        run(dataclasses.replace(setting, config=config), repeats, fused_adamw=not args.plain_adamw)


if __name__ == "__main__":
    main()
