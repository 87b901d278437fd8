"""What did pretraining teach? Fill in blanks, score the world's probes, compare with a baseline.

* :func:`fill_mask`: the likeliest tokens for each ``[MASK]`` of a text.
* :func:`probe_accuracy`: blanks of the generated world (:func:`bert_tutor.corpus.world_probes`),
  scored separately for blanks that only the words to their right can fill and blanks that the
  words to their left can: the measure of bidirectional against left-to-right context.
* :func:`unigram_accuracy`: the masked-LM baseline that reads no context at all: always guess
  the most frequent token of the training data.

Shapes: B texts, L tokens (padded), M masked positions, V the vocabulary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from bert_tutor.corpus import Probe
from bert_tutor.pretraining import NspPair

__all__ = ["fill_mask", "probe_accuracy", "probe_texts", "unigram_accuracy"]


def _masked_logits(model, tokenizer, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (M, V) of every [MASK] of the texts, row (M,): which text each masked position is in)."""
    device = next(model.parameters()).device
    encoding = {key: value.to(device) for key, value in tokenizer.encode_batch(list(texts)).items()}
    if encoding["input_ids"].shape[1] > model.config.max_position_embeddings:
        raise ValueError(
            f"a text has {encoding['input_ids'].shape[1]} tokens, more than the model's "
            f"max_position_embeddings {model.config.max_position_embeddings}"
        )
    masked = encoding["input_ids"] == tokenizer.mask_token_id  # (B, L)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(**encoding, masked_positions=masked).mlm_logits  # (M, V)
    model.train(was_training)
    return logits.cpu(), masked.nonzero()[:, 0].cpu()


def fill_mask(model, tokenizer, text: str, top: int = 5) -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` of ``text``, in order, the ``top`` likeliest tokens with their probabilities."""
    logits, _ = _masked_logits(model, tokenizer, [text])
    if logits.shape[0] == 0:
        mask = tokenizer.convert_ids_to_tokens(tokenizer.mask_token_id)
        raise ValueError(f"the text has no {mask} token to fill: {text!r}")
    guesses = []
    for row in logits.softmax(-1):  # (V,)
        best = row.topk(top)
        tokens = tokenizer.convert_ids_to_tokens(best.indices.tolist())
        guesses.append([(token, round(float(p), 4)) for token, p in zip(tokens, best.values, strict=True)])
    return guesses


def probe_texts(probes: Sequence[Probe], tokenizer, max_length: int) -> list[str]:
    """Each probe's blank as a text: the sentences before it and its own, the answer's pieces replaced
    by ``[MASK]``; the earliest sentences are dropped until ``[CLS] text [SEP]`` fits ``max_length``."""
    mask = tokenizer.convert_ids_to_tokens(tokenizer.mask_token_id)
    texts = []
    for probe in probes:
        words = probe.sentences[probe.sentence].split()
        pieces = len(tokenizer.tokenize(probe.answer))
        blank = " ".join(words[: probe.word] + [mask] * pieces + words[probe.word + 1 :])
        context = [*probe.sentences[: probe.sentence], blank]
        while len(context) > 1 and len(tokenizer.tokenize(" ".join(context))) + 2 > max_length:
            context.pop(0)
        if len(tokenizer.tokenize(blank)) + 2 > max_length:
            raise ValueError(f"the probe's sentence alone is longer than max_length {max_length}: {blank!r}")
        texts.append(" ".join(context))
    return texts


def probe_accuracy(model, tokenizer, probes: Sequence[Probe], batch_size: int = 64) -> dict[str, float]:
    """Share of probes whose every masked piece the model predicts right, per side ("left", "right").

    Each probe is one text (:func:`probe_texts`, as long as the model takes), so a left-to-right
    model sees everything before the blank, and a bidirectional one also the rest of its sentence.
    """
    if not probes:
        raise ValueError("probe_accuracy needs at least one probe")
    texts = probe_texts(probes, tokenizer, model.config.max_position_embeddings)
    right, total = Counter(), Counter()
    for start in range(0, len(probes), batch_size):
        chunk = probes[start : start + batch_size]
        logits, row = _masked_logits(model, tokenizer, texts[start : start + batch_size])
        guesses = logits.argmax(-1)  # (M,)
        for i, probe in enumerate(chunk):
            answer = torch.tensor(tokenizer.convert_tokens_to_ids(tokenizer.tokenize(probe.answer)))
            right[probe.side] += bool(torch.equal(guesses[row == i], answer))
            total[probe.side] += 1
    return {side: right[side] / total[side] for side in sorted(total)}


def unigram_accuracy(train_pairs: Sequence[NspPair], held_out: Sequence[NspPair]) -> tuple[int, float]:
    """(the most frequent token of the training pairs, the share of held-out tokens it equals).

    A masked-LM that reads no context can do no better than always guessing that token; masked
    positions are a random 15 % of the tokens, so this share is also its expected masked-LM accuracy.
    """
    counts = Counter(t for pair in train_pairs for t in (*pair.tokens_a, *pair.tokens_b))
    if not counts or not held_out:
        raise ValueError("unigram_accuracy needs training pairs and held-out pairs with tokens")
    token = counts.most_common(1)[0][0]
    tokens = [t for pair in held_out for t in (*pair.tokens_a, *pair.tokens_b)]
    return token, sum(t == token for t in tokens) / len(tokens)
