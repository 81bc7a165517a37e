"""In-place changes, as PyTorch: recorded where a gradient goes through them, refused where a gradient would be
wrong, and seen through every view. Each case runs the same code on our Tensors and on PyTorch's."""

import numpy as np
import pytest

from tinygrad_like import Tensor, no_grad, optim

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4))
W = rng.standard_normal((4, 5))
V = rng.standard_normal((4, 5))


def run_both(code, *arrays, seed=1):
    """``code(T, no_grad, *leaves)`` on our Tensors and on PyTorch's (float64, leaves requiring grad), backward
    with one random upstream gradient; returns (ours, theirs), each (output values, leaf gradients)."""
    torch = pytest.importorskip("torch")
    results = []
    for T, make, off in ((Tensor, lambda a: Tensor(a, requires_grad=True), no_grad),
                         (torch, lambda a: torch.tensor(a, requires_grad=True), torch.no_grad)):
        leaves = [make(a) for a in arrays]
        out = code(T, off, *leaves)
        upstream = np.random.default_rng(seed).standard_normal(tuple(out.shape))
        out.backward(upstream if T is Tensor else torch.tensor(upstream))
        values = out.data if T is Tensor else out.detach().numpy()
        results.append((np.array(values), [None if leaf.grad is None else
                                           np.array(leaf.grad.data if T is Tensor else leaf.grad.numpy())
                                           for leaf in leaves]))
    return results


def assert_same(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12, atol=1e-12)
    for mine, other in zip(ours[1], theirs[1]):
        assert (mine is None) == (other is None)  # a leaf the output does not use gets no gradient in either
        if mine is not None:
            np.testing.assert_allclose(mine, other, rtol=1e-12, atol=1e-12)


def accumulated_with_plus_equals(T, off, x, w, v):
    total = 0
    for p in (w, v):
        total += ((x @ p) ** 2).sum(0)
    return total


def accumulated_into_a_tensor(T, off, x, w, v):
    total = T.zeros(5, dtype=x.dtype)
    for p in (w, v):
        total += (x @ p).tanh().sum(0)
    return total


def relu_by_mask_assignment(T, off, x, w, v):
    h = x @ w
    h[h < 0] = 0
    return h * 2


def a_slice_replaced_by_a_tensor(T, off, x, w, v):
    h = (x @ w) * 1
    h[:, 1:3] = (x @ v)[:, :2].sigmoid()
    return h


def rows_replaced_by_integer_indices(T, off, x, w, v):
    h = x @ w
    h[[0, 2]] = w[:2, :] * 3
    return h.exp()


def a_chain_of_in_place_changes(T, off, x, w, v):
    h = x @ w
    h += x @ v
    h *= (x @ v).tanh()
    h -= 1
    h /= 2
    h **= 2
    return h


def an_earlier_use_keeps_its_gradient(T, off, x, w, v):
    a = x @ w
    b = a + 1  # uses a as it was; add saves nothing
    a *= 3
    c = a.exp()  # uses a as it is now
    a += 1
    return a + b + c


def numbers_assigned_through_methods(T, off, x, w, v):
    h = x @ w
    h.add_(1).mul_(x @ v)
    return h.sub_(0.5).div_(2)


@pytest.mark.parametrize("code", [
    accumulated_with_plus_equals, accumulated_into_a_tensor, relu_by_mask_assignment, a_slice_replaced_by_a_tensor,
    rows_replaced_by_integer_indices, a_chain_of_in_place_changes, an_earlier_use_keeps_its_gradient,
    numbers_assigned_through_methods])
def test_in_place_changes_differentiate_as_in_pytorch(code):
    ours, theirs = run_both(code, X, W, V)
    assert_same(ours, theirs)


def test_the_blogs_total_loss_accumulates_per_sample_losses():
    """``total_loss += single_loss``: a loop over samples, summed with +=, differentiates as one loss."""
    x = Tensor(X, requires_grad=True)
    total_loss = 0
    for row in range(3):
        total_loss += (x[row] ** 2).sum()
    total_loss.backward()
    np.testing.assert_allclose(x.grad.data, 2 * X)


def changed_view_of_a_saved_weight(T, off, w):
    loss = (w.T * w.T).sum()
    with off():
        w -= 0.5
    return loss


def changed_through_reshape(T, off, w):
    loss = (w.reshape(-1) * w.reshape(-1)).sum()
    with off():
        w.reshape(-1)[0] = 7.0
    return loss


def changed_through_a_row(T, off, w):
    loss = (w * w).sum()
    with off():
        w[0] += 1.0
    return loss


def changed_through_expand(T, off, w):
    row = w[0]
    loss = (row.expand(3, 5) * row.expand(3, 5)).sum()
    with off():
        w += 1.0
    return loss


@pytest.mark.parametrize("code", [changed_view_of_a_saved_weight, changed_through_reshape, changed_through_a_row,
                                  changed_through_expand])
def test_a_change_through_any_alias_of_a_saved_value_is_refused_as_in_pytorch(code):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        run_both_theirs(torch, code)
    with pytest.raises(RuntimeError, match=r"saved its input \d \(shape \([\d, ]+\)\), which was changed in place"):
        w = Tensor(W.copy(), requires_grad=True)
        code(Tensor, no_grad, w).backward()


def run_both_theirs(torch, code):
    w = torch.tensor(W.copy(), requires_grad=True)
    code(torch, torch.no_grad, w).backward()


def test_an_optimizer_step_after_a_hand_written_forward_is_refused_before_a_wrong_gradient():
    w = Tensor(W.copy(), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    loss = (Tensor(X) @ w).tanh().sum()  # saves w
    opt.step()
    with pytest.raises(RuntimeError, match=r"matmul saved its input 1 \(shape \(4, 5\)\)"):
        loss.backward()


@pytest.mark.parametrize("op", ["exp", "tanh", "sigmoid", "relu", "sqrt", "softmax"])
def test_an_op_that_saved_only_its_output_does_not_refuse_when_its_input_changed(op):
    pytest.importorskip("torch")

    def code(T, off, x):
        a = x * 1.0
        y = getattr(a, op)() if op != "softmax" else a.softmax(-1)
        with off():
            a += 1.0  # a changed, y (which the op saved) did not
        return y

    ours, theirs = run_both(code, np.abs(X) + 0.5)
    assert_same(ours, theirs)


def test_a_leaf_that_requires_grad_is_changed_in_place_only_without_recording():
    w = Tensor(W.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: a leaf tensor that requires grad \(shape \(4, 5\)\) cannot be "
                                           r"changed in place while gradients are recorded"):
        w += 1
    with pytest.raises(RuntimeError, match="setitem: a leaf tensor that requires grad"):
        w[0] = 0.0
    version = w.version
    with no_grad():
        w -= 1
        w[0, 0] = 5.0
    assert w.version > version and w.data[0, 0] == 5.0 and w.data[1, 1] == W[1, 1] - 1


def changed_through_an_indexed_view(T, off, x, w, v):
    h = x @ w
    row = h[0]
    row += (x @ v)[1]  # through the view: h changes too
    h[1] *= 2  # Python's getitem, imul, setitem
    return h.tanh() + row.sum()


def test_a_change_through_an_indexed_view_changes_the_base_as_in_pytorch():
    ours, theirs = run_both(changed_through_an_indexed_view, X, W, V)
    assert_same(ours, theirs)


def changed_through_reshape_and_transpose_views(T, off, x, w, v):
    h = x @ w
    flat = h.reshape(-1)
    flat += 1  # h changes too
    h.T[0] *= (x @ v)[:, 0]  # a row of the transpose: a column of h
    return h.exp() + flat.reshape(3, 5)


def test_changes_through_reshape_and_transpose_views_change_the_base_as_in_pytorch():
    ours, theirs = run_both(changed_through_reshape_and_transpose_views, X, W, V)
    assert_same(ours, theirs)


def test_a_change_through_a_view_of_a_leaf_that_requires_grad_is_refused_naming_it():
    w = Tensor(W.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: this tensor \(shape \(5,\)\) is a view of a leaf tensor that "
                                           r"requires grad"):
        w[0] += 1


def test_the_update_lines_of_micrograd_and_makemore_change_the_values_in_place():
    p = Tensor(W.copy(), requires_grad=True)
    (p * p).sum().backward()
    memory = p.data
    p.data += -0.1 * p.grad  # a Tensor on the right
    p.data -= 0.1 * p.grad.data
    np.testing.assert_allclose(p.data, W - 0.4 * W)
    assert p.data is memory
    p.data = p.data - 0.1 * p.grad  # an expression that is a Tensor: its array is stored
    assert type(p.data) is np.ndarray
    np.testing.assert_allclose(p.data, W - 0.6 * W)
    with pytest.raises(TypeError, match="data: expects a NumPy array or a Tensor, got list"):
        p.data = [1.0, 2.0]


def test_in_place_results_keep_the_tensors_dtype_and_shape():
    t = Tensor(np.zeros(3, dtype=np.float32))
    t += np.ones(3)  # float64 values, float32 tensor: stays float32
    assert t.dtype == np.float32 and t.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"add_: cannot apply a value of shape \(2, 3\) in place to a tensor of "
                                         r"shape \(3,\)"):
        t += np.ones((2, 3))
    with pytest.raises(ValueError, match=r"add_: the result of shape \(2, 3\) \(a value of shape \(2, 3\)\) does "
                                         r"not fit in place in a tensor of shape \(3,\)"):
        t += Tensor(np.ones((2, 3)), requires_grad=True)  # recorded: refused before anything is changed


@pytest.mark.parametrize("code", [relu_by_mask_assignment, a_slice_replaced_by_a_tensor, a_chain_of_in_place_changes,
                                  an_earlier_use_keeps_its_gradient])
def test_second_derivatives_through_in_place_changes_match_pytorchs(code):
    torch = pytest.importorskip("torch")
    from tinygrad_like import autograd

    results = []
    for T, make, off, grad in ((Tensor, lambda a: Tensor(a, requires_grad=True), no_grad, autograd.grad),
                               (torch, lambda a: torch.tensor(a, requires_grad=True), torch.no_grad,
                                torch.autograd.grad)):
        leaves = [make(a) for a in (X, W, V)]
        out = code(T, off, *leaves)
        upstream = np.random.default_rng(3).standard_normal(tuple(out.shape))
        v = T.tensor(upstream) if T is torch else Tensor(upstream)
        first = grad(out, leaves, v, create_graph=True, allow_unused=True)
        used = [(g, leaf) for g, leaf in zip(first, leaves) if g is not None and g.requires_grad]
        u = [np.random.default_rng(4 + i).standard_normal(tuple(g.shape)) for i, (g, _) in enumerate(used)]
        second = grad([g for g, _ in used], leaves, [T.tensor(a) if T is torch else Tensor(a) for a in u],
                      allow_unused=True)
        results.append([None if g is None else np.array(g.detach().numpy() if T is torch else g.data)
                        for g in (*first, *second)])
    for mine, other in zip(*results):
        assert (mine is None) == (other is None)
        if mine is not None:
            np.testing.assert_allclose(mine, other, rtol=1e-10, atol=1e-10)
