"""Files never run code and are checked before they cost memory: every layer's saved arguments against their
documented types (crafted configs for every layer class), the arrays' shapes from the headers before anything is
built or read, torch_source writing only checked values, no path from a file to exec/eval/pickle/__import__/getattr,
and safetensors read header first, one tensor at a time (a 1 GiB file refused before its data is read)."""

from __future__ import annotations

import ast
import io
import json
import struct
import time
import tracemalloc
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import tinygrad_like as tg
from tinygrad_like import Tensor, _files, export, nn
from tinygrad_like.nn import config as _config

ROOT = Path(tg.__file__).parent
RNG = np.random.default_rng(0)

# One instance of every class a file can rebuild (containers included), small, away from the defaults.
FACTORIES = {
    nn.Linear: lambda: nn.Linear(3, 2), nn.Conv1d: lambda: nn.Conv1d(2, 3, 2, stride=2, padding_mode="circular"),
    nn.Conv2d: lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
    nn.MaxPool2d: lambda: nn.MaxPool2d(2, stride=1),
    nn.AvgPool2d: lambda: nn.AvgPool2d((3, 2), stride=1, padding=1, divisor_override=2),
    nn.AdaptiveAvgPool2d: lambda: nn.AdaptiveAvgPool2d((2, None)), nn.Flatten: lambda: nn.Flatten(0, 1),
    nn.Dropout: lambda: nn.Dropout(0.2), nn.Identity: nn.Identity, nn.ReLU: lambda: nn.ReLU(inplace=True),
    nn.Sigmoid: nn.Sigmoid, nn.Tanh: nn.Tanh, nn.GELU: lambda: nn.GELU("tanh"), nn.SiLU: nn.SiLU,
    nn.LeakyReLU: lambda: nn.LeakyReLU(0.2), nn.Softplus: lambda: nn.Softplus(2.0, 5.0), nn.ELU: lambda: nn.ELU(0.5),
    nn.Softmax: lambda: nn.Softmax(1), nn.LogSoftmax: lambda: nn.LogSoftmax(-1),
    nn.Embedding: lambda: nn.Embedding(5, 3, padding_idx=1), nn.BatchNorm1d: lambda: nn.BatchNorm1d(3, momentum=None),
    nn.BatchNorm2d: lambda: nn.BatchNorm2d(2, affine=False), nn.LayerNorm: lambda: nn.LayerNorm((2, 3), bias=False),
    nn.GroupNorm: lambda: nn.GroupNorm(2, 4, eps=1e-3), nn.RMSNorm: lambda: nn.RMSNorm(3, eps=1e-6),
    nn.RNNCell: lambda: nn.RNNCell(3, 4, nonlinearity="relu"), nn.LSTMCell: lambda: nn.LSTMCell(3, 4, bias=False),
    nn.GRUCell: lambda: nn.GRUCell(3, 4, dtype=np.float64), nn.RNN: lambda: nn.RNN(3, 4, num_layers=2),
    nn.LSTM: lambda: nn.LSTM(3, 4, bidirectional=True, proj_size=2),
    nn.GRU: lambda: nn.GRU(3, 4, bias=False, batch_first=True, dtype=np.float64),
    nn.MultiheadAttention: lambda: nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=True),
    nn.MLP: lambda: nn.MLP((4, 3, 2), activation="tanh", dtype=np.float64),
    nn.Sequential: lambda: nn.Sequential(nn.Embedding(27, 10), nn.Flatten(), nn.Linear(30, 16, bias=False),
                                         nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 27)),
    nn.ModuleList: lambda: nn.ModuleList([nn.Linear(2, 3), nn.ReLU()]),
    nn.ModuleDict: lambda: nn.ModuleDict({"a": nn.Linear(2, 2), "b-2": nn.Sequential(OrderedDict(t=nn.Tanh()))}),
}
# More arguments whose parameter shapes differ (the shapes a config implies must be the module's, in each case)
VARIANTS = [
    lambda: nn.Linear(0, 3, bias=False), lambda: nn.Embedding(0, 2), lambda: nn.Conv1d(2, 3, (2,), bias=False),
    lambda: nn.BatchNorm1d(3, track_running_stats=False), lambda: nn.BatchNorm2d(3, bias=False),
    lambda: nn.LayerNorm(3, elementwise_affine=False), lambda: nn.GroupNorm(1, 3, affine=False),
    lambda: nn.RMSNorm((2, 3), elementwise_affine=False), lambda: nn.RNN(3, 4, bidirectional=True, bias=False),
    lambda: nn.LSTM(2, 3, num_layers=3, dtype=np.float16), lambda: nn.MultiheadAttention(4, 2, bias=False),
    lambda: nn.MultiheadAttention(6, 3, kdim=6, vdim=2), lambda: nn.MLP((5, 2)),
    lambda: nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.ModuleList([nn.LSTMCell(2, 3)])),
]
CODE = "__import__('os').system('touch {marker}') or 1"  # what a crafted file may hope gets run
REAL_ARGS = {"eps", "momentum", "negative_slope", "beta", "threshold", "alpha"}  # any finite number is valid
SIGNED_ARGS = REAL_ARGS | {"start_dim", "end_dim", "dim", "padding_idx"}  # negative values are valid


def crafted(path: Path, description: object, **arrays: np.ndarray) -> Path:
    """An .npz holding ``description`` as its saved module description (and ``arrays``)."""
    np.savez(path, __config__=np.array(json.dumps(description)), **arrays)
    return path


def description(module: nn.Module) -> dict:
    """The description ``save`` writes for ``module``, as a file holds it (tuples as lists)."""
    return json.loads(json.dumps(_config.describe(module)))


def peak_of(fn, *args):
    """(what ``fn(*args)`` raised, seconds taken, peak bytes Python and NumPy allocated meanwhile)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        fn(*args)
        raised = None
    except Exception as e:
        raised = e
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return raised, seconds, peak


# ================================================================================ the reproductions, kept as tests
def test_a_flatten_whose_start_dim_is_code_is_refused_and_runs_nothing(tmp_path, torch):
    marker = tmp_path / "ran"
    path = tmp_path / "e.npz"
    np.savez(path, __config__=np.array(json.dumps({"class": "Flatten", "args": {
        "start_dim": CODE.format(marker=marker)}})))
    with pytest.raises(ValueError, match=r"e.npz has an unusable module description \(Flatten argument start_dim: "
                                         r"must be an int, got .*__import__"):
        export.to_torch(nn.Module.load(path))
    for cls in (nn.Softmax, nn.LogSoftmax):  # the other two layers that took anything
        crafted(path, {"class": cls.__name__, "args": {"dim": CODE.format(marker=marker)}})
        with pytest.raises(ValueError, match=rf"{cls.__name__} argument dim: must be an int"):
            nn.Module.load(path)
    # built in code, the same values never reach PyTorch's side either
    for layer, name in ((nn.Flatten(start_dim=CODE.format(marker=marker)), "start_dim"),
                        (nn.Softmax(dim=CODE.format(marker=marker)), "dim")):
        with pytest.raises(ValueError, match=rf"torch_source: {type(layer).__name__}: {type(layer).__name__} "
                                             rf"argument {name}: must be an int"):
            export.to_torch(layer)
    assert not marker.exists()


def test_a_small_file_declaring_a_huge_linear_is_refused_in_milliseconds(tmp_path):
    path = crafted(tmp_path / "big.npz", {"class": "Linear", "args": {"in_features": 11000, "out_features": 11000}},
                   weight=np.zeros((3, 2), np.float32), bias=np.zeros(3, np.float32))
    assert path.stat().st_size < 1200
    raised, seconds, peak = peak_of(nn.Module.load, path)
    assert isinstance(raised, ValueError)
    assert str(raised) == (f"load: the arrays of {path} do not match the Linear its description builds:\n"
                           "  weight: expected (11000, 11000) float32, got (3, 2) float32\n"
                           "  bias: expected (11000,) float32, got (3,) float32")
    assert seconds < 0.5 and peak < 50e6


def test_consistent_headers_over_too_little_data_are_refused_before_allocating(tmp_path):
    """The headers agree with the config (Linear(11000, 11000)) but the file holds a few bytes: refused from the
    zip directory (no deflate stream gives 484 MB from 1 KB), before the module or the array is made."""
    header = _npy_header((11000, 11000), "<f4")
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    payload = deflate.compress(header + bytes(4096)) + deflate.flush()
    declared = len(header) + 11000 * 11000 * 4
    config = _npy_member(np.array(json.dumps({"class": "Linear", "args": {"in_features": 11000,
                                                                          "out_features": 11000, "bias": False}})))
    path = _zip_by_hand(tmp_path / "lying.npz", [("__config__.npy", config, zipfile.ZIP_STORED, len(config)),
                                                  ("weight.npy", payload, zipfile.ZIP_DEFLATED, declared)])
    assert path.stat().st_size < 2000
    raised, seconds, peak = peak_of(nn.Module.load, path)
    assert isinstance(raised, ValueError), raised
    assert "member 'weight.npy' declares 484000128 bytes stored in" in str(raised)
    assert "more than its compression can give" in str(raised)
    assert seconds < 0.5 and peak < 50e6


def test_a_1_gib_safetensors_file_with_one_unexpected_tensor_is_refused_before_its_data_is_read(tmp_path):
    pytest.importorskip("safetensors")
    model = nn.Linear(3, 2)
    path = tmp_path / "big.safetensors"
    _sparse_safetensors(path, model.state_dict(), extra=("zz_extra", 2**28))  # 1 GiB of float32, all holes
    assert path.stat().st_size > 2**30
    before = [p.data.copy() for p in model.parameters()]
    raised, seconds, peak = peak_of(export.load_safetensors, model, path)
    assert isinstance(raised, ValueError)
    assert str(raised) == (f"load_safetensors: {path} does not match the Linear (nothing read or changed):\n"
                           "  unexpected zz_extra")
    assert seconds < 0.5 and peak < 50e6
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, old)
    raised, seconds, peak = peak_of(tg.load, path)  # no module to compare with: the size cap refuses it
    assert isinstance(raised, ValueError) and "more than the limit of 536870912 bytes" in str(raised)
    assert seconds < 0.5 and peak < 50e6


def test_a_memory_error_while_reading_stays_a_memory_error(tmp_path, monkeypatch):
    safetensors = pytest.importorskip("safetensors")
    path = export.save_safetensors(nn.Linear(3, 2), tmp_path / "w.safetensors")
    real_open = safetensors.safe_open

    class NoMemory:  # the package's file, whose tensors cannot be allocated
        def __init__(self, *args, **kwargs):
            self.file = real_open(*args, **kwargs)

        def __enter__(self):
            self.file.__enter__()
            return self

        def __exit__(self, *exc):
            return self.file.__exit__(*exc)

        def keys(self):
            return self.file.keys()

        def get_slice(self, name):
            return self.file.get_slice(name)

        def get_tensor(self, name):
            raise MemoryError("Unable to allocate 1.00 GiB")

    monkeypatch.setattr(safetensors, "safe_open", NoMemory)
    with pytest.raises(MemoryError, match="Unable to allocate"):
        export.load_safetensors(nn.Linear(3, 2), path)
    with pytest.raises(MemoryError):
        tg.load(path)


def test_a_file_cut_short_while_it_is_read_is_refused_not_a_crash(tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    check, opened = _files._refuse_repeated_names, []

    def then_cut(name):  # another process truncates the file between its header's checks and its data's reading
        check(name)
        opened.append(name)
        if len(opened) == cut_at:
            with open(name, "r+b") as f:
                f.truncate(Path(name).stat().st_size // 2)

    monkeypatch.setattr(_files, "_refuse_repeated_names", then_cut)
    for cut_at in (1, 2):  # tg.load opens the file once; load_safetensors reads the header, then the data
        opened.clear()
        model = nn.Linear(300, 200)
        before = model.weight.data.copy()
        path = export.save_safetensors(nn.Linear(300, 200), tmp_path / "w.safetensors")
        with pytest.raises(ValueError, match=r"w.safetensors is not a readable safetensors file \(Could not read "
                                             r"tensor weight from file"):
            tg.load(path) if cut_at == 1 else export.load_safetensors(model, path)
        assert len(opened) == cut_at
        np.testing.assert_array_equal(model.weight.data, before)


def test_a_tensor_stored_under_two_names_is_refused(tmp_path):
    pytest.importorskip("safetensors")
    model = nn.MLP((3, 2))
    arrays = model.state_dict()
    path = tmp_path / "two.safetensors"
    _files.write_safetensors(path, {**arrays, "0.weight": arrays["layers.0.weight"]})
    with pytest.raises(ValueError, match=r"does not match the MLP \(nothing read or changed\):\n"
                                         r"  unexpected 0.weight$"):
        export.load_safetensors(nn.MLP((3, 2)), path)
    # the same name twice in the header: one file, two possible readings. The package keeps the last entry: the
    # first one's bytes are then not covered, which it refuses ...
    header = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    text = json.dumps(header)[:-1] + ', "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}'
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + bytes(8))
    with pytest.raises(ValueError, match=r"two.safetensors is not a readable safetensors file \(.*invalid offset "
                                         r"for tensor `a`"):
        tg.load(path)
    # ... but not two entries over the same bytes (float32 or int32?): refused here
    text = json.dumps(header)[:-1] + ', "a": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}}'
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + bytes(4))
    with pytest.raises(ValueError, match=r"two.safetensors is not a readable safetensors file \(the key 'a' "
                                         r"appears twice in one object\)$"):
        tg.load(path)
    with pytest.raises(ValueError, match=r"two.safetensors is not a readable .*the key 'a' appears twice"):
        export.load_safetensors(nn.Linear(1, 1), path)
    text = '{"__metadata__": {"format": "pt", "format": "np"}}'
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode())
    with pytest.raises(ValueError, match=r"the key 'format' appears twice"):
        tg.load(path)


# =================================================================================== every layer class, crafted
def test_every_loadable_class_is_covered_and_every_nn_layer_is_loadable():
    assert set(FACTORIES) == set(_config.LAYERS)
    for name in nn.__all__:
        cls = getattr(nn, name)
        if isinstance(cls, type) and issubclass(cls, nn.Module) and cls is not nn.Module and not name.endswith("Loss"):
            assert cls in _config.LAYERS, name


def crafted_values(arg: str) -> list:
    """Values of another type than ``arg``'s: code, nested lists, objects; huge and negative ints where the
    argument is a size (or a choice, flag, probability)."""
    values = [CODE, [[1, [2]], "x"], {"__class__": "os.system"}]
    return values + ([10**30] if arg not in REAL_ARGS else []) + ([-3] if arg not in SIGNED_ARGS else [])


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda cls: cls.__name__)
def test_every_argument_of_every_layer_refuses_values_of_other_types(tmp_path, cls):
    marker = tmp_path / "ran"
    for arg in _config.LAYERS[cls].args:
        for value in crafted_values(arg):
            good = description(FACTORIES[cls]())
            good["args"][arg] = value.format(marker=marker) if isinstance(value, str) else value
            path = crafted(tmp_path / "c.npz", good)
            with pytest.raises(ValueError) as info:
                nn.Module.load(path)
            message = str(info.value)
            assert message.startswith(f"load: {path} has an unusable module description ({cls.__name__}"), message
            assert f"argument {arg}" in message, (value, message)
            assert len(message) < 600, message  # a crafted value is quoted, cut short
    assert not marker.exists()


@pytest.mark.parametrize("cls", list(FACTORIES), ids=lambda cls: cls.__name__)
def test_unknown_keys_missing_arguments_and_other_classes_are_refused(tmp_path, cls):
    good = description(FACTORIES[cls]())
    path = tmp_path / "c.npz"
    crafted(path, {"class": good["class"], "args": {**good["args"], "evil": 1}})
    with pytest.raises(ValueError, match=rf"\({cls.__name__}: unknown argument 'evil'; its arguments: "):
        nn.Module.load(path)
    crafted(path, {**good, "run": "os.system"})
    with pytest.raises(ValueError, match=r"must be an object with exactly 'class' and 'args'"):
        nn.Module.load(path)
    assert _config.plan({"class": cls.__name__, "args": good["args"]}).cls is cls  # the short name is accepted


def test_missing_required_arguments_are_named(tmp_path):
    path = crafted(tmp_path / "c.npz", {"class": "Linear", "args": {"in_features": 3}})
    with pytest.raises(ValueError, match=r"Linear: missing argument out_features"):
        nn.Module.load(path)


class MyLinear(nn.Linear):
    """A class of one's own: a file can never name it."""


@pytest.mark.parametrize("name", [
    "os.system", "builtins.eval", "Linear2", "tinygrad_like.nn.layers.Linear.__init__", "tinygrad_like.Tensor",
    "tinygrad_like.data.DataSource", "tinygrad_like.nn.module.Module", "Module", f"{__name__}.MyLinear", "MyLinear",
    "tinygrad_like.nn.normalization.Linear", "x" * 10**5, 5, ["Linear"], None])
def test_only_the_layers_of_nn_can_be_named(tmp_path, name):
    path = crafted(tmp_path / "c.npz", {"class": name, "args": {}})
    with pytest.raises(ValueError, match=r"unusable module description \(class .* is not a layer of tinygrad_like.nn "
                                         r"that a file can rebuild"):
        nn.Module.load(path)


def test_a_module_of_ones_own_is_saved_without_a_description(tmp_path):
    path = MyLinear(3, 2).save(tmp_path / "mine.npz")
    with pytest.raises(ValueError, match="holds no module description; build the module yourself"):
        nn.Module.load(path)
    back = MyLinear(3, 2)
    back.load_state_dict(nn.read_npz(path))


@pytest.mark.parametrize("make", [*FACTORIES.values(), *VARIANTS],
                         ids=lambda make: repr(make()).split("\n")[0][:40])
def test_the_state_a_config_implies_is_the_state_the_module_has(make, tmp_path):
    module = make()
    plan = _config.plan(description(module))
    assert plan.state() == {name: (t.shape, t.dtype) for name, t in module._state_tensors().items()}
    for p in module.parameters():
        p.data = RNG.standard_normal(p.shape).astype(p.dtype)  # not the initial values
    loaded = nn.Module.load(module.save(tmp_path / "m.npz"))
    assert type(loaded) is type(module) and loaded.config() == module.config()
    assert list(loaded.state_dict()) == list(module.state_dict())
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value)


def test_shapes_and_dtypes_are_checked_against_the_headers_before_reading(tmp_path, monkeypatch):
    module = nn.LSTM(3, 4, dtype=np.float64)
    state = module.state_dict()
    state["weight_hh_l0"] = state["weight_hh_l0"].astype(np.float32)
    del state["bias_ih_l0"]
    state["bias_xx"] = np.zeros(2)
    path = crafted(tmp_path / "m.npz", description(module), **state)
    real_read = _files._Member.read

    def read(member, zf):
        if member.name != "__config__.npy":
            pytest.fail("data read before the headers were checked")
        return real_read(member, zf)

    monkeypatch.setattr(_files._Member, "read", read)
    with pytest.raises(ValueError) as info:
        nn.Module.load(path)
    assert str(info.value) == (f"load: the arrays of {path} do not match the LSTM its description builds:\n"
                               "  missing bias_ih_l0 (16,) float64\n  unexpected bias_xx\n"
                               "  weight_hh_l0: expected (16, 4) float64, got (16, 4) float32")


# ========================================================================================== containers
def test_makemores_sequential_round_trips_with_the_same_outputs(tmp_path):
    """As the lecture: build, train a step, save; load in a new session and sample with the same numbers."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Embedding(27, 10), nn.Flatten(), nn.Linear(30, 200, bias=False), nn.BatchNorm1d(200),
                          nn.Tanh(), nn.Linear(200, 27))
    X, Y = RNG.integers(0, 27, (32, 3)), RNG.integers(0, 27, 32)
    loss = nn.functional.cross_entropy(model(X), Y)
    loss.backward()
    for p in model.parameters():
        p.data -= 0.1 * p.grad.data
    model.save(tmp_path / "makemore.npz")
    loaded = nn.Module.load(tmp_path / "makemore.npz")
    assert [type(layer) for layer in loaded] == [type(layer) for layer in model]
    model.eval()
    loaded.eval()
    np.testing.assert_array_equal(loaded(X).data, model(X).data)
    np.testing.assert_array_equal(loaded[3].running_mean.data, model[3].running_mean.data)


def test_named_and_nested_containers_keep_their_keys(tmp_path):
    model = nn.ModuleDict({"enc": nn.Sequential(OrderedDict(fc=nn.Linear(2, 3), act=nn.ReLU())),
                           "heads": nn.ModuleList([nn.Linear(3, 1), nn.Linear(3, 2)])})
    loaded = nn.Module.load(model.save(tmp_path / "m.npz"))
    assert list(loaded.state_dict()) == list(model.state_dict()) == [
        "enc.fc.weight", "enc.fc.bias", "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]
    assert isinstance(loaded["enc"].act, nn.ReLU) and isinstance(loaded["heads"], nn.ModuleList)


@pytest.mark.parametrize(("modules", "message"), [
    ([["a.b", {"class": "Tanh", "args": {}}]], r"entry 0: a layer's key must be a printable name .* without '\.'"),
    ([["a\nb", {"class": "Tanh", "args": {}}]], r"entry 0: a layer's key must be a printable name"),
    ([["", {"class": "Tanh", "args": {}}]], r"entry 0: a layer's key must be a printable name"),
    ([["k" * 300, {"class": "Tanh", "args": {}}]], r"entry 0: a layer's key must be a printable name of 1 to 256"),
    ([[1, {"class": "Tanh", "args": {}}]], r"entry 0: a layer's key must be"),
    ([["a", {"class": "Tanh", "args": {}}], ["a", {"class": "ReLU", "args": {}}]], r"the key 'a' appears twice"),
    ([["a", {"class": "Tanh", "args": {}}, "x"]], r"entry 0 must be a \[key, description\] pair"),
    ([["a", {"class": "Flatten", "args": {"start_dim": "1"}}]],
     r"Sequential argument modules: layer 'a': Flatten argument start_dim"),
    ({"a": {"class": "Tanh", "args": {}}}, r"Sequential argument modules: must be a list"),
])
def test_container_entries_are_checked_one_by_one(tmp_path, modules, message):
    path = crafted(tmp_path / "c.npz", {"class": "Sequential", "args": {"modules": modules}})
    with pytest.raises(ValueError, match=message):
        nn.Module.load(path)


def test_containers_nest_only_so_deep(tmp_path):
    description: dict = {"class": "Tanh", "args": {}}
    for _ in range(_config.MAX_NESTING):
        description = {"class": "ModuleList", "args": {"modules": [description]}}
    assert isinstance(nn.Module.load(crafted(tmp_path / "ok.npz", description)), nn.ModuleList)
    description = {"class": "ModuleList", "args": {"modules": [description]}}
    with pytest.raises(ValueError, match=r"ModuleList: containers nested deeper than 8 levels"):
        nn.Module.load(crafted(tmp_path / "deep.npz", description))


def test_a_layer_held_twice_or_a_function_in_a_sequential_saves_the_weights_alone(tmp_path):
    shared = nn.Linear(2, 2)
    for model in (nn.Sequential(shared, shared), nn.Sequential(nn.Linear(2, 2), Tensor.tanh)):
        path = model.save(tmp_path / "m.npz")
        assert "__config__" not in nn.read_npz(path)
        model.load_state_dict(nn.read_npz(path))


def test_save_refuses_a_layer_whose_arguments_a_file_could_not_hold(tmp_path):
    with pytest.raises(ValueError, match=r"save: Sequential cannot be described for Module.load \(Sequential argument "
                                         r"modules: layer '0': Flatten argument start_dim: must be an int, got 'x'\)"):
        nn.Sequential(nn.Flatten(start_dim="x")).save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_the_description_itself_is_bounded(tmp_path):
    path = tmp_path / "c.npz"
    np.savez(path, __config__=np.zeros(3))
    with pytest.raises(ValueError, match=r"unusable module description \(it must be a text of at most 1048576 "
                                         r"characters, got a float64 array of shape \(3,\)\)"):
        nn.Module.load(path)
    np.savez(path, __config__=np.array("[" * 2_000_000))
    with pytest.raises(ValueError, match=r"it must be a text of at most 1048576 characters, got a <U2000000"):
        nn.Module.load(path)
    np.savez(path, __config__=np.array('{"class": "Linear", "args": {"in_features": NaN}}'))
    with pytest.raises(ValueError, match=r"not valid JSON \(NaN is not a JSON number"):
        nn.Module.load(path)
    np.savez(path, __config__=np.array('{"class": "Tanh", "args": {}, "class": "Linear"}'))
    with pytest.raises(ValueError, match=r"not valid JSON \(the key 'class' appears twice in one object"):
        nn.Module.load(path)


# ============================================================================================ torch_source
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_torch_source_is_only_checked_literals_for_every_layer(torch):
    for make in [*FACTORIES.values(), *VARIANTS]:
        module = make()
        source = export.torch_source(module)
        export._check_source(source)  # the form to_torch insists on
        model = export.to_torch(module)
        assert list(model.state_dict()) == list(module.state_dict())


@pytest.mark.parametrize("key", ["a'); __import__('os')('x'); ('", 'b"\\', "c d", "ünï"])
def test_container_keys_are_written_as_string_literals(key, torch):
    model = nn.ModuleDict({key: nn.Linear(2, 2)})
    assert list(export.to_torch(model).state_dict()) == [f"{key}.weight", f"{key}.bias"]
    seq = nn.Sequential(OrderedDict([(key, nn.Tanh())]))
    assert list(export.to_torch(seq)._modules) == [key]


def test_a_key_or_value_changed_after_building_is_checked_again(torch, tmp_path):
    marker = tmp_path / "ran"
    model = nn.ModuleDict({"a": nn.Linear(2, 2)})
    model._modules["x\nimport os"] = model._modules.pop("a")
    with pytest.raises(ValueError, match=r"a layer's key must be a printable name"):
        export.to_torch(model)
    mlp = nn.MLP((2, 2))
    mlp.activation = "sigmoid), __import__('os').system('touch " + str(marker) + "'), ("
    with pytest.raises(ValueError, match=r"torch_source: MLP argument activation: must be one of"):
        export.to_torch(mlp)
    rnn = nn.GRU(2, 3, dtype=np.float64)
    rnn.config = lambda: {"input_size": 2, "hidden_size": 3, "dtype": "float64); import os; ("}
    with pytest.raises(ValueError, match=r"GRU argument dtype: must be one of 'float16', 'float32', 'float64'"):
        export.to_torch(rnn)
    assert not marker.exists()


@pytest.mark.parametrize("tail", [
    "model = nn.Linear(2, 2); __import__('os')", "model = eval('1')", "model = nn.Linear(2, x)",
    "model = nn.Linear(in_features=__import__('os').system('x'))", "model = torch.load('x')",
    "model = nn.Linear(**{'a': 1})", "model = nn.Module()", "model = float('1e3')",
])
def test_to_torch_runs_only_source_of_torch_sources_form(monkeypatch, torch, tail):
    real = export.torch_source(nn.Linear(2, 2))
    monkeypatch.setattr(export, "torch_source", lambda module: real.rsplit("model = ", 1)[0] + tail + "\n")
    with pytest.raises(RuntimeError, match="holds something torch_source never writes; not run"):
        export.to_torch(nn.Linear(2, 2))


# ================================================================================== no path from a file to code
ALLOWED = {  # (file, function, call) -> why it is safe
    ("export.py", "to_torch", "exec"): "runs torch_source's text, made of checked values and checked again",
    ("export.py", "to_torch", "compile"): "the same text, compiled for that exec",
    ("export.py", "_require", "import_module"): "names from the library's own calls (torch, onnx, ...)",
    ("__init__.py", "__getattr__", "import_module"): "a submodule named in the package's own table",
    ("viz/__init__.py", "__getattr__", "import_module"): "a submodule named in the package's own table",
}
CODE_CALLS = {"exec", "eval", "compile", "__import__", "import_module", "execfile", "runpy"}
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib", "cloudpickle"}
# The functions a file's content passes through: no attribute is looked up by a name computed there.
FILE_PATHS = {("_files.py", None), ("nn/config.py", None), ("nn/module.py", "Module.load"),
              ("nn/module.py", "Module.save"), ("nn/module.py", "Module.load_state_dict"),
              ("nn/module.py", "state_problems"), ("export.py", "torch_source"), ("export.py", "_layer_source"),
              ("export.py", "_literal"), ("export.py", "_dtype_literal"), ("export.py", "_check_source"),
              ("export.py", "_checked_expression"), ("export.py", "load_safetensors"),
              ("export.py", "save_safetensors"), ("pytorch.py", "load"), ("pytorch.py", "save")}


def _calls(path: Path):
    """(enclosing function's qualified name, call name, node) of every call, and the modules imported."""
    found, imports = [], []

    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = f"{scope}.{child.name}" if scope else child.name
            if isinstance(child, ast.Call):
                func = child.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                found.append((scope, name, child))
            if isinstance(child, ast.Import):
                imports.extend(alias.name.split(".")[0] for alias in child.names)
            if isinstance(child, ast.ImportFrom) and child.module:
                imports.append(child.module.split(".")[0])
            walk(child, inner)

    walk(ast.parse(path.read_text()), "")
    return found, imports


def test_no_path_from_a_file_reaches_exec_eval_pickle_import_or_getattr():
    sites = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        calls, imports = _calls(path)
        assert not UNSAFE_MODULES & set(imports), f"{rel} imports {UNSAFE_MODULES & set(imports)}"
        for scope, name, node in calls:
            function = scope.rsplit(".", 1)[-1] if scope else ""
            is_code = name in CODE_CALLS and (isinstance(node.func, ast.Name) or name == "import_module")
            if is_code:
                sites[(rel, function, name)] = ast.unparse(node)
            if (name == "load" and ast.unparse(node.func) in ("np.load", "numpy.load")) or any(
                    k.arg == "allow_pickle" for k in node.keywords):
                pytest.fail(f"{rel}:{node.lineno}: {ast.unparse(node)} (NumPy's loader can unpickle)")
            on_file_path = any(rel == file and (fn is None or scope == fn or scope.startswith(f"{fn}."))
                               for file, fn in FILE_PATHS)
            if on_file_path and name in ("getattr", "setattr", "delattr", "__getattribute__") and not (
                    len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
                pytest.fail(f"{rel}:{node.lineno} ({scope}): {ast.unparse(node)} looks up a computed name")
    assert set(sites) == set(ALLOWED), {k: v for k, v in sites.items() if k not in ALLOWED}


# ========================================================================================= safetensors files
def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npy_member(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _zip_by_hand(path: Path, members: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip of (name, payload, method, declared size) members, its directory saying whatever we like (the CRC
    of a deflated member left 0: never checked before the data is read)."""
    body, directory = b"", b""
    for name, payload, method, size in members:
        fname, crc = name.encode(), zlib.crc32(payload) if method == zipfile.ZIP_STORED else 0
        directory += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, method, 0, 0x21, crc,
                                 len(payload), size, len(fname), 0, 0, 0, 0, 0o644 << 16, len(body)) + fname
        body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(payload), size,
                            len(fname), 0) + fname + payload
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), len(body), 0)
    path.write_bytes(body + directory + end)
    return path


def _sparse_safetensors(path: Path, arrays: dict, extra: tuple[str, int]) -> None:
    """A valid safetensors file of ``arrays`` then ``extra`` (name, count) float32 zeros, left as a hole."""
    name, count = extra
    header, at = {}, 0
    for key, a in arrays.items():
        header[key] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + a.nbytes]}
        at += a.nbytes
    header[name] = {"dtype": "F32", "shape": [count], "data_offsets": [at, at + 4 * count]}
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(a.tobytes() for a in arrays.values()))
        f.truncate(8 + len(text) + at + 4 * count)


ARRAYS = {"f32": np.arange(6, dtype=np.float32).reshape(2, 3), "f64": np.array(2.5), "f16": np.ones(3, np.float16),
          "i64": np.arange(4, dtype=">i8"), "i8": np.array([-1, 2], np.int8), "u8": np.array([255], np.uint8),
          "flags": np.array([True, False]), "empty": np.zeros((0, 2), np.float32),
          "i32": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3))}


def test_safetensors_written_here_are_read_by_the_package_and_back(tmp_path):
    safetensors = pytest.importorskip("safetensors")
    path = tmp_path / "ours.safetensors"
    _files.write_safetensors(path, ARRAYS, metadata={"format": "pt"})  # big-endian, Fortran order, 0-d, empty
    theirs = safetensors.numpy.load_file(path)
    assert set(theirs) == set(ARRAYS)
    for name, a in ARRAYS.items():
        assert theirs[name].dtype == a.dtype.newbyteorder("=") and theirs[name].shape == a.shape
        np.testing.assert_array_equal(theirs[name], a)
    with safetensors.safe_open(path, framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
    with pytest.raises(TypeError, match=r"save: c has dtype complex128, which is not a tensor of numbers a "
                                        r"safetensors file holds; written: BOOL, U8"):
        _files.write_safetensors(path, {"a": np.ones(2), "c": np.ones(2, complex)})
    assert _files.read_safetensors(path).keys() == ARRAYS.keys()  # the refused save left the file as it was


def test_safetensors_the_package_writes_are_read_here(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "theirs.safetensors"
    st.save_file({k: np.asarray(v, v.dtype.newbyteorder("<"), order="C") for k, v in ARRAYS.items()},
                 str(path), metadata={"note": "x"})
    ours = _files.read_safetensors(path)
    assert _files.safetensors_headers(path) == {k: (v.shape, v.dtype.newbyteorder("=")) for k, v in ARRAYS.items()}
    for name, a in ARRAYS.items():
        np.testing.assert_array_equal(ours[name], a)
        assert ours[name].flags.writeable
    assert list(_files.read_safetensors(path, keys=["u8"])) == ["u8"]
    with pytest.raises(ValueError, match=r"missing arrays \['w'\]"):
        _files.read_safetensors(path, keys=["u8", "w"])


def test_safetensors_from_pytorch_load_into_our_layers(tmp_path, torch):
    st_torch = pytest.importorskip("safetensors.torch")
    ours = nn.LSTM(3, 4, num_layers=2, dtype=np.float64)
    theirs = export.to_torch(ours)
    with torch.no_grad():
        for p in theirs.parameters():
            p.mul_(-2)
    st_torch.save_file(theirs.state_dict(), str(tmp_path / "t.safetensors"))
    export.load_safetensors(ours, tmp_path / "t.safetensors")
    x = RNG.standard_normal((5, 2, 3))
    np.testing.assert_allclose(ours(Tensor(x))[0].data, theirs(torch.from_numpy(x))[0].detach().numpy(),
                               rtol=1e-12, atol=1e-12)


def _raw(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


# The package's refusals (the format is its work), and ours: the dtypes a Tensor holds.
@pytest.mark.parametrize(("header", "data", "message"), [
    ({"w": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, 2, r"entry 'w' has dtype 'BF16'; readable: "),
    ({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, 8, r"entry 'w' has dtype 'C64'; readable: "),
    ({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, 1, r"entry 'w' has dtype 'F8_E4M3'"),
    ({"w": {"dtype": "X9", "shape": [1], "data_offsets": [0, 1]}}, 1, r"invalid JSON in header: unknown variant"),
    ({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, 4, r"integer `-1`, expected usize"),
    ({"w": {"dtype": "F32", "shape": ["2"], "data_offsets": [0, 8]}}, 8, r"string \"2\", expected usize"),
    ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 9]}}, 8, r"invalid shape, data type, or offset"),
    ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, 8, r"invalid shape, data type, or offset"),
    ({"w": {"dtype": "F32", "shape": [2**62, 2**62], "data_offsets": [0, 4]}}, 4, r"overflow computing buffer size"),
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, 8, r"invalid offset for tensor `b`"),
    ({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, 8, r"file not fully covered"),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "dtype": "I32"}}', 4, r"duplicate field `dtype`"),
    ({"__metadata__": {"a": 1}}, 0, r"invalid type: integer `1`, expected a string"),
    ([1, 2], 0, r"invalid type: sequence"),
    (b"\xff\xfe{}", 0, r"invalid UTF-8 in header"),
    ({"w": {"dtype": "F32", "shape": [[[1]]], "data_offsets": [0, 4]}}, 4, r"invalid type: sequence, expected usize"),
])
def test_crafted_safetensors_headers_are_refused_naming_the_entry(tmp_path, header, data, message):
    pytest.importorskip("safetensors")
    path = _raw(tmp_path / "c.safetensors", header, bytes(data))
    with pytest.raises(ValueError, match=r"load: .*c.safetensors is not a readable safetensors file \(.*" + message):
        tg.load(path)
    with pytest.raises(ValueError, match=r"load_safetensors: .*c.safetensors is not a readable .*" + message):
        export.load_safetensors(nn.Linear(1, 1), path)


def test_a_header_longer_than_the_file_or_the_limit_is_refused_before_reading_it(tmp_path):
    pytest.importorskip("safetensors")
    path = _raw(tmp_path / "c.safetensors", {}, length=2**40)
    raised, seconds, peak = peak_of(tg.load, path)
    assert isinstance(raised, ValueError) and "c.safetensors is not a readable safetensors file" in str(raised)
    assert "header too large" in str(raised) and seconds < 0.5 and peak < 1e6
    path.write_bytes(b"\x01\x02")
    with pytest.raises(ValueError, match=r"header too small"):
        tg.load(path)
    _raw(path, b"{}" + b" " * 2**24)  # the package allows 100 MB; its header is parsed again here: 16 MiB at most
    with pytest.raises(ValueError, match=r"a header of 16777218 bytes, more than the limit of 16777216\)$"):
        tg.load(path)
    with pytest.raises(FileNotFoundError, match=r"load: .*absent.safetensors does not exist or is not a file"):
        tg.load(tmp_path / "absent.safetensors")


# ================================================================================= tinygrad_like.save / load
def test_load_reads_a_module_file_as_its_state_dict(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    state = tg.load(model.save(tmp_path / "m.npz"))
    assert list(state) == ["0.weight", "0.bias"]  # the module description is not state
    model.load_state_dict(state)
    np.savez(tmp_path / "text.npz", w=np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"text.npz holds 'w' of dtype <U1, not a tensor of numbers"):
        tg.load(tmp_path / "text.npz")


def test_save_keeps_a_0_d_buffer_0_d(tmp_path):
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))  # num_batches_tracked: a 0-d int64 buffer
    model(Tensor(RNG.standard_normal((4, 2))))
    for name in ("bn.pt", "bn.safetensors"):
        if name.endswith(".safetensors"):
            pytest.importorskip("safetensors")
        tg.save(model.state_dict(), tmp_path / name)
        state = tg.load(tmp_path / name)
        assert state["1.num_batches_tracked"].shape == () and int(state["1.num_batches_tracked"].item()) == 1
        fresh = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
        fresh.load_state_dict(state)
        np.testing.assert_array_equal(fresh[1].running_mean.data, model[1].running_mean.data)


def test_safetensors_without_the_package_say_how_to_install_it(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_safetensors(name, *args, **kwargs):
        if name.startswith("safetensors"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_safetensors)
    state = {"a": Tensor(np.arange(3.0)), "b": np.ones((2, 2), np.float32)}
    install = r"safetensors files need the safetensors package: pip install safetensors"
    with pytest.raises(ImportError, match=r"^save: " + install):
        tg.save(state, tmp_path / "s.safetensors")
    with pytest.raises(ImportError, match=r"^save_safetensors: " + install):
        export.save_safetensors(nn.Linear(2, 2), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even an empty file
    (tmp_path / "m.safetensors").write_bytes(b"\x00" * 8)
    with pytest.raises(ImportError, match=r"^load: " + install):
        tg.load(tmp_path / "m.safetensors")
    with pytest.raises(ImportError, match=r'^load_safetensors: .*\(or pip install "tinygrad_like\[export\]"\)$'):
        export.load_safetensors(nn.Linear(2, 2), tmp_path / "m.safetensors")
    tg.save(state, tmp_path / "s.pt")  # NumPy's format needs no package
    np.testing.assert_array_equal(tg.load(tmp_path / "s.pt")["a"].data, np.arange(3.0))
