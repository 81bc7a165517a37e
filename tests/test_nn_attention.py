"""Attention (tinygrad_like.nn.attention): F.scaled_dot_product_attention and nn.MultiheadAttention against
PyTorch with the same weights (float64): outputs, attention weights, gradients of every input, mask and
parameter under random upstream gradients, second order; masks of both conventions, fully masked rows,
parameter names, saving and loading, refusals, and a causal self-attention head as "Let's build GPT" writes it."""

import math
import warnings

import numpy as np
import pytest
from helpers import check_against_torch, gaussian, twins

import tinygrad_like
from tinygrad_like import Tensor, autograd, manual_seed, nn, no_grad
from tinygrad_like.nn import functional as F


@pytest.fixture(autouse=True)
def no_warnings():
    """Fully masked rows must not warn (PyTorch's numbers, no RuntimeWarning from 0/0)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


class Function:
    """A function of Tensors dressed as a module without parameters, so ``check_against_torch`` takes it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)

    def named_parameters(self):
        return iter(())

    def parameters(self):
        return []


def sdpa_twins(torch, **kwargs):
    """scaled_dot_product_attention of ours and PyTorch's with the same keyword arguments."""
    return (Function(lambda q, k, v, *mask: F.scaled_dot_product_attention(q, k, v, *mask, **kwargs)),
            Function(lambda q, k, v, *mask: torch.nn.functional.scaled_dot_product_attention(q, k, v, *mask,
                                                                                              **kwargs)))


QKV = [gaussian(2, 3, 4, 8, seed=1), gaussian(2, 3, 5, 8, seed=2), gaussian(2, 3, 5, 6, seed=3)]


# ----------------------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"scale": 0.3}, {"is_causal": True, "scale": 2.0}])
def test_sdpa_and_its_gradients_of_two_orders_are_pytorchs(torch, kwargs):
    check_against_torch(torch, *sdpa_twins(torch, **kwargs), QKV, second_order=True)


def test_sdpa_takes_any_leading_axes_and_two_d_input(torch):
    check_against_torch(torch, *sdpa_twins(torch), [a[0, 0] for a in QKV])
    check_against_torch(torch, *sdpa_twins(torch), [a[0] for a in QKV])


def test_a_boolean_mask_says_which_keys_take_part(torch):
    keep = np.random.default_rng(4).random((4, 5)) > 0.4
    keep[:, 0] = True
    ours, theirs = sdpa_twins(torch)
    check_against_torch(torch, Function(lambda q, k, v: ours(q, k, v, keep)),
                        Function(lambda q, k, v: theirs(q, k, v, torch.tensor(keep))), QKV, second_order=True)


def test_a_float_mask_is_added_and_gets_its_gradient(torch):
    mask = gaussian(3, 4, 5, seed=5)  # broadcast over the batch
    mask[1, 2, :2] = -math.inf
    check_against_torch(torch, *sdpa_twins(torch), [*QKV, mask], second_order=True)


def test_a_query_that_may_attend_to_nothing_gets_zeros_and_no_gradient_as_in_pytorch(torch):
    keep = np.ones((4, 5), bool)
    keep[2] = False
    ours, theirs = sdpa_twins(torch)
    outs = check_against_torch(torch, Function(lambda q, k, v: ours(q, k, v, keep)),
                               Function(lambda q, k, v: theirs(q, k, v, torch.tensor(keep))), QKV)
    assert not outs[0].data[:, :, 2].any() and np.isfinite(outs[0].data).all()
    blocked = np.zeros((4, 5))
    blocked[2] = -math.inf  # the same with a float mask
    check_against_torch(torch, *sdpa_twins(torch), [*QKV[:2], QKV[2], blocked])


def test_grouped_query_attention_shares_key_and_value_heads(torch):
    q, k, v = gaussian(2, 4, 3, 8), gaussian(2, 2, 5, 8, seed=2), gaussian(2, 2, 5, 6, seed=3)
    check_against_torch(torch, *sdpa_twins(torch, enable_gqa=True), [q, k, v])


def test_sdpa_dropout_zeroes_weights_and_rescales_the_rest():
    manual_seed(0)
    q, k, v = (Tensor(a) for a in QKV)
    assert not np.allclose(F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).data,
                           F.scaled_dot_product_attention(q, k, v).data)
    zeros = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
    assert zeros.shape == (2, 3, 4, 6) and not zeros.data.any()


def test_sdpa_refusals_are_pytorchs():
    q, k, v = (Tensor(a) for a in QKV)
    with pytest.raises(ValueError, match="attn_mask should not be given with is_causal=True"):
        F.scaled_dot_product_attention(q, k, v, np.ones((4, 5), bool), is_causal=True)
    with pytest.raises(TypeError, match="attn_mask must be boolean or of the query's dtype \\(float64\\), got int64"):
        F.scaled_dot_product_attention(q, k, v, np.ones((4, 5), np.int64))
    with pytest.raises(ValueError, match="a mask of shape \\(5, 4\\) does not broadcast to the attention scores' "
                                         "shape \\(2, 3, 4, 5\\)"):
        F.scaled_dot_product_attention(q, k, v, np.ones((5, 4), bool))
    with pytest.raises(ValueError, match="must all be at least 2-D"):
        F.scaled_dot_product_attention(q[0, 0, 0], k[0, 0, 0], v[0, 0, 0])
    with pytest.raises(ValueError, match="with enable_gqa the number of heads of key"):
        F.scaled_dot_product_attention(q, Tensor(gaussian(2, 2, 5, 8)), Tensor(gaussian(2, 2, 5, 6)), enable_gqa=True)


# ----------------------------------------------------------------------------------------------------------
# MultiheadAttention
# ----------------------------------------------------------------------------------------------------------

CONFIGS = [{}, {"batch_first": True}, {"bias": False}, {"kdim": 3, "vdim": 5, "batch_first": True},
           {"add_bias_kv": True, "add_zero_attn": True}]


def mha_inputs(kwargs, batch=2, length=4, source=6):
    """query, key, value arrays for a MultiheadAttention(8, 2, **kwargs); batch None: unbatched."""
    lead = [] if batch is None else [batch]

    def shaped(n, features, seed):
        dims = [*lead, n] if kwargs.get("batch_first") else [n, *lead]
        return gaussian(*dims, features, seed=seed)

    return [shaped(length, 8, 1), shaped(source, kwargs.get("kdim", 8), 2), shaped(source, kwargs.get("vdim", 8), 3)]


@pytest.mark.parametrize("kwargs", CONFIGS)
def test_multihead_attention_gives_pytorchs_output_weights_and_gradients(torch, kwargs):
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2, **kwargs)
    check_against_torch(torch, ours, theirs, mha_inputs(kwargs))
    check_against_torch(torch, ours, theirs, mha_inputs(kwargs),
                        lambda m, q, k, v: m(q, k, v, need_weights=False)[0])


def test_self_attention_has_pytorchs_second_order_gradients(torch):
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2)
    causal = np.triu(np.ones((4, 4), bool), 1)
    check_against_torch(torch, ours, theirs, mha_inputs({}, source=4)[:1],
                        lambda m, x: m(x, x, x, attn_mask=causal if isinstance(x, Tensor) else torch.tensor(causal)),
                        second_order=True)


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average", [True, False])
def test_masks_of_every_kind_give_pytorchs_numbers(torch, need_weights, average):
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2, batch_first=True)
    rng = np.random.default_rng(6)
    padding = np.zeros((2, 6), bool)
    padding[0, 4:] = True  # the first sample's last two keys are padding
    masks = [{"key_padding_mask": padding}, {"attn_mask": rng.random((4, 6)) > 0.7},
             {"attn_mask": rng.random((4, 4, 6)) > 0.8, "key_padding_mask": padding},  # (N * heads, L, S)
             {"attn_mask": rng.standard_normal((4, 4, 6))},
             {"attn_mask": np.where(rng.random((4, 6)) > 0.7, -math.inf, 0.0),
              "key_padding_mask": np.where(padding, -math.inf, 0.0)}]
    for mask in masks:
        def call(m, q, k, v, mask=mask):
            wrap = Tensor if isinstance(q, Tensor) else torch.tensor
            kw = {name: wrap(value) for name, value in mask.items()}
            return m(q, k, v, need_weights=need_weights, average_attn_weights=average, **kw)
        outs = check_against_torch(torch, ours, theirs, mha_inputs({"batch_first": True}), call)
        if need_weights:
            assert outs[1].shape == ((2, 4, 6) if average else (2, 2, 4, 6))


def test_an_unbatched_sequence_gives_pytorchs_numbers(torch):
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2, batch_first=True)
    outs = check_against_torch(torch, ours, theirs, mha_inputs({}, batch=None))
    assert [o.shape for o in outs] == [(4, 8), (4, 6)]
    padding = np.array([False] * 5 + [True])
    check_against_torch(torch, ours, theirs, mha_inputs({}, batch=None),
                        lambda m, q, k, v: m(q, k, v, key_padding_mask=padding if isinstance(q, Tensor) else
                                             torch.tensor(padding), average_attn_weights=False))


def test_a_fully_masked_query_is_nan_with_weights_and_zero_attention_without_as_in_pytorch(torch):
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2, batch_first=True)
    blocked = np.zeros((4, 6), bool)
    blocked[1] = True
    q, k, v = mha_inputs({"batch_first": True})
    for need_weights in (True, False):
        out, weights = ours(Tensor(q), Tensor(k), Tensor(v), attn_mask=blocked, need_weights=need_weights)
        tout, tweights = theirs(*map(torch.tensor, (q, k, v)), attn_mask=torch.tensor(blocked),
                                need_weights=need_weights)
        np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-10, atol=1e-10)  # nan where PyTorch's
        assert np.isnan(out.data[:, 1]).all() == need_weights and np.isfinite(out.data[:, [0, 2, 3]]).all()
        if need_weights:
            np.testing.assert_allclose(weights.data, tweights.detach().numpy(), rtol=1e-10, atol=1e-10)


def test_the_causal_hint_takes_the_mask_and_needs_it(torch):
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2)
    causal = np.triu(np.ones((4, 4), bool), 1)
    x = mha_inputs({}, source=4)[0]
    for need_weights in (True, False):
        check_against_torch(torch, ours, theirs, [x], lambda m, x, need_weights=need_weights: m(
            x, x, x, attn_mask=causal if isinstance(x, Tensor) else torch.tensor(causal), is_causal=True,
            need_weights=need_weights))
    with pytest.raises(ValueError, match="Need attn_mask if specifying the is_causal hint"):
        ours(Tensor(x), Tensor(x), Tensor(x), is_causal=True)


def test_dropout_acts_on_the_weights_in_training_only(torch):
    manual_seed(1)
    ours, theirs = twins(torch, "MultiheadAttention", 8, 2, dropout=0.5)
    q, k, v = (Tensor(a) for a in mha_inputs({}))
    _, dropped = ours(q, k, v, average_attn_weights=False)  # the weights as used: after dropout, as PyTorch
    ours.eval(), theirs.eval()
    _, weights = ours(q, k, v, average_attn_weights=False)
    kept = dropped.data != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(dropped.data[kept], 2 * weights.data[kept], rtol=1e-12)  # rescaled by 1 / (1 - p)
    check_against_torch(torch, ours, theirs, [q.data, k.data, v.data])


def test_parameters_and_initial_values_are_pytorchs(torch):
    for kwargs in CONFIGS:
        mine, theirs = nn.MultiheadAttention(8, 2, **kwargs), torch.nn.MultiheadAttention(8, 2, **kwargs)
        assert [(k, v.shape) for k, v in mine.state_dict().items()] == [
            (k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    layer = nn.MultiheadAttention(8, 2, add_bias_kv=True)
    assert np.abs(layer.in_proj_weight.data).max() <= math.sqrt(6 / (8 + 24))  # xavier_uniform_ of (24, 8)
    assert not layer.in_proj_bias.data.any() and not layer.out_proj.bias.data.any()
    assert layer.bias_k.data.std() > 0 and layer.in_proj_weight.dtype == np.float32


def test_save_and_load_rebuild_the_layer_and_its_numbers(tmp_path, torch):
    layer = nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True, batch_first=True, dtype=np.float64)
    loaded = nn.Module.load(layer.save(tmp_path / "attention.npz"))
    assert type(loaded) is nn.MultiheadAttention and loaded.config() == layer.config()
    q, k, v = (Tensor(a) for a in mha_inputs({"kdim": 3, "vdim": 5, "batch_first": True}))
    with no_grad():
        np.testing.assert_array_equal(loaded(q, k, v)[0].data, layer(q, k, v)[0].data)
    config = nn.MultiheadAttention(8, 2, dropout=0.1, bias=False).config()
    assert "dtype" not in config
    torch.nn.MultiheadAttention(**config)  # PyTorch's constructor arguments


def test_bad_arguments_are_refused_with_their_shapes():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads, got 8 and 3"):
        nn.MultiheadAttention(8, 3)
    layer = nn.MultiheadAttention(8, 2)
    x = Tensor.zeros(4, 2, 8)
    with pytest.raises(ValueError, match="query should be unbatched 2D or batched 3D tensor but received 4-D"):
        layer(Tensor.zeros(1, 4, 2, 8), x, x)
    with pytest.raises(ValueError, match="The shape of the 2D attn_mask is \\(4, 5\\), but should be \\(4, 4\\)"):
        layer(x, x, x, attn_mask=np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="expecting key_padding_mask shape of \\(2, 4\\), but got \\(4, 2\\)"):
        layer(x, x, x, key_padding_mask=np.zeros((4, 2), bool))
    with pytest.raises(TypeError, match="only bool and floating types of masks are supported"):
        layer(x, x, x, key_padding_mask=np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="must have 8, 8 and 8 features"):
        layer(x, Tensor.zeros(4, 2, 3), x)
    with pytest.raises(ValueError, match="input dtype \\(float64\\) does not match"):
        layer(Tensor.zeros(4, 2, 8, dtype=np.float64), x, x)


# ----------------------------------------------------------------------------------------------------------
# As a lecture writes it
# ----------------------------------------------------------------------------------------------------------


def test_a_causal_self_attention_head_as_in_lets_build_gpt(torch):
    # the head of "Let's build GPT", written against our library as learners write it against PyTorch
    tg = tinygrad_like

    class Head(nn.Module):
        def __init__(self, n_embd, head_size, block_size):
            self.key = nn.Linear(n_embd, head_size, bias=False)
            self.query = nn.Linear(n_embd, head_size, bias=False)
            self.value = nn.Linear(n_embd, head_size, bias=False)
            self.register_buffer("tril", tg.tril(tg.ones(block_size, block_size)))

        def forward(self, x):
            B, T, C = x.shape  # noqa: N806 - the lecture's names
            k, q = self.key(x), self.query(x)
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))
            wei = F.softmax(wei, dim=-1)
            return wei @ self.value(x)

    manual_seed(0)
    head = Head(n_embd=16, head_size=8, block_size=10)
    x = Tensor(np.random.default_rng(0).standard_normal((3, 7, 16)).astype(np.float32), requires_grad=True)
    out = head(x)
    k, q, v = head.key(x), head.query(x), head.value(x)
    fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(out.data, fused.data, rtol=1e-5, atol=1e-6)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    loop_grads = autograd.grad(out, [x, *head.parameters()], upstream)
    fused_grads = autograd.grad(F.scaled_dot_product_attention(head.query(x), head.key(x), head.value(x),
                                                               is_causal=True), [x, *head.parameters()], upstream)
    for a, b in zip(loop_grads, fused_grads):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-4, atol=1e-5)

    theirs = torch.nn.ModuleDict({name: torch.nn.Linear(16, 8, bias=False) for name in ("key", "query", "value")})
    theirs.load_state_dict({k: torch.tensor(v) for k, v in head.state_dict().items() if k != "tril"})
    tx = torch.tensor(x.data)
    tq, tk, tv = theirs["query"](tx), theirs["key"](tx), theirs["value"](tx)
    wei = (tq @ tk.transpose(-2, -1) * 8 ** -0.5).masked_fill(torch.tril(torch.ones(7, 7)) == 0, float("-inf"))
    np.testing.assert_allclose(out.data, (wei.softmax(-1) @ tv).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_multihead_self_attention_in_a_transformer_block_trains():
    # a pre-norm block's attention with a residual: a loss that goes down under Adam
    manual_seed(0)
    attn = nn.MultiheadAttention(8, 2, batch_first=True)
    mask = np.triu(np.ones((5, 5), bool), 1)
    x = Tensor.randn(4, 5, 8)
    target = Tensor.randn(4, 5, 8)
    opt = tinygrad_like.optim.Adam(attn.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        out, _ = attn(x, x, x, attn_mask=mask, need_weights=False)
        loss = F.mse_loss(x + out, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.95
