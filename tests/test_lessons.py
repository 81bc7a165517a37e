"""The learner's path (examples/dezero_higher_order.py, makemore_mlp.py, char_gpt.py, lstm_sine.py and the
notebook lessons.ipynb): each runs as a script on small settings, and each is THE SAME source run on PyTorch,
given the same initial weights (copied across, float64) and the same batches (drawn here with NumPy): the same
losses, gradients and updates at every step, to rounding.

Each example picks its ``torch`` at import (``LESSON_BACKEND=torch``, or ``--torch`` on the command line), so
``lesson(name, backend)`` imports a fresh copy of it for each backend.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import re
import shutil

import numpy as np
import pytest
from helpers import EXAMPLES, PNG_MAGIC, listing, run_example, run_python

import tinygrad_like

SONNETS = EXAMPLES / "data" / "sonnets.txt"
RTOL = 1e-10  # float64 on both sides: only the order of the additions differs


@functools.cache
def lesson(name: str, backend: str):
    """examples/<name>.py imported afresh with ``torch`` being ``backend`` ("tinygrad_like" or "torch")."""
    spec = importlib.util.spec_from_file_location(f"lesson_{name}_{backend}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    saved = os.environ.get("LESSON_BACKEND")
    os.environ["LESSON_BACKEND"] = backend
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del os.environ["LESSON_BACKEND"]
        else:
            os.environ["LESSON_BACKEND"] = saved
    assert module.BACKEND == backend
    return module


def both(name: str):
    return lesson(name, "tinygrad_like"), lesson(name, "torch")


@pytest.fixture
def one_thread(torch):
    """PyTorch on one thread for the test (two threads competing with other processes for two cores are many times
    slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.\d+(?:e[-+]\d+)?", text)]


def close(a, b, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=rtol,
                               atol=rtol)


def array(t) -> np.ndarray:
    """A tensor of either library as a NumPy array."""
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def to_float64(model) -> None:
    """Every floating parameter and buffer of a module in float64, in place (``.double()`` where there is one)."""
    if hasattr(model, "double"):
        model.double()
        return
    for _, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.data.dtype.kind == "f":
            t.data = t.data.astype(np.float64)


def copy_weights(ours, theirs) -> None:
    """PyTorch's module's state (float64) into ours: the same keys, shapes and dtypes, or load_state_dict says."""
    to_float64(ours)
    theirs.double()
    ours.load_state_dict({name: value.numpy() for name, value in theirs.state_dict().items()})


def same_grads(ours, theirs) -> None:
    """The same parameter names, and the same gradient for each."""
    grads_o = {n: p.grad for n, p in ours.named_parameters()}
    grads_t = {n: p.grad for n, p in theirs.named_parameters()}
    assert grads_o.keys() == grads_t.keys()
    for name, g in grads_t.items():
        close(array(grads_o[name]), g.numpy())


# ----------------------------------------------------------------------------------------------------------
# 1. DeZero's higher-order steps
# ----------------------------------------------------------------------------------------------------------


def test_dezero_prints_taylor_newton_and_the_derivatives_of_tanh(tmp_path):
    out = run_example("dezero_higher_order.py", "--out", str(tmp_path), "--no-draw", cwd=tmp_path)
    taylor = re.search(r"Taylor series of sin at pi/4 \((\d+) terms\): ([\d.]+) \(sin ([\d.]+)\); gradient ([\d.]+) "
                       r"\(cos ([\d.]+)\)", out)
    assert taylor, out
    value, sin, grad, cos = map(float, taylor.groups()[1:])
    assert abs(value - sin) < 1e-14 and abs(grad - cos) < 1e-14 and abs(sin - math.sin(math.pi / 4)) < 1e-14
    newton = numbers(re.search(r"Newton's method .*", out).group(0).split(":")[1])
    assert newton[:3] == [2.0, 1.4545454545, 1.1510467894] and newton[-1] == 1.0  # DeZero step 33's iterates
    steps = int(re.search(r"gradient descent \(lr 0.01\) needs (\d+) steps", out).group(1))
    assert steps > 100
    orders = re.findall(r"order (\d): ([-+][\d.]+) \| ([-+][\d.]+)", out)
    assert [int(n) for n, _, _ in orders] == [1, 2, 3, 4, 5, 6]
    for _, autograd, exact in orders:
        assert abs(float(autograd) - float(exact)) < 1e-11
    assert listing(tmp_path) == []  # --no-draw writes nothing


def test_dezero_draws_the_graph_of_a_derivative_and_plots_tanhs(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    pytest.importorskip("matplotlib")
    out = run_example("dezero_higher_order.py", "--out", str(tmp_path / "pictures"), "--order", "4",
                      "--draw-order", "2", cwd=tmp_path)
    sizes = [int(n) for n in re.search(r"tensors in the graph of orders 1..4: \[([\d, ]+)\]", out).group(1).split(",")]
    assert sizes == sorted(sizes) and sizes[-1] > 4 * sizes[1]  # each derivative's graph is bigger
    pictures = tmp_path / "pictures"
    assert listing(pictures) == ["tanh_derivative_2.gv", "tanh_derivative_2.png", "tanh_derivative_2.svg",
                                 "tanh_derivatives.png"]
    assert (pictures / "tanh_derivative_2.png").read_bytes().startswith(PNG_MAGIC)
    svg = (pictures / "tanh_derivative_2.svg").read_text()
    assert "tanh" in svg and ">x<" in svg  # the op, and the leaf named x


def test_dezero_refuses_an_order_below_one(tmp_path):
    result = run_python(str(EXAMPLES / "dezero_higher_order.py"), "--order", "0", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "--order must be at least 1, got 0" in result.stderr


def taylor_at(lesson_module, x0: float) -> tuple[float, float, int]:
    """(sin x0 by its Taylor series, its gradient by autograd, the terms summed) in the lesson's library."""
    x = lesson_module.torch.tensor(x0, dtype=lesson_module.torch.float64, requires_grad=True)
    y, terms = lesson_module.taylor_sin(x)
    y.backward()
    return y.item(), x.grad.item(), terms


def test_dezero_steps_give_pytorchs_numbers(torch):
    ours, theirs = both("dezero_higher_order")
    assert taylor_at(ours, 0.7) == pytest.approx(taylor_at(theirs, 0.7), rel=1e-15)
    close(ours.newton(ours.f, 2.0, iters=7), theirs.newton(theirs.f, 2.0, iters=7), rtol=1e-15)
    assert ours.gradient_descent(ours.f, 2.0) == pytest.approx(theirs.gradient_descent(theirs.f, 2.0), rel=1e-13)

    points = np.random.default_rng(0).uniform(-2, 2, 7)
    ours_d = ours.derivatives(ours.torch.tanh, ours.torch.tensor(points, requires_grad=True), 6)
    theirs_d = theirs.derivatives(torch.tanh, torch.tensor(points, requires_grad=True), 6)
    for o, t, exact in zip(ours_d, theirs_d, ours.exact_tanh_derivatives(points, 6)):
        close(array(o), t.detach().numpy())
        close(array(o), exact, rtol=1e-9)
    for order in (1, 3, 6):  # DeZero's loop of backward(create_graph=True) on x.grad
        close(ours.tanh_derivatives_by_backward(-0.3, order)[1].item(),
              theirs.tanh_derivatives_by_backward(-0.3, order)[1].item())


def test_dezero_on_pytorch_prints_what_it_prints_on_tinygrad_like(torch, tmp_path):
    ours = run_example("dezero_higher_order.py", "--no-draw", cwd=tmp_path)
    theirs = run_example("dezero_higher_order.py", "--no-draw", "--torch", cwd=tmp_path)
    assert ours.splitlines()[0] == "backend: tinygrad_like" and theirs.splitlines()[0] == "backend: torch"
    assert ours.splitlines()[1:] == theirs.splitlines()[1:]


# ----------------------------------------------------------------------------------------------------------
# 2. makemore's MLP
# ----------------------------------------------------------------------------------------------------------


def test_makemore_falls_back_to_the_words_of_the_sonnets():
    ours = lesson("makemore_mlp", "tinygrad_like")
    words, source = ours.load_words(SONNETS)
    assert source == str(SONNETS) and 1000 < len(words) < 3000
    assert all(re.fullmatch("[a-z]+", w) for w in words) and {"beauty", "summer", "time"} <= set(words)
    stoi, itos = ours.build_vocab(words)
    assert stoi["."] == 0 and stoi["a"] == 1 and itos[0] == "." and len(stoi) <= 27
    X, Y = ours.build_dataset(["emma"], stoi, 3)
    e, m, a = stoi["e"], stoi["m"], stoi["a"]
    assert X.tolist() == [[0, 0, 0], [0, 0, e], [0, e, m], [e, m, m], [m, m, a]] and Y.tolist() == [e, m, m, a, 0]
    assert X.dtype == np.int64


def test_makemore_trains_and_samples_on_small_settings(tmp_path):
    out = run_example("makemore_mlp.py", "--words", str(SONNETS), "--steps", "300", "--n-hidden", "64",
                      "--samples", "5", cwd=tmp_path)
    assert "backend tinygrad_like, model manual:" in out and "words from " + str(SONNETS) in out
    losses = [float(x) for x in re.findall(r"^\s*\d+/\s*300: ([\d.]+)$", out, re.M)]
    assert len(losses) == 10 and losses[0] > 3.0  # near -log(1/27) = 3.30 at the start
    final = re.search(r"after 300 steps .*: train loss ([\d.]+), dev loss ([\d.]+), test loss ([\d.]+)", out)
    assert final and all(float(x) < 3.0 for x in final.groups()), out
    samples = out.split("samples:")[1].split()
    assert len(samples) <= 5 and all(re.fullmatch("[a-z]+", s) for s in samples)


def make_mlps(ours, theirs, torch, vocab_size=27, block_size=3, n_embd=5, n_hidden=16):
    """Part 3's network in both libraries with PyTorch's initial draws, all in float64."""
    m_t = theirs.MLP(vocab_size, block_size, n_embd, n_hidden, torch.Generator().manual_seed(1))
    m_o = ours.MLP(vocab_size, block_size, n_embd, n_hidden, tinygrad_like.Generator().manual_seed(1))
    for name in ("C", "W1", "W2", "b2", "bngain", "bnbias", "bnmean_running", "bnstd_running"):
        value = getattr(m_t, name).detach().double().numpy()
        trained = name not in ("bnmean_running", "bnstd_running")
        setattr(m_t, name, torch.tensor(value, requires_grad=trained))
        setattr(m_o, name, tinygrad_like.tensor(value, requires_grad=trained))
    return m_o, m_t


@pytest.mark.usefixtures("one_thread")
def test_makemore_mlp_trains_as_in_pytorch(torch):
    """Part 3's loop (emb = C[Xb], batch norm by hand, F.cross_entropy, p.data += -lr * p.grad): the same losses,
    gradients, running statistics and evaluation losses, step after step."""
    ours, theirs = both("makemore_mlp")
    words = ours.load_words(SONNETS)[0][:300]
    stoi, _ = ours.build_vocab(words)
    X_o, Y_o = ours.build_dataset(words, stoi, 3)
    X_t, Y_t = theirs.build_dataset(words, stoi, 3)
    assert X_o.tolist() == X_t.tolist() and Y_o.tolist() == Y_t.tolist()
    m_o, m_t = make_mlps(ours, theirs, torch, vocab_size=len(stoi))
    rng = np.random.default_rng(0)
    for _ in range(6):
        ix = rng.integers(0, len(X_o), 32)
        loss_o = ours.sgd_step(m_o, X_o[ix], Y_o[ix], 0.1)
        loss_t = theirs.sgd_step(m_t, X_t[torch.from_numpy(ix)], Y_t[torch.from_numpy(ix)], 0.1)
        close(loss_o, loss_t)
        for p_o, p_t in zip(m_o.parameters(), m_t.parameters()):
            close(array(p_o.grad), p_t.grad.numpy())
            close(array(p_o), p_t.detach().numpy())
    close(array(m_o.bnmean_running), m_t.bnmean_running.numpy())
    close(array(m_o.bnstd_running), m_t.bnstd_running.numpy())
    close(ours.split_loss(m_o, X_o, Y_o), theirs.split_loss(m_t, X_t, Y_t))  # evaluation: the running statistics
    assert not m_o.bnmean_running.requires_grad  # updated under no_grad


@pytest.mark.usefixtures("one_thread")
def test_makemore_from_nn_layers_trains_as_in_pytorch(torch):
    """The same network from nn.Embedding, nn.Flatten, nn.Linear, nn.BatchNorm1d, nn.Tanh: PyTorch's state_dict
    loads into ours, and training agrees, running statistics included."""
    ours, theirs = both("makemore_mlp")
    torch.manual_seed(0)
    m_o, m_t = ours.nn_mlp(27, 3, 5, 16), theirs.nn_mlp(27, 3, 5, 16)
    copy_weights(m_o, m_t)
    rng = np.random.default_rng(1)
    X = rng.integers(0, 27, (200, 3))
    Y = rng.integers(0, 27, 200)
    for _ in range(5):
        ix = rng.integers(0, 200, 32)
        close(ours.sgd_step(m_o, tinygrad_like.tensor(X[ix]), tinygrad_like.tensor(Y[ix]), 0.1),
              theirs.sgd_step(m_t, torch.from_numpy(X[ix]), torch.from_numpy(Y[ix]), 0.1))
        same_grads(m_o, m_t)
    state_o = m_o.state_dict()
    for name, value in m_t.state_dict().items():
        close(array(state_o[name]), value.numpy())
    close(ours.split_loss(m_o, tinygrad_like.tensor(X), tinygrad_like.tensor(Y)),
          theirs.split_loss(m_t, torch.from_numpy(X), torch.from_numpy(Y)))


# ----------------------------------------------------------------------------------------------------------
# 3. The character-level GPT
# ----------------------------------------------------------------------------------------------------------

SMALL_GPT = ["--batch-size", "8", "--block-size", "16", "--max-iters", "30", "--eval-interval", "10",
             "--eval-iters", "2", "--n-embd", "16", "--n-head", "2", "--n-layer", "1", "--new-tokens", "40"]


def check_gpt_output(out: str) -> None:
    assert re.search(r"37759 characters, vocabulary 61, \d+ parameters", out), out
    evals = re.findall(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", out)
    assert [int(s) for s, _, _ in evals] == [0, 10, 20]
    assert abs(float(evals[0][1]) - math.log(61)) < 0.1  # small initial weights: near uniform over 61 characters
    sample = out.split("--- sample ---\n")[1].split("\n---\n")[0]
    assert len(sample) == 41  # the first character and 40 new ones
    final = re.search(r"after 30 steps .*: train loss ([\d.]+), val loss ([\d.]+)", out)
    assert final and float(final.group(2)) < float(evals[0][2]), out


def test_char_gpt_trains_and_generates_on_small_settings(tmp_path):
    check_gpt_output(run_example("char_gpt.py", *SMALL_GPT, cwd=tmp_path))


@pytest.mark.usefixtures("one_thread")
def test_char_gpt_on_pytorch_on_small_settings(torch, capsys):
    lesson("char_gpt", "torch").main(SMALL_GPT)
    check_gpt_output(capsys.readouterr().out)


def test_char_gpt_refuses_heads_that_do_not_divide_the_width(tmp_path):
    result = run_python(str(EXAMPLES / "char_gpt.py"), "--n-embd", "10", "--n-head", "3", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "--n-embd (10) must be a multiple of --n-head (3)" in result.stderr


def test_char_gpt_data_and_batches(torch):
    """The vocabulary, the 90/10 split, and get_batch's windows (targets shifted by one), in both libraries."""
    ours, theirs = both("char_gpt")
    text = SONNETS.read_text(encoding="utf-8")
    vocab = ours.Vocabulary(text)
    assert len(vocab) == 61 and vocab.decode(vocab.encode("Shall I compare thee")) == "Shall I compare thee"
    train_o, val_o = ours.load_splits(text, vocab)
    train_t, val_t = theirs.load_splits(text, vocab)
    assert train_o.tolist() == train_t.tolist() and val_o.tolist() == val_t.tolist()
    assert len(train_o) == int(0.9 * len(text)) and train_o.dtype == np.int64
    x, y = ours.get_batch(train_o, 8, 4, tinygrad_like.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int64
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        assert row_x[1:] == row_y[:-1] and vocab.decode(row_x) in text


def test_a_one_element_integer_tensor_is_an_index_as_in_pytorch(torch):
    """get_batch slices the text with the 0-d tensors of torch.randint: Tensor.__index__, PyTorch's refusals."""
    letters = list("abcdef")
    for lib in (tinygrad_like, torch):
        i = lib.tensor(2)
        assert letters[i:i + 2] == ["c", "d"] and letters[lib.tensor([4])] == "e" and letters[lib.tensor(True)] == "b"
        assert list(range(lib.tensor(3))) == [0, 1, 2]
        for bad in (lib.tensor(1.0), lib.tensor([1, 2])):
            with pytest.raises(TypeError, match="only integer tensors of a single element can be converted"):
                letters[bad]


@pytest.mark.usefixtures("one_thread")
def test_char_gpt_trains_as_in_pytorch(torch):
    """Same weights (PyTorch's state_dict loaded into ours), same batches, no dropout, float64: the same
    state_dict keys, losses and gradients over AdamW steps, and the same validation loss after them."""
    ours, theirs = both("char_gpt")
    config = dict(vocab_size=11, n_embd=12, n_head=3, n_layer=2, block_size=6, dropout=0.0)
    torch.manual_seed(0)
    m_t = theirs.GPTLanguageModel(**config)
    m_o = ours.GPTLanguageModel(**config)
    assert sorted(m_o.state_dict()) == sorted(m_t.state_dict())  # blocks.0.sa.heads.1.key.weight, ...tril, ...
    copy_weights(m_o, m_t)
    opt_o = ours.torch.optim.AdamW(m_o.parameters(), lr=1e-2)
    opt_t = torch.optim.AdamW(m_t.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(3):
        xb, yb = rng.integers(0, 11, (2, 4, 6))
        loss_o = ours.train_step(m_o, opt_o, tinygrad_like.tensor(xb), tinygrad_like.tensor(yb))
        loss_t = theirs.train_step(m_t, opt_t, torch.from_numpy(xb), torch.from_numpy(yb))
        close(loss_o, loss_t)
        same_grads(m_o, m_t)
    val = rng.integers(0, 11, 40)
    close(ours.split_loss(m_o, tinygrad_like.tensor(val), 6), theirs.split_loss(m_t, torch.from_numpy(val), 6))
    idx = rng.integers(0, 11, (2, 9))  # longer than block_size: generate crops the context
    with torch.no_grad():
        logits_t, _ = m_t(torch.from_numpy(idx[:, -6:]))
    logits_o, _ = m_o(tinygrad_like.tensor(idx[:, -6:]))
    close(array(logits_o), logits_t.numpy())
    out = m_o.generate(tinygrad_like.tensor(idx), max_new_tokens=3, generator=tinygrad_like.Generator().manual_seed(0))
    assert out.shape == (2, 12) and out[:, :9].tolist() == idx.tolist()


# ----------------------------------------------------------------------------------------------------------
# 4. The LSTM on a sine wave
# ----------------------------------------------------------------------------------------------------------


SMALL_LSTM = ["--samples", "200", "--epochs", "20", "--hidden-size", "16", "--batch-size", "32"]


def check_lstm_output(out: str) -> None:
    assert re.search(r"144 training and 36 test windows of 20; 1233 parameters", out), out
    final = re.search(r"test loss ([\d.e+-]+) \(repeating the last value: ([\d.e+-]+)\) after 20 epochs, 100 steps",
                      out)
    assert final, out
    assert float(final.group(1)) < 0.05 * float(final.group(2))  # far better than repeating the last value
    assert re.search(r"running free for one period \(25 steps, each prediction fed back\): largest error [\d.]+", out)


def test_lstm_sine_learns_the_wave_on_small_settings(tmp_path):
    check_lstm_output(run_example("lstm_sine.py", *SMALL_LSTM, cwd=tmp_path))


@pytest.mark.usefixtures("one_thread")
def test_lstm_sine_on_pytorch_learns_the_wave_on_small_settings(torch, capsys):
    lesson("lstm_sine", "torch").main(SMALL_LSTM)
    check_lstm_output(capsys.readouterr().out)


def test_lstm_sine_windows():
    ours = lesson("lstm_sine", "tinygrad_like")
    X, y = ours.sine_windows(60, 25, 20)
    assert X.shape == (40, 20, 1) and y.shape == (40, 1)
    k = np.arange(60)
    wave = np.sin(2 * np.pi * k / 25)
    close(array(X)[5, :, 0], wave[5:25], rtol=1e-5)  # float32
    close(array(y)[:, 0], wave[20:], rtol=1e-5)


@pytest.mark.usefixtures("one_thread")
def test_lstm_sine_trains_as_in_pytorch(torch):
    """nn.LSTM(batch_first) + nn.Linear, Adam, MSELoss: the same losses and gradients over epochs of the same
    batches, and the same free-running predictions."""
    ours, theirs = both("lstm_sine")
    torch.manual_seed(0)
    m_t, m_o = theirs.SineLSTM(6, num_layers=2), ours.SineLSTM(6, num_layers=2)
    assert sorted(m_o.state_dict()) == sorted(m_t.state_dict())  # lstm.weight_ih_l0, ..., linear.bias
    copy_weights(m_o, m_t)
    X, y = (array(t).astype(np.float64) for t in ours.sine_windows(80, 25, 10))
    batches = [slice(i, i + 16) for i in np.random.default_rng(0).permutation(4) * 16]
    opt_o = ours.torch.optim.Adam(m_o.parameters(), lr=0.01)
    opt_t = torch.optim.Adam(m_t.parameters(), lr=0.01)
    for _ in range(3):
        loss_o = ours.train_epoch(m_o, [(tinygrad_like.tensor(X[s]), tinygrad_like.tensor(y[s])) for s in batches],
                                  opt_o, ours.nn.MSELoss())
        loss_t = theirs.train_epoch(m_t, [(torch.from_numpy(X[s]), torch.from_numpy(y[s])) for s in batches],
                                    opt_t, torch.nn.MSELoss())
        close(loss_o, loss_t)
        same_grads(m_o, m_t)
    close(ours.free_run(m_o, tinygrad_like.tensor(X[:1]), 5), theirs.free_run(m_t, torch.from_numpy(X[:1]), 5))


# ----------------------------------------------------------------------------------------------------------
# 5. The notebook
# ----------------------------------------------------------------------------------------------------------

NOTEBOOK = EXAMPLES / "lessons.ipynb"


def test_the_lessons_notebook_is_stored_without_outputs():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert len(code) >= 8 and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    source = "".join("".join(c["source"]) for c in code)
    for name in ("dezero_higher_order", "makemore_mlp", "char_gpt", "lstm_sine"):
        assert name in source


@pytest.mark.slow
def test_the_lessons_notebook_runs_top_to_bottom(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # the examples are imported from examples/
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    for printed in ("Taylor", "Newton", "val loss", "dev loss", "test loss", "samples:"):
        assert printed in text, printed
    assert any("image/svg+xml" in o.get("data", {}) for o in outputs)  # a derivative's graph
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot of tanh's derivatives
