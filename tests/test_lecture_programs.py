"""Learners' lecture programs (tests/lectures/: PyTorch's beginner lessons on tensors, autograd, custom Functions,
nn, optim and custom modules, and makemore's bigram model, written as those lessons write them, ``import torch``
and all) run unchanged with ``torch`` mapped to tinygrad_like, and train as they do in PyTorch: the same losses at
every step, given the same initial weights.

The same weights: both runs draw ``torch.randn`` and ``nn.Linear``'s initial values from one NumPy stream (the
two libraries' own generators differ, as they may); everything else is the programs' own.
"""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_like

LECTURES = Path(__file__).parent / "lectures"
SUBMODULES = ("nn", "nn.functional", "optim", "utils", "utils.data")


def same_draws(monkeypatch, module, seed=0):
    """Make ``module.randn`` and ``module.nn.Linear``'s initialisation draw from one seeded NumPy stream."""
    rng = np.random.default_rng(seed)

    def randn(*shape, dtype=None, requires_grad=False, generator=None, **kwargs):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        values = module.tensor(rng.standard_normal(shape), dtype=dtype or module.float32)
        return values.requires_grad_(requires_grad)

    linear_init = module.nn.Linear.__init__

    def linear(self, in_features, out_features, bias=True, **kwargs):
        linear_init(self, in_features, out_features, bias, **kwargs)
        bound = 1 / math.sqrt(in_features)
        with module.no_grad():
            self.weight.copy_(module.tensor(rng.uniform(-bound, bound, (out_features, in_features)),
                                            dtype=module.float32))
            if bias:
                self.bias.copy_(module.tensor(rng.uniform(-bound, bound, out_features), dtype=module.float32))

    monkeypatch.setattr(module, "randn", randn)
    monkeypatch.setattr(module.nn.Linear, "__init__", linear)


def run(name, module, monkeypatch):
    """Run the lecture program ``name`` with ``import torch`` giving ``module``; its global names after the run."""
    with monkeypatch.context() as patch:
        same_draws(patch, module)
        if module is tinygrad_like:
            patch.setitem(sys.modules, "torch", tinygrad_like)
            for sub in SUBMODULES:
                patch.setitem(sys.modules, f"torch.{sub}", __import__(f"tinygrad_like.{sub}", fromlist=["_"]))
        source = (LECTURES / f"{name}.py").read_text()
        namespace = {"__name__": "__main__"}
        exec(compile(source, str(LECTURES / f"{name}.py"), "exec"), namespace)
        return namespace


@pytest.mark.parametrize("name", ["fit_with_tensors", "fit_with_autograd", "custom_function", "fit_with_nn",
                                  "fit_with_optim", "custom_module", "bigram"])
def test_a_lecture_program_runs_unchanged_and_trains_as_in_pytorch(torch, monkeypatch, name):
    ours = run(name, tinygrad_like, monkeypatch)
    theirs = run(name, torch, monkeypatch)
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=2e-4)
    assert ours["losses"][-1] < ours["losses"][0]


def test_the_bigram_counts_and_likelihood_are_pytorchs(torch, monkeypatch):
    ours, theirs = run("bigram", tinygrad_like, monkeypatch), run("bigram", torch, monkeypatch)
    assert ours["N"].tolist() == theirs["N"].tolist() and ours["N"].dtype == np.int32
    assert ours["nll"].item() == pytest.approx(theirs["nll"].item(), rel=1e-6)
    assert all(set(word) <= set(ours["chars"]) for word in ours["samples"])  # sampled with a seeded generator
