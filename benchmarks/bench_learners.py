"""Learners' workloads, one training step each, against PyTorch in the same run: makemore's MLP, a character-level
GPT, an LSTM trained by backpropagation through time, a small CNN.

    python benchmarks/bench_learners.py [--repeats 20] [--only NAME ...] [--no-memory] [--quick] [--json FILE]

Each workload is written once, on a library passed in (``tinygrad_like`` or ``torch``: the same names), built in
both with PyTorch's initial weights copied into ours, float32, one thread (OMP/OpenBLAS/MKL threads 1 before
NumPy loads, ``torch.set_num_threads(1)``). A step is zero_grad, forward, loss, backward and the optimizer's step
on one fixed batch; the first step's losses must agree (else the script fails), then the two libraries take turns
and the median time per step is kept. Dropout is 0, so the steps are deterministic.

Peak memory of one step (GPT and LSTM): each library in a fresh process (``--memory NAME --library LIB``), the
model and batch built and one step taken first; then freed memory is handed back to the system (``gc.collect``,
glibc's ``malloc_trim``), the peak resident set is reset (``/proc/self/clear_refs``) and the figure is how far the
peak (VmHWM) rose above the resident set during a second step: memory the step made the process hold, by the
same yardstick for both. For ours, tracemalloc's peak of the same step (NumPy's
buffers, exactly) is given too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (  # noqa: E402 - common loads no NumPy: the thread settings still apply
    alternate,
    figure,
    finish,
    options_of,
    parse,
    positive_int,
    result,
    row,
    set_blas_threads,
)

set_blas_threads(1)

import numpy as np  # noqa: E402

WORKLOADS = ("makemore", "gpt", "lstm", "cnn")
MEMORY = ("gpt", "lstm")
FULL = {"repeats": 20, "only": None, "memory": True}
QUICK = {"repeats": 5}
SETUP = {
    "makemore": "makemore's MLP: Embedding(27, 10), context 3, Linear(30, 200), BatchNorm1d(200), tanh, "
                "Linear(200, 27), cross-entropy, batch 32, SGD",
    "gpt": "a character-level GPT built as examples/char_gpt.py: vocabulary 65, block 32, 64 channels, 4 heads, "
           "4 layers, batch 16, cross-entropy, AdamW",
    "lstm": "nn.LSTM(8, 64) over a sequence of 50, batch 32, a Linear(64, 1) head on every step, MSE, Adam",
    "cnn": "Conv2d(1, 8, 3), ReLU, MaxPool2d(2), Conv2d(8, 16, 3), ReLU, MaxPool2d(2), Linear(400, 10) on "
           "(64, 1, 28, 28), cross-entropy, SGD",
}


def char_gpt(library: str):
    """examples/char_gpt.py loaded for one library (it picks its backend from LESSON_BACKEND at import)."""
    previous = os.environ.get("LESSON_BACKEND")
    os.environ["LESSON_BACKEND"] = "torch" if library == "torch" else "tinygrad_like"
    try:
        spec = importlib.util.spec_from_file_location(f"char_gpt_{library}", HERE.parent / "examples" / "char_gpt.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del os.environ["LESSON_BACKEND"]
        else:
            os.environ["LESSON_BACKEND"] = previous
    return module


def build(name: str, lib, library: str):
    """(model, optimizer, loss of a batch, batch) of one workload on ``lib`` (torch or tinygrad_like)."""
    nn, F = lib.nn, lib.nn.functional
    rng = np.random.default_rng(0)
    if name == "makemore":
        model = nn.Sequential(nn.Embedding(27, 10), nn.Flatten(), nn.Linear(30, 200), nn.BatchNorm1d(200), nn.Tanh(),
                              nn.Linear(200, 27))
        batch = (rng.integers(0, 27, (32, 3)), rng.integers(0, 27, 32))
        return model, lib.optim.SGD(model.parameters(), lr=0.1), lambda x, y: F.cross_entropy(model(x), y), batch
    if name == "gpt":
        model = char_gpt(library).GPTLanguageModel(65, 64, 4, 4, 32, 0.0)
        batch = (rng.integers(0, 65, (16, 32)), rng.integers(0, 65, (16, 32)))
        return model, lib.optim.AdamW(model.parameters(), lr=1e-3), lambda x, y: model(x, y)[1], batch
    if name == "lstm":
        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm, self.head = nn.LSTM(8, 64), nn.Linear(64, 1)

            def forward(self, x):
                return self.head(self.lstm(x)[0])

        model = Net()
        batch = tuple(rng.standard_normal((50, 32, size)).astype(np.float32) for size in (8, 1))
        return model, lib.optim.Adam(model.parameters(), lr=1e-3), lambda x, y: F.mse_loss(model(x), y), batch
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 10))
    batch = (rng.standard_normal((64, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, 64))
    return model, lib.optim.SGD(model.parameters(), lr=0.01), lambda x, y: F.cross_entropy(model(x), y), batch


def stepper(name: str, lib, library: str, weights: dict | None = None):
    """A function taking one training step (returning its loss as a float), and the model's state."""
    model, opt, loss_of, (x, y) = build(name, lib, library)
    if weights is not None:
        model.load_state_dict(weights)
    x, y = lib.from_numpy(x), lib.from_numpy(y)

    def step() -> float:
        opt.zero_grad()
        loss = loss_of(x, y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, model


def pair(name: str):
    """The two steps, PyTorch's weights copied into ours; refused when the first step's losses disagree."""
    import torch

    import tinygrad_like

    torch.set_num_threads(1)
    torch.manual_seed(0)
    theirs, model = stepper(name, torch, "torch")
    weights = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    ours, _ = stepper(name, tinygrad_like, "tinygrad_like", weights)
    a, b = ours(), theirs()
    if not abs(a - b) <= 1e-4 * max(1.0, abs(b)):
        raise SystemExit(f"{name}: the first step's losses disagree: ours {a!r}, PyTorch {b!r}")
    return ours, theirs, a, b


def memory_of(name: str, library: str) -> dict:
    """Peak memory of one step in this (fresh) process: see the module's docstring."""
    import ctypes
    import gc
    import tracemalloc

    if library == "torch":
        import torch as lib

        lib.set_num_threads(1)
    else:
        import tinygrad_like as lib
    step, _ = stepper(name, lib, library)
    step()  # first step: the optimizer's state, caches

    def status(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {key} in /proc/self/status")

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # what the first step freed goes back, so reusing it shows again
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = status("VmRSS:")
    step()
    rss = status("VmHWM:") - before
    tracemalloc.start()  # a third step: tracemalloc's own bookkeeping stays out of the figure above
    step()
    return {"rss": rss, "traced": tracemalloc.get_traced_memory()[1]}


def measure_memory(name: str) -> dict:
    found = {}
    for library in ("tinygrad_like", "torch"):
        done = subprocess.run([sys.executable, __file__, "--memory-of", name, "--library", library],
                              capture_output=True, text=True, check=True)
        found[library] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def measure(repeats: int = FULL["repeats"], only: list[str] | None = None, memory: bool = FULL["memory"]) -> dict:
    rows, figures = [], []
    for name in only or WORKLOADS:
        ours, theirs, a, b = pair(name)
        times = alternate({"ours": ours, "theirs": theirs}, repeats)
        rows.append(row(f"{name}: time per step", "ms", times["ours"] * 1e3, times["theirs"] * 1e3))
        figures.append(figure(f"{name}: first step's loss, ours / PyTorch", f"{a:.6f} / {b:.6f}"))
        if memory and name in MEMORY:
            found = measure_memory(name)
            rows.append(row(f"{name}: peak memory of a step (resident set)", "MB", found["tinygrad_like"]["rss"] / 1e6,
                            found["torch"]["rss"] / 1e6))
            figures.append(figure(f"{name}: ours, peak memory of a step (tracemalloc)",
                                  found["tinygrad_like"]["traced"] / 1e6, "MB"))
    setup = "; ".join(SETUP[name] for name in only or WORKLOADS)
    return result("Learners' workloads: one training step",
                  f"{setup}; float32, one thread, PyTorch's initial weights copied into ours; median of {repeats} "
                  "steps, the two libraries in turns", rows=rows, figures=figures)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, help=f"timed steps (default {FULL['repeats']})")
    parser.add_argument("--only", action="append", choices=WORKLOADS, help="this workload (repeatable)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", default=None,
                        help="skip the peak-memory processes")
    parser.add_argument("--memory-of", dest="memory_name", choices=MEMORY, help=argparse.SUPPRESS)
    parser.add_argument("--library", choices=("tinygrad_like", "torch"), help=argparse.SUPPRESS)
    args = parse(parser, FULL, QUICK, argv)
    if args.memory_name:
        print(json.dumps(memory_of(args.memory_name, args.library)))
        return
    finish(measure(**options_of(args, FULL)), args)


if __name__ == "__main__":
    main()
