"""A student's two-layer network with a hand-written backward -- and one classic mistake. Check it:

    python examples/check_my_backprop.py               # the report, then the same check after the fix
    tinygrad-like check examples/check_my_backprop.py  # the report; exit status 1: the gradients disagree

``forward`` is plain NumPy. ``check_gradients`` runs it once on float64 arrays (for finite differences, and so
that ``backward`` can run after it) and once, unchanged, on Tensors: NumPy's functions record the graph there,
so autograd gets the true gradients. Every hand-written gradient is compared with both, and a disagreement
gets a computed cause: the one mistake that, applied to autograd's backward, reproduces your numbers.
"""

import numpy as np

from tinygrad_like import check_gradients, watch


def forward(params, x, y):
    """Mean squared error of a tanh hidden layer and a linear output."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    h = watch("h", h)  # names an intermediate value: backward may give its gradient too
    scores = h @ params["W2"] + params["b2"]
    return np.mean((scores - y) ** 2)


def backward(params, x, y):
    """The hand-written gradients of forward's loss."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    scores = h @ params["W2"] + params["b2"]
    d_scores = 2 * (scores - y) / scores.size
    d_h = d_scores @ params["W2"].T
    d_z = d_h  # the mistake: tanh's derivative is missing
    return {"W2": h.T @ d_scores, "b2": d_scores.sum(axis=0), "h": d_h, "W1": x.T @ d_z, "b1": d_z.sum(axis=0)}


def example():
    """Parameters and a batch to check on: (params, (x, y))."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 3)), rng.standard_normal((16, 2))
    params = {"W1": 0.5 * rng.standard_normal((3, 8)), "b1": 0.1 * rng.standard_normal(8),
              "W2": 0.5 * rng.standard_normal((8, 2)), "b2": 0.1 * rng.standard_normal(2)}
    return params, (x, y)


def fixed_backward(params, x, y):
    """backward with the fix the report asks for: multiply by tanh's derivative, 1 - h**2."""
    grads = backward(params, x, y)
    h = np.tanh(x @ params["W1"] + params["b1"])
    d_z = grads["h"] * (1 - h ** 2)
    return {**grads, "W1": x.T @ d_z, "b1": d_z.sum(axis=0)}


if __name__ == "__main__":
    params, args = example()
    report = check_gradients(forward, backward, params, *args)
    print(report)
    print(f"\nfirst disagreeing: {report.first_disagreeing.name}, cause: {report.first_disagreeing.cause}\n")
    print(check_gradients(forward, fixed_backward, params, *args))
