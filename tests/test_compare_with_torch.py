"""export.compare_with_torch: a network run here and in PyTorch side by side, module by module; correct networks
agree, and a layer with a wrong forward or a wrong backward (a Function of one's own) is named."""

from collections import OrderedDict

import numpy as np
import pytest
from helpers import makemore_mlp
from test_summary import GPT, CausalSelfAttention, SelfAttention

import tinygrad_like as tg
from tinygrad_like import Function, Tensor, export, nn
from tinygrad_like.export import relative_difference
from tinygrad_like.nn import functional as F

torch = pytest.importorskip("torch")
RNG = np.random.default_rng(0)


def cnn() -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(2, 4, 3, padding=1)), ("norm", nn.BatchNorm2d(4)), ("act", nn.ReLU(inplace=True)),
        ("pool", nn.MaxPool2d(2)), ("drop", nn.Dropout(0.5)), ("flat", nn.Flatten()), ("head", nn.Linear(36, 5))]))


def test_a_correct_makemore_mlp_agrees_in_every_module():
    model = makemore_mlp().double()
    x = RNG.integers(0, 27, (16, 3))
    running = model[3].running_mean.data.copy()
    diff = export.compare_with_torch(model, x)
    assert diff.ok and diff.first_divergent is None and diff.direction is None
    assert [(row.path, row.type) for row in diff.rows] == [
        ("0", "Embedding"), ("1", "Flatten"), ("2", "Linear"), ("3", "BatchNorm1d"), ("4", "Tanh"), ("5", "Linear"),
        ("", "Sequential")]  # the order the calls return: the Sequential after its layers
    for row in diff.rows:
        assert row.matched and row.output < 1e-13 and row.grad_output < 1e-13 and row.input < 1e-13
    assert diff.rows[0].grad_input is None and diff.rows[1].grad_input < 1e-13  # indices take no gradient
    assert diff.rows[-1].grad_params < 1e-13 and diff.rows[4].grad_params is None  # Tanh has no parameters
    # nothing of the model changed: batch normalisation's running statistics, no gradients left behind
    assert np.array_equal(model[3].running_mean.data, running) and int(model[3].num_batches_tracked.item()) == 0
    assert all(p.grad is None for p in model.parameters()) and all("forward" not in vars(m) for m in model)
    text = str(diff)
    assert text.splitlines()[0].split() == ["module", "type", "output", "grad", "at", "output", "grad", "at", "input",
                                           "grad", "of", "params"]
    assert text.endswith("none: every output and gradient agrees within rtol=0.0001")
    assert "!" not in text.split("\n\n")[0]  # no value above rtol in the table


def test_in_float32_they_agree_within_the_default_rtol():
    diff = export.compare_with_torch(makemore_mlp(), RNG.integers(0, 27, (16, 3)))
    assert diff.ok and max(row.output for row in diff.rows) < 1e-5


def test_a_small_cnn_agrees_under_a_loss_with_dropout_switched_off_for_the_run():
    model = cnn().double()
    x, labels = RNG.standard_normal((6, 2, 6, 6)), RNG.integers(0, 5, 6)
    diff = export.compare_with_torch(model, x, target=Tensor(labels), loss_fn=nn.CrossEntropyLoss())
    assert diff.ok and diff.dropout_off == ("drop",) and model.drop.training
    assert "dropout off on both sides (random masks cannot match): drop" in str(diff)
    rows = {row.path: row for row in diff.rows}
    assert rows["conv"].grad_input < 1e-12 and rows["conv"].grad_params < 1e-12
    model.eval()  # in evaluation the running statistics are used, on both sides
    assert export.compare_with_torch(model, x).ok


def test_a_layer_with_a_wrong_forward_is_named():
    model = makemore_mlp().double()
    x = RNG.integers(0, 27, (16, 3))
    model[4].forward = lambda h: h.tanh() * 1.001  # a learner's tanh, slightly off
    diff = export.compare_with_torch(model, x)
    assert (diff.first_divergent, diff.direction) == ("4", "forward")
    row = diff.rows[4]
    assert row.input < 1e-13 and row.output == pytest.approx(0.001 / 1.001, rel=1e-9)
    assert str(diff).endswith("first divergent: 4 (Tanh), in its forward: its output differs by 1.0e-03, its "
                              "input agreeing")
    model[4].forward = lambda h: h  # the activation forgotten: the layer gives back its input
    diff = export.compare_with_torch(model, x)
    assert (diff.first_divergent, diff.direction) == ("4", "forward") and diff.rows[4].output > 0.1


class Swish(Function):
    """z = x * sigmoid(x); its backward may forget a term, as a learner's might."""

    forget = False

    def forward(self, x):
        self.x, self.s = x, 1 / (1 + np.exp(-x))
        return x * self.s

    def backward(self, grad):
        s = self.s
        return (grad * (s if self.forget else s + self.x * s * (1 - s)),)


class SwishBlock(nn.Module):
    """A module of one's own: a Linear, then one's own Function."""

    def __init__(self):
        self.fc = nn.Linear(4, 6)

    def forward(self, x):
        return Swish.apply(self.fc(x))


class TorchSwishBlock(torch.nn.Module):
    """The same block in PyTorch, with the same names."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 6)

    def forward(self, x):
        return torch.nn.functional.silu(self.fc(x))


def swish_models() -> tuple[nn.Sequential, torch.nn.Sequential]:
    ours = nn.Sequential(nn.Linear(3, 4), SwishBlock(), nn.Linear(6, 2)).double()
    return ours, torch.nn.Sequential(torch.nn.Linear(3, 4), TorchSwishBlock(), torch.nn.Linear(6, 2))


def test_a_function_of_ones_own_with_a_wrong_backward_names_its_module(monkeypatch):
    ours, theirs = swish_models()
    before = {k: v.clone() for k, v in theirs.state_dict().items()}
    x = RNG.standard_normal((5, 3))
    assert export.compare_with_torch(ours, x, torch_model=theirs).ok  # the right backward agrees
    monkeypatch.setattr(Swish, "forget", True)
    diff = export.compare_with_torch(ours, x, torch_model=theirs)
    assert (diff.first_divergent, diff.direction) == ("1", "backward")
    rows = {row.path: row for row in diff.rows}
    assert all(row.output < 1e-13 for row in diff.rows)  # the forward is right
    assert rows["2"].grad_output < 1e-13 and rows["1"].grad_output < 1e-13  # up to the block, the gradient agrees
    assert rows["1"].grad_input > 0.01 and rows["1.fc"].grad_output > 0.01  # from inside the block on, it does not
    assert rows[""].grad_input > 0.01  # the model's too, but the block is the innermost that breaks it
    assert "first divergent: 1 (SwishBlock), in its backward: the gradient at its output agrees, the gradient it " \
           "gives its input differs by" in str(diff)
    assert all(torch.equal(v, theirs.state_dict()[k]) for k, v in before.items())  # the PyTorch model untouched


def test_a_module_of_ones_own_needs_its_pytorch_version():
    ours, _ = swish_models()
    with pytest.raises(TypeError, match=r"compare_with_torch: to_torch: no PyTorch equivalent for Sequential\.1 "
                                        r"\(SwishBlock\).*pass it as torch_model="):
        export.compare_with_torch(ours, RNG.standard_normal((5, 3)))
    renamed = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.SiLU()),
                                  torch.nn.Linear(6, 2))
    with pytest.raises(ValueError, match=r"not named as ours: only ours \['1\.fc\.bias', '1\.fc\.weight'\], only "
                                         r"PyTorch's \['1\.0\.bias', '1\.0\.weight'\]"):
        export.compare_with_torch(ours, RNG.standard_normal((5, 3)), torch_model=renamed)


class Scale(Function):
    """x * w, with w's gradient doubled by mistake."""

    def forward(self, x, w):
        self.x, self.w = x, w
        return x * w

    def backward(self, grad):
        return grad * self.w, 2 * (grad * self.x).sum(axis=0)


class Scaled(nn.Module):
    def __init__(self, n):
        self.weight = nn.Parameter(np.linspace(0.5, 1.5, n))

    def forward(self, x):
        return Scale.apply(x, self.weight)


class TorchScaled(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n, dtype=torch.float64))

    def forward(self, x):
        return x * self.weight


def test_a_wrong_gradient_of_a_parameter_only_is_named():
    ours = nn.Sequential(nn.Linear(3, 4), Scaled(4), nn.Tanh()).double()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), TorchScaled(4), torch.nn.Tanh())
    diff = export.compare_with_torch(ours, RNG.standard_normal((5, 3)), torch_model=theirs)
    assert (diff.first_divergent, diff.direction) == ("1", "backward")
    assert diff.rows[1].grad_input < 1e-13 and diff.rows[1].grad_params == pytest.approx(0.5)  # |2g - g| / |2g|
    assert "the gradient it gives its parameters differs by 5.0e-01" in str(diff)


def test_code_of_the_model_between_its_layers_is_named_as_the_models():
    class Net(nn.Module):
        def __init__(self):
            self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(self.fc1(x).tanh() * 2)

    class TorchNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)) * 2.5)

    diff = export.compare_with_torch(Net().double(), RNG.standard_normal((5, 3)), torch_model=TorchNet())
    assert (diff.first_divergent, diff.direction) == ("", "forward") and not diff.ok
    assert [row.path for row in diff.rows] == ["fc1", "fc2", ""]
    assert diff.rows[0].output < 1e-13 and diff.rows[1].input == pytest.approx(0.5 / 2.5)
    assert "first divergent: the model (Net), in its forward: the input it gives fc2 (Linear) already differs by " \
           "2.0e-01 though no module before differs: its own code around its sub-modules computes something else" \
           in str(diff)


def torch_gpt(ours: GPT) -> torch.nn.Module:
    """PyTorch's version of the test GPT (the same names), for either attention."""
    nn_ = torch.nn

    class Attention(nn_.Module):
        def __init__(self, width, heads, kind):
            super().__init__()
            self.heads, self.kind = heads, kind
            if kind is SelfAttention:
                self.mha = nn_.MultiheadAttention(width, heads, batch_first=True)
            else:
                self.qkv, self.proj = nn_.Linear(width, 3 * width), nn_.Linear(width, width)

        def forward(self, x):
            b, t, c = x.shape
            if self.kind is SelfAttention:
                return self.mha(x, x, x, attn_mask=torch.triu(torch.ones(t, t, dtype=torch.bool), 1),
                                need_weights=False)[0]
            q, k, v = (h.reshape(b, t, self.heads, c // self.heads).transpose(1, 2) for h in self.qkv(x).split(c, 2))
            y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.proj(y.transpose(1, 2).reshape(b, t, c))

    class Block(nn_.Module):
        def __init__(self, width, heads, kind):
            super().__init__()
            self.ln1, self.ln2 = nn_.LayerNorm(width), nn_.LayerNorm(width)
            self.attn = Attention(width, heads, kind)
            self.mlp = nn_.Sequential(nn_.Linear(width, 4 * width), nn_.GELU(), nn_.Linear(4 * width, width))

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.mlp(self.ln2(x))

    class TorchGPT(nn_.Module):
        def __init__(self, vocab, context, width, heads, layers, kind):
            super().__init__()
            self.tok_emb, self.pos_emb = nn_.Embedding(vocab, width), nn_.Embedding(context, width)
            self.blocks = nn_.ModuleList([Block(width, heads, kind) for _ in range(layers)])
            self.ln_f, self.lm_head = nn_.LayerNorm(width), nn_.Linear(width, vocab)

        def forward(self, idx):
            x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    return TorchGPT(11, 6, 8, 2, 2, type(ours.blocks[0].attn))


@pytest.mark.parametrize("attention", [CausalSelfAttention, SelfAttention])
def test_a_small_gpt_agrees_and_a_wrong_layer_norm_in_it_is_named(attention):
    tg.manual_seed(0)
    gpt = GPT(attention=attention).double()
    idx, targets = RNG.integers(0, 11, (3, 6)), Tensor(RNG.integers(0, 11, 18))
    loss = lambda logits, y: F.cross_entropy(logits.reshape(-1, 11), y)  # noqa: E731 - as a lecture writes it
    diff = export.compare_with_torch(gpt, idx, target=targets, loss_fn=loss, torch_model=torch_gpt(gpt))
    assert diff.ok, str(diff)
    matched = {row.path for row in diff.rows if row.matched}
    assert {"tok_emb", "blocks.1.attn", "blocks.1.mlp.1", "ln_f", "lm_head", ""} <= matched
    if attention is SelfAttention:  # PyTorch's attention uses out_proj's weights without calling it
        assert {row.path for row in diff.rows if not row.matched} == {"blocks.0.attn.mha.out_proj",
                                                                       "blocks.1.attn.mha.out_proj"}
        assert "blocks.0.attn.mha.out_proj  Linear              (no PyTorch call)" in str(diff)
    eps = gpt.blocks[1].ln2.eps
    gpt.blocks[1].ln2.eps = 0.5  # a layer whose forward is off
    diff = export.compare_with_torch(gpt, idx, target=targets, loss_fn=loss, torch_model=torch_gpt(gpt))
    gpt.blocks[1].ln2.eps = eps
    assert (diff.first_divergent, diff.direction) == ("blocks.1.ln2", "forward")


def test_refusals():
    with pytest.raises(TypeError, match="compare_with_torch: expected an nn.Module, got function"):
        export.compare_with_torch(lambda x: x, np.ones(2))
    with pytest.raises(ValueError, match="compare_with_torch: a target needs a loss_fn"):
        export.compare_with_torch(makemore_mlp(), RNG.integers(0, 27, (4, 3)), target=np.zeros(4))


def test_relative_difference_is_the_largest_difference_over_the_scale():
    a, b = np.array([1.0, -4.0, 2.0]), np.array([1.0, -3.0, 2.5])
    assert relative_difference([a], [b]) == 1.0 / 4.0
    assert relative_difference([a, a], [a, b]) == 1.0 / 4.0 and relative_difference([a], [a]) == 0.0
    assert relative_difference([None], [np.zeros(3)]) == 0.0 and relative_difference([None], [None]) is None
    assert relative_difference([None], [a]) == 1.0  # a gradient that does not arrive is zeros
    # arrays measured together: rounding noise in a value that should be 0, beside others of size 4
    assert relative_difference([a, np.array([1e-17])], [a, np.array([-1e-17])]) == 2e-17 / 4
    assert relative_difference([a], [a[:2]]) == np.inf and relative_difference([a], [a, a]) == np.inf
    nan = np.array([np.nan, 1.0, np.inf])
    assert relative_difference([nan], [nan.copy()]) == 0.0 and relative_difference([nan], [np.ones(3)]) == np.inf
    assert relative_difference([], []) is None


def test_as_a_learner_checks_a_tanh_of_their_own():
    # a learner's tanh as a Function, its backward missing the derivative, in a network as the lectures build
    # it; their PyTorch version is the same network with PyTorch's Tanh
    class MyTanh(Function):
        def forward(self, x):
            self.out = np.tanh(x)
            return self.out

        def backward(self, grad):
            return (grad,)  # should be grad * (1 - out ** 2)

    class Tanh(nn.Module):
        def forward(self, x):
            return MyTanh.apply(x)

    tg.manual_seed(42)
    model = nn.Sequential(nn.Linear(2, 8), Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 1))
    x = RNG.uniform(-1, 1, (32, 2)).astype(np.float32)
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float32)
    diff = export.compare_with_torch(model, x, target=Tensor(y), loss_fn=F.mse_loss, torch_model=theirs)
    print(diff)
    assert diff.first_divergent == "1" and diff.direction == "backward"


def test_a_module_called_several_times_is_compared_call_by_call():
    class Unrolled(nn.Module):
        def __init__(self):
            self.cell = nn.Linear(4, 4)

        def forward(self, x):
            for _ in range(3):
                x = self.cell(x).tanh()
            return x

    class TorchUnrolled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = torch.nn.Linear(4, 4)

        def forward(self, x):
            for step in range(3):
                x = torch.tanh(self.cell(x) * (1.01 if step == 2 else 1))  # the third step differs
            return x

    diff = export.compare_with_torch(Unrolled().double(), RNG.standard_normal((2, 4)), torch_model=TorchUnrolled())
    assert [(row.path, row.call, row.calls) for row in diff.rows] == [("cell", 1, 3), ("cell", 2, 3), ("cell", 3, 3),
                                                                       ("", 1, 1)]
    assert diff.rows[1].output < 1e-13 and diff.rows[2].output < 1e-13 and diff.rows[3].output > 1e-3
    assert diff.first_divergent == "" and "cell [3]  Linear" in str(diff)
