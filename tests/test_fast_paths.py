"""The engine's and the rules' fast paths give the results of the plain ones: the vectorised erf against math.erf,
slices' gradients added into one buffer (and sums added in place) against the rules' own backward and PyTorch."""

import math

import numpy as np
import pytest

from tinygrad_like import Tensor, engine, nn
from tinygrad_like.ops import _erf


def test_erf_matches_math_erf_to_double_precision():
    grid = np.concatenate([np.linspace(-7, 7, 200_001), np.geomspace(1e-300, 7, 50_000),
                           -np.geomspace(1e-300, 7, 50_000), np.arange(-6.5, 6.5, 0.125),  # interval edges
                           np.nextafter(np.arange(-6.5, 6.5, 0.125), 0), [0.0, 5.999999, 6.0, 27.0, 1e300]])
    want = np.array([math.erf(v) for v in grid])
    got = _erf(grid)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)
    assert got.shape == grid.shape and got.dtype == np.float64


def test_erf_special_values_shapes_and_dtypes():
    got = _erf(np.array([np.inf, -np.inf, np.nan, -0.0]))
    assert got[0] == 1 and got[1] == -1 and np.isnan(got[2]) and got[3] == 0 and math.copysign(1, got[3]) == -1
    assert _erf(np.array(0.5)).shape == () and _erf(np.zeros((2, 0, 3))).shape == (2, 0, 3)
    x = np.linspace(-3, 3, 101, dtype=np.float32)
    out = Tensor(x).erf()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.numpy(), np.array([math.erf(v) for v in x.astype(np.float64)], np.float32))


def test_gelu_and_erf_gradients_against_pytorch(torch):
    rng = np.random.default_rng(1)
    x0, up, v = (rng.standard_normal((6, 7)) * 3 for _ in range(3))
    for op in ("gelu", "erf"):
        x = Tensor(x0, requires_grad=True)
        (g,) = engine.grad(getattr(x, op)(), [x], Tensor(up), create_graph=True)
        (gg,) = engine.grad((g * Tensor(v)).sum(), [x])
        tx = torch.tensor(x0, requires_grad=True)
        fn = torch.nn.functional.gelu if op == "gelu" else torch.erf
        out = fn(tx)
        (tg,) = torch.autograd.grad(out, tx, torch.tensor(up), create_graph=True)
        (tgg,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx)
        np.testing.assert_allclose(getattr(x, op)().numpy(), out.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-12, atol=1e-15)


def slices_loss(x, up):
    """Slices of x, overlapping and with steps, some used twice, each weighted by its part of ``up``."""
    parts = [x[0], x[1, 2:], x[..., ::2], x[1], x[-1, 1:4].exp(), x[0]]
    return sum((p * up[i][: p.numel()].reshape(p.shape)).sum() for i, p in enumerate(parts))


def test_slices_gradients_added_into_one_buffer_match_the_rules_backward():
    rng = np.random.default_rng(2)
    x0, up = rng.standard_normal((3, 6)), rng.standard_normal((6, 18))
    x = Tensor(x0, requires_grad=True)
    slices_loss(x, up).backward()
    # the same graph walked by the plain path (a visit makes the walk run every rule's own backward)
    y = Tensor(x0, requires_grad=True)
    plain = engine.walk([(slices_loss(y, up), np.array(1.0))], wanted=[y], visit=lambda node, grad, sent: None)
    np.testing.assert_array_equal(x.grad.numpy(), plain[y])
    # a non-leaf sliced twice, and a leaf gradient accumulated over two backward passes
    z = Tensor(x0, requires_grad=True)
    h = z * 2
    (h[0].sum() + h[:, 1].sum()).backward()
    want = np.zeros_like(x0)
    want[0] += 2
    want[:, 1] += 2
    np.testing.assert_array_equal(z.grad.numpy(), want)


def test_fancy_indices_and_graphs_of_the_backward_still_take_the_rule(torch):
    rng = np.random.default_rng(3)
    x0, up = rng.standard_normal((4, 5)), rng.standard_normal((3, 5))
    index = np.array([0, 2, 0])  # a repeated row: its gradients add up
    x = Tensor(x0, requires_grad=True)
    (g,) = engine.grad((x[index] * x[index]).sum() + (x[1:3] * Tensor(up[:2])).sum(), [x], create_graph=True)
    tx = torch.tensor(x0, requires_grad=True)
    (tg,) = torch.autograd.grad((tx[index] * tx[index]).sum() + (tx[1:3] * torch.tensor(up[:2])).sum(), tx,
                                create_graph=True)
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-12)
    v = rng.standard_normal((4, 5))
    (gg,) = engine.grad((g * Tensor(v)).sum(), [x])
    (tgg,) = torch.autograd.grad((tg * torch.tensor(v)).sum(), tx)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-12)


def test_slices_of_a_tensor_changed_in_place_afterwards_as_pytorch(torch):
    x0 = np.arange(12.0).reshape(3, 4)
    x = Tensor(x0, requires_grad=True)
    h = x * 1
    s = (h[1:3] + h[0]).sum() + h[0].sum()
    h.mul_(2)  # after the slices were taken: their gradients go to what they saw
    (s + h[0].sum()).backward()
    tx = torch.tensor(x0, requires_grad=True)
    th = tx * 1
    ts = (th[1:3] + th[0]).sum() + th[0].sum()
    th.mul_(2)
    (ts + th[0].sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_lstm_backward_time_grows_linearly_with_the_sequence(torch):
    """BPTT over T steps: the slices of the gates' array no longer cost a full-size array each (O(T^2))."""
    import time

    lstm = nn.LSTM(4, 16)
    times = {}
    for steps in (40, 160):
        x = Tensor(np.random.default_rng(4).standard_normal((steps, 8, 4)).astype(np.float32))
        out = lstm(x)[0].sum()
        start = time.perf_counter()
        out.backward()
        times[steps] = time.perf_counter() - start
    assert times[160] / times[40] < 8  # 4x the steps; quadratic would be about 16x


def test_lstm_learner_style_step_matches_pytorch(torch):
    """A training step of nn.LSTM with a head, as a learner writes it, against PyTorch with the same weights."""
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(3, 5).double()
    ours = nn.LSTM(3, 5, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x0 = np.random.default_rng(5).standard_normal((7, 2, 3))
    up = np.random.default_rng(6).standard_normal((7, 2, 5))
    x = Tensor(x0, requires_grad=True)
    (ours(x)[0] * Tensor(up)).sum().backward()
    tx = torch.tensor(x0, requires_grad=True)
    (theirs(tx)[0] * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(), p.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("shape", [(), (3,)])
def test_sums_added_in_place_leave_the_seed_and_shared_gradients_alone(shape):
    seed = np.full(shape, 2.0)
    x = Tensor(np.ones(shape), requires_grad=True)
    y = x * 3
    (y + y + y).backward(seed.copy())
    np.testing.assert_array_equal(x.grad.numpy(), np.full(shape, 18.0))
    a = Tensor(np.ones(shape), requires_grad=True)
    b = a + 0
    z = b + b  # Add hands its gradient to both of its inputs (the same tensor here)
    z.backward(seed)
    np.testing.assert_array_equal(seed, np.full(shape, 2.0))
    np.testing.assert_array_equal(a.grad.numpy(), np.full(shape, 4.0))
