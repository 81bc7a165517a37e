"""Helpers shared by the test files (imported, not collected): input domains and leaves, PyTorch as an oracle,
central differences, small models, small datasets on disk, child processes and directory listings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tinygrad_like import Tensor, autograd, data, nn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# ----------------------------------------------------------------------------------------------------------
# Input domains: where an op is tested (and, for random compositions, how any value is brought there)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """Where an op's input is drawn from. ``guard`` maps any Tensor into the domain (random compositions feed an
    op whatever the previous op made)."""

    name: str
    draw: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    guard: Callable[[Tensor], Tensor]

    def __call__(self, *shape: int) -> Input:
        return Input(self, shape)

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Input:
    """One input of an op: a domain and a shape; called with a generator, a float64 array."""

    domain: Domain
    shape: tuple[int, ...]

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.domain.draw(rng, self.shape), dtype=np.float64)


def uniform(low: float, high: float) -> Domain:
    """Values in [low, high); a composition reaches them through a scaled sigmoid."""
    return Domain(f"uniform({low}, {high})", lambda rng, shape: rng.uniform(low, high, shape),
                  lambda t: low + (high - low) * t.sigmoid())


normal = Domain("normal", lambda rng, shape: rng.standard_normal(shape), lambda t: t)
positive = Domain("positive", lambda rng, shape: rng.uniform(0.5, 2.0, shape), lambda t: t * t + 0.5)
# kinks (relu, abs, clip) and poles (1/x) at 0: finite differences must not straddle them
away_from_zero = Domain("away_from_zero",
                        lambda rng, shape: rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape),
                        lambda t: t * t + 0.5)
probabilities = Domain("probabilities", lambda rng, shape: rng.dirichlet(np.ones(shape[-1]), shape[:-1]),
                       lambda t: t.softmax(-1))


between_minus_two_and_two = uniform(-2.0, 2.0)


def gaussian(*shape: int, seed: int | np.random.Generator = 1) -> np.ndarray:
    """Standard normal float64 values of ``shape``: the same ones for the same int ``seed``; from a Generator,
    the next ones it draws."""
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(shape: tuple[int, ...], seed: int = 0, domain: Domain = between_minus_two_and_two, dtype=np.float64) -> Tensor:
    """A leaf requiring grad with values drawn from ``domain`` (float64 unless asked)."""
    values = domain(*shape)(np.random.default_rng(seed))
    return Tensor(values.astype(dtype), requires_grad=True)


# ----------------------------------------------------------------------------------------------------------
# Oracles
# ----------------------------------------------------------------------------------------------------------

TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


def compare_with_torch(torch, ours_fn, theirs_fn, arrays, dtype, rtol=None, seed=99):
    """Run ``ours_fn`` on Tensors and ``theirs_fn`` on torch tensors made from the same ``arrays``; check that
    values, result dtypes and gradients (under one random upstream gradient) agree. Returns our output."""
    rtol = TOLERANCE[dtype] if rtol is None else rtol
    ours_in = [Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    theirs_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ours, theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    assert ours.dtype == dtype and theirs.dtype == getattr(torch, np.dtype(dtype).name)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=rtol, atol=rtol)
    upstream = np.random.default_rng(seed).standard_normal(ours.shape).astype(dtype)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    for o, t in zip(ours_in, theirs_in):
        if o.requires_grad and (o.grad is not None or t.grad is not None):  # both None: an unused input
            assert o.grad.dtype == o.dtype
            np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=rtol, atol=rtol)
    return ours


def flat(out) -> list:
    """The tensors of a result, ours or PyTorch's, nested tuples flattened ((output, (h_n, c_n)) -> [output, h_n,
    c_n]), None left out."""
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in flat(item)]
    return [] if out is None else [out]


def agree_with_torch(torch, outs: list, touts: list, wrt: list, twrt: list, *, second_order: bool = True,
                     seed: int = 0, rtol: float = 1e-10, atol: float | None = None, second_tol: float | None = None,
                     labels: list[str] | None = None) -> None:
    """Our outputs ``outs`` of the leaves ``wrt`` and PyTorch's ``touts`` of ``twrt`` (holding the same values)
    agree: every output (shape, float64, values); the gradients of every leaf under random upstream gradients on
    all outputs; and, with ``second_order``, the gradients of sum_i (grad_i . v_i) for random v_i (double
    backward), a second derivative that reaches no leaf counting as zeros. Tolerances: ``rtol`` and ``atol``
    (default ``rtol``), and ``second_tol`` (relative and absolute) for the second order (default: the first's)."""
    atol = rtol if atol is None else atol
    second_rtol, second_atol = (rtol, atol) if second_tol is None else (second_tol, second_tol)
    labels = [f"leaf {i}" for i in range(len(wrt))] if labels is None else labels
    assert len(outs) == len(touts)
    for i, (o, t) in enumerate(zip(outs, touts)):
        assert o.shape == tuple(t.shape) and o.dtype == np.float64, (i, o.shape, o.dtype, tuple(t.shape))
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"output {i}")
    rng = np.random.default_rng(seed)
    ups = [rng.standard_normal(o.shape) for o in outs]
    grads = autograd.grad(outs, wrt, ups, create_graph=second_order)
    tgrads = torch.autograd.grad(touts, twrt, [torch.tensor(u) for u in ups], create_graph=second_order)
    for what, g, t in zip(labels, grads, tgrads):
        np.testing.assert_allclose(g.data, t.detach().numpy(), rtol=rtol, atol=atol, err_msg=f"gradient of {what}")
    if not second_order:
        return
    vs = [rng.standard_normal(g.shape) for g in grads]
    total = sum(((g * v).sum() for g, v in zip(grads, vs)), Tensor(0.0))
    ttotal = sum((t * torch.tensor(v)).sum() for t, v in zip(tgrads, vs))
    # a gradient that does not depend on the leaves (L1's sign) has no graph: its derivatives are 0
    seconds = autograd.grad(total, wrt, allow_unused=True) if total.requires_grad else [None] * len(wrt)
    tseconds = torch.autograd.grad(ttotal, twrt, allow_unused=True)
    for what, w, g, t in zip(labels, wrt, seconds, tseconds):
        # None where nothing of second order reaches a tensor (a relu's second derivative is 0): zeros
        g, t = np.zeros(w.shape) if g is None else g.data, np.zeros(w.shape) if t is None else t.numpy(force=True)
        np.testing.assert_allclose(g, t, rtol=second_rtol, atol=second_atol, err_msg=f"second order: {what}")


def twins(torch, name: str, *args, **kwargs) -> tuple[nn.Module, object]:
    """Our layer ``nn.<name>`` and PyTorch's, built with the same arguments in float64, PyTorch's weights copied
    into ours (which checks that the state_dict keys, their order and shapes are PyTorch's)."""
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=torch.float64)
    ours = getattr(nn, name)(*args, **kwargs, dtype=np.float64)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def check_against_torch(torch, ours, theirs, arrays, call=lambda m, *xs: m(*xs), second_order=False, seed=0):
    """Run ``call(module, *inputs)`` on both modules with the same float64 ``arrays`` as inputs requiring grad;
    their parameter names agree, and so do every output and the gradients of the inputs and of every parameter
    (``agree_with_torch``: rtol = atol = 1e-10, 1e-9 at second order). Returns our outputs, flattened."""
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs, touts = flat(call(ours, *xs)), flat(call(theirs, *ts))
    names = [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_parameters()] == names
    agree_with_torch(torch, outs, touts, xs + ours.parameters(), ts + list(theirs.parameters()),
                     second_order=second_order, seed=seed, rtol=1e-10, second_tol=1e-9,
                     labels=[f"input {i}" for i in range(len(xs))] + names)
    return outs


def central_differences(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f() / d array by central differences, one entry at a time (``array`` is changed in place and restored)."""
    grad = np.zeros_like(array, dtype=np.float64)
    for j in range(array.size):
        old = array.flat[j]
        array.flat[j] = old + eps
        up = f()
        array.flat[j] = old - eps
        down = f()
        array.flat[j] = old
        grad.flat[j] = (up - down) / (2 * eps)
    return grad


# ----------------------------------------------------------------------------------------------------------
# Small models
# ----------------------------------------------------------------------------------------------------------


def makemore_mlp(padding_idx: int | None = None) -> nn.Sequential:
    """makemore's MLP (float32): three letters of 27 embedded in 10 dimensions each, flattened, a Linear without
    bias to 16, batch normalisation, tanh, and a Linear to 27 logits."""
    return nn.Sequential(nn.Embedding(27, 10, padding_idx=padding_idx), nn.Flatten(), nn.Linear(30, 16, bias=False),
                         nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 27))


# ----------------------------------------------------------------------------------------------------------
# Small datasets in MNIST's format
# ----------------------------------------------------------------------------------------------------------


def random_digits(n_train: int = 6, n_test: int = 4, seed: int = 0) -> data.Arrays:
    """Random uint8 images (n, 28, 28) and labels: MNIST's format, nothing to learn."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8)
    y_train = rng.integers(0, 10, n_train, dtype=np.uint8)
    y_test = rng.integers(0, 10, n_test, dtype=np.uint8)
    return (x_train, y_train), (x_test, y_test)


def learnable_digits(n: int, seed: int = 0, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (n, 28, 28) that are learnable: a random prototype per class plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(1234).integers(0, 256, (classes, 28, 28))
    labels = rng.integers(0, classes, n)
    noise = rng.integers(-60, 61, (n, 28, 28))
    return np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8), labels.astype(np.uint8)


def write_idx_dataset(directory: Path, arrays: data.Arrays, gz: bool = True) -> Path:
    """The four IDX files of ``arrays`` ((x_train, y_train), (x_test, y_test)) in ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = arrays
    for stem, array in zip(data.IDX_FILES, (x_train, y_train, x_test, y_test), strict=True):
        data.write_idx(directory / (f"{stem}.gz" if gz else stem), array)
    return directory


def write_learnable_idx(directory: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """The four IDX files of a small MNIST-format dataset that a network can learn: noise, plus a bright bar
    whose place is the class. Returns ``directory`` (created)."""
    rng = np.random.default_rng(seed)
    splits = []
    for labels in [rng.integers(0, 10, n).astype(np.uint8) for n in (n_train, n_test)]:
        images = rng.integers(0, 60, (len(labels), 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 4 + 2 * label:6 + 2 * label, 4:24] = 250
        splits.append((images, labels))
    return write_idx_dataset(directory, tuple(splits))


# ----------------------------------------------------------------------------------------------------------
# Processes and files
# ----------------------------------------------------------------------------------------------------------


def run_python(*args: str, cwd: Path | None = None, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """``python *args`` in a child with this checkout first on its path (and ``env`` added); output captured."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": path, **env})


def run_example(script: str, *args: str, cwd: Path, timeout: float = 300, **env: str) -> str:
    """The output of examples/<script>, run as a learner runs it (one BLAS thread unless ``env`` says: two
    threads competing with other processes for two cores are many times slower); it must exit 0."""
    result = run_python(str(EXAMPLES / script), *args, cwd=cwd, timeout=timeout,
                        **{"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **env})
    assert result.returncode == 0, result.stderr
    return result.stdout


def listing(directory: Path) -> list[str]:
    """The sorted names in ``directory``: what a test wrote there, and nothing else (no temporary left)."""
    return sorted(p.name for p in directory.iterdir())


# ----------------------------------------------------------------------------------------------------------
# Drawings
# ----------------------------------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def svg_nodes(path: Path) -> dict[str, list[str]]:
    """Node id (the SVG <title>) -> the texts drawn in it."""
    root = ET.parse(path).getroot()
    nodes = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "node":
            texts = ["".join(t.itertext()) for t in g.iter(f"{SVG}text")]
            nodes[g.find(f"{SVG}title").text] = texts
    return nodes


def svg_cluster_labels(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(g.find(f"{SVG}text").itertext()) for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"]


def hide_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As if Graphviz were not installed: PATH is an empty directory."""
    empty = tmp_path / "no-dot-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def page_data(page: str) -> dict:
    """The graph JSON that a page of ``to_html`` carries, its nodes unpacked as the page's script does (one dict
    per node: title, name, cat, op, shape, dtype, cluster, inputs, value, grad, verdict) and its steps as
    ``{"node", "sent": [contribution index, ...]}`` with ``contributions`` ``{"from", "pos", "to", "grad"}``."""
    match = re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert match, "no graph data in the page"
    data = json.loads(match.group(1))
    if not isinstance(data, dict):  # a dot_to_html page: the DOT text
        return data
    columns = data["nodes"]
    unpacked = {k: [columns[k]["values"][i] for i in columns[k]["index"]]
                for k in ("title", "cat", "shape", "dtype", "cluster")}
    data["nodes"] = [{
        **{k: unpacked[k][i] for k in unpacked}, "inputs": inputs, "op": unpacked["title"][i] if inputs else None,
        "name": columns["name"].get(str(i)), "verdict": columns["verdict"].get(str(i)),
        "value": columns["value"][i], "grad": columns["grad"][i],
    } for i, inputs in enumerate(columns["inputs"])]
    contributions, steps = [], []
    for node, *positions in data["steps"]:
        steps.append({"node": node, "sent": list(range(len(contributions), len(contributions) + len(positions)))})
        contributions += [{"from": node, "pos": pos, "to": data["nodes"][node]["inputs"][pos],
                           "grad": data["sent"][len(contributions) + k]} for k, pos in enumerate(positions)]
    data["steps"], data["contributions"] = steps, contributions
    return data
