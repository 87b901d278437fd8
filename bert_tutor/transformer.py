"""The Transformer of "Attention Is All You Need", built from attention.py (chapter 4).

Read it bottom-up: positional encodings, the position-wise feed-forward network, the residual
connection with LayerNorm (post-LN as in the paper, or pre-LN), the encoder and decoder layers,
their stacks, and the encoder-decoder model with greedy decoding.

Shapes use these letters:
    B  batch size        S  source length     T  target length     n  any length
    h  hidden_size       i  intermediate_size  V  vocabulary size    H  number of heads

Masks follow attention.py: boolean, ``True`` = may attend, broadcastable to (B, H, Q, K).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from bert_tutor.attention import MultiHeadAttention, lengths_to_mask
from bert_tutor.checks import check_positive_int

__all__ = [
    "Decoder",
    "DecoderLayer",
    "Embeddings",
    "Encoder",
    "EncoderLayer",
    "FeedForward",
    "LearnedPositionalEncoding",
    "ResidualNorm",
    "SinusoidalPositionalEncoding",
    "Transformer",
    "TransformerConfig",
    "causal_mask",
]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class TransformerConfig:
    """Sizes and switches of the encoder-decoder; the defaults are the course's small model.

    norm_first: False puts LayerNorm after each residual addition (post-LN, the paper's order),
    True before each sublayer (pre-LN, easier to train deep). fused: the fast attention path.
    learned_positions: learned position embeddings instead of the fixed sinusoids.
    max_len: the longest sequence the positional encoding covers.
    """

    source_vocab_size: int = 32
    target_vocab_size: int = 32
    hidden_size: int = 64
    num_heads: int = 4
    intermediate_size: int = 256
    num_layers: int = 2
    dropout: float = 0.1
    norm_first: bool = False
    activation: str = "relu"
    max_len: int = 64
    learned_positions: bool = False
    layer_norm_eps: float = 1e-5
    fused: bool = False
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        sizes = ("source_vocab_size", "target_vocab_size", "hidden_size", "num_heads")
        for name in (*sizes, "intermediate_size", "num_layers", "max_len"):
            check_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be positive, got {self.layer_norm_eps}")
        smallest_vocab = min(self.source_vocab_size, self.target_vocab_size)
        for name in ("pad_id", "bos_id", "eos_id"):
            value = getattr(self, name)
            if not 0 <= value < smallest_vocab:
                raise ValueError(
                    f"{name} must be an id in both vocabularies [0, {smallest_vocab}), got {value}"
                )


def causal_mask(n: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(n, n) boolean, lower-triangular: position i may attend to positions 0..i, never later."""
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()  # (n, n)


# --- positions ---------------------------------------------------------------------------------


def _check_length(n: int, max_len: int) -> None:
    if n > max_len:
        raise ValueError(f"sequence length {n} is longer than max_len {max_len} of the positional encoding")


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sinusoids: P[pos, 2j] = sin(pos / 10000^(2j/h)), P[pos, 2j+1] = cos(same angle).

    Each pair of features turns at its own frequency, so every position gets a distinct pattern,
    and moving k positions on rotates every pair by a fixed angle.
    forward(x (B, n, h)) returns x + P[:n], (B, n, h).
    """

    def __init__(self, hidden_size: int, max_len: int):
        super().__init__()
        positions = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
        frequencies = 10000.0 ** (-torch.arange(0, hidden_size, 2, dtype=torch.float32) / hidden_size)
        angles = positions * frequencies  # (max_len, ceil(h / 2))
        encoding = torch.zeros(max_len, hidden_size)
        encoding[:, 0::2] = torch.sin(angles)
        encoding[:, 1::2] = torch.cos(angles[:, : hidden_size // 2])
        # A buffer moves with .to(device) but is not learned; not persistent: it is recomputed, not saved.
        self.register_buffer("encoding", encoding, persistent=False)  # (max_len, h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x.shape[1], self.encoding.shape[0])
        return x + self.encoding[: x.shape[1]]  # (B, n, h)


class LearnedPositionalEncoding(nn.Module):
    """Adds a learned vector per position (as BERT does). forward(x (B, n, h)) -> (B, n, h)."""

    def __init__(self, hidden_size: int, max_len: int):
        super().__init__()
        self.position_embeddings = nn.Embedding(max_len, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_length(x.shape[1], self.position_embeddings.num_embeddings)
        return x + self.position_embeddings.weight[: x.shape[1]]  # (B, n, h)


class Embeddings(nn.Module):
    """Token ids to vectors: token embedding * sqrt(h) + positional encoding, then dropout.

    forward(tokens (B, n)) -> (B, n, h).
    """

    def __init__(self, vocab_size: int, config: TransformerConfig):
        super().__init__()
        h = config.hidden_size
        self.token_embeddings = nn.Embedding(vocab_size, h)
        # Start token vectors at std 1/sqrt(h): times sqrt(h) they are of unit size, like the sinusoids.
        nn.init.normal_(self.token_embeddings.weight, std=h**-0.5)
        positional = LearnedPositionalEncoding if config.learned_positions else SinusoidalPositionalEncoding
        self.positions = positional(h, config.max_len)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embeddings(tokens) * math.sqrt(self.token_embeddings.embedding_dim)  # (B, n, h)
        return self.dropout(self.positions(x))  # (B, n, h)


# --- the two sublayers and the residual connection around them ---------------------------------


class FeedForward(nn.Module):
    """The same two-layer network at every position: h -> i -> h, ReLU or GELU in between.

    forward(x (B, n, h)) -> (B, n, h).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.activation = ACTIVATIONS[config.activation]()
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.dropout(self.activation(self.intermediate(x))))  # (B, n, i) -> (B, n, h)


class ResidualNorm(nn.Module):
    """A residual connection around a sublayer, with LayerNorm after it or before it.

    post-LN (norm_first=False, the paper): LayerNorm(x + dropout(sublayer(x)))
    pre-LN  (norm_first=True):            x + dropout(sublayer(LayerNorm(x)))
    forward(x (B, n, h), sublayer: (B, n, h) -> (B, n, h)) -> (B, n, h).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.norm_first = config.norm_first
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, sublayer: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        if self.norm_first:
            return x + self.dropout(sublayer(self.norm(x)))  # (B, n, h)
        return self.norm(x + self.dropout(sublayer(x)))  # (B, n, h)


# --- layers -------------------------------------------------------------------------------------


def _attention(config: TransformerConfig) -> MultiHeadAttention:
    return MultiHeadAttention(
        config.hidden_size, config.num_heads, dropout=config.dropout, fused=config.fused
    )


class EncoderLayer(nn.Module):
    """Self-attention, then the feed-forward network, each inside a :class:`ResidualNorm`."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.self_attention = _attention(config)
        self.self_attention_residual = ResidualNorm(config)
        self.feed_forward = FeedForward(config)
        self.feed_forward_residual = ResidualNorm(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, S, h); mask: which keys each position may see, e.g. padding (B, 1, 1, S). -> (B, S, h)."""
        x = self.self_attention_residual(x, lambda y: self.self_attention(y, mask=mask)[0])
        return self.feed_forward_residual(x, self.feed_forward)  # (B, S, h)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder's output, then the feed-forward network.

    The self-attention is always causal: position t sees target positions 0..t only.
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.self_attention = _attention(config)
        self.self_attention_residual = ResidualNorm(config)
        self.cross_attention = _attention(config)
        self.cross_attention_residual = ResidualNorm(config)
        self.feed_forward = FeedForward(config)
        self.feed_forward_residual = ResidualNorm(config)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T, h): the target so far; memory (B, S, h): the encoder's output.

        self_mask: target keys to hide besides the future ones, e.g. padding (B, 1, 1, T).
        memory_mask: source keys to hide, e.g. padding (B, 1, 1, S). Returns (B, T, h).
        """
        causal = causal_mask(x.shape[1], device=x.device)  # (T, T)
        self_mask = causal if self_mask is None else self_mask & causal  # (..., T, T)
        x = self.self_attention_residual(x, lambda y: self.self_attention(y, mask=self_mask)[0])
        x = self.cross_attention_residual(x, lambda y: self.cross_attention(y, memory, mask=memory_mask)[0])
        return self.feed_forward_residual(x, self.feed_forward)  # (B, T, h)


# --- stacks -------------------------------------------------------------------------------------


def _final_norm(config: TransformerConfig) -> nn.Module:
    # Pre-LN adds sublayer outputs to x without normalising the sum: normalise once at the top.
    if config.norm_first:
        return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
    return nn.Identity()


class Encoder(nn.Module):
    """num_layers encoder layers. forward(x (B, S, h), mask) -> (B, S, h)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))
        self.norm = _final_norm(config)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)  # (B, S, h)
        return self.norm(x)


class Decoder(nn.Module):
    """num_layers decoder layers.

    forward(x (B, T, h), memory (B, S, h), self_mask, memory_mask) -> (B, T, h).
    """

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_layers))
        self.norm = _final_norm(config)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        self_mask: torch.Tensor | None = None,
        memory_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, memory, self_mask, memory_mask)  # (B, T, h)
        return self.norm(x)


# --- the encoder-decoder ------------------------------------------------------------------------


class Transformer(nn.Module):
    """Source ids -> encoder -> memory; target ids so far + memory -> decoder -> next-token logits."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.source_embeddings = Embeddings(config.source_vocab_size, config)
        self.target_embeddings = Embeddings(config.target_vocab_size, config)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.output_projection = nn.Linear(config.hidden_size, config.target_vocab_size)

    def padding_mask(self, tokens: torch.Tensor, lens: torch.Tensor | None = None) -> torch.Tensor:
        """Which keys are real tokens: from lens (B,) when given, else ``tokens != pad_id``.

        tokens (B, n). Returns a boolean (B, 1, 1, n), True = a real token, the same for every
        head and every query.
        """
        if lens is not None:
            return lengths_to_mask(lens, tokens.shape[1])[:, None]  # (B, 1, 1, n)
        return (tokens != self.config.pad_id)[:, None, None, :]  # (B, 1, 1, n)

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor | None = None) -> torch.Tensor:
        """source (B, S) ids, source_mask (B, 1, 1, S) -> memory (B, S, h)."""
        return self.encoder(self.source_embeddings(source), source_mask)

    def decode(
        self,
        target_in: torch.Tensor,
        memory: torch.Tensor,
        target_mask: torch.Tensor | None = None,
        source_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """target_in (B, T) ids starting with <bos>; memory (B, S, h). Returns logits (B, T, V).

        Row t of the logits scores the token at position t + 1 from target_in[:, : t + 1] only.
        """
        x = self.decoder(self.target_embeddings(target_in), memory, target_mask, source_mask)  # (B, T, h)
        return self.output_projection(x)  # (B, T, V)

    def forward(
        self,
        source: torch.Tensor,
        target_in: torch.Tensor,
        source_lens: torch.Tensor | None = None,
        target_lens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced: source (B, S) ids, target_in (B, T) ids starting with <bos>.

        source_lens, target_lens (B,): real tokens per row; without them, padding is wherever
        the ids equal pad_id. Returns logits (B, T, V) for target_in shifted left by one.
        """
        if source.dim() != 2 or target_in.dim() != 2 or source.shape[0] != target_in.shape[0]:
            raise ValueError(
                f"expected source (B, S) and target_in (B, T) with the same B, "
                f"got {tuple(source.shape)} and {tuple(target_in.shape)}"
            )
        source_mask = self.padding_mask(source, source_lens)  # (B, 1, 1, S)
        target_mask = self.padding_mask(target_in, target_lens)  # (B, 1, 1, T)
        memory = self.encode(source, source_mask)  # (B, S, h)
        return self.decode(target_in, memory, target_mask, source_mask)  # (B, T, V)

    @torch.no_grad()
    def greedy_decode(
        self, source: torch.Tensor, source_lens: torch.Tensor | None = None, max_len: int | None = None
    ) -> torch.Tensor:
        """Translate a batch by always taking the most likely next token, until <eos> or max_len.

        source (B, S) ids; source_lens (B,) or None (padding from pad_id). max_len: most tokens
        to write (default 2 S, at most config.max_len). Switches the model to eval mode.
        Returns tokens (B, L), L <= max_len, without <bos>: each row's tokens, its <eos>, then
        pad_id. Each step re-reads the whole prefix (no cache of keys and values): simple, O(L^2).
        """
        config = self.config
        max_len = min(2 * source.shape[1], config.max_len) if max_len is None else max_len
        if not 1 <= max_len <= config.max_len:
            raise ValueError(f"max_len must be in [1, {config.max_len}] (config.max_len), got {max_len}")
        self.eval()
        source_mask = self.padding_mask(source, source_lens)  # (B, 1, 1, S)
        memory = self.encode(source, source_mask)  # (B, S, h): encoded once, read at every step
        batch = source.shape[0]
        tokens = torch.full((batch, 1), config.bos_id, dtype=torch.long, device=source.device)  # (B, 1)
        finished = torch.zeros(batch, dtype=torch.bool, device=source.device)  # (B,)
        for _ in range(max_len):
            logits = self.decode(tokens, memory, source_mask=source_mask)  # (B, t, V)
            next_tokens = logits[:, -1].argmax(dim=-1).masked_fill(finished, config.pad_id)  # (B,)
            tokens = torch.cat([tokens, next_tokens[:, None]], dim=1)  # (B, t + 1)
            finished |= next_tokens == config.eos_id
            if finished.all():
                break
        return tokens[:, 1:]  # (B, L)
