"""nn.init: fills in place, follows manual_seed, draws PyTorch's bounds (kaiming, xavier) and refuses what it
cannot fill."""

import math

import numpy as np
import pytest

from tinygrad_like import Tensor, manual_seed
from tinygrad_like.nn import init
from tinygrad_like.tensors import default_generator


def test_init_fills_in_place_keeps_dtype_and_returns_the_tensor():
    t = Tensor(np.zeros((3, 4), np.float32), requires_grad=True)
    array = t.data
    for fill in (init.uniform_, init.normal_, init.ones_, init.zeros_, init.xavier_uniform_, init.kaiming_uniform_):
        assert fill(t) is t and t.data is array and t.dtype == np.float32
    assert init.ones_(t).data.sum() == 12 and init.zeros_(t).data.sum() == 0


def test_init_follows_manual_seed():
    manual_seed(7)
    a = init.normal_(Tensor.zeros(5))
    manual_seed(7)
    np.testing.assert_array_equal(a.data, init.normal_(Tensor.zeros(5)).data)


def test_default_generator_is_the_one_manual_seed_sets():
    manual_seed(11)
    first = default_generator().random()
    manual_seed(11)
    assert default_generator().random() == first


def _expected_draw(bound, shape, seed=0):
    return np.random.default_rng(seed).uniform(-bound, bound, shape)


@pytest.mark.parametrize("shape", [(6, 4), (8, 3, 3, 3)])
@pytest.mark.parametrize("a, nonlinearity, mode", [(0, "leaky_relu", "fan_in"), (math.sqrt(5), "leaky_relu", "fan_in"),
                                                   (0, "relu", "fan_out"), (0, "tanh", "fan_in")])
def test_kaiming_uniform_has_pytorchs_bound(shape, a, nonlinearity, mode, torch):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    fan = fan_in if mode == "fan_in" else fan_out
    bound = math.sqrt(3.0) * (torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan))  # PyTorch's code
    t = init.kaiming_uniform_(Tensor.zeros(*shape, dtype=np.float64), a, nonlinearity, mode=mode,
                              generator=np.random.default_rng(0))
    np.testing.assert_array_equal(t.data, _expected_draw(bound, shape))
    assert init.calculate_gain(nonlinearity, a) == torch.nn.init.calculate_gain(nonlinearity, a)


@pytest.mark.parametrize("shape, gain", [((6, 4), 1.0), ((8, 3, 3, 3), 5 / 3)])
def test_xavier_uniform_has_pytorchs_bound(shape, gain):
    fan_in, fan_out = shape[1] * math.prod(shape[2:]), shape[0] * math.prod(shape[2:])
    bound = math.sqrt(3.0) * (gain * math.sqrt(2.0 / (fan_in + fan_out)))  # PyTorch's code
    t = init.xavier_uniform_(Tensor.zeros(*shape, dtype=np.float64), gain, generator=np.random.default_rng(0))
    np.testing.assert_array_equal(t.data, _expected_draw(bound, shape))
    assert bound == pytest.approx(gain * math.sqrt(6.0 / (fan_in + fan_out)), rel=1e-15)  # Glorot's formula


def test_uniform_and_normal_draw_what_numpy_draws():
    t = init.uniform_(Tensor.zeros(3, dtype=np.float64), -2, 5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(t.data, np.random.default_rng(1).uniform(-2, 5, 3))
    t = init.normal_(Tensor.zeros(3, dtype=np.float64), 1, 0.5, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(t.data, np.random.default_rng(1).normal(1, 0.5, 3))


def test_init_refuses_what_it_cannot_fill():
    with pytest.raises(ValueError, match=r"xavier_uniform_: fan in and fan out need .* got shape \(3,\)"):
        init.xavier_uniform_(Tensor.zeros(3))
    with pytest.raises(ValueError, match="kaiming_uniform_: mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(Tensor.zeros(3, 3), mode="fan")
    with pytest.raises(ValueError, match="calculate_gain: unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="uniform_: expects a Tensor, got ndarray"):
        init.uniform_(np.zeros(3))
    assert init.kaiming_uniform_(Tensor.zeros(0, 3)).shape == (0, 3)  # nothing to fill, as PyTorch
