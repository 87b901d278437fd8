"""bert_tutor.transformer: positions, feed-forward, residual + LayerNorm, layers equal to PyTorch's,
causality, padding, greedy decoding and the config's checks."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bert_tutor.transformer import (
    Decoder,
    DecoderLayer,
    Encoder,
    EncoderLayer,
    FeedForward,
    LearnedPositionalEncoding,
    ResidualNorm,
    SinusoidalPositionalEncoding,
    Transformer,
    TransformerConfig,
    causal_mask,
)

# float32; against PyTorch's layers (the same sums in a different order) and between the naive
# and fused attention paths.
TOL = dict(rtol=1e-5, atol=1e-5)
GRAD_TOL = dict(rtol=1e-4, atol=1e-5)
B, S, T, HIDDEN, HEADS, INTERMEDIATE = 3, 7, 5, 32, 4, 64
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_config(**changes) -> TransformerConfig:
    sizes = dict(hidden_size=HIDDEN, num_heads=HEADS, intermediate_size=INTERMEDIATE, dropout=0.0, max_len=16)
    return TransformerConfig(**(sizes | changes))


def keep(lens, n):
    return torch.arange(n) < torch.tensor(lens)[:, None]  # (B, n): True = a real token


# --- the pieces ---------------------------------------------------------------------------------


def test_causal_mask_lets_each_position_see_itself_and_the_past_only():
    mask = causal_mask(4)
    assert mask.dtype == torch.bool and mask.shape == (4, 4)
    assert mask.tolist() == [[j <= i for j in range(4)] for i in range(4)]


def test_sinusoidal_encoding_follows_the_formula():
    encoding = SinusoidalPositionalEncoding(hidden_size=6, max_len=10)
    x = torch.zeros(1, 10, 6)
    p = encoding(x)[0]  # (10, 6)
    for pos in (0, 3, 9):
        for j in range(3):
            angle = pos / 10000 ** (2 * j / 6)
            torch.testing.assert_close(p[pos, 2 * j], torch.tensor(math.sin(angle)))
            torch.testing.assert_close(p[pos, 2 * j + 1], torch.tensor(math.cos(angle)))


def test_sinusoidal_encoding_adds_to_the_input_works_for_odd_sizes_and_is_not_saved():
    encoding = SinusoidalPositionalEncoding(hidden_size=5, max_len=8)
    x = torch.randn(2, 4, 5)
    torch.testing.assert_close(encoding(x) - x, encoding(torch.zeros(1, 4, 5)).expand(2, 4, 5))
    assert encoding.state_dict() == {} and list(encoding.parameters()) == []


def test_learned_encoding_adds_one_trained_vector_per_position():
    encoding = LearnedPositionalEncoding(hidden_size=4, max_len=8)
    x = torch.randn(2, 3, 4)
    torch.testing.assert_close(encoding(x), x + encoding.position_embeddings.weight[:3])
    encoding(x).sum().backward()
    assert (encoding.position_embeddings.weight.grad[3:] == 0).all()


@pytest.mark.parametrize("positional", [SinusoidalPositionalEncoding, LearnedPositionalEncoding])
def test_positional_encoding_refuses_a_sequence_longer_than_max_len(positional):
    with pytest.raises(ValueError, match="length 9 is longer than max_len 8"):
        positional(hidden_size=4, max_len=8)(torch.zeros(1, 9, 4))


@pytest.mark.parametrize("activation, function", [("relu", F.relu), ("gelu", F.gelu)])
def test_feed_forward_is_two_linear_layers_with_the_activation_between(activation, function):
    ffn = FeedForward(small_config(activation=activation))
    x = torch.randn(2, 3, HIDDEN)
    expected = function(x @ ffn.intermediate.weight.T + ffn.intermediate.bias) @ ffn.output.weight.T
    torch.testing.assert_close(ffn(x), expected + ffn.output.bias)


def test_residual_norm_post_ln_and_pre_ln_orders():
    x = torch.randn(2, 3, HIDDEN)
    sublayer = nn.Linear(HIDDEN, HIDDEN)
    post, pre = ResidualNorm(small_config(norm_first=False)), ResidualNorm(small_config(norm_first=True))
    torch.testing.assert_close(post(x, sublayer), post.norm(x + sublayer(x)))
    torch.testing.assert_close(pre(x, sublayer), x + sublayer(pre.norm(x)))


# --- layers and stacks equal PyTorch's, weights copied across ------------------------------------


def prefixed(prefix: str, weights: dict) -> dict:
    return {f"{prefix}.{name}": tensor for name, tensor in weights.items()}


def attention_weights(theirs: nn.MultiheadAttention) -> dict:
    """PyTorch stacks the query, key and value projections in one in_proj (3h, h): cut it in three."""
    (wq, wk, wv), (bq, bk, bv) = theirs.in_proj_weight.chunk(3), theirs.in_proj_bias.chunk(3)
    return {
        **{"query.weight": wq, "key.weight": wk, "value.weight": wv},
        **{"query.bias": bq, "key.bias": bk, "value.bias": bv},
        **prefixed("output", theirs.out_proj.state_dict()),
    }


def feed_forward_weights(theirs) -> dict:
    return {
        **prefixed("feed_forward.intermediate", theirs.linear1.state_dict()),
        **prefixed("feed_forward.output", theirs.linear2.state_dict()),
    }


def encoder_layer_weights(theirs: nn.TransformerEncoderLayer) -> dict:
    return {
        **prefixed("self_attention", attention_weights(theirs.self_attn)),
        **prefixed("self_attention_residual.norm", theirs.norm1.state_dict()),
        **feed_forward_weights(theirs),
        **prefixed("feed_forward_residual.norm", theirs.norm2.state_dict()),
    }


def decoder_layer_weights(theirs: nn.TransformerDecoderLayer) -> dict:
    return {
        **prefixed("self_attention", attention_weights(theirs.self_attn)),
        **prefixed("self_attention_residual.norm", theirs.norm1.state_dict()),
        **prefixed("cross_attention", attention_weights(theirs.multihead_attn)),
        **prefixed("cross_attention_residual.norm", theirs.norm2.state_dict()),
        **feed_forward_weights(theirs),
        **prefixed("feed_forward_residual.norm", theirs.norm3.state_dict()),
    }


def stack_weights(theirs, layer_weights) -> dict:
    weights = {}
    for i, layer in enumerate(theirs.layers):
        weights |= prefixed(f"layers.{i}", layer_weights(layer))
    if theirs.norm is not None:
        weights |= prefixed("norm", theirs.norm.state_dict())
    return weights


def pytorch_layer_kwargs(config: TransformerConfig) -> dict:
    return dict(
        d_model=config.hidden_size,
        nhead=config.num_heads,
        dim_feedforward=config.intermediate_size,
        dropout=config.dropout,
        activation=config.activation,
        layer_norm_eps=config.layer_norm_eps,
        batch_first=True,
        norm_first=config.norm_first,
    )


def outputs_and_input_grads(layer, inputs, **masks):
    """Run with gradients on (which also keeps PyTorch off its inference-only fast path)."""
    inputs = [t.detach().requires_grad_() for t in inputs]
    output = layer(*inputs, **masks)
    (output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum().backward()
    return output.detach(), [t.grad for t in inputs]


def assert_same(mine, theirs):
    (my_output, my_grads), (their_output, their_grads) = mine, theirs
    torch.testing.assert_close(my_output, their_output, **TOL)
    for my_grad, their_grad in zip(my_grads, their_grads, strict=True):
        torch.testing.assert_close(my_grad, their_grad, **GRAD_TOL)


LAYER_CASES = [
    dict(norm_first=False, activation="relu", fused=False),
    dict(norm_first=True, activation="relu", fused=False),
    dict(norm_first=False, activation="gelu", fused=True),
    dict(norm_first=True, activation="gelu", fused=True),
]


@pytest.mark.parametrize("changes", LAYER_CASES, ids=str)
@pytest.mark.parametrize("causal", [False, True], ids=["padding", "padding+causal"])
def test_encoder_layer_equals_pytorch_transformer_encoder_layer(changes, causal):
    config = small_config(**changes)
    theirs = nn.TransformerEncoderLayer(**pytorch_layer_kwargs(config)).eval()
    mine = EncoderLayer(config).eval()
    mine.load_state_dict(encoder_layer_weights(theirs))  # strict: every weight has its counterpart
    x, real = torch.randn(B, S, HIDDEN), keep([7, 4, 1], S)
    # Ours: True = may attend. PyTorch's: True = may NOT attend.
    my_mask = real[:, None, None, :] & (causal_mask(S) if causal else True)  # (B, 1, S or 1, S)
    their_masks = dict(src_key_padding_mask=~real, src_mask=~causal_mask(S) if causal else None)
    assert_same(
        outputs_and_input_grads(mine, [x], mask=my_mask),
        outputs_and_input_grads(theirs, [x], **their_masks),
    )


@pytest.mark.parametrize("changes", LAYER_CASES, ids=str)
def test_decoder_layer_equals_pytorch_transformer_decoder_layer(changes):
    config = small_config(**changes)
    theirs = nn.TransformerDecoderLayer(**pytorch_layer_kwargs(config)).eval()
    mine = DecoderLayer(config).eval()
    mine.load_state_dict(decoder_layer_weights(theirs))
    x, memory = torch.randn(B, T, HIDDEN), torch.randn(B, S, HIDDEN)
    target_real, source_real = keep([5, 3, 1], T), keep([7, 2, 4], S)
    their_masks = dict(
        tgt_mask=~causal_mask(T),  # ours is causal without being told
        tgt_key_padding_mask=~target_real,
        memory_key_padding_mask=~source_real,
    )
    my_masks = dict(self_mask=target_real[:, None, None, :], memory_mask=source_real[:, None, None, :])
    assert_same(
        outputs_and_input_grads(mine, [x, memory], **my_masks),
        outputs_and_input_grads(theirs, [x, memory], **their_masks),
    )


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_and_decoder_stacks_equal_pytorch_with_a_final_norm_for_pre_ln(norm_first):
    config = small_config(norm_first=norm_first, num_layers=3)
    final_norm = nn.LayerNorm(HIDDEN) if norm_first else None
    kwargs = pytorch_layer_kwargs(config)
    their_encoder = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(**kwargs), 3, norm=final_norm, enable_nested_tensor=False
    ).eval()
    their_decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**kwargs), 3, norm=final_norm).eval()
    for their_stack in (their_encoder, their_decoder):  # give each layer its own weights
        for p in their_stack.parameters():
            nn.init.normal_(p, std=0.3)
    encoder, decoder = Encoder(config).eval(), Decoder(config).eval()
    encoder.load_state_dict(stack_weights(their_encoder, encoder_layer_weights))
    decoder.load_state_dict(stack_weights(their_decoder, decoder_layer_weights))

    x, source_real = torch.randn(B, S, HIDDEN), keep([7, 4, 1], S)
    memory = encoder(x, mask=source_real[:, None, None, :])
    torch.testing.assert_close(memory, their_encoder(x, src_key_padding_mask=~source_real), **TOL)
    y = torch.randn(B, T, HIDDEN)
    ours = decoder(y, memory, memory_mask=source_real[:, None, None, :])
    theirs = their_decoder(y, memory, tgt_mask=~causal_mask(T), memory_key_padding_mask=~source_real)
    torch.testing.assert_close(ours, theirs, **TOL)


# --- the encoder-decoder -------------------------------------------------------------------------


def random_ids(*shape, vocab=32):
    return torch.randint(3, vocab, shape)  # never <pad> (0), <bos> (1) or <eos> (2)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_changing_future_target_tokens_never_changes_earlier_outputs(norm_first, fused):
    model = Transformer(small_config(norm_first=norm_first, fused=fused)).eval()
    source, target_in = random_ids(2, 6), random_ids(2, 8)
    logits = model(source, target_in)  # (2, 8, V)
    for t in range(7):
        changed = target_in.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] - 3 + 1) % 29 + 3  # another real token everywhere after t
        new_logits = model(source, changed)
        torch.testing.assert_close(new_logits[:, : t + 1], logits[:, : t + 1], **TOL)
        assert not torch.allclose(new_logits[:, t + 1 :], logits[:, t + 1 :])  # the later ones do change


def test_padded_source_positions_are_ignored_and_lengths_equal_pad_ids():
    model = Transformer(small_config()).eval()
    source, target_in = random_ids(B, S), random_ids(B, T)
    source_lens = torch.tensor([7, 4, 2])
    padded = source.masked_fill(~keep([7, 4, 2], S), 0)
    by_pad_id = model(padded, target_in)
    torch.testing.assert_close(model(padded, target_in, source_lens=source_lens), by_pad_id, **TOL)
    torch.testing.assert_close(model(source, target_in, source_lens=source_lens), by_pad_id, **TOL)
    assert not torch.allclose(model(source, target_in), by_pad_id)


def test_fused_and_naive_models_give_the_same_logits_and_gradients():
    naive = Transformer(small_config(norm_first=True))
    fused = Transformer(small_config(norm_first=True, fused=True))
    fused.load_state_dict(naive.state_dict())
    source, target_in = random_ids(B, S), random_ids(B, T)
    source_lens, target_lens = torch.tensor([7, 4, 1]), torch.tensor([5, 5, 2])
    for model in (naive, fused):
        model(source, target_in, source_lens, target_lens).square().mean().backward()
    torch.testing.assert_close(
        fused.eval()(source, target_in, source_lens), naive.eval()(source, target_in, source_lens), **TOL
    )
    for (name, p), q in zip(naive.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, **GRAD_TOL, msg=name)


def test_model_refuses_sequences_longer_than_max_len_and_mismatched_batches():
    model = Transformer(small_config(max_len=8))
    with pytest.raises(ValueError, match="length 9 is longer than max_len 8"):
        model(random_ids(1, 9), random_ids(1, 3))
    with pytest.raises(ValueError, match=r"same B, got \(2, 4\) and \(3, 4\)"):
        model(random_ids(2, 4), random_ids(3, 4))


def test_a_few_training_steps_lower_the_loss_on_a_copy_task():
    model = Transformer(small_config(source_vocab_size=12, target_vocab_size=12, norm_first=True))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        source = random_ids(16, 6, vocab=12)
        target_in = torch.cat([torch.full((16, 1), 1), source], dim=1)  # <bos> + copy
        target_out = torch.cat([source, torch.full((16, 1), 2)], dim=1)  # copy + <eos>
        loss = F.cross_entropy(model(source, target_in).flatten(0, 1), target_out.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * losses[0]


# --- greedy decoding -----------------------------------------------------------------------------


def test_greedy_decoding_picks_the_teacher_forced_argmax_at_every_step():
    model = Transformer(small_config(norm_first=True))
    source = random_ids(B, S).masked_fill(~keep([7, 5, 3], S), 0)
    tokens = model.greedy_decode(source, max_len=6)
    assert tokens.shape == (B, 6) and not model.training
    target_in = torch.cat([torch.ones(B, 1, dtype=torch.long), tokens[:, :-1]], dim=1)  # <bos> + all but last
    torch.testing.assert_close(model(source, target_in).argmax(-1), tokens)


def test_greedy_decoding_stops_when_every_row_has_written_eos_and_pads_after_it(monkeypatch):
    model = Transformer(small_config())
    script = [[5, 2], [6, 7, 2], [2]]  # what each row writes: row 0 stops after two tokens...
    calls = []

    def scripted_decode(target_in, memory, target_mask=None, source_mask=None):
        step = target_in.shape[1] - 1  # tokens written so far
        calls.append(step)
        logits = torch.zeros(*target_in.shape, model.config.target_vocab_size)
        for row, writes in enumerate(script):
            logits[row, -1, writes[min(step, len(writes) - 1)]] = 1.0
        return logits

    monkeypatch.setattr(model, "decode", scripted_decode)
    tokens = model.greedy_decode(random_ids(3, 4), max_len=10)
    assert tokens.tolist() == [[5, 2, 0], [6, 7, 2], [2, 0, 0]]
    assert calls == [0, 1, 2]


@pytest.mark.parametrize("max_len", [0, 17])
def test_greedy_decoding_refuses_max_len_outside_the_positional_range(max_len):
    with pytest.raises(ValueError, match=f"got {max_len}"):
        Transformer(small_config()).greedy_decode(random_ids(1, 4), max_len=max_len)


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(hidden_size=30), "hidden_size 30 is not divisible by num_heads 4"),
        (dict(num_heads=0), "num_heads must be a positive int, got 0"),
        (dict(num_layers=0), "num_layers must be a positive int, got 0"),
        (dict(intermediate_size=-1), "intermediate_size must be a positive int, got -1"),
        (dict(max_len=0), "max_len must be a positive int, got 0"),
        (dict(source_vocab_size=2.5), "source_vocab_size must be a positive int, got 2.5"),
        (dict(hidden_size=True), "hidden_size must be a positive int, got True"),
        (dict(dropout=-0.1), r"dropout must be in \[0, 1\), got -0.1"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
        (dict(activation="tanh"), "activation must be one of .* got 'tanh'"),
        (dict(layer_norm_eps=0.0), "layer_norm_eps must be positive, got 0.0"),
        (dict(eos_id=40), r"eos_id must be an id in both vocabularies \[0, 32\), got 40"),
        (dict(pad_id=-1), "pad_id .* got -1"),
    ],
)
def test_bad_config_raises_value_error_naming_the_value(changes, message):
    with pytest.raises(ValueError, match=message):
        small_config(**changes)


def test_default_config_builds_a_model():
    model = Transformer(TransformerConfig())
    assert model(random_ids(2, 5), random_ids(2, 4)).shape == (2, 4, 32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("learned_positions", [False, True])
def test_model_runs_on_every_available_device(device, learned_positions):
    model = Transformer(small_config(learned_positions=learned_positions, fused=True)).to(device)
    source, target_in = random_ids(2, 6).to(device), random_ids(2, 4).to(device)
    assert model(source, target_in, source_lens=torch.tensor([6, 3], device=device)).device == source.device
    assert model.greedy_decode(source, max_len=3).device == source.device
