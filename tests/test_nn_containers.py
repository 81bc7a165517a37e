"""nn.Sequential, nn.ModuleList and nn.ModuleDict, nn.Parameter, and the Module API of PyTorch's lessons (apply,
modules, children, named_children, to/cpu, requires_grad_, register_parameter, add_module), each doing what
PyTorch's does: the same operations on both libraries give the same names, keys and orders."""

from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_like
from tinygrad_like import Tensor, nn, optim


def names(module) -> list[str]:
    return [name for name, _ in module.named_parameters()]


def keys(module) -> list[str]:
    return list(module.state_dict())


def kinds(modules) -> list[str]:
    return [type(m).__name__ for m in modules]


def both(torch, build):
    """``build(nn)`` with our nn and with PyTorch's."""
    return build(nn), build(torch.nn)


# ----------------------------------------------------------------------------------------------------------
# Sequential
# ----------------------------------------------------------------------------------------------------------


def test_sequential_names_its_layers_by_position_as_pytorch(torch):
    ours, theirs = both(torch, lambda nn_: nn_.Sequential(nn_.Linear(3, 4), nn_.ReLU(), nn_.BatchNorm1d(4),
                                                            nn_.Linear(4, 2)))
    assert names(ours) == names(theirs) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]
    assert keys(ours) == keys(theirs)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert kinds(ours) == kinds(theirs) and len(ours) == 4


def test_a_sequential_inside_a_module_is_named_by_its_attribute(torch):
    def net(nn_):
        class Net(nn_.Module):
            def __init__(self):
                super().__init__()
                self.features = nn_.Sequential(nn_.Conv1d(2, 3, 3), nn_.Tanh())
                self.head = nn_.Linear(3, 1)

        return Net()

    ours, theirs = both(torch, net)
    assert names(ours) == names(theirs) == ["features.0.weight", "features.0.bias", "head.weight", "head.bias"]


def test_sequential_of_an_ordered_dict_keeps_the_names(torch):
    ours, theirs = both(torch, lambda nn_: nn_.Sequential(OrderedDict(
        [("fc1", nn_.Linear(2, 3)), ("act", nn_.GELU()), ("fc2", nn_.Linear(3, 1))])))
    assert names(ours) == names(theirs) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert isinstance(ours.fc1, nn.Linear) and ours.act is ours[1]
    head, theirs_head = ours[1:], theirs[1:]
    assert isinstance(head, nn.Sequential) and names(head) == names(theirs_head) == ["fc2.weight", "fc2.bias"]
    with pytest.raises(AttributeError, match="'Sequential' object has no attribute 'fc3'"):
        getattr(ours, "fc3")  # noqa: B009 - the attribute access is what is tested


def test_sequential_indexing_and_editing_follow_pytorch(torch):
    def edit(nn_):
        seq = nn_.Sequential(nn_.Linear(1, 1), nn_.ReLU())
        seq.append(nn_.Linear(1, 2))
        seq.insert(1, nn_.Tanh())  # keys are renumbered
        seq.extend([nn_.SiLU()])
        seq[-1] = nn_.ELU()
        popped = seq.pop(0)
        del seq[0]
        return seq, popped

    (ours, popped), (theirs, their_popped) = both(torch, edit)
    assert kinds(ours) == kinds(theirs) == ["ReLU", "Linear", "ELU"]
    assert keys(ours) == keys(theirs) == ["1.weight", "1.bias"]
    assert isinstance(popped, nn.Linear) and isinstance(ours[-2], nn.Linear) and len(ours) == 3
    assert kinds(ours[::2]) == kinds(theirs[::2])
    with pytest.raises(IndexError, match="Sequential: index 3 is out of range for length 3"):
        ours[3]


def test_sequential_runs_its_layers_and_accepts_tensor_methods():
    seq = nn.Sequential(nn.Linear(2, 3), Tensor.tanh, nn.Linear(3, 1))
    x = Tensor(np.ones((4, 2), np.float32))
    np.testing.assert_array_equal(seq(x).data, seq[2](seq[0](x).tanh()).data)
    assert names(seq) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [type(layer).__name__ for layer in seq][1] == "function"
    with pytest.raises(TypeError, match="Sequential: layer '1' is a int, not a Module or a callable"):
        nn.Sequential(nn.ReLU(), 3)


# ----------------------------------------------------------------------------------------------------------
# ModuleList and ModuleDict
# ----------------------------------------------------------------------------------------------------------


def test_module_list_holds_blocks_whose_parameters_the_holder_finds(torch):
    def blocks(nn_):
        class Blocks(nn_.Module):
            def __init__(self):
                super().__init__()  # as PyTorch code does: it must work here too
                self.blocks = nn_.ModuleList([nn_.Linear(2, 2) for _ in range(2)])
                self.blocks.append(nn_.LayerNorm(2))
                self.blocks.extend([nn_.ReLU(), nn_.Linear(2, 1)])
                self.blocks.insert(0, nn_.Tanh())

            def forward(self, x):
                for block in self.blocks:
                    x = block(x)
                return x

        return Blocks()

    ours, theirs = both(torch, blocks)
    assert names(ours) == names(theirs)
    assert names(ours)[:2] == ["blocks.1.weight", "blocks.1.bias"]
    assert kinds(ours.blocks) == kinds(theirs.blocks) and len(ours.blocks) == 6
    assert kinds(ours.blocks[1:3]) == kinds(theirs.blocks[1:3]) and isinstance(ours.blocks[1:3], nn.ModuleList)
    assert isinstance(ours.blocks[-1], nn.Linear) and ours(Tensor.ones(3, 2)).shape == (3, 1)
    del ours.blocks[0], theirs.blocks[0]
    assert names(ours) == names(theirs) and ours.blocks.pop().out_features == 1
    ours.blocks += [nn.ReLU()]
    assert len(ours.blocks) == 5


def test_module_dict_is_a_dict_of_modules_as_pytorch(torch):
    def heads(nn_):
        md = nn_.ModuleDict({"b": nn_.Linear(2, 1), "a": nn_.Linear(2, 3)})
        md["c"] = nn_.Conv1d(1, 1, 1)
        md.update([("d", nn_.ReLU())])
        del md["b"]
        return md

    ours, theirs = both(torch, heads)
    assert list(ours) == list(theirs) == ["a", "c", "d"] and list(ours.keys()) == list(theirs.keys())
    assert names(ours) == names(theirs) == ["a.weight", "a.bias", "c.weight", "c.bias"]
    assert "a" in ours and "b" not in ours and len(ours) == 3
    assert kinds(ours.values()) == kinds(theirs.values()) and [k for k, _ in ours.items()] == ["a", "c", "d"]
    assert isinstance(ours.pop("d"), nn.ReLU) and len(ours) == 2
    with pytest.raises(KeyError, match="name must be non-empty and without '.', got 'x.y'"):
        ours["x.y"] = nn.ReLU()
    with pytest.raises(KeyError, match="ModuleDict already has an attribute 'train'"):
        ours["train"] = nn.ReLU()  # PyTorch refuses it too
    with pytest.raises(TypeError, match="add_module: z must be a Module or None, got int"):
        ours["z"] = 3


def test_plain_dict_and_list_attributes_of_modules_and_tensors_count():
    class Net(nn.Module):
        def __init__(self):
            self.heads = {"left": nn.Linear(2, 1), "right": nn.Linear(2, 1)}
            self.extra = {"scale": nn.Parameter(Tensor.ones(1)), "note": "not a tensor"}
            self.layers = [nn.Linear(1, 1)]

    net = Net()
    assert names(net) == ["extra.scale", "heads.left.weight", "heads.left.bias", "heads.right.weight",
                          "heads.right.bias", "layers.0.weight", "layers.0.bias"]
    assert [n for n, _ in net.named_children()] == ["heads.left", "heads.right", "layers.0"]
    assert len(net.parameters()) == 7 and net.state_dict().keys() == dict(net.named_parameters()).keys()


# ----------------------------------------------------------------------------------------------------------
# The Module API
# ----------------------------------------------------------------------------------------------------------


def tree(nn_):
    return nn_.Sequential(nn_.Linear(2, 3), nn_.Sequential(nn_.BatchNorm1d(3), nn_.ReLU()), nn_.Linear(3, 1))


def test_apply_modules_and_children_walk_the_tree_in_pytorchs_order(torch):
    ours, theirs = both(torch, tree)
    visited, their_visited = [], []
    assert ours.apply(lambda m: visited.append(type(m).__name__)) is ours
    theirs.apply(lambda m: their_visited.append(type(m).__name__))
    assert visited == their_visited == ["Linear", "BatchNorm1d", "ReLU", "Sequential", "Linear", "Sequential"]
    assert kinds(ours.modules()) == kinds(theirs.modules())
    assert kinds(ours.children()) == kinds(theirs.children()) == ["Linear", "Sequential", "Linear"]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()] == ["0", "1", "2"]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert names(ours) == names(theirs) and keys(ours) == keys(theirs)
    assert [n for n, _ in ours.named_parameters(recurse=False)] == []


def test_apply_initialises_weights_as_lessons_do():
    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
            nn.init.ones_(m.bias)

    model = tree(nn).apply(init_weights)
    assert model(Tensor.ones(4, 2)).tolist() == [[1.0]] * 4 and model[1][0].weight.tolist() == [1.0] * 3


def test_a_module_shared_twice_comes_once(torch):
    ours, theirs = both(torch, lambda nn_: (lambda layer: nn_.Sequential(layer, nn_.Tanh(), layer))(nn_.Linear(2, 2)))
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()] == ["", "0", "1"]
    assert names(ours) == names(theirs) == ["0.weight", "0.bias"]


def test_to_casts_floating_parameters_and_buffers_and_refuses_other_devices():
    model = tree(nn)
    assert model.to("cpu") is model and model.cpu() is model and model.to(tinygrad_like.device("cpu")) is model
    model(Tensor.ones(4, 2)).sum().backward()
    assert model.to(np.float64) is model
    state = model.state_dict()
    assert {k: str(v.dtype) for k, v in state.items() if v.dtype != np.float64} == {"1.0.num_batches_tracked": "int64"}
    assert model[0].weight.grad.dtype == np.float64 and model[0].weight.data.flags.f_contiguous  # the layout kept
    assert model.float()[0].weight.dtype == np.float32
    assert model.to(Tensor([1.0], dtype=np.float64), non_blocking=True)[2].bias.dtype == np.float64
    with pytest.raises(RuntimeError, match="to: device 'cuda' is not available"):
        model.to("cuda")
    with pytest.raises(RuntimeError, match="to: device 'mps' is not available"):
        model.to(device="mps")
    with pytest.raises(TypeError, match="to: nn.Module.to only accepts floating point dtypes, got int64"):
        model.to(tinygrad_like.int64)


def test_requires_grad_freezes_parameters_which_stay_parameters(torch):
    model = tree(nn)
    before = [p.data.copy() for p in model.parameters()]
    assert model[0].requires_grad_(False) is model[0]
    assert names(model) == ["0.weight", "0.bias", "1.0.weight", "1.0.bias", "2.weight", "2.bias"]
    opt = optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(Tensor(np.random.default_rng(0).standard_normal((4, 2)), dtype=np.float32)).sum().backward()
    opt.step()
    assert model[0].weight.grad is None and np.array_equal(model[0].weight.data, before[0])
    assert not np.array_equal(model[2].weight.data, before[4])

    class Plain(nn.Module):  # a plain Tensor that requires grad is a parameter; frozen, it stays one
        def __init__(self):
            self.w = Tensor(np.ones(2), requires_grad=True)

    plain = Plain()
    w = plain.w
    plain.requires_grad_(False)
    assert names(plain) == ["w"] and plain.w is w and isinstance(w, nn.Parameter) and not w.requires_grad
    assert plain.requires_grad_().w.requires_grad


def test_register_parameter_and_add_module_follow_pytorchs_rules(torch):
    ours, theirs = nn.Module(), torch.nn.Module()
    ours.register_parameter("scale", nn.Parameter(np.ones(2)))
    theirs.register_parameter("scale", torch.nn.Parameter(torch.ones(2)))
    for m, lib in ((ours, nn), (theirs, torch.nn)):
        m.register_parameter("absent", None)
        m.add_module("inner", lib.Linear(2, 1))
        m.add_module("gone", None)
    assert names(ours) == names(theirs) == ["scale", "inner.weight", "inner.bias"]
    assert keys(ours) == keys(theirs) and ours.absent is None and ours.gone is None
    with pytest.raises(TypeError, match="register_parameter: w must be an nn.Parameter or None, got Tensor"):
        ours.register_parameter("w", Tensor.zeros(2))
    with pytest.raises(KeyError, match="Module already has an attribute 'training'"):
        ours.register_parameter("training", nn.Parameter(Tensor.zeros(1)))
    with pytest.raises(KeyError, match="add_module: name must be non-empty and without '.'"):
        ours.add_module("a.b", nn.ReLU())
    with pytest.raises(TypeError, match="add_module: name must be a str, got int"):
        ours.add_module(1, nn.ReLU())


def test_parameter_is_a_tensor_that_requires_grad_with_memory_of_its_own():
    values = np.arange(3.0)
    p = nn.Parameter(values)
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf and not np.shares_memory(p.data, values)
    assert repr(p).startswith("Parameter containing:\nTensor([0., 1., 2.]")
    assert type(p * 2) is Tensor and type(p.detach()) is Tensor
    assert not nn.Parameter(Tensor([1.0]), requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(TypeError, match="only floating point tensors can require grad"):
        nn.Parameter(Tensor([1, 2]))


def test_user_modules_work_with_and_without_super_init():
    class WithInit(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

    class WithoutInit(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    for cls in (WithInit, WithoutInit):
        m = cls()
        assert names(m) == ["fc.weight", "fc.bias"] and m.training and not m.eval().training
