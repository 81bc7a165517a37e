"""The blog's network, "Neural Network from Scratch Pt. 2", in pure NumPy.

This is the post's code kept readable next to it: column vectors, one sample at a time, gradients summed over
a batch, the same names and prints. It uses nothing of the engine on purpose: it is the hand-written
reference that ``compare.py`` puts next to autograd.

The published ``backward`` defines ``sigmoid_deriv`` but never applies it: passing ``current`` down through a
hidden layer it computes dL/da (w.r.t. the layer's *output*) and uses it as dL/dz (w.r.t. its *input*), so
every layer below the output gets a wrong gradient. ``NN(..., corrected=True)`` applies the missing factor.

Formulas, for one sample (column vectors, ``@`` is the matrix product):

    forward   a_0 = x,  z_i = W_i @ a_i + b_i,  a_{i+1} = sigmoid(z_i) (hidden),  out = softmax(z_L)
    loss      L = crossentropy(y, out) = -sum(y * log(out))
    backward  current = dL/dz_L = crossentropy_deriv(y, out) @ softmax_deriv(out)      (a row vector)
              dL/dW_i = current.T @ a_i.T,   dL/db_i = current.T
              dL/da_i = current @ W_i,       dL/dz_{i-1} = dL/da_i * sigmoid_deriv(z_{i-1})   <- the missing step
              (sigmoid_deriv(z_{i-1}) = a_i (1 - a_i), from the saved activation)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._checks import check_labels
from ..train import format_score

# ----------------------------------------------------------------------------------------------------------
# The post's functions (column vectors; a matrix of several columns is several samples)
# ----------------------------------------------------------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), evaluated so that exp never overflows.

    For x >= 0 this is the formula itself; for x < 0 it is the same value written as exp(x) / (1 + exp(x)),
    so exp only ever sees -|x| (the formula's exp(-x) overflows for x < -709 and warns).
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_deriv(x: np.ndarray) -> np.ndarray:
    """d sigmoid / dx = sigmoid(x) (1 - sigmoid(x)). The published backward defines it and never calls it."""
    s = sigmoid(x)
    return s * (1 - s)


def softmax(x: np.ndarray) -> np.ndarray:
    """exp(x) / sum(exp(x)) down each column; the column's max is subtracted first (same value, no overflow)."""
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def softmax_deriv(s: np.ndarray) -> np.ndarray:
    """Jacobian of softmax at the output column ``s``: ds_i/dz_j = s_i (delta_ij - s_j) = diagflat(s) - s @ s.T."""
    return np.diagflat(s) - s @ s.T


def crossentropy(y: np.ndarray, out: np.ndarray) -> float:
    """-sum(y * log(out)), summed over every entry (so over all columns of a batch).

    Only the entries with y != 0 are evaluated: the post's 0 * log(out) is 0, and skipping it keeps an output
    that underflowed to 0 from turning the sum into nan (0 * -inf).
    """
    log_out = np.zeros_like(out)
    with np.errstate(divide="ignore"):  # log(0) at the true class is an honest inf loss, not a warning flood
        np.log(out, out=log_out, where=y != 0)
    return float(-np.sum(y * log_out))


def crossentropy_deriv(y: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dL/d(out) = -y / out, as a row vector (the post's ``(-y / out).T``); entries with y == 0 are exactly 0."""
    grad = np.zeros_like(out)
    with np.errstate(divide="ignore"):
        np.divide(-y, out, out=grad, where=y != 0)
    return grad.T


def one_hot(labels: np.ndarray | Sequence[int], classes: int) -> np.ndarray:
    """Integer labels (N,) -> float64 one-hot rows (N, classes)."""
    return np.eye(classes)[check_labels(labels, classes, "one_hot")]


# ----------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------


class NN:
    """The blog's fully connected network: sigmoid hidden layers, softmax output, summed cross-entropy.

    ``weights[i]`` has shape (n_out, n_in) and ``biases[i]`` (n_out, 1), both drawn from U(-1, 1) (float64);
    ``weight_grads`` / ``bias_grads`` are the gradients summed since the last update. After ``forward``,
    ``layers`` holds the activations ``[x, a_1, ..., out]`` as columns; the layer sizes are ``sizes``.
    ``corrected=False`` is the code as published; ``corrected=True`` applies the hidden layers' sigmoid
    derivative in ``backward``.
    """

    def __init__(self, layers: Sequence[int], corrected: bool = False, seed: int | None = None) -> None:
        sizes = [int(n) for n in layers]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"NN: need at least two positive layer sizes (input and output), got {list(layers)}")
        rng = np.random.default_rng(seed)
        self.sizes = sizes
        self.corrected = bool(corrected)
        self.weights = [rng.uniform(-1, 1, (n_out, n_in)) for n_in, n_out in zip(sizes, sizes[1:])]
        self.biases = [rng.uniform(-1, 1, (n_out, 1)) for n_out in sizes[1:]]
        self.weight_grads: list[np.ndarray] = []
        self.bias_grads: list[np.ndarray] = []
        self.zero_grad()
        self.layers: list[np.ndarray] = []

    def __repr__(self) -> str:
        return f"NN({self.sizes}, corrected={self.corrected})"

    def _column(self, x: np.ndarray) -> np.ndarray:
        """One sample as a float64 column (n_in, 1); a (n_in, k) matrix is k samples side by side."""
        x = np.asarray(x, dtype=np.float64)
        n_in = self.sizes[0]
        if x.size == n_in:
            return x.reshape(n_in, 1)
        if x.ndim == 2 and x.shape[0] == n_in:
            return x
        raise ValueError(f"NN.forward: expected a sample of {n_in} inputs (a column ({n_in}, 1), a vector "
                         f"({n_in},), or columns ({n_in}, k)), got shape {x.shape}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The output probabilities (n_out, 1) of sample ``x``; the activations are kept in ``layers``."""
        self.layers = [self._column(x)]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = w @ self.layers[-1] + b
            self.layers.append(softmax(z) if i == len(self.weights) - 1 else sigmoid(z))
        return self.layers[-1]

    def backward(self, x: np.ndarray, y: np.ndarray | int) -> None:
        """Add the gradients of ``crossentropy(y, forward(x))`` to ``weight_grads`` and ``bias_grads``.

        ``y`` is the one-hot label (a column, a vector, or an integer class). Uses the activations of the last
        ``forward(x)`` (and runs it if ``layers`` holds another sample).
        """
        a0 = self._column(x)
        if a0.shape[1] != 1:
            raise ValueError(f"NN.backward: one sample at a time, got {a0.shape[1]} columns (shape {a0.shape})")
        if not self.layers or not np.array_equal(self.layers[0], a0):
            self.forward(a0)
        out, layers = self.layers[-1], self.layers
        y = self._label(y)

        current = crossentropy_deriv(y, out) @ softmax_deriv(out)  # dL/dz of the output layer, a row (1, n_out)
        for i in reversed(range(len(self.weights))):
            self.weight_grads[i] += current.T @ layers[i].T  # dL/dW_i = dL/dz_i (column) times a_i (row)
            self.bias_grads[i] += current.T
            if i == 0:
                break  # nothing to learn below the input
            current = current @ self.weights[i]  # dL/da_i: w.r.t. the hidden layer's output
            if self.corrected:
                # dL/dz = dL/da * sigmoid_deriv(z), and sigmoid_deriv(z) = a (1 - a) with a = layers[i] saved.
                # The published code skips this line, so it treats dL/da as dL/dz.
                current = current * (layers[i] * (1 - layers[i])).T

    def _label(self, y: np.ndarray | int) -> np.ndarray:
        n_out = self.sizes[-1]
        if np.ndim(y) == 0:
            return one_hot([int(y)], n_out).T
        y = np.asarray(y, dtype=np.float64)
        if y.size != n_out:
            raise ValueError(f"NN.backward: label must be a class index or one-hot of {n_out} entries, "
                             f"got shape {y.shape}")
        return y.reshape(n_out, 1)

    def accumulate(self, rows: np.ndarray, targets: np.ndarray) -> None:
        """The post's per-sample loop: ``forward`` then ``backward`` for each row, gradients summed."""
        for x, y in zip(rows, targets):
            self.forward(x)
            self.backward(x, y)

    def zero_grad(self) -> None:
        """Reset the summed gradients to zero."""
        self.weight_grads = [np.zeros_like(w) for w in self.weights]
        self.bias_grads = [np.zeros_like(b) for b in self.biases]

    def update(self, lr: float) -> None:
        """One gradient step with the summed gradients (``W -= lr * weight_grads``), then reset them."""
        for w, b, gw, gb in zip(self.weights, self.biases, self.weight_grads, self.bias_grads):
            w -= lr * gw
            b -= lr * gb
        self.zero_grad()

    # -- the post's training loop and evaluation ------------------------------------------------------------
    def _rows(self, full_x: np.ndarray) -> np.ndarray:
        full_x = np.asarray(full_x, dtype=np.float64)
        if full_x.ndim < 1 or np.prod(full_x.shape[1:]) != self.sizes[0]:  # shape, not full_x[0]: N may be 0
            raise ValueError(f"NN: expected samples of {self.sizes[0]} inputs as rows, got shape {full_x.shape}")
        return full_x.reshape(len(full_x), self.sizes[0])

    def _targets(self, full_y: np.ndarray, n: int) -> np.ndarray:
        full_y = np.asarray(full_y)
        targets = one_hot(full_y, self.sizes[-1]) if full_y.ndim == 1 else full_y.astype(np.float64)
        if targets.shape != (n, self.sizes[-1]):
            raise ValueError(f"NN: expected {n} integer labels or one-hot rows ({n}, {self.sizes[-1]}), "
                             f"got shape {full_y.shape}")
        return targets

    def _outputs(self, rows: np.ndarray, chunk: int = 1000) -> np.ndarray:
        """Output columns for many samples; the forward pass is the same, run on many columns at once."""
        if len(rows) == 0:
            return np.zeros((self.sizes[-1], 0))
        return np.concatenate([self.forward(rows[i:i + chunk].T) for i in range(0, len(rows), chunk)], axis=1)

    def loss(self, full_x: np.ndarray, full_y: np.ndarray) -> float:
        """The summed cross-entropy over all samples (rows of ``full_x``; integer or one-hot labels)."""
        rows = self._rows(full_x)
        return crossentropy(self._targets(full_y, len(rows)).T, self._outputs(rows))

    def sample_losses(self, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The cross-entropy of each sample (rows of ``rows``, one-hot ``targets``), by the batched forward."""
        out = self._outputs(rows)
        log_out = np.zeros_like(out)
        with np.errstate(divide="ignore"):  # as in crossentropy: only the entries with y != 0 are evaluated
            np.log(out, out=log_out, where=targets.T != 0)
        return -np.sum(targets.T * log_out, axis=0)

    def predict(self, full_x: np.ndarray) -> np.ndarray:
        """The most probable class of each row of ``full_x``."""
        return np.argmax(self._outputs(self._rows(full_x)), axis=0)

    def score(self, full_x: np.ndarray, full_y: np.ndarray) -> float:
        """Print the post's ``Score: a / b = x%`` line for integer labels and return the accuracy in [0, 1]."""
        labels = np.asarray(full_y)
        predicted = self.predict(full_x)
        if labels.shape != predicted.shape:
            raise ValueError(f"NN.score: expected {len(predicted)} integer labels, got shape {labels.shape}")
        correct = int(np.sum(predicted == labels))
        print(format_score(correct, len(labels)))
        return correct / len(labels) if len(labels) else 0.0

    def train(self, full_x: np.ndarray, full_y: np.ndarray, epochs: int, batch_size: int,
              lr: float = 0.01) -> list[float]:
        """The post's loop: per sample forward + backward, an update every ``batch_size`` samples.

        Rows of ``full_x`` are samples (already scaled as you want them); ``full_y`` holds integer labels
        (one-hot encoded here) or one-hot rows. Each epoch starts by printing the summed loss over all data;
        a last partial batch is applied at the end of the epoch. Returns the printed losses.
        """
        if batch_size < 1:
            raise ValueError(f"NN.train: batch_size must be at least 1, got {batch_size}")
        rows = self._rows(full_x)
        targets = self._targets(full_y, len(rows))
        losses = []
        self.zero_grad()
        for epoch in range(epochs):
            losses.append(self.loss(rows, targets))
            print(f"Epoch {epoch + 1}, current loss: {losses[-1]}")
            for start in range(0, len(rows), batch_size):
                self.accumulate(rows[start:start + batch_size], targets[start:start + batch_size])
                self.update(lr)
        losses.append(self.loss(rows, targets))
        print(f"Final loss: {losses[-1]}")
        return losses


def mlp_order(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> list[np.ndarray]:
    """[W0, b0, W1, b1, ...]: the blog's weights and biases in ``nn.MLP``'s parameter order."""
    return [a for pair in zip(weights, biases) for a in pair]


def manual_gradients(net: NN, x: np.ndarray, onehot: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The blog's ``backward`` for a whole batch at once: gradients summed over the rows of ``x``.

    Same formulas as ``NN.backward``, applied to B columns side by side instead of one: for each sample
    the output row is ``crossentropy_deriv @ softmax_deriv``, i.e. g @ (diag(s) - s s^T) = g*s - (g.s) s,
    and every layer's gradient is a sum over the batch of the per-sample outer products, which one matrix
    product computes. The hidden layers' sigmoid derivative is applied only when ``net.corrected``, as in
    the blog's code. Returns ``(weight_grads, bias_grads)`` in the blog's shapes.
    """
    net.forward(x.T)  # the blog's layout: one column per sample
    layers = net.layers
    out = layers[-1].T  # (B, n_out) probabilities
    g = crossentropy_deriv(onehot.T, out.T)  # (B, n_out) rows: -y / out
    current = g * out - np.sum(g * out, axis=1, keepdims=True) * out
    weight_grads, bias_grads = [np.empty(0)] * len(net.weights), [np.empty(0)] * len(net.weights)
    for i in reversed(range(len(net.weights))):
        weight_grads[i] = current.T @ layers[i].T
        bias_grads[i] = current.sum(axis=0).reshape(-1, 1)
        if i == 0:
            break
        current = current @ net.weights[i]
        if net.corrected:
            current = current * (layers[i] * (1 - layers[i])).T
    return weight_grads, bias_grads
