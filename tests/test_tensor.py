"""The Tensor API (tinygrad_like.tensors): construction, dtype rules, properties, factories, comparisons,
detach and retain_grad, and errors that name the operation."""

import numpy as np
import pytest

from tinygrad_like import Tensor

# ----------------------------------------------------------------------------------------------------------
# Construction and dtypes
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([[1, 2], [3, 4]], np.int32),
        (3, np.int32),
        (True, np.bool_),
        ([True, False], np.bool_),
        (np.arange(3, dtype=np.float64), np.float64),
        (np.arange(3, dtype=np.int64), np.int64),
        (np.float16(2.0), np.float16),
    ],
)
def test_construction_follows_pytorchs_dtype_rules(data, dtype):
    assert Tensor(data).dtype == dtype


def test_python_ints_beyond_int32_keep_int64():
    assert Tensor([2**40]).dtype == np.int64


def test_explicit_dtype_as_name_or_numpy_dtype():
    assert Tensor([1, 2], dtype="float64").dtype == np.float64
    assert Tensor(1.0, dtype=np.int16).dtype == np.int16
    assert Tensor(Tensor([1.0]), dtype="float64").dtype == np.float64


def test_numpy_input_is_wrapped_but_parameters_get_their_own_memory():
    a = np.ones(3, np.float32)
    assert np.shares_memory(Tensor(a).data, a)
    assert not np.shares_memory(Tensor(a, dtype=np.float64).data, a)
    p = Tensor(a, requires_grad=True)
    a[0] = 5
    assert p.data[0] == 1
    p.data -= 1  # what an optimizer does
    assert a.tolist() == [5, 1, 1]


def test_requires_grad_on_a_wrapped_array_gives_the_parameter_its_own_memory():
    a = np.ones(2, np.float32)
    t = Tensor(a)
    assert np.shares_memory(t.data, a)
    t.requires_grad_()
    t.data -= 1
    assert a.tolist() == [1, 1]


@pytest.mark.parametrize("bad", ["abc", [1 + 2j], None, {"a": 1}, [object()]])
def test_unsupported_data_raises_type_error(bad):
    with pytest.raises(TypeError, match="Tensor"):
        Tensor(bad)


def test_ragged_list_raises_value_error():
    with pytest.raises(ValueError, match="ragged"):
        Tensor([[1, 2], [3]])


def test_an_unknown_dtype_name_is_refused():
    with pytest.raises(TypeError, match="unknown dtype"):
        Tensor([1.0], dtype="flaot32")


@pytest.mark.parametrize("data", [[1, 2], [True]])
def test_requires_grad_on_integer_or_bool_raises(data):
    with pytest.raises(TypeError, match="floating point"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError):
        Tensor(data).requires_grad_()


def test_float32_stays_float32_with_python_scalars():
    x = Tensor([1.0, 2.0], requires_grad=True)
    for y in (2 - x, x - 2, x * 2.5, 2.5 * x, x / 3, 3 / x, x**2, 2**x, 0**x, x + True, (-x).exp()):
        assert y.dtype == np.float32, y
    (x**2 + 0**x).sum().backward()
    assert x.grad.dtype == np.float32


def test_mixing_float32_and_float64_gives_float64_and_grads_keep_their_dtype():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_integer_tensors_follow_pytorch_for_floats():
    assert Tensor([1, 2]).exp().dtype == np.float32
    assert (Tensor([1, 2]) / 2).dtype == np.float32
    assert (Tensor([1, 2]) * 2).dtype == np.int32


@pytest.mark.parametrize("make", [
    lambda x: x * Tensor([1, 0]), lambda x: Tensor([1, 0]) * x, lambda x: x * Tensor(np.float64(2)),
    lambda x: x @ Tensor([1, 2]), lambda x: x.clip(np.float64(0), np.float64(1)), lambda x: 2 - x,
    lambda x: x ** 2, lambda x: x + np.float64(1), lambda x: x * Tensor([True, False]),
], ids=["int-tensor", "int-tensor-left", "0d-float64", "matmul-int", "clip-np-float64", "rsub", "pow", "np-scalar",
        "bool"])
def test_float32_is_never_widened(make):
    x = Tensor([1.0, 2.0], requires_grad=True)
    out = make(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_two_nd_floats_give_the_wider_and_a_0d_tensor_gets_its_own_gradient_dtype():
    a, b = Tensor(np.ones(2, np.float32)), Tensor(np.ones(2, np.float64))
    assert (a + b).dtype == np.float64
    s = Tensor(np.float64(3.0), requires_grad=True)
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * s).sum().backward()
    assert s.grad.dtype == np.float64 and s.grad.item() == 3.0


def test_signed_zeros_are_not_confused_by_the_constant_cache():
    x = Tensor([1.0])
    assert (x / -0.0).item() == -np.inf
    assert (x / 0.0).item() == np.inf


def test_overflowing_casts_give_inf_without_a_warning():
    assert (Tensor([1.0]) + 1e39).item() == np.inf
    assert Tensor([3.5e38]).item() == np.inf
    assert Tensor.full(2, 1e39).tolist() == [np.inf, np.inf]
    x = Tensor([1.0], requires_grad=True)
    (x * 2).backward(gradient=[1e39])
    assert x.grad.item() == np.inf


# ----------------------------------------------------------------------------------------------------------
# Properties, values out, comparisons
# ----------------------------------------------------------------------------------------------------------


def test_properties_and_values_out():
    t = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert isinstance(t.numpy(), np.ndarray) and t.numpy() is t.data
    assert Tensor([7.0]).item() == 7.0
    assert [row.tolist() for row in t] == [[1, 2, 3], [4, 5, 6]]
    with pytest.raises(ValueError, match=r"item: .*\(2, 3\)"):
        t.item()
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_comparisons_and_argmax_have_no_grad():
    x = Tensor([1.0, 3.0, 2.0], requires_grad=True)
    for c in (x < 2, x <= 2, x > 2, x >= 2, x == 3, x != 3):
        assert c.dtype == np.bool_ and not c.requires_grad
    assert (x > 1.5).tolist() == [False, True, True]
    assert x.argmax().item() == 1 and not x.argmax().requires_grad
    assert Tensor([[1, 5], [7, 2]]).argmax(axis=1).tolist() == [1, 0]
    assert Tensor([[1, 5], [7, 2]]).argmax(axis=-2).tolist() == [1, 0]


def test_tensors_stay_hashable_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2


def test_repr_shows_values_dtype_and_op():
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == "Tensor([1., 2.], dtype=float32, requires_grad=True)"
    assert "op=mul" in repr(x * 2)


def test_detach_zero_grad_retain_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    d = h.detach()
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.data, h.data)
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.data, 2 * h.data)
    np.testing.assert_allclose(x.grad.data, 18 * x.data)
    x.zero_grad()
    assert x.grad is None


def test_bool_of_multi_element_tensor():
    with pytest.raises(ValueError, match=r"\(2,\) is ambiguous"):
        bool(Tensor([1.0, 2.0]))
    assert bool(Tensor([1.0]))


def test_clamp_is_another_name_for_clip():
    x = Tensor([-2.0, 0.5, 3.0])
    assert x.clamp(-1, 1).tolist() == x.clip(-1, 1).tolist() == [-1.0, 0.5, 1.0]


# ----------------------------------------------------------------------------------------------------------
# Factories
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: Tensor.zeros(2, 3), lambda: Tensor.zeros((2, 3)),
                                  lambda: Tensor.zeros([2, 3])])
def test_factory_shapes_as_ints_tuple_or_list(make):
    t = make()
    assert t.shape == (2, 3) and t.dtype == np.float32 and not t.data.any()


def test_factories_give_pytorchs_shapes_and_dtypes():
    assert Tensor.ones(3).tolist() == [1, 1, 1]
    assert Tensor.full((2, 2), 7.0).tolist() == [[7, 7], [7, 7]] and Tensor.full((2,), 7.0).dtype == np.float32
    assert Tensor.full(3, 2).dtype == np.int32
    assert Tensor.eye(2).tolist() == [[1, 0], [0, 1]] and Tensor.eye(2, 3).shape == (2, 3)
    assert Tensor.arange(4).tolist() == [0, 1, 2, 3] and Tensor.arange(4).dtype == np.int32
    assert Tensor.arange(1, 2, 0.5).tolist() == [1.0, 1.5] and Tensor.arange(1, 2, 0.5).dtype == np.float32
    t = Tensor.zeros(2, dtype="float64", requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad
    like = Tensor(np.zeros((2, 2), np.float64))
    assert Tensor.zeros_like(like).dtype == np.float64 and Tensor.ones_like(like).tolist() == [[1, 1], [1, 1]]
    assert Tensor.full_like(like, 3).tolist() == [[3, 3], [3, 3]] and Tensor.full_like(like, 3).dtype == np.float64
    for factory in (Tensor.randn, Tensor.rand, Tensor.uniform):
        t = factory(3, 4)
        assert t.shape == (3, 4) and t.dtype == np.float32
    u = Tensor.uniform(1000, low=2.0, high=3.0)
    assert 2.0 <= u.data.min() and u.data.max() < 3.0
    with pytest.raises(ValueError, match="negative"):
        Tensor.zeros(-1)
    with pytest.raises(ValueError, match="step"):
        Tensor.arange(0, 1, 0)


def test_manual_seed_makes_random_factories_repeatable():
    Tensor.manual_seed(3)
    a = [Tensor.randn(4).tolist(), Tensor.rand(2).tolist(), Tensor.uniform(2).tolist()]
    Tensor.manual_seed(3)
    b = [Tensor.randn(4).tolist(), Tensor.rand(2).tolist(), Tensor.uniform(2).tolist()]
    assert a == b
    Tensor.manual_seed(4)
    assert Tensor.randn(4).tolist() != a[0]


# ----------------------------------------------------------------------------------------------------------
# Errors that name the operation
# ----------------------------------------------------------------------------------------------------------


def test_an_unsupported_operand_type_is_named():
    with pytest.raises(TypeError, match="add: unsupported operand of type str"):
        Tensor([1.0]) + "x"


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: Tensor(np.array([1], np.uint8)) + 300, OverflowError, r"add: 300 does not fit .* uint8"),
    (lambda: Tensor([1, 2]) + 2**40, OverflowError, r"add: 1099511627776 does not fit .* int32"),
    (lambda: Tensor.uniform(3, low=2.0, high=1.0), ValueError, r"uniform: low \(2.0\) must not be greater"),
    (lambda: Tensor([1.0]) == "a", TypeError, r"==: cannot compare a tensor \(shape \(1,\)\) with str"),
], ids=["uint8-overflow", "int32-overflow", "uniform", "compare-str"])
def test_errors_name_the_op(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()
