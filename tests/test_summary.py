"""nn.summary (every module's output shape and parameter count, checked against PyTorch's forward hooks and
parameters on the same network) and errors raised in a forward naming the module they happened in."""

import re
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_like as tg
from tinygrad_like import Tensor, export, nn, no_grad
from tinygrad_like.nn import functional as F
from tinygrad_like.nn.summary import recorded_calls

RNG = np.random.default_rng(0)


def cnn() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 4, 3, padding=1)), ("norm", nn.BatchNorm2d(4)), ("act1", nn.ReLU()),
        ("pool", nn.MaxPool2d(2)), ("conv2", nn.Conv2d(4, 8, 3)), ("act2", nn.ReLU()), ("flat", nn.Flatten()),
        ("drop", nn.Dropout(0.25)), ("head", nn.Linear(8 * 2 * 2, 10))]))


class CausalSelfAttention(nn.Module):
    """nanoGPT's attention, written with the library's layers."""

    def __init__(self, width: int, heads: int) -> None:
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, t, c = x.shape
        q, k, v = (h.reshape(b, t, self.heads, c // self.heads).transpose(1, 2) for h in self.qkv(x).split(c, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class SelfAttention(nn.Module):
    """nn.MultiheadAttention with a causal mask, as a block uses it."""

    def __init__(self, width: int, heads: int) -> None:
        self.mha = nn.MultiheadAttention(width, heads, batch_first=True)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        return self.mha(x, x, x, attn_mask=np.triu(np.ones((t, t), bool), 1), need_weights=False)[0]


class Block(nn.Module):
    def __init__(self, width: int, heads: int, attention: type) -> None:
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = attention(width, heads)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """Token and position embeddings, a ModuleList of pre-norm blocks, a final LayerNorm and the logits."""

    def __init__(self, vocab: int = 11, context: int = 6, width: int = 8, heads: int = 2, layers: int = 2,
                 attention: type = CausalSelfAttention) -> None:
        self.tok_emb, self.pos_emb = nn.Embedding(vocab, width), nn.Embedding(context, width)
        self.blocks = nn.ModuleList([Block(width, heads, attention) for _ in range(layers)])
        self.ln_f, self.lm_head = nn.LayerNorm(width), nn.Linear(width, vocab)

    def forward(self, idx: Tensor) -> Tensor:
        x = self.tok_emb(idx) + self.pos_emb(tg.arange(idx.shape[1]))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def torch_shapes(torch, model: nn.Module, x: np.ndarray) -> dict[str, tuple]:
    """The output shape of every module call of PyTorch's version of ``model``, by path (its forward hooks)."""
    twin, shapes = export.to_torch(model), {}

    def hook(path: str):
        def record(module, args, out) -> None:
            shapes.setdefault(path, tuple(out.shape))
        return record

    for path, module in twin.named_modules():
        module.register_forward_hook(hook(path))
    twin(torch.from_numpy(x))
    return shapes


def test_a_cnn_summary_has_pytorchs_shapes_and_parameter_counts(torch):
    model = cnn()
    x = RNG.standard_normal((5, 1, 8, 8)).astype(np.float32)
    before = model.state_dict()
    summary = nn.summary(model, x)
    expected = torch_shapes(torch, model, x)
    twin = export.to_torch(model)
    assert [row.path for row in summary.rows] == [path for path, _ in twin.named_modules()]
    for row in summary.rows:
        assert row.output_shape == expected[row.path] and row.calls == 1
        assert row.params == sum(p.numel() for p in twin.get_submodule(row.path).parameters())
        assert row.type == type(twin.get_submodule(row.path)).__name__
    assert summary.total_params == summary.trainable_params == sum(p.numel() for p in twin.parameters()) == 674
    # nothing learnt from the run: running statistics and counters as they were, no graph, no gradient
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters()) and "forward" not in vars(model.conv1)
    text = str(summary)
    assert text.splitlines()[2].split() == ["(model)", "Sequential", "(5,", "10)", "674"]
    assert re.search(r"^conv2 +Conv2d +\(5, 8, 2, 2\) +296$", text, re.M)
    assert text.endswith("total parameters: 674\ntrainable parameters: 674")


def test_a_gpt_summary_names_every_module_with_its_shape_and_counts_shared_weights_once(torch):
    manual_seed = tg.manual_seed
    manual_seed(0)
    gpt = GPT(attention=SelfAttention)
    gpt.lm_head.weight = gpt.tok_emb.weight  # weight tying: one tensor, counted once in the totals
    gpt.pos_emb.requires_grad_(False)
    summary = nn.summary(gpt, RNG.integers(0, 11, (3, 6)))
    rows = {row.path: row for row in summary.rows}
    assert list(rows) == [path for path, _ in gpt.named_modules()]
    assert rows[""].output_shape == (3, 6, 11) and rows["tok_emb"].output_shape == (3, 6, 8)
    assert rows["pos_emb"].output_shape == (6, 8)
    assert rows["blocks"].calls == 0 and rows["blocks"].output_shape is None  # a ModuleList is indexed, not called
    assert rows["blocks.1.attn.mha"].output_shape == [(3, 6, 8), None]  # (output, no weights)
    assert rows["blocks.1.attn.mha.out_proj"].output_shape == (6, 3, 8)  # batch_first is undone inside
    assert rows["blocks.0.mlp.1"].type == "GELU" and rows["blocks.0.mlp.1"].output_shape == (3, 6, 32)
    block = 2 * 2 * 8 + (3 * 8 * 8 + 3 * 8) + (8 * 8 + 8) + (8 * 32 + 32) + (32 * 8 + 8)
    assert rows["blocks.0"].params == rows["blocks.1"].params == block
    assert rows["lm_head"].params == 11 * 8 + 11
    total = 11 * 8 + 6 * 8 + 2 * block + 2 * 8 + 11  # lm_head's weight is tok_emb's
    assert summary.total_params == total == sum(p.numel() for p in gpt.parameters())
    assert summary.trainable_params == total - 6 * 8
    text = str(summary)
    assert re.search(r"^blocks\.1\.attn\.mha +MultiheadAttention +\(\(3, 6, 8\), None\) +288$", text, re.M)
    assert re.search(r"^blocks +ModuleList +- +1,744$", text, re.M)
    assert f"total parameters: {total:,}\ntrainable parameters: {total - 48:,}" in text


def test_a_module_called_several_times_shows_its_first_shape_and_count():
    cell = nn.Linear(4, 4)

    class Unrolled(nn.Module):
        def __init__(self):
            self.cell, self.unused = cell, nn.Linear(2, 2)

        def forward(self, x):
            for _ in range(3):
                x = self.cell(x).tanh()
            return x

    summary = nn.summary(Unrolled(), np.ones((2, 4), np.float32))
    rows = {row.path: row for row in summary.rows}
    assert (rows["cell"].calls, rows["cell"].output_shape) == (3, (2, 4))
    assert (rows["unused"].calls, rows["unused"].output_shape) == (0, None)
    assert "(2, 4) x3 calls" in str(summary)


def test_summary_refuses_what_is_not_a_module():
    with pytest.raises(TypeError, match="summary: expected an nn.Module, got function"):
        nn.summary(lambda x: x, np.ones(2))


# ----------------------------------------------------------------------------------------------------------
# An error inside a forward names the module it happened in
# ----------------------------------------------------------------------------------------------------------


def broken_gpt() -> GPT:
    gpt = GPT()
    gpt.blocks[1].attn.proj = nn.Linear(9, 8)  # block 1's projection expects 9 features, gets 8
    return gpt


def test_a_shape_error_deep_in_a_gpt_names_the_module_path():
    idx = RNG.integers(0, 11, (2, 6))
    message = (r"^blocks\.1\.attn\.proj \(Linear\): linear: input of shape \(2, 6, 8\) does not fit a weight of "
               r"shape \(8, 9\)")
    with pytest.raises(ValueError, match=message):
        broken_gpt()(idx)
    with pytest.raises(ValueError, match=message):  # as summary reports it
        nn.summary(broken_gpt(), idx)
    with pytest.raises(ValueError, match=r"^attn\.proj \(Linear\): linear: "):  # from the block, its own path
        broken_gpt().blocks[1](Tensor.randn(2, 6, 8))
    with pytest.raises(ValueError, match=r"^linear: input of shape"):  # the layer called alone: nothing to add
        broken_gpt().blocks[1].attn.proj(Tensor.randn(2, 6, 8))


def test_a_shape_error_in_a_cnn_names_the_layer_and_keeps_its_traceback():
    model = cnn()
    with pytest.raises(ValueError) as info:
        model(np.zeros((5, 1, 10, 10), np.float32))  # 10x10 images: the head gets 8*3*3 features, not 8*2*2
    assert str(info.value).startswith("head (Linear): linear: input of shape (5, 72) does not fit")
    assert info.traceback[-1].name != "__call__"  # raised where it happened, not re-raised from a wrapper
    with pytest.raises(ValueError, match=r"^norm \(BatchNorm2d\): expected 4D input, got shape \(5, 4, 8\)"):
        nn.Sequential(OrderedDict([("conv", nn.Conv1d(1, 4, 3, padding=1)), ("norm", nn.BatchNorm2d(4))]))(
            np.zeros((5, 1, 8), np.float32))  # the layer's own "BatchNorm2d: ..." says its type once


def test_the_exception_keeps_its_type_and_attributes():
    class NotReady(RuntimeError):
        def __init__(self, layer: str, step: int) -> None:  # a constructor with other arguments than a message
            super().__init__(f"{layer} is not ready at step {step}")
            self.step = step

    class Fails(nn.Module):
        def forward(self, x):
            raise NotReady("cache", 3)

    class Lookup(nn.Module):
        def __init__(self):
            self.table = nn.ModuleDict({"a": nn.Linear(2, 2)})

        def forward(self, x):
            return self.table["b"](x)

    model = nn.Sequential(nn.Identity(), nn.Sequential(Fails()))
    with pytest.raises(NotReady, match=r"^1\.0 \(Fails\): cache is not ready at step 3$") as info:
        model(np.ones(2))
    assert info.value.step == 3 and info.value.args == ("1.0 (Fails): cache is not ready at step 3",)
    with pytest.raises(KeyError) as key_error:  # a KeyError's argument is the key: kept, the path said in a note
        nn.Sequential(Lookup())(np.ones((1, 2)))
    assert key_error.value.args == ("b",)
    if hasattr(key_error.value, "add_note"):  # Python 3.11+
        assert key_error.value.__notes__ == ["in the module 0 (Lookup)"]


def test_a_module_not_held_by_its_caller_is_named_from_where_it_is_held():
    shared = nn.Sequential(nn.Linear(3, 2))

    class UsesAnother(nn.Module):  # calls a module it does not hold
        def forward(self, x):
            return shared(x)

    with pytest.raises(ValueError, match=r"^0 \(Linear\): linear: "):
        nn.Sequential(UsesAnother())(np.ones((1, 4), np.float32))


def test_errors_in_a_lecture_style_network_name_the_layer():
    # the makemore MLP as a learner writes it, with the hidden size of the second layer wrong
    model = nn.Sequential(nn.Embedding(27, 10), nn.Flatten(), nn.Linear(30, 200, bias=False), nn.BatchNorm1d(200),
                          nn.Tanh(), nn.Linear(100, 27))
    xb = RNG.integers(0, 27, (32, 3))
    with pytest.raises(ValueError, match=r"^5 \(Linear\): linear: input of shape \(32, 200\)"):
        model(xb)
    found = nn.summary(nn.Sequential(*list(model)[:5]), xb)  # what a learner prints to find the size
    assert found.rows[-1].path == "4" and found.rows[-1].output_shape == (32, 200)


def test_recorded_calls_puts_every_forward_back(torch):
    model = cnn()
    model.act1.forward = lambda x: x.relu()  # a forward set on an instance stays the instance's
    patched = model.act1.forward
    with recorded_calls(model) as calls, no_grad():
        model(np.zeros((1, 1, 8, 8), np.float32))
    assert [c.path for c in calls] == [path for path, _ in model.named_modules()][1:] + [""]
    assert all(c.parent.path == "" for c in calls[:-1]) and calls[-1].parent is None
    assert model.act1.forward is patched and all("forward" not in vars(m) for m in model if m is not model.act1)
