"""The rule table: every primitive operation, its forward and its backward side by side.

Each primitive is a ``Function`` (see ``engine.py``) that also declares what the other rooms know of it: its
Tensor methods, the NumPy functions it implements, its ONNX mapping, check_gradients' words for its derivative.
``forward`` takes NumPy arrays (and keyword parameters) and keeps on ``self`` what its backward needs (an input
under its parameter's name, the output as ``out``); ``backward(grad)`` returns one gradient per input (``None``
where ``self.needs_grad`` says none is needed). A gradient may have the broadcast shape: the engine sums it back.

A backward is written once, in operations that work on arrays (first order) and on Tensors (create_graph):
operators, NumPy functions Tensors support, and other rules through ``Rule.on``. Rules never warn: the engine
runs them with NumPy's floating-point warnings silenced. ``RULES`` (at the end) lists them by name;
a user's own op is written exactly like these (see docs/writing-an-op.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._checks import check_labels
from .engine import Function, rules


def _floating(x: np.ndarray) -> np.ndarray:
    """Float ops on integer or bool input compute in float32 (as PyTorch does), not NumPy's float64."""
    return x if x.dtype.kind == "f" else x.astype(np.float32)


HALF = np.dtype(np.float16)


def _wide(x):
    """float16 values as float32, for a rule that adds many of them up, as PyTorch accumulates half precision in
    float: a float16 running sum overflows past 65,504 and stops growing by 1 past 2,048. Other dtypes as they
    are. On arrays or Tensors."""
    return x.astype(np.float32) if x.dtype == HALF else x


def _column_major(a: np.ndarray) -> bool:
    """True for an array laid out column by column (a transposed view, nn.Linear's weight): a matrix product's
    gradient for it is computed in that layout, which is faster for BLAS and for the update."""
    return type(a) is np.ndarray and a.flags.f_contiguous and not a.flags.c_contiguous


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}  # PyTorch's promotion categories: bool < integer < float


def result_dtype(*arrays: np.ndarray) -> np.dtype:
    """The dtype PyTorch gives a result of several tensors: the highest category wins (float over integer over
    bool), and within it the n-d tensors decide (a 0-d tensor widens a result only when no n-d one of its
    category is there): float32 with int32 is float32, float32 with a 0-d float64 is float32."""
    top = max(_CATEGORY[a.dtype.kind] for a in arrays)
    peers = [a for a in arrays if _CATEGORY[a.dtype.kind] == top]
    return np.result_type(*[a.dtype for a in ([a for a in peers if a.ndim] or peers)])


def _onnx_reduce(op: str):
    """The ONNX translation of a reduction over the rule's ``axes`` (all when None)."""

    def onnx(self, g, ins, out):
        source = self.inputs[0]
        axes = self.axes if self.axes is not None else tuple(range(source.ndim))
        keepdims = int(out.ndim == source.ndim and source.ndim > 0)  # the result's rank tells
        return g.node(op, [ins[0], g.constant(list(axes))], keepdims=keepdims)

    return onnx


# ----------------------------------------------------------------------------------------------------------
# Binary arithmetic. Broadcasting is undone by the engine.
# ----------------------------------------------------------------------------------------------------------


class Add(Function):
    """z = x + y;  dz/dx = 1, dz/dy = 1."""

    __slots__ = ()
    name = "add"
    ufunc = np.add  # its in-place form, for changes no gradient goes through
    implements = np.add
    onnx = "Add"
    linear = True
    saves_values = False

    def forward(self, x, y):
        return x + y

    def backward(self, grad):
        return grad, grad


class Sub(Function):
    """z = x - y;  dz/dx = 1, dz/dy = -1.  (Fused: one graph node instead of x + (-y).)"""

    __slots__ = ()
    name = "sub"
    ufunc = np.subtract  # its in-place form, for changes no gradient goes through
    implements = np.subtract
    onnx = "Sub"
    linear = True
    saves_values = False

    def forward(self, x, y):
        return x - y

    def backward(self, grad):
        return grad, (-grad if self.needs_grad[1] else None)


class Mul(Function):
    """z = x * y;  dz/dx = y, dz/dy = x."""

    __slots__ = ("x", "y")
    name = "mul"
    ufunc = np.multiply  # its in-place form, for changes no gradient goes through
    implements = np.multiply
    onnx = "Mul"
    linear = True

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, grad):
        dx, dy = self.needs_grad
        return (grad * self.y if dx else None), (grad * self.x if dy else None)


class Div(Function):
    """z = x / y;  dz/dx = 1/y, dz/dy = -x/y^2 = -z/y.  (Fused: one node instead of x * y**-1.)"""

    __slots__ = ("y", "out")
    name = "div"
    ufunc = np.divide  # its in-place form, for changes no gradient goes through
    implements = np.divide
    onnx = "Div"
    linear = True
    hint = "division by zero: add a small epsilon to the denominator"
    backward_hint = "d(x/y)/dy = -x/y^2 overflows when y is tiny"

    def forward(self, x, y):
        if x.dtype.kind != "f" and y.dtype.kind != "f":  # true division of integers gives float32
            x, y = x.astype(np.float32), y.astype(np.float32)
        self.out = x / y
        self.y = y
        return self.out

    def backward(self, grad):
        dx, dy = self.needs_grad
        gx = grad / self.y if dx else None
        gy = -grad * self.out / self.y if dy else None
        return gx, gy


class Pow(Function):
    """z = x ** y;  dz/dx = y * x**(y-1) (0 where y == 0, also at x == 0, as PyTorch),
    dz/dy = z * log(x)  (taken as 0 where x == 0 and y >= 0)."""

    __slots__ = ("x", "y", "out")
    name = "pow"
    ufunc = np.power  # its in-place form, for changes no gradient goes through
    implements = np.power
    onnx = "Pow"
    hint = "0 ** negative is inf and a negative base with a fractional exponent is nan"
    backward_hint = "d(x**y)/dx = y x**(y-1) is infinite at x = 0 when y < 1, and d/dy needs log(x)"

    def forward(self, x, y):
        self.out = np.power(x, y)
        self.x, self.y = x, y
        return self.out

    def backward(self, grad):
        dx, dy = self.needs_grad
        x, y = self.x, self.y
        gx = np.where(y == 0, 0, grad * y * np.power(x, y - 1)) if dx else None  # d(x**0)/dx = 0, also at 0
        gy = None
        if dy:
            log_x = np.where(np.logical_and(x == 0, y >= 0), 0, np.log(x))
            gy = grad * self.out * log_x
        return gx, gy


class Matmul(Function):
    """z = x @ y (1-D, 2-D, batched N-D);  dz/dx = g @ y^T,  dz/dy = x^T @ g.

    1-D operands are promoted as NumPy does (x to a row, y to a column); the promoted axes are put back in
    the gradient, and the engine sums broadcast batch dimensions away.
    """

    __slots__ = ("x", "y")
    name = "matmul"
    implements = np.matmul
    onnx = "MatMul"
    linear = True

    def forward(self, x, y):
        try:
            out = x @ y
        except ValueError:  # explain which rule NumPy applied
            if x.ndim == 0 or y.ndim == 0:
                raise ValueError(
                    f"matmul: both operands must be at least 1-D, got shapes {x.shape} and {y.shape}"
                ) from None
            k_x, k_y = x.shape[-1], y.shape[-2] if y.ndim > 1 else y.shape[0]
            if k_x != k_y:
                raise ValueError(f"matmul: shapes {x.shape} and {y.shape} are not aligned ({k_x} != {k_y})") from None
            raise ValueError(
                f"matmul: batch dimensions of shapes {x.shape} and {y.shape} cannot be broadcast together"
            ) from None
        self.x, self.y = x, y
        return out

    def backward(self, grad):
        x, y = self.x, self.y
        need_x, need_y = self.needs_grad
        x2 = x if x.ndim > 1 else x[None, :]
        y2 = y if y.ndim > 1 else y[:, None]
        if x.ndim == 1:  # the promoted row was dropped from the result: restore it
            grad = grad[..., None, :] if y.ndim > 1 else grad[..., None]
        if y.ndim == 1:
            grad = grad[..., None]
        gx = grad @ np.swapaxes(y2, -1, -2) if need_x else None
        gy = None
        if need_y:
            if y2.ndim == 2 and x2.ndim == 2 and _column_major(y2):
                gy = (grad.T @ x2).T  # y is a transposed view (x @ W.T): lay the gradient out as W is
            else:
                gy = np.swapaxes(x2, -1, -2) @ grad
        if x.ndim == 1 and gx is not None:
            gx = gx[..., 0, :]
        if y.ndim == 1 and gy is not None:
            gy = gy[..., 0]
        return gx, gy


def _rows_times(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """x @ m for a matrix m, x's leading axes taken as one axis of rows where that is a view: one matrix product
    rather than one per leading index (which is what matmul does with a stack of small matrices)."""
    if type(x) is np.ndarray and x.ndim > 2 and m.ndim == 2 and x.flags.c_contiguous:  # (Tensors: create_graph)
        return (x.reshape(-1, x.shape[-1]) @ m).reshape(*x.shape[:-1], m.shape[-1])
    return x @ m


class Linear(Function):
    """z = x @ w.T + b, with w of shape (out, in) as in PyTorch;
    dz/dx = g @ w,  dz/dw = g.T @ x (summed over the samples),  dz/db = g summed over the samples.

    Fused (rather than a transpose, a matmul and an add) for speed: one node instead of three, the bias added
    in place, and the weight's gradient computed in the weight's layout.
    """

    __slots__ = ("x", "w")
    name = "linear"
    linear = True

    def onnx(self, g, ins, out):
        if self.inputs[0].ndim == 2:  # Gemm: x @ W.T + b in one node
            return g.node("Gemm", ins, transB=1)
        y = g.node("MatMul", [ins[0], g.node("Transpose", [ins[1]], perm=[1, 0])])
        return g.node("Add", [y, ins[2]]) if len(ins) == 3 else y

    def forward(self, x, w, b=None):
        if x.ndim < 1 or x.shape[-1] != w.shape[-1]:
            raise ValueError(f"linear: input of shape {x.shape} does not fit a weight of shape {w.shape} "
                             f"({x.shape[-1] if x.ndim else 'a 0-d input'} != {w.shape[-1]} in_features)")
        out = _rows_times(x, w.T)
        if b is not None:
            if np.result_type(out, b) == out.dtype:
                out += b  # in place: the product is a fresh array
            else:
                out = out + b
        self.x, self.w = x, w
        return out

    def backward(self, grad):
        need_x, need_w, *need_b = self.needs_grad
        samples = math.prod(grad.shape[:-1])  # every leading axis holds samples (spelled out: sizes may be 0)
        rows = grad.reshape(samples, grad.shape[-1])
        gx = _rows_times(grad, self.w) if need_x else None
        gw = None
        if need_w:
            x_rows = self.x.reshape(samples, self.x.shape[-1])
            gw = (x_rows.T @ rows).T if _column_major(self.w) else rows.T @ x_rows  # in the weight's layout
        gb = rows.sum(axis=0) if need_b and need_b[0] else None
        return gx, gw, gb


class Cast(Function):
    """z = x as another dtype;  dz/dx = 1 (the engine casts the gradient back to x's dtype)."""

    __slots__ = ("dtype",)
    name = "cast"
    saves_values = False

    def onnx(self, g, ins, out):
        return g.node("Cast", ins, to=g.dtype_code(out.dtype))

    def forward(self, x, dtype=None):
        self.dtype = np.dtype(dtype)
        return x.astype(self.dtype)

    def backward(self, grad):
        return (grad,)

    def label(self):
        return f"cast({self.dtype})"


class Clone(Function):
    """z = x, in memory of its own;  dz/dx = 1."""

    __slots__ = ()
    name = "clone"
    saves_values = False
    onnx = "Identity"

    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return (grad,)


# ----------------------------------------------------------------------------------------------------------
# Elementwise unary functions
# ----------------------------------------------------------------------------------------------------------


class Exp(Function):
    """z = exp(x);  dz/dx = z."""

    __slots__ = ("out",)
    name = "exp"
    methods = ("exp",)
    implements = np.exp
    onnx = "Exp"
    derivative = "exp(z)"
    hint = "exp overflows past 88 (float32) or 709 (float64): subtract the max first (softmax does)"

    def forward(self, x):
        self.out = np.exp(_floating(x))
        return self.out

    def backward(self, grad):
        return (grad * self.out,)


class Log(Function):
    """z = log(x);  dz/dx = 1/x."""

    __slots__ = ("x",)
    name = "log"
    methods = ("log",)
    implements = np.log
    onnx = "Log"
    derivative = "1 / z"
    hint = "log(0) is -inf and log(x < 0) is nan: clip the input, or compute log_softmax / cross_entropy from logits"
    backward_hint = "d log(x)/dx = 1/x is infinite at x = 0"

    def forward(self, x):
        self.x = _floating(x)
        return np.log(self.x)

    def backward(self, grad):
        return (grad / self.x,)


class Log1p(Function):
    """z = log(1 + x), accurate for tiny x;  dz/dx = 1 / (1 + x)."""

    __slots__ = ("x",)
    name = "log1p"
    methods = ("log1p",)
    implements = np.log1p
    derivative = "1 / (1 + z)"
    hint = "log1p(-1) is -inf and log1p(x < -1) is nan"
    backward_hint = "d log1p(x)/dx = 1/(1 + x) is infinite at x = -1"

    def onnx(self, g, ins, out):
        return g.node("Log", [g.node("Add", [ins[0], g.constant(1, out.dtype)])])

    def forward(self, x):
        self.x = _floating(x)
        return np.log1p(self.x)

    def backward(self, grad):
        return (grad / (1 + self.x),)


class Sqrt(Function):
    """z = sqrt(x);  dz/dx = 1 / (2 z)."""

    __slots__ = ("out",)
    name = "sqrt"
    methods = ("sqrt",)
    implements = np.sqrt
    onnx = "Sqrt"
    derivative = "1 / (2 * sqrt(z))"
    hint = "sqrt of a negative number is nan"
    backward_hint = "d sqrt(x)/dx = 1/(2 sqrt(x)) is infinite at x = 0"

    def forward(self, x):
        self.out = np.sqrt(_floating(x))
        return self.out

    def backward(self, grad):
        return (grad / (2 * self.out),)


class Sigmoid(Function):
    """z = 1 / (1 + exp(-x));  dz/dx = z (1 - z), from the saved output.

    exp(-x) overflows to inf for x < -88 (float32), and 1 / (1 + inf) is exactly 0: the value is right,
    so the overflow is silenced rather than avoided.
    """

    __slots__ = ("out",)
    name = "sigmoid"
    methods = ("sigmoid",)
    onnx = "Sigmoid"
    derivative = "s * (1 - s) with s = sigmoid(z)"

    def forward(self, x):
        x = _floating(x)
        out = np.negative(x, np.empty_like(x))  # one buffer, updated in place (out by position: cheaper)
        np.exp(out, out)
        out += 1
        np.reciprocal(out, out)
        self.out = out
        return out

    def backward(self, grad):
        return (grad * (self.out * (1 - self.out)),)


class Relu(Function):
    """z = max(x, 0);  dz/dx = 1 where x > 0, else 0 (0 at x == 0).

    The gradient is selected, not multiplied by a 0/1 mask: an inf arriving from downstream (``relu(x).log()``
    at x <= 0) gives 0 where relu is flat, as in PyTorch, instead of 0 * inf = nan.
    """

    __slots__ = ("out",)
    name = "relu"
    methods = ("relu",)
    onnx = "Relu"
    derivative = "(z > 0)"
    constants = ("out",)  # a mask: relu's second derivative is 0

    def forward(self, x):
        self.out = np.maximum(x, 0)
        return self.out

    def backward(self, grad):
        flat = self.out <= 0  # False at a nan input: it passes its gradient on, as in PyTorch
        if type(grad) is np.ndarray and np.isfinite(grad).all():  # a 0/1 product: ~10x faster than a masked select
            return (grad * ~flat,)
        return (np.where(flat, 0, grad),)


class Tanh(Function):
    """z = tanh(x);  dz/dx = 1 - z^2."""

    __slots__ = ("out",)
    name = "tanh"
    methods = ("tanh",)
    implements = np.tanh
    onnx = "Tanh"
    derivative = "1 - t**2 with t = tanh(z)"

    def forward(self, x):
        self.out = np.tanh(_floating(x))
        return self.out

    def backward(self, grad):
        return (grad * (1 - self.out * self.out),)


class Sin(Function):
    """z = sin(x);  dz/dx = cos(x)."""

    __slots__ = ("x",)
    name = "sin"
    methods = ("sin",)
    implements = np.sin
    onnx = "Sin"
    derivative = "cos(z)"

    def forward(self, x):
        self.x = _floating(x)
        return np.sin(self.x)

    def backward(self, grad):
        return (grad * np.cos(self.x),)


class Cos(Function):
    """z = cos(x);  dz/dx = -sin(x)."""

    __slots__ = ("x",)
    name = "cos"
    methods = ("cos",)
    implements = np.cos
    onnx = "Cos"
    derivative = "-sin(z)"

    def forward(self, x):
        self.x = _floating(x)
        return np.cos(self.x)

    def backward(self, grad):
        return (grad * -np.sin(self.x),)


class Tan(Function):
    """z = tan(x);  dz/dx = 1 + z^2."""

    __slots__ = ("out",)
    name = "tan"
    methods = ("tan",)
    implements = np.tan
    onnx = "Tan"
    derivative = "1 + t**2 with t = tan(z)"
    backward_hint = "d tan(x)/dx = 1 + tan(x)^2 is infinite at odd multiples of pi/2"

    def forward(self, x):
        self.out = np.tan(_floating(x))
        return self.out

    def backward(self, grad):
        return (grad * (1 + self.out * self.out),)


class Abs(Function):
    """z = |x|;  dz/dx = sign(x) (0 at x == 0)."""

    __slots__ = ("x",)
    name = "abs"
    methods = ("abs", "__abs__")
    implements = np.absolute
    onnx = "Abs"
    derivative = "sign(z)"
    constants = ("x",)

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, grad):
        x = self.x  # selected, as in relu: an inf from downstream stays out where the slope is 0
        return (np.where(x > 0, grad, np.where(x < 0, -grad, 0)),)


class Clip(Function):
    """z = min(max(x, low), high);  dz/dx = 1 where low <= x <= high, else 0.

    A primitive rather than a composition: the clipped values must be exactly ``low`` and ``high``.
    """

    __slots__ = ("x", "low", "high")
    name = "clip"
    constants = ("x",)

    def onnx(self, g, ins, out):
        low = g.constant(self.low, out.dtype) if self.low is not None else ""
        high = g.constant(self.high, out.dtype) if self.high is not None else ""
        return g.node("Clip", [ins[0], low, high])

    def forward(self, x, low=None, high=None):
        if low is None and high is None:
            raise ValueError("clip: at least one of min and max must be given")
        if low is not None and high is not None and low > high:
            raise ValueError(f"clip: min ({low}) is greater than max ({high})")
        self.x, self.low, self.high = x, low, high
        out = np.clip(x, low, high)
        return out.astype(x.dtype) if x.dtype.kind == "f" and out.dtype != x.dtype else out  # bounds never widen

    def backward(self, grad):
        x, inside = self.x, True
        if self.low is not None:
            inside = x >= self.low
        if self.high is not None:
            inside = inside & (x <= self.high)
        return (np.where(inside, grad, 0),)  # selected, as in relu

    def label(self):
        return f"clip({self.low}, {self.high})"


class LeakyRelu(Function):
    """z = x where x > 0, else slope * x;  dz/dx = 1 where x > 0, else slope (slope at x == 0, as PyTorch)."""

    __slots__ = ("x", "slope")
    name = "leaky_relu"
    constants = ("x",)

    def onnx(self, g, ins, out):
        return g.node("LeakyRelu", ins, alpha=float(self.slope))

    def forward(self, x, slope=0.01):
        self.x, self.slope = _floating(x), slope
        return np.where(self.x > 0, self.x, self.x * slope)

    def backward(self, grad):
        return (np.where(self.x > 0, grad, grad * self.slope),)  # as PyTorch: x > 0 ? g : g * slope

    def label(self):
        return f"leaky_relu({self.slope})"


class Softplus(Function):
    """z = log(1 + exp(beta x)) / beta, computed as logaddexp(0, beta x) / beta so no x overflows, and z = x where
    beta x > threshold;  dz/dx = sigmoid(beta x), and 1 above the threshold.

    ``t.softplus()`` is exact for every x (tinygrad's, no threshold); ``F.softplus`` passes PyTorch's threshold 20,
    above which PyTorch returns x itself (less than 2e-9 away).
    """

    __slots__ = ("x", "beta", "threshold")
    name = "softplus"
    methods = ("softplus",)
    derivative = "sigmoid(z)"

    def onnx(self, g, ins, out):
        """Softplus(beta x) / beta, and x where beta x > threshold."""
        beta, threshold = g.constant(self.beta, out.dtype), g.constant(self.threshold, out.dtype)
        scaled = g.node("Mul", [ins[0], beta])
        smooth = g.node("Div", [g.node("Softplus", [scaled]), beta])
        return g.node("Where", [g.node("Greater", [scaled, threshold]), ins[0], smooth])

    def forward(self, x, beta=1.0, threshold=math.inf):
        self.x, self.beta, self.threshold = _floating(x), beta, threshold
        scaled = self.x * beta
        return np.where(scaled > threshold, self.x, np.logaddexp(0, scaled) / beta)

    def backward(self, grad):
        scaled = self.x * self.beta
        slope = Sigmoid.on(scaled)  # sigmoid's own rule: stable when differentiated again
        if self.threshold != math.inf:
            slope = np.where(scaled > self.threshold, 1.0, slope)
        return (grad * slope,)

    def label(self):
        return "softplus" if (self.beta, self.threshold) == (1.0, math.inf) else \
            f"softplus(beta={self.beta}, threshold={self.threshold})"


_ERF_STEP, _ERF_TOP, _ERF_DEGREE, _ERF_SMALL_TERMS = 0.125, 6.0, 10, 11  # erf(x) rounds to 1 for x >= 6


def _erf_tables() -> tuple[np.ndarray, np.ndarray]:
    """Taylor coefficients of erf about the centre c of each interval [k step, (k + 1) step) below 6, in t = x - c:
    erf(c), then erf^(n)(c) / n! = 2/sqrt(pi) exp(-c^2) (-1)^(n-1) H_(n-1)(c) / n! with the Hermite polynomials
    H_0 = 1, H_1 = 2c, H_(n+1) = 2c H_n - 2n H_(n-1) taken exactly (c is a binary fraction), one column per
    interval; and the Maclaurin coefficients of erf(x) / x in u = x^2: 2/sqrt(pi) (-1)^n / (n! (2n + 1))."""
    columns = []
    for k in range(int(_ERF_TOP / _ERF_STEP)):
        c = (Fraction(k) + Fraction(1, 2)) * Fraction(_ERF_STEP)
        hermite = [Fraction(1), 2 * c]
        for n in range(1, _ERF_DEGREE):
            hermite.append(2 * c * hermite[n] - 2 * n * hermite[n - 1])
        scale = 2 / math.sqrt(math.pi) * math.exp(-float(c) ** 2)
        columns.append([math.erf(float(c))] + [scale * float((-1) ** (n - 1) * hermite[n - 1] / math.factorial(n))
                                               for n in range(1, _ERF_DEGREE + 1)])
    small = [2 / math.sqrt(math.pi) * (-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(_ERF_SMALL_TERMS)]
    return np.array(columns).T.copy(), np.array(small)


_ERF_TAYLOR, _ERF_MACLAURIN = _erf_tables()


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, vectorised, to double precision (within 4e-16 relative of math.erf for normal numbers; NumPy has no
    erf): |x| < step by x * (erf(x) / x as a series in x^2, whose terms fall by 1/64 or faster), up to 6 by the
    Taylor polynomial of degree 10 about the centre of |x|'s interval (|t| <= 1/16), 1 above; odd in x."""
    x = np.asarray(x, dtype=np.float64)
    shape, x = x.shape, x.reshape(-1)
    a = np.abs(x)
    k = np.floor(np.minimum(a * (1 / _ERF_STEP), _ERF_TAYLOR.shape[1] - 1))
    k[np.isnan(k)] = 0
    t = np.minimum(a, _ERF_TOP) - (k + 0.5) * _ERF_STEP  # (inf would overflow the polynomial: it gives 1 below)
    coefficients = _ERF_TAYLOR[:, k.astype(np.intp)]  # each element's interval's polynomial
    y = coefficients[-1] * t
    for row in coefficients[-2:0:-1]:  # Horner
        y += row
        y *= t
    y += coefficients[0]
    y[a >= _ERF_TOP] = 1.0
    small = a < _ERF_STEP  # relative accuracy near 0, where erf(x) ~ 2x/sqrt(pi)
    near = a[small]
    u, series = near * near, np.full(near.shape, _ERF_MACLAURIN[-1])
    for c in _ERF_MACLAURIN[-2::-1]:
        series *= u
        series += c
    y[small] = near * series
    return np.where(np.isnan(x), x, np.copysign(y, x)).reshape(shape)


class Gelu(Function):
    """z = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2)), the exact form (PyTorch's default, approximate='none');
    dz/dx = Phi(x) + x * phi(x), with phi(x) = exp(-x^2/2) / sqrt(2 pi) the normal density."""

    __slots__ = ("x", "cdf")
    name = "gelu"
    methods = ("gelu",)

    def onnx(self, g, ins, out):
        """x/2 (1 + erf(x / sqrt 2)), from ONNX's Erf (the Gelu op needs opset 20)."""
        erf = g.node("Erf", [g.node("Div", [ins[0], g.constant(np.sqrt(2.0), out.dtype)])])
        half = g.node("Mul", [g.node("Add", [erf, g.constant(1, out.dtype)]), g.constant(0.5, out.dtype)])
        return g.node("Mul", [ins[0], half])

    def forward(self, x):
        x = _floating(x)
        self.x, self.cdf = x, 0.5 * (1 + Erf.on(x / math.sqrt(2)))  # Phi(x), on the graph when re-run on Tensors
        return x * self.cdf

    def backward(self, grad):
        x = self.x
        return (grad * (self.cdf + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),)



class Erf(Function):
    """z = erf(x) = 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt;  dz/dx = 2/sqrt(pi) * exp(-x^2).

    Needed by gelu's second derivative (gelu's backward uses Phi(x) = (1 + erf(x / sqrt 2)) / 2)."""

    __slots__ = ("x",)
    name = "erf"
    methods = ("erf",)
    onnx = "Erf"

    def forward(self, x):
        self.x = _floating(x)
        return _erf(self.x).astype(self.x.dtype, copy=False)

    def backward(self, grad):
        return (grad * (2 / math.sqrt(math.pi)) * np.exp(-self.x * self.x),)


class Where(Function):
    """z = a where cond, else b (all three broadcast together; a non-boolean cond counts by its truth, as in
    np.where);  dz/da = g where cond, else 0;  dz/db = g where not cond, else 0;  cond gets no gradient.

    The gradient is selected, not multiplied by a 0/1 mask, so an inf arriving from downstream stays out of the
    branch that was not taken.
    """

    __slots__ = ("cond",)
    name = "where"
    onnx = "Where"
    linear = True
    constants = ("cond",)

    def forward(self, cond, a, b):
        self.cond = cond if cond.dtype == np.bool_ else cond.astype(bool)
        return np.where(self.cond, a, b).astype(result_dtype(a, b), copy=False)

    def backward(self, grad):
        _, need_a, need_b = self.needs_grad
        zero = np.zeros((), grad.dtype)
        return (None, np.where(self.cond, grad, zero) if need_a else None,
                np.where(self.cond, zero, grad) if need_b else None)


# ----------------------------------------------------------------------------------------------------------
# Reductions. ``axes`` is already normalised by the Tensor method (a tuple, or None for all axes).
# ----------------------------------------------------------------------------------------------------------


def _keepdim_shape(shape: tuple[int, ...], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """The shape a reduction over ``axes`` has with keepdims=True."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """z = sum(x, axes);  dz/dx = 1: the gradient is broadcast back over the summed axes."""

    __slots__ = ("in_shape", "axes", "keepdim")
    name = "sum"
    onnx = _onnx_reduce("ReduceSum")
    linear = True
    saves_values = False

    def forward(self, x, axes=None, keepdim=False):
        self.in_shape, self.axes, self.keepdim = x.shape, axes, keepdim
        if x.dtype == HALF:  # NumPy adds float16 columns in float16 (2,048 + 1 is 2,048); PyTorch in float32
            return x.sum(axis=axes, keepdims=keepdim, dtype=np.float32).astype(HALF)
        return x.sum(axis=axes, keepdims=keepdim)

    def backward(self, grad):
        return (Expand.on(grad.reshape(_keepdim_shape(self.in_shape, self.axes)), shape=self.in_shape),)

    def label(self):
        return "sum" if self.axes is None else f"sum(axis={self.axes})"


class Max(Function):
    """z = max(x, axes);  dz/dx = 1 at the maximum, as PyTorch: over one axis with ``indexed`` (``max(dim)``) at
    the index it returns (the first maximum, or the first nan); otherwise (``max()``, ``amax``) tied maxima share
    the gradient equally, and a slice holding nan gives it to its nans (its maximum is nan)."""

    __slots__ = ("x", "out", "axes", "indexed")
    name = "max"
    onnx = _onnx_reduce("ReduceMax")
    constants = ("x", "out")  # they say where the maxima are: the gradient is selected, never differentiated
    reduce = staticmethod(np.maximum.reduce)
    arg = staticmethod(np.argmax)  # the index max(dim) returns: NumPy's and PyTorch's agree, nan included

    def forward(self, x, axes=None, keepdim=False, indexed=False):
        reduced = x.shape if axes is None else [x.shape[a] for a in axes]
        if 0 in reduced:  # as NumPy and PyTorch: an empty axis has no max; other axes may be empty
            raise ValueError(f"{self.name}: cannot reduce over an empty axis of a tensor of shape {x.shape} "
                             f"(axis {axes})")
        out = self.reduce(x, axis=axes, keepdims=True)
        self.x, self.out, self.axes, self.indexed = x, out, axes, indexed
        if keepdim:
            return out
        return out.reshape(() if axes is None else tuple(n for i, n in enumerate(x.shape) if i not in axes))

    def backward(self, grad):
        grad = grad.reshape(self.out.shape)
        x, out = self.x, self.out
        if self.indexed:
            (axis,) = self.axes
            place = np.arange(x.shape[axis]).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
            return (np.where(place == self.arg(x, axis=axis, keepdims=True), grad, 0),)  # selected, as relu
        winners = x == out
        if x.dtype.kind == "f" and np.isnan(out).any():  # nan == nan is False: the nans are the winners there
            winners |= np.isnan(x) & np.isnan(out)
        return (np.where(winners, grad / winners.sum(axis=self.axes, keepdims=True), 0),)

    def label(self):
        return self.name if self.axes is None else f"{self.name}(axis={self.axes})"


class Min(Max):
    """z = min(x, axes);  dz/dx = 1 at the minimum, placed as for ``max`` (at the index ``min(dim)`` returns, or
    shared by tied minima, the nans of a slice holding nan taking it)."""

    __slots__ = ()
    name = "min"
    onnx = _onnx_reduce("ReduceMin")
    reduce = staticmethod(np.minimum.reduce)
    arg = staticmethod(np.argmin)


# ----------------------------------------------------------------------------------------------------------
# Softmax family (max-subtracted, so logits of any size are safe)
# ----------------------------------------------------------------------------------------------------------


def _max_keepdims(x: np.ndarray, axis: int) -> np.ndarray:
    """``x.max(axis=axis, keepdims=True)``, the shift of the softmax family.

    NumPy reduces a C-ordered array's last axis one row at a time (about 0.1 us a row), so many short rows, as
    (200, 10) logits, are slow; laid out column by column (one copy), the same maxima come from a few long
    vectorised passes, 5x faster. A max is exact, so the values are the same either way.
    """
    n = x.shape[axis] if x.ndim else 0
    if type(x) is np.ndarray and x.ndim >= 2 and axis in (-1, x.ndim - 1) and 0 < n <= 128 and x.size >= 16 * n:
        rows = np.asfortranarray(x.reshape(-1, n))
        return rows.max(axis=1).reshape(*x.shape[:-1], 1)
    return x.max(axis=axis, keepdims=True)


class Softmax(Function):
    """z = exp(x - max) / sum(exp(x - max));  dz/dx applied to g:  z * (g - sum(g * z)).

    float16 is computed in float32 and rounded once (as PyTorch): 70,000 equal float16 logits still sum to 1."""

    __slots__ = ("out", "axis")
    name = "softmax"
    derivative = "its Jacobian: dz = p * (g - (g * p).sum(axis, keepdims=True))"

    def onnx(self, g, ins, out):
        return g.node("Softmax", ins, axis=int(self.axis))

    def forward(self, x, axis=-1):
        x = _floating(x)
        if x.size == 0:  # nothing to normalise (and np.max refuses empty input)
            self.out, self.axis = x.copy(), axis
            return self.out
        w = _wide(x)
        e = np.exp(w - _max_keepdims(w, axis))
        out = e / e.sum(axis=axis, keepdims=True)
        self.out, self.axis = out if w is x else out.astype(x.dtype), axis
        return self.out

    def backward(self, grad):  # a float32 gradient for float16: the engine rounds it to the input's dtype
        out, grad = _wide(self.out), _wide(grad)
        return (out * (grad - (grad * out).sum(axis=self.axis, keepdims=True)),)

    def label(self):
        return f"softmax(axis={self.axis})"


class LogSoftmax(Function):
    """z = x - max - log(sum(exp(x - max)));  dz/dx applied to g:  g - softmax(x) * sum(g).

    float16 is computed in float32 and rounded once, as softmax."""

    __slots__ = ("out", "axis")
    name = "log_softmax"
    derivative = "its Jacobian: dz = g - softmax(z) * g.sum(axis, keepdims=True)"

    def onnx(self, g, ins, out):
        return g.node("LogSoftmax", ins, axis=int(self.axis))

    def forward(self, x, axis=-1):
        x = _floating(x)
        if x.size == 0:  # nothing to normalise (and np.max refuses empty input)
            self.out, self.axis = x.copy(), axis
            return self.out
        w = _wide(x)
        shifted = w - _max_keepdims(w, axis)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.out, self.axis = out if w is x else out.astype(x.dtype), axis
        return self.out

    def backward(self, grad):  # a float32 gradient for float16, as softmax's
        grad = _wide(grad)
        return (grad - np.exp(_wide(self.out)) * grad.sum(axis=self.axis, keepdims=True),)

    def label(self):
        return f"log_softmax(axis={self.axis})"


class CrossEntropy(Function):
    """z_n = -sum_c t_nc log softmax(x)_nc per sample, for logits x (N, C) and a target t of integer labels (N,)
    (one-hot rows) or probabilities (N, C);
    dz_n/dx_n = softmax(x_n) sum_c t_nc - t_n  (p - t for a one-hot or probability target),
    dz_n/dt_n = -log softmax(x_n).

    Fused (rather than log_softmax, indexing or a product, then a sum) for speed: one node instead of three,
    and a backward that is p - t directly, without scattering into zeros.
    """

    __slots__ = ("log_probs", "target")
    name = "cross_entropy"

    def forward(self, x, target):
        if target.ndim == 1:
            check_labels(target, x.shape[1], "cross_entropy")
        x = _floating(x)
        w = _wide(x)  # float16 in float32, as log_softmax
        shifted = w - _max_keepdims(w, 1)
        self.log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.target = target
        if target.ndim == 1:
            losses = -self.log_probs[np.arange(len(target)), target]
        else:
            losses = -(self.log_probs * target).sum(axis=1)
        return losses if w is x else losses.astype(x.dtype)

    def backward(self, grad):
        need_x, need_t = self.needs_grad
        log_probs, target, g = self.log_probs, self.target, grad[:, None]
        gx = gt = None
        if need_x:
            if target.ndim == 1:  # labels (they need no gradient): p g, less g at each sample's label
                pg = np.exp(log_probs) * g
                gx = np.where(np.arange(log_probs.shape[1]) == np.asarray(target)[:, None], pg - g, pg)
            else:
                gx = (np.exp(log_probs) * target.sum(axis=1, keepdims=True) - target) * g
        if need_t:
            gt = -log_probs * g
        return gx, gt


class BinaryCrossEntropy(Function):
    """z = -(y log p + (1 - y) log(1 - p)), each log floored at -100 (as PyTorch);
    dz/dp = (p - y) / (p (1 - p)),  dz/dy = log(1 - p) - log(p).

    Fused for stability: composed of log ops, p == 1 (a float32 sigmoid of x > 17) gives 0 * inf = nan.
    """

    __slots__ = ("p", "y", "log_p", "log_1mp")
    name = "binary_crossentropy"

    def forward(self, p, y):
        if p.size and not (p.min() >= 0 and p.max() <= 1):  # as PyTorch: logits here would give a silent nan
            raise ValueError(f"binary_crossentropy: the input must be probabilities in [0, 1], got values from "
                             f"{p.min()} to {p.max()}; apply sigmoid to logits first")
        self.log_p = np.maximum(np.log(p), -100)
        self.log_1mp = np.maximum(np.log1p(-p), -100)
        self.p, self.y = p, y
        return -(y * self.log_p + (1 - y) * self.log_1mp)

    def backward(self, grad):
        dp, dy = self.needs_grad
        p, y = self.p, self.y
        gp = grad * (p - y) / np.maximum(p * (1 - p), 1e-12) if dp else None
        gy = grad * (self.log_1mp - self.log_p) if dy else None
        return gp, gy


# ----------------------------------------------------------------------------------------------------------
# Movement: the gradient is moved back the same way
# ----------------------------------------------------------------------------------------------------------


class Reshape(Function):
    """z = reshape(x, shape);  dz/dx: reshape g back to x's shape."""

    __slots__ = ("in_shape",)
    name = "reshape"
    view = True
    linear = True
    saves_values = False

    def onnx(self, g, ins, out):
        return g.node("Reshape", [ins[0], g.constant(g.target_shape(out, self.label()))])

    def into_source(self, new):
        """Where a view's new values ``new`` go in its source, for a change made through the view: (index, values)."""
        return ..., Reshape.on(new, shape=self.in_shape)

    def forward(self, x, shape=()):
        self.in_shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}"
            ) from None

    def backward(self, grad):
        return (grad.reshape(self.in_shape),)


def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    """The permutation that undoes ``order``."""
    inverse = [0] * len(order)
    for position, axis in enumerate(order):
        inverse[axis] = position
    return tuple(inverse)


class Permute(Function):
    """z = transpose(x, order);  dz/dx: transpose g by the inverse order."""

    __slots__ = ("order",)
    name = "permute"
    view = True
    linear = True
    saves_values = False

    def onnx(self, g, ins, out):
        return g.node("Transpose", ins, perm=list(self.order))

    def into_source(self, new):
        """Where a view's new values ``new`` go in its source, for a change made through the view: (index, values)."""
        return ..., Permute.on(new, order=_inverse(self.order))

    def forward(self, x, order=()):
        self.order = order
        return x.transpose(order)

    def backward(self, grad):
        return (Permute.on(grad, order=_inverse(self.order)),)

    def label(self):
        n = len(self.order)
        if n > 1 and self.order == tuple(range(n - 1, -1, -1)):
            return "T"  # the transpose in ``x @ weight.T``: short, as it is written
        return f"permute{self.order}"


class Expand(Function):
    """z = broadcast_to(x, shape);  dz/dx: the engine sums g over the broadcast axes, so g passes through."""

    __slots__ = ()
    name = "expand"
    view = True
    linear = True
    saves_values = False

    def onnx(self, g, ins, out):
        return g.node("Expand", [ins[0], g.constant(g.expand_shape(self.inputs[0], out, self.label()))])

    def forward(self, x, shape=()):
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: cannot expand a tensor of shape {x.shape} to {shape}") from None

    def backward(self, grad):
        return (grad,)


class Cat(Function):
    """z = concatenate(x_1, ..., x_k, axis);  dz/dx_i: the slice of g where x_i was put (g split at the sizes)."""

    __slots__ = ("axis", "sizes")
    name = "cat"

    def onnx(self, g, ins, out):
        return g.node("Concat", ins, axis=int(self.axis))

    def forward(self, *xs, axis=0):
        first = xs[0]
        for x in xs[1:]:
            if x.ndim != first.ndim or any(m != n for i, (m, n) in enumerate(zip(x.shape, first.shape)) if i != axis):
                raise ValueError(f"cat: tensors of shapes {first.shape} and {x.shape} differ outside dim {axis}")
        self.axis, self.sizes = axis, [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis, dtype=result_dtype(*xs))

    def backward(self, grad):
        lead, start, parts = (slice(None),) * self.axis, 0, []
        for size, need in zip(self.sizes, self.needs_grad):  # views of grad (also on Tensors)
            parts.append(grad[lead + (slice(start, start + size),)] if need else None)
            start += size
        return tuple(parts)

    def label(self):
        return f"cat(dim={self.axis})"


def is_basic_index(index) -> bool:
    """True for indices made of ints, slices, None and Ellipsis only (no repeated elements possible)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice)) or p is None or p is Ellipsis for p in parts)


class GetItem(Function):
    """z = x[index];  dz/dx: g scattered back into zeros of x's shape, added up over repeated indices."""

    __slots__ = ("in_shape", "dtype", "index")
    name = "getitem"
    view = True
    linear = True
    saves_values = False

    def onnx(self, g, ins, out):
        """Slices (a Slice node) or slices then one integer array (a Gather along that axis); other indices are
        not mapped."""
        parts = self.index if isinstance(self.index, tuple) else (self.index,)
        at = next((i for i, p in enumerate(parts) if p is Ellipsis), None)
        if at is not None:  # the axes it stands for, whole
            parts = parts[:at] + (slice(None),) * (len(self.in_shape) - len(parts) + 1) + parts[at + 1:]
        *lead, last = parts
        if parts and all(p == slice(None) for p in lead) and isinstance(last, np.ndarray) and last.dtype.kind in "iu":
            return g.node("Gather", [ins[0], g.constant(last)], axis=len(lead))
        if not all(isinstance(p, (slice, int, np.integer)) for p in parts):
            raise NotImplementedError(f"to_onnx: no ONNX mapping for getitem with index {self.index!r} (output shape "
                                      f"{out.shape}); slices and integers, or slices then one integer array, are "
                                      "mapped")
        taken = [axis for axis, p in enumerate(parts) if not isinstance(p, slice)]  # integers: slices of one, squeezed
        parts = [p if isinstance(p, slice) else slice(p % size, p % size + 1) for p, size in zip(parts, self.in_shape)]
        free = g.free_axes(self.inputs[0])  # all of an axis that follows the batch: not a fixed range
        cut = [(axis, p.indices(size)) for axis, (p, size) in enumerate(zip(parts, self.in_shape))
               if p != slice(None) and not (axis in free and p.indices(size) == (0, size, 1))]
        if not cut:
            return g.node("Identity", ins)
        ends = [stop if stop >= 0 else -size - 1 for (axis, (_, stop, _)), size in
                zip(cut, [self.in_shape[a] for a, _ in cut])]  # a negative step's end before index 0
        sliced = g.node("Slice", [ins[0], g.constant([c[1][0] for c in cut]), g.constant(ends),
                                  g.constant([c[0] for c in cut]), g.constant([c[1][2] for c in cut])])
        return g.node("Squeeze", [sliced, g.constant(taken)]) if taken else sliced

    def into_source(self, new):
        """Where a view's new values ``new`` go in its source, for a change made through the view: (index, values)."""
        return self.index, new

    def forward(self, x, index=None):
        self.in_shape, self.dtype, self.index = x.shape, x.dtype, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {x.shape})") from None

    scatters = True

    def part(self):
        return self.index if is_basic_index(self.index) else None

    def backward(self, grad):
        return (ScatterAdd.on(grad, shape=self.in_shape, index=self.index),)


def _scatter_add(values: np.ndarray, shape: tuple[int, ...], index) -> np.ndarray:
    """Zeros of ``shape`` with ``values`` added at ``index`` (repeated indices add up)."""
    out = np.zeros(shape, dtype=values.dtype)
    if is_basic_index(index):
        out[index] = values  # a basic index hits each element at most once
    else:
        np.add.at(out, index, values)
    return out


class ScatterAdd(Function):
    """z = zeros(shape) with x added at index, repeated indices adding up: getitem's backward as an op, so that
    it can be differentiated again;  dz/dx = g read back at index (a getitem)."""

    __slots__ = ("index",)
    name = "scatter_add"
    saves_values = False

    def forward(self, x, shape=(), index=None):
        self.index = index
        return _scatter_add(x, shape, index)

    def backward(self, grad):
        return (grad[self.index],)



class Embedding(Function):
    """z = weight[indices]: the rows of weight (num_embeddings, dim) that integer indices of any shape pick
    (PyTorch's embedding);  dz/dweight = g added up into the picked rows (repeated indices add up), the row
    ``padding_idx`` getting none; the indices get no gradient."""

    __slots__ = ("indices", "rows", "padding_idx")
    name = "embedding"
    linear = True
    constants = ("indices",)  # they only say where the rows go

    def onnx(self, g, ins, out):
        return g.node("Gather", ins, axis=0)

    def forward(self, weight, indices, padding_idx=None):
        if indices.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be integers, got dtype {indices.dtype} (shape {indices.shape})")
        if weight.ndim != 2:
            raise ValueError(f"embedding: weight must be (num_embeddings, embedding_dim), got shape {weight.shape}")
        bad = indices[(indices < 0) | (indices >= weight.shape[0])]
        if bad.size:
            raise IndexError(f"embedding: index {bad.flat[0]} is out of range for {weight.shape[0]} embeddings "
                             f"(weight shape {weight.shape}, indices shape {indices.shape})")
        self.indices, self.rows, self.padding_idx = indices, weight.shape, padding_idx
        return weight[indices]

    def backward(self, grad):
        if self.padding_idx is not None:  # the padding row learns nothing, as PyTorch
            grad = np.where((self.indices == self.padding_idx)[..., None], 0, grad)
        return ScatterAdd.on(grad, shape=self.rows, index=self.indices), None

    def label(self):
        return "embedding" if self.padding_idx is None else f"embedding(padding_idx={self.padding_idx})"


# ----------------------------------------------------------------------------------------------------------
# Layers: convolution and pooling on (N, C, H, W) arrays, vectorised with im2col. A window view of the
# input (no copy) gives every kh x kw patch; the convolution is then one matrix product for the whole batch,
# and a backward adds the patches' gradients back with one strided add per kernel offset (kh * kw of them),
# never a Python loop over pixels.
# ----------------------------------------------------------------------------------------------------------


class SetItem(Function):
    """z = x with z[index] = v (v broadcast to the indexed part);  dz/dx = g with zeros at index,
    dz/dv = g[index] (the engine sums it back to v's shape). The rule of ``t[index] = v`` and ``assign``."""

    __slots__ = ("index", "shape")
    name = "setitem"
    saves_values = False

    def onnx(self, g, ins, out):
        """A whole overwrite (``assign``, an activation with ``inplace=True``): the new values, as its dtype."""
        if self.index is not Ellipsis:
            raise NotImplementedError(f"to_onnx: no ONNX mapping for setitem at an index (output shape {out.shape}); "
                                      "only a whole overwrite (t.assign(v), t[...] = v) is mapped")
        value = self.inputs[1]
        same = value.shape == out.shape
        new = g.node("Identity", [ins[1]]) if same else \
            g.node("Expand", [ins[1], g.constant(g.expand_shape(value, out, self.label()))])
        return new if value.dtype == out.dtype else g.node("Cast", [new], to=g.dtype_code(out.dtype))

    def forward(self, x, v, index=None):
        out = x.copy()
        try:
            out[index] = v
        except (IndexError, ValueError) as e:
            raise ValueError(f"setitem: {e} (tensor shape {x.shape}, value shape {v.shape})") from None
        self.index, self.shape = index, x.shape
        return out

    def backward(self, grad):
        need_x, need_v = self.needs_grad
        gx = gv = None
        if need_x:
            written = np.zeros(self.shape, dtype=bool)
            written[self.index] = True
            gx = np.where(written, 0, grad)
        if need_v:
            gv = grad[self.index]
        return gx, gv


def int_pair(value: int | Sequence[int], what: str, op: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints (height, width) as a pair, each at least ``minimum``, or an error naming ``op``.
    Public because the layers (``nn.Conv2d``, ``nn.MaxPool2d``) take the same arguments."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) if isinstance(
        value, (tuple, list)) else None
    if pair is None or len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                                 for v in pair):
        raise TypeError(f"{op}: {what} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {what} must be at least {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Every kernel-sized window of ``x`` (N, C, H, W) at ``stride``, as a view of shape (N, C, Ho, Wo, kh, kw)."""
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::stride[0], ::stride[1]]


def _col2im(cols: np.ndarray, out: np.ndarray, stride: tuple[int, int]) -> np.ndarray:
    """The adjoint of ``_windows``: window values ``cols`` (kh, kw, A, B, Ho, Wo) added, in place, onto ``out``
    (A, B, H, W) where they were read; overlapping windows add up. Returns ``out``."""
    kh, kw, _, _, ho, wo = cols.shape
    sh, sw = stride
    for i in range(kh):  # one vectorised add per kernel offset
        for j in range(kw):
            out[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw] += cols[i, j]
    return out


def _conv_input_grad(w_flat: np.ndarray, grad: np.ndarray, shape: tuple[int, ...],
                     kernel: tuple[int, int]) -> np.ndarray:
    """dz/dx (``shape``, N C Hp Wp) of a stride-1 convolution with weight matrix ``w_flat`` (out, C kh kw), on
    arrays: col2im(W^T g) with g's rows widened to Wp by zero columns, so the patches of kernel offset (i, j),
    W[:, :, i, j]^T g, land at flat offset i Wp + j of each image and are added with one shifted add over whole
    images (long inner loops; the generic col2im runs Wo-long ones). The zero columns spill into the next row:
    they add nothing. One offset at a time, so no (C kh kw, N Ho Wp) matrix is ever held."""
    n, o, ho, wo = grad.shape
    _, c, hp, wp = shape
    kh, kw = kernel
    g = np.zeros((o, n, ho, wp), dtype=grad.dtype)
    g[..., :wo] = grad.transpose(1, 0, 2, 3)
    w4, g = w_flat.reshape(o, c, kh, kw), g.reshape(o, -1)
    dtype = np.result_type(w_flat, g)
    part = np.empty((c, n, ho * wp), dtype=dtype)  # one offset's patches at a time: a small buffer, reused
    out = np.zeros((c, n, (hp + 1) * wp), dtype=dtype)  # a spare row for the last offsets' zero columns
    for i in range(kh):
        for j in range(kw):
            np.matmul(w4[:, :, i, j].T, g, out=part.reshape(c, -1))
            start = i * wp + j
            out[:, :, start:start + ho * wp] += part
    return out[:, :, :hp * wp].reshape(c, n, hp, wp).transpose(1, 0, 2, 3)


def _check_images(x: np.ndarray, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expects input of shape (N, C, H, W), got shape {x.shape}")


def _as_dtype(x, dtype):
    """``x`` (an array, or a Tensor in a forward re-run on Tensors) as ``dtype``."""
    return x if x.dtype == dtype else Cast.on(x, dtype=dtype)


class Pad(Function):
    """z = x padded with a constant (np.pad, mode "constant");  dz/dx = g with the padding cut off."""

    __slots__ = ("inner",)
    name = "pad"
    implements = np.pad
    linear = True
    saves_values = False

    def onnx(self, g, ins, out):
        begins = [s.start for s in self.inner]
        ends = [size - s.stop for size, s in zip(out.shape, self.inner)]
        value = getattr(self, "params", {}).get("constant_values", 0)
        return g.node("Pad", [ins[0], g.constant(begins + ends), g.constant(value, out.dtype)], mode="constant")

    def forward(self, x, pad_width=0, mode="constant", constant_values=0):
        if mode != "constant":
            raise ValueError(f"pad: only mode='constant' is supported on Tensors, got {mode!r}")
        try:  # NumPy's forms: n, (before, after), or one (before, after) per axis
            widths = np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (x.ndim, 2))
        except (ValueError, TypeError):
            raise ValueError(f"pad: pad_width {pad_width!r} does not fit a tensor of shape {x.shape}") from None
        if (widths < 0).any():
            raise ValueError(f"pad: pad_width must not be negative, got {pad_width!r}")
        self.inner = tuple(slice(int(a), int(a) + size) for (a, _), size in zip(widths, x.shape))
        return np.pad(x, widths, mode="constant", constant_values=constant_values)

    def backward(self, grad):
        return (grad[self.inner],)


class Windows(Function):
    """z[i, j, n, c, h, v] = x[n, c, sh * h + i, sw * v + j]: every (kh, kw) window of x (N, C, H, W) at stride
    (sh, sw), as a view of shape (kh, kw, N, C, Ho, Wo);  dz/dx = col2im(g): each window's gradient added back
    where it was read."""

    __slots__ = ("in_shape", "stride")
    name = "windows"
    view = True
    linear = True
    saves_values = False

    def forward(self, x, kernel=(1, 1), stride=(1, 1)):
        self.in_shape, self.stride = x.shape, stride
        return _windows(x, kernel, stride).transpose(4, 5, 0, 1, 2, 3)

    def backward(self, grad):
        return (Col2im.on(grad, shape=self.in_shape, stride=self.stride),)


class Col2im(Function):
    """z = zeros(shape) (N, C, H, W) with each window of cols (kh, kw, N, C, Ho, Wo) added where it would be read
    at stride (overlapping windows add up): the adjoint of windows;  dz/dcols = windows(g)."""

    __slots__ = ("kernel", "stride")
    name = "col2im"
    linear = True
    saves_values = False

    def forward(self, cols, shape=(), stride=(1, 1)):
        self.kernel, self.stride = cols.shape[:2], stride
        return _col2im(cols, np.zeros(shape, dtype=cols.dtype), stride)

    def backward(self, grad):
        return (Windows.on(grad, kernel=self.kernel, stride=self.stride),)


class Conv2d(Function):
    """z[n, o] = b[o] + sum_{c, i, j} w[o, c, i, j] * xp[n, c, s*h + i, s*v + j] (cross-correlation, as PyTorch),
    xp the input zero-padded by p. With cols the (C kh kw, N Ho Wo) matrix of every patch of the batch and W the
    weight as an (out, C kh kw) matrix:  z = W cols + b;  dz/dW = g cols^T,  dz/db = g summed over n, h, v,
    dz/dx = col2im(W^T g) (each patch's gradient added back where it was read), padding cut off.

    Keeps the patch matrix for the backward: kh * kw times the input's size.
    """

    __slots__ = ("cols", "w", "w_shape", "padded", "padding", "stride", "in_shape")
    name = "conv2d"

    def onnx(self, g, ins, out):
        ph, pw = self.padding
        return g.node("Conv", ins, kernel_shape=list(self.inputs[1].shape[2:]), strides=list(self.stride),
                      pads=[ph, pw, ph, pw])

    def forward(self, x, w, b=None, stride=1, padding=0):
        stride, (ph, pw) = int_pair(stride, "stride", "conv2d", 1), int_pair(padding, "padding", "conv2d", 0)
        _check_images(x, "conv2d")
        if w.ndim != 4:
            raise ValueError(f"conv2d: expects a weight of shape (out_channels, in_channels, kh, kw), got {w.shape}")
        (n, c, h, wd), (o, c_w, kh, kw) = x.shape, w.shape
        if c != c_w:
            raise ValueError(f"conv2d: input of shape {x.shape} has {c} channels, but the weight of shape {w.shape} "
                             f"expects {c_w}")
        if b is not None and b.shape != (o,):
            raise ValueError(f"conv2d: bias of shape {b.shape} does not fit a weight of shape {w.shape} ({o},)")
        if kh > h + 2 * ph or kw > wd + 2 * pw:
            raise ValueError(f"conv2d: kernel ({kh}, {kw}) is larger than the padded input ({h + 2 * ph}, "
                             f"{wd + 2 * pw}) (input shape {x.shape}, padding ({ph}, {pw}))")
        dtype = result_dtype(x, w) if b is None else result_dtype(x, w, b)
        x, w = _as_dtype(x, dtype), _as_dtype(w, dtype)
        if ph or pw:
            x = Pad.on(x, pad_width=((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = Windows.on(x, kernel=(kh, kw), stride=stride)  # (kh, kw, N, C, Ho, Wo), a view
        self.cols = Permute.on(windows, order=(3, 0, 1, 2, 4, 5)).reshape(c * kh * kw, -1)  # the one copy
        self.w, self.w_shape = w, w.shape
        self.padded, self.padding, self.stride, self.in_shape = x.shape, (ph, pw), stride, (h, wd)
        out = (w.reshape(o, -1) @ self.cols).reshape(o, n, *windows.shape[-2:])
        if b is not None:
            out = out + _as_dtype(b, dtype)[:, None, None, None]
        return Permute.on(out, order=(1, 0, 2, 3))  # (N, out, Ho, Wo), a view: the next op reads any layout

    def backward(self, grad):
        need_x, need_w, *need_b = self.needs_grad
        n, o, ho, wo = grad.shape
        g = Permute.on(grad, order=(1, 0, 2, 3)).reshape(o, n * ho * wo)  # the forward's layout: one matrix
        gx = gw = gb = None
        if need_x:
            _, c, kh, kw = self.w_shape
            w_flat = self.w.reshape(o, -1)
            if self.stride == (1, 1) and isinstance(grad, np.ndarray):  # a first-order backward: the fast way
                padded = _conv_input_grad(w_flat, grad, self.padded, (kh, kw))
            else:
                patches = Permute.on((w_flat.T @ g).reshape(c, kh, kw, n, ho, wo), order=(1, 2, 3, 0, 4, 5))
                padded = Col2im.on(patches, shape=self.padded, stride=self.stride)
            (ph, pw), (h, w) = self.padding, self.in_shape
            gx = padded[:, :, ph:ph + h, pw:pw + w]
        if need_w:
            gw = (g @ self.cols.T).reshape(self.w_shape)
        if need_b and need_b[0]:
            gb = g.sum(axis=1)
        return gx, gw, gb

    def label(self):
        return f"conv2d(stride={self.stride}, padding={self.padding})"


class MaxPool2d(Function):
    """z[n, c, h, v] = max over the kernel window at (s*h, s*v) of x[n, c];  dz/dx = 1 at the window's maximum
    (the first one in row-major order when several are equal, as PyTorch; a nan is the maximum, and the first
    nan gets the gradient where PyTorch picks the last), 0 elsewhere; overlapping windows add up.

    Both directions go over the kernel offsets (kh * kw vectorised passes): the forward takes a running
    maximum, the backward hands each window's gradient to the first offset that holds the maximum.
    """

    __slots__ = ("x", "out", "kernel", "stride")
    name = "max_pool2d"
    constants = ("x", "out")  # they say where the maxima are

    def onnx(self, g, ins, out):
        return g.node("MaxPool", ins, kernel_shape=list(self.kernel), strides=list(self.stride))

    def forward(self, x, kernel_size=2, stride=None):
        kernel = int_pair(kernel_size, "kernel_size", "max_pool2d", 1)
        stride = kernel if stride is None else int_pair(stride, "stride", "max_pool2d", 1)
        _check_images(x, "max_pool2d")
        if kernel[0] > x.shape[2] or kernel[1] > x.shape[3]:
            raise ValueError(f"max_pool2d: kernel {kernel} is larger than the input {x.shape[2:]} "
                             f"(input shape {x.shape})")
        win = _windows(x, kernel, stride)
        out = win[..., 0, 0].copy()
        for i, j in np.ndindex(*kernel):
            np.maximum(out, win[..., i, j], out=out)  # nan propagates, as in PyTorch
        self.x, self.out, self.kernel, self.stride = x, out, kernel, stride
        return out

    def backward(self, grad):
        if not isinstance(grad, np.ndarray):  # with create_graph: a formula the engine can differentiate
            winners = np.empty(self.kernel + self.out.shape, dtype=bool)
            for i, j, hit in self._hits():
                winners[i, j] = hit
            return (Col2im.on(grad * winners, shape=self.x.shape, stride=self.stride),)
        # on arrays: each offset's share written straight where it was read, no (kh, kw, ...) temporaries
        gx = np.zeros(self.x.shape, dtype=grad.dtype)
        (sh, sw), (ho, wo) = self.stride, self.out.shape[2:]
        apart = self.stride[0] >= self.kernel[0] and self.stride[1] >= self.kernel[1]  # windows do not overlap
        for i, j, hit in self._hits():
            dest = gx[:, :, i:i + sh * ho:sh, j:j + sw * wo:sw]
            if apart:
                np.multiply(grad, hit, out=dest)
            else:
                dest += grad * hit
        return (gx,)

    def _hits(self):
        """(i, j, hit) for each kernel offset, hit (N, C, Ho, Wo) True where the window's maximum is at (i, j)
        (the first offset holding it). ``hit`` is one buffer, overwritten from one offset to the next."""
        win, out = _windows(self.x, self.kernel, self.stride), self.out
        nan = out.dtype.kind == "f" and np.isnan(out).any()
        unclaimed = np.ones(out.shape, dtype=bool)  # windows whose maximum has not been found yet
        hit = np.empty(out.shape, dtype=bool)
        for i, j in np.ndindex(*self.kernel):
            np.equal(win[..., i, j], out, out=hit)
            if nan:
                hit |= np.isnan(win[..., i, j])
            hit &= unclaimed
            unclaimed ^= hit
            yield i, j, hit

    def label(self):
        return f"max_pool2d(kernel_size={self.kernel}, stride={self.stride})"


# ----------------------------------------------------------------------------------------------------------
# Recurrent layers: one fused LSTM time step
# ----------------------------------------------------------------------------------------------------------


class LSTMStep(Function):
    """One LSTM time step, fused: from the input's part of the gates ``gx`` (x W_ih^T + b_ih + b_hh, blocks i, f,
    g, o of size H), the state h, c and the weight W_hh (4H, h's size):
        a = gx + h W_hh^T,  i, f, o = sigmoid(a_i, a_f, a_o),  g = tanh(a_g),
        c' = f * c + i * g,  h' = o * tanh(c'),  z = [h', c'] (one output: the two joined along the last axis).
    With G_h, G_c the halves of the gradient: dc' = G_c + G_h * o * (1 - tanh(c')^2),
        da = [dc' g, dc' c, dc' i, G_h tanh(c')] * [i (1 - i), f (1 - f), 1 - g^2, o (1 - o)],
        dz/dgx = da,  dz/dh = da W_hh,  dz/dc = dc' f,  dz/dW_hh = da^T h.

    Fused for speed: one node per time step instead of about twelve small ones (the engine's cost per op dominates
    at LSTM sizes). The backward reads the gate activations it saved, so with create_graph the forward is re-run on
    Tensors and second derivatives come from the engine.
    """

    __slots__ = ("h", "c", "w_hh", "act", "tc")
    name = "lstm_step"

    def forward(self, gx, h, c, w_hh):
        size = c.shape[-1]
        if w_hh.ndim != 2 or w_hh.shape != (4 * size, h.shape[-1]) or gx.shape[-1] != 4 * size:
            raise ValueError(f"lstm_step: gates of shape {gx.shape}, h {h.shape}, c {c.shape} and W_hh {w_hh.shape} "
                             f"do not fit: expected gates (..., 4 * {size}) and W_hh (4 * {size}, {h.shape[-1]})")
        a = gx + h @ w_hh.T
        s = Sigmoid.on(a)  # all four blocks in one call (fewer, larger NumPy calls), then g's block replaced
        act = np.concatenate([s[..., :2 * size], np.tanh(a[..., 2 * size:3 * size]), s[..., 3 * size:]], axis=-1)
        i, f, g, o = (act[..., k * size:(k + 1) * size] for k in range(4))
        c_new = f * c + i * g
        tc = np.tanh(c_new)
        self.h, self.c, self.w_hh, self.act, self.tc = h, c, w_hh, act, tc
        return np.concatenate([o * tc, c_new], axis=-1)

    def backward(self, grad):
        size, act, tc = self.c.shape[-1], self.act, self.tc
        i, f, g, o = (act[..., k * size:(k + 1) * size] for k in range(4))
        g_h, g_c = grad[..., :size], grad[..., size:]
        dc = g_c + g_h * o * (1 - tc * tc)
        # each activation's slope from its value, all blocks at once: s (1 - s) for a sigmoid, (1 - t)(1 + t) for g
        plus = np.zeros(4 * size, dtype=act.dtype)
        plus[2 * size:3 * size] = 1
        da = np.concatenate([dc * g, dc * self.c, dc * i, g_h * tc], axis=-1) * ((1 - act) * (act + plus))
        need_gx, need_h, need_c, need_w = self.needs_grad
        return (da if need_gx else None, da @ self.w_hh if need_h else None, dc * f if need_c else None,
                np.swapaxes(da, -1, -2) @ self.h if need_w else None)

    def onnx(self, g, ins, out):
        """The same computation from MatMul, Add, Slice, Sigmoid, Tanh, Mul and Concat nodes."""
        size, last = self.inputs[2].shape[-1], out.ndim - 1
        a = g.node("Add", [ins[0], g.node("MatMul", [ins[1], g.node("Transpose", [ins[3]], perm=[1, 0])])])
        i, f, gate, o = (g.node("Slice", [a, g.constant([k * size]), g.constant([(k + 1) * size]), g.constant([last])])
                         for k in range(4))
        i, f, gate, o = g.node("Sigmoid", [i]), g.node("Sigmoid", [f]), g.node("Tanh", [gate]), g.node("Sigmoid", [o])
        c_new = g.node("Add", [g.node("Mul", [f, ins[2]]), g.node("Mul", [i, gate])])
        h_new = g.node("Mul", [o, g.node("Tanh", [c_new])])
        return g.node("Concat", [h_new, c_new], axis=last)


# ----------------------------------------------------------------------------------------------------------
# NumPy's other differentiable functions: elementwise, scans and products over axes, linear algebra. NumPy code
# on Tensors reaches them through ``implements``; composites (stacking, splitting, flipping, einsum, norms ...)
# are built from the rules above in numpy_protocol.py. Each backward works on arrays and on Tensors.
# ----------------------------------------------------------------------------------------------------------

_LN2, _LN10 = math.log(2.0), math.log(10.0)


def _values(x) -> np.ndarray:
    """The array of ``x`` (an array, or a Tensor in a backward run on Tensors): for masks a backward only compares,
    never for values it differentiates."""
    return x if isinstance(x, np.ndarray) else np.asarray(x.data)


class Arcsin(Function):
    """z = arcsin(x);  dz/dx = 1 / sqrt(1 - x^2)  (infinite at x = -1 and 1, nan outside [-1, 1])."""

    __slots__ = ("x",)
    name = "arcsin"
    methods = ("asin", "arcsin")
    implements = np.arcsin
    onnx = "Asin"
    derivative = "1 / sqrt(1 - z**2)"
    hint = "arcsin is nan outside [-1, 1]"
    backward_hint = "d arcsin(x)/dx = 1/sqrt(1 - x^2) is infinite at x = -1 and x = 1"

    def forward(self, x):
        self.x = _floating(x)
        return np.arcsin(self.x)

    def backward(self, grad):
        x = self.x
        return (grad / np.sqrt(1 - x * x),)


class Arccos(Function):
    """z = arccos(x);  dz/dx = -1 / sqrt(1 - x^2)  (infinite at x = -1 and 1, nan outside [-1, 1])."""

    __slots__ = ("x",)
    name = "arccos"
    methods = ("acos", "arccos")
    implements = np.arccos
    onnx = "Acos"
    derivative = "-1 / sqrt(1 - z**2)"
    hint = "arccos is nan outside [-1, 1]"
    backward_hint = "d arccos(x)/dx = -1/sqrt(1 - x^2) is infinite at x = -1 and x = 1"

    def forward(self, x):
        self.x = _floating(x)
        return np.arccos(self.x)

    def backward(self, grad):
        x = self.x
        return (-grad / np.sqrt(1 - x * x),)


class Arctan(Function):
    """z = arctan(x);  dz/dx = 1 / (1 + x^2)."""

    __slots__ = ("x",)
    name = "arctan"
    methods = ("atan", "arctan")
    implements = np.arctan
    onnx = "Atan"
    derivative = "1 / (1 + z**2)"

    def forward(self, x):
        self.x = _floating(x)
        return np.arctan(self.x)

    def backward(self, grad):
        x = self.x
        return (grad / (1 + x * x),)


class Arctan2(Function):
    """z = arctan2(y, x), the angle of the point (x, y);  dz/dy = x / (x^2 + y^2),  dz/dx = -y / (x^2 + y^2)
    (nan at the origin, where the angle jumps)."""

    __slots__ = ("y", "x")
    name = "arctan2"
    implements = np.arctan2
    backward_hint = "d arctan2(y, x) = (x dy - y dx) / (x^2 + y^2) is undefined at the origin"

    def forward(self, y, x):
        self.y, self.x = _floating(y), _floating(x)
        return np.arctan2(self.y, self.x)

    def backward(self, grad):
        need_y, need_x = self.needs_grad
        y, x = self.y, self.x
        scaled = grad / (x * x + y * y)
        return (scaled * x if need_y else None), (-scaled * y if need_x else None)


class Sinh(Function):
    """z = sinh(x);  dz/dx = cosh(x)."""

    __slots__ = ("x",)
    name = "sinh"
    methods = ("sinh",)
    implements = np.sinh
    onnx = "Sinh"
    derivative = "cosh(z)"

    def forward(self, x):
        self.x = _floating(x)
        return np.sinh(self.x)

    def backward(self, grad):
        return (grad * Cosh.on(self.x),)


class Cosh(Function):
    """z = cosh(x);  dz/dx = sinh(x)."""

    __slots__ = ("x",)
    name = "cosh"
    methods = ("cosh",)
    implements = np.cosh
    onnx = "Cosh"
    derivative = "sinh(z)"

    def forward(self, x):
        self.x = _floating(x)
        return np.cosh(self.x)

    def backward(self, grad):
        return (grad * Sinh.on(self.x),)


class Arcsinh(Function):
    """z = arcsinh(x);  dz/dx = 1 / sqrt(x^2 + 1)."""

    __slots__ = ("x",)
    name = "arcsinh"
    methods = ("asinh", "arcsinh")
    implements = np.arcsinh
    onnx = "Asinh"
    derivative = "1 / sqrt(z**2 + 1)"

    def forward(self, x):
        self.x = _floating(x)
        return np.arcsinh(self.x)

    def backward(self, grad):
        x = self.x
        return (grad / np.sqrt(x * x + 1),)


class Arccosh(Function):
    """z = arccosh(x);  dz/dx = 1 / sqrt(x^2 - 1)  (infinite at x = 1, nan below)."""

    __slots__ = ("x",)
    name = "arccosh"
    methods = ("acosh", "arccosh")
    implements = np.arccosh
    onnx = "Acosh"
    derivative = "1 / sqrt(z**2 - 1)"
    hint = "arccosh is nan below 1"
    backward_hint = "d arccosh(x)/dx = 1/sqrt(x^2 - 1) is infinite at x = 1"

    def forward(self, x):
        self.x = _floating(x)
        return np.arccosh(self.x)

    def backward(self, grad):
        x = self.x
        return (grad / np.sqrt(x * x - 1),)


class Arctanh(Function):
    """z = arctanh(x);  dz/dx = 1 / (1 - x^2)  (infinite at x = -1 and 1, nan outside [-1, 1])."""

    __slots__ = ("x",)
    name = "arctanh"
    methods = ("atanh", "arctanh")
    implements = np.arctanh
    onnx = "Atanh"
    derivative = "1 / (1 - z**2)"
    hint = "arctanh is infinite at -1 and 1 and nan outside [-1, 1]"
    backward_hint = "d arctanh(x)/dx = 1/(1 - x^2) is infinite at x = -1 and x = 1"

    def forward(self, x):
        self.x = _floating(x)
        return np.arctanh(self.x)

    def backward(self, grad):
        x = self.x
        return (grad / (1 - x * x),)


class Exp2(Function):
    """z = 2^x;  dz/dx = z ln 2."""

    __slots__ = ("out",)
    name = "exp2"
    methods = ("exp2",)
    implements = np.exp2
    derivative = "2**z * ln(2)"
    hint = "exp2 overflows past 128 (float32) or 1024 (float64)"

    def forward(self, x):
        self.out = np.exp2(_floating(x))
        return self.out

    def backward(self, grad):
        return (grad * self.out * _LN2,)


class Expm1(Function):
    """z = exp(x) - 1, accurate for tiny x;  dz/dx = exp(x) = z + 1."""

    __slots__ = ("out",)
    name = "expm1"
    methods = ("expm1",)
    implements = np.expm1
    derivative = "exp(z)"
    hint = "expm1 overflows past 88 (float32) or 709 (float64)"

    def onnx(self, g, ins, out):
        return g.node("Sub", [g.node("Exp", ins), g.constant(1, out.dtype)])

    def forward(self, x):
        self.out = np.expm1(_floating(x))
        return self.out

    def backward(self, grad):
        return (grad * (self.out + 1),)


class Log2(Function):
    """z = log2(x);  dz/dx = 1 / (x ln 2)."""

    __slots__ = ("x",)
    name = "log2"
    methods = ("log2",)
    implements = np.log2
    derivative = "1 / (z * ln(2))"
    hint = "log2(0) is -inf and log2(x < 0) is nan"
    backward_hint = "d log2(x)/dx = 1/(x ln 2) is infinite at x = 0"

    def forward(self, x):
        self.x = _floating(x)
        return np.log2(self.x)

    def backward(self, grad):
        return (grad / (self.x * _LN2),)


class Log10(Function):
    """z = log10(x);  dz/dx = 1 / (x ln 10)."""

    __slots__ = ("x",)
    name = "log10"
    methods = ("log10",)
    implements = np.log10
    derivative = "1 / (z * ln(10))"
    hint = "log10(0) is -inf and log10(x < 0) is nan"
    backward_hint = "d log10(x)/dx = 1/(x ln 10) is infinite at x = 0"

    def forward(self, x):
        self.x = _floating(x)
        return np.log10(self.x)

    def backward(self, grad):
        return (grad / (self.x * _LN10),)


class Logaddexp(Function):
    """z = log(exp(x) + exp(y)), without overflow;  dz/dx = exp(x - z),  dz/dy = exp(y - z)  (a softmax of the
    two)."""

    __slots__ = ("x", "y", "out")
    name = "logaddexp"
    implements = np.logaddexp

    def forward(self, x, y):
        self.x, self.y = _floating(x), _floating(y)
        self.out = np.logaddexp(self.x, self.y)
        return self.out

    def backward(self, grad):
        need_x, need_y = self.needs_grad
        out = self.out
        return ((grad * Exp.on(self.x - out) if need_x else None),
                (grad * Exp.on(self.y - out) if need_y else None))


class Logaddexp2(Function):
    """z = log2(2^x + 2^y), without overflow;  dz/dx = 2^(x - z),  dz/dy = 2^(y - z)."""

    __slots__ = ("x", "y", "out")
    name = "logaddexp2"
    implements = np.logaddexp2

    def forward(self, x, y):
        self.x, self.y = _floating(x), _floating(y)
        self.out = np.logaddexp2(self.x, self.y)
        return self.out

    def backward(self, grad):
        need_x, need_y = self.needs_grad
        out = self.out
        return ((grad * Exp2.on(self.x - out) if need_x else None),
                (grad * Exp2.on(self.y - out) if need_y else None))


class Cbrt(Function):
    """z = x^(1/3), real for negative x too;  dz/dx = 1 / (3 z^2)  (infinite at x = 0)."""

    __slots__ = ("out",)
    name = "cbrt"
    implements = np.cbrt
    derivative = "1 / (3 * cbrt(z)**2)"
    backward_hint = "d cbrt(x)/dx = 1/(3 cbrt(x)^2) is infinite at x = 0"

    def forward(self, x):
        self.out = np.cbrt(_floating(x))
        return self.out

    def backward(self, grad):
        out = self.out
        return (grad / (3 * out * out),)


class Reciprocal(Function):
    """z = 1 / x (in floating point for integer x, as PyTorch);  dz/dx = -1 / x^2 = -z^2."""

    __slots__ = ("out",)
    name = "reciprocal"
    methods = ("reciprocal",)
    implements = np.reciprocal
    onnx = "Reciprocal"
    derivative = "-1 / z**2"
    hint = "1 / 0 is inf"
    backward_hint = "d(1/x)/dx = -1/x^2 is infinite at x = 0"

    def forward(self, x):
        self.out = np.reciprocal(_floating(x))
        return self.out

    def backward(self, grad):
        out = self.out
        return (-grad * out * out,)


class Sinc(Function):
    """z = sin(pi x) / (pi x), 1 at x = 0 (NumPy's and PyTorch's normalised sinc);
    dz/dx = (cos(pi x) - z) / x, 0 at x = 0 (written there as -(pi^2 / 3) x, whose value is that 0 and whose
    derivative is sinc's second derivative at 0, so that it differentiates again)."""

    __slots__ = ("x", "out")
    name = "sinc"
    methods = ("sinc",)
    implements = np.sinc
    derivative = "(cos(pi z) - sinc(z)) / z"

    def forward(self, x):
        self.x = _floating(x)
        self.out = np.sinc(self.x)
        return self.out

    def backward(self, grad):
        x = self.x
        zero = _values(x) == 0
        slope = np.where(zero, x * (-math.pi ** 2 / 3), (Cos.on(x * math.pi) - self.out) / np.where(zero, 1, x))
        return (grad * slope,)


class Remainder(Function):
    """z = x mod y, with the sign of y (np.remainder, np.mod, Python's %);  dz/dx = 1,  dz/dy = -floor(x / y)
    (the multiple of y taken away; the jumps where x / y is an integer have no derivative)."""

    __slots__ = ("x", "y")
    name = "remainder"
    implements = np.remainder
    constants = ("x", "y")  # floor(x / y) is piecewise constant: its derivative is 0

    def forward(self, x, y):
        self.x, self.y = x, y
        return np.remainder(x, y)

    def backward(self, grad):
        need_x, need_y = self.needs_grad
        quotient = np.floor(_values(self.x) / _values(self.y))
        return (grad if need_x else None), (grad * -quotient if need_y else None)


# -- products and sums along axes ---------------------------------------------------------------------------


def _axis_index(ndim: int, axis: int, part) -> tuple:
    """The index that takes ``part`` (a slice or an int) along ``axis`` and everything along the other axes."""
    return (slice(None),) * (axis % ndim) + (part,)


def _flip(x, axis: int):
    """``x`` reversed along ``axis`` (a view; also on Tensors)."""
    return x[_axis_index(x.ndim, axis, slice(None, None, -1))]


def _reverse_cumsum(x, axis: int):
    """Sums from each position to the end along ``axis``: z_i = sum_{k >= i} x_k."""
    return _flip(Cumsum.on(_flip(x, axis), axis=axis), axis)


def _normalised_axis(axis, ndim: int, op: str) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{op}: axis must be an int or None, got {axis!r}")
    if not -ndim <= axis < max(ndim, 1):
        raise np.exceptions.AxisError(f"{op}: axis {axis} is out of bounds for a tensor of {ndim} dimensions")
    return int(axis) % max(ndim, 1)


class Cumsum(Function):
    """z_i = sum_{k <= i} x_k along axis (over the flattened input when axis is None, as NumPy);
    dz/dx: the gradient summed from each position to the end, z's gradient reversed, cumsum'd and reversed."""

    __slots__ = ("shape", "axis")
    name = "cumsum"
    implements = np.cumsum
    linear = True
    saves_values = False

    def forward(self, a, axis=None):
        self.shape = a.shape
        self.axis = None if axis is None else _normalised_axis(axis, a.ndim, "cumsum")
        return np.cumsum(a, axis=self.axis)

    def backward(self, grad):
        g = _reverse_cumsum(grad, 0 if self.axis is None or grad.ndim == 0 else self.axis)
        return (g.reshape(self.shape),)

    def label(self):
        return "cumsum" if self.axis is None else f"cumsum(axis={self.axis})"


def _cumprod_backward(x, z, grad, axis: int):
    """The gradient of z = cumprod(x) along ``axis`` for ``grad``: sum_{k >= i} g_k prod_{j <= k, j != i} x_j.

    Without zeros it is (sum_{k >= i} g_k z_k) / x_i. With zeros (as PyTorch, and differentiable again): take each
    row's first zero x_f out, c = cumprod(x with x_f taken as 1), so z_k = c_k * x_f for k >= f and z_k = c_k
    before; then x_f's gradient is sum_{k >= f} g_k c_k, and every other x_i's is the gradient of cumprod(c's
    input) for the upstream g_k * x_f (k >= f), g_k (k < f): the same function on one zero fewer per row. x_f
    stays in the formula (its value 0, its derivative kept), so the second derivatives are right too."""
    zeros = _values(x) == 0
    if not zeros.any():
        return _reverse_cumsum(grad * z, axis) / x
    seen = np.cumsum(zeros, axis=axis)
    first, after = zeros & (seen == 1), seen >= 1  # each row's first zero; it and the positions after it
    x_first = np.where(first, x, 0).sum(axis=axis, keepdims=True)
    rest = np.where(first, 1, x)
    c = Cumprod.on(rest, axis=axis)
    at_first = np.where(after, grad * c, 0).sum(axis=axis, keepdims=True)
    others = _cumprod_backward(rest, c, np.where(after, grad * x_first, grad), axis)
    return np.where(first, at_first, others)


class Cumprod(Function):
    """z_i = prod_{k <= i} x_k along axis (over the flattened input when axis is None, as NumPy);
    dz/dx_i = sum_{k >= i} g_k prod_{j <= k, j != i} x_j: (sum_{k >= i} g_k z_k) / x_i without zeros, and a
    formula without division where there are zeros (see ``_cumprod_backward``), so it differentiates again."""

    __slots__ = ("a", "out", "axis")
    name = "cumprod"
    implements = np.cumprod

    def forward(self, a, axis=None):
        self.axis = None if axis is None else _normalised_axis(axis, a.ndim, "cumprod")
        self.a = a
        self.out = np.cumprod(a, axis=self.axis)
        return self.out

    def backward(self, grad):
        x, z, axis = self.a, self.out, self.axis
        if axis is None or x.ndim == 0:
            return (_cumprod_backward(x.reshape(-1), z, grad, 0).reshape(x.shape),)
        return (_cumprod_backward(x, z, grad, axis),)

    def label(self):
        return "cumprod" if self.axis is None else f"cumprod(axis={self.axis})"


def _axes_tuple(axis, ndim: int, op: str) -> tuple[int, ...]:
    """NumPy's axis argument (None, an int or a tuple of ints) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = tuple(sorted({_normalised_axis(a, ndim, op) for a in axes})) if ndim else ()
    if len(out) != len(axes) and ndim:
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return out


class Prod(Function):
    """z = prod(x over axes);  dz/dx_i = the product of the other elements: z / x_i where no element reduced with
    x_i is 0; otherwise (zeros) the product of the elements before x_i times the product of those after it
    (exclusive cumulative products, as PyTorch: no division by zero, so it differentiates again)."""

    __slots__ = ("a", "out", "axes", "keepdims")
    name = "prod"
    implements = np.prod

    def forward(self, a, axis=None, keepdims=False):
        self.a, self.axes, self.keepdims = a, _axes_tuple(axis, a.ndim, "prod"), bool(keepdims)
        self.out = np.asarray(np.prod(a, axis=self.axes, keepdims=self.keepdims))
        return self.out

    def backward(self, grad):
        x, axes = self.a, self.axes
        kept = _keepdim_shape(x.shape, axes)
        grad, out = grad.reshape(kept), self.out.reshape(kept)
        if not (_values(x) == 0).any():
            return (grad * out / x,)
        rest = [i for i in range(x.ndim) if i not in axes]
        order = (*rest, *axes)
        rows = Permute.on(x, order=order).reshape(*[x.shape[i] for i in rest], -1)  # reduced elements last
        ones = np.ones(rows.shape[:-1] + (1,), dtype=rows.dtype)
        before = Cumprod.on(Cat.on(ones, rows[..., :-1], axis=rows.ndim - 1), axis=-1)
        after = _flip(Cumprod.on(_flip(Cat.on(rows[..., 1:], ones, axis=rows.ndim - 1), -1), axis=-1), -1)
        others = Permute.on((before * after).reshape([x.shape[i] for i in order]), order=_inverse(order))
        return (grad * others,)

    def label(self):
        return "prod" if len(self.axes) == np.ndim(self.a) else f"prod(axis={self.axes})"


# -- linear algebra ------------------------------------------------------------------------------------------


def _matrix_t(x):
    """The last two axes swapped (a stack of matrices transposed); also on Tensors."""
    order = list(range(x.ndim))
    order[-1], order[-2] = order[-2], order[-1]
    return Permute.on(x, order=tuple(order))


def _square_matrices(a: np.ndarray, op: str) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: expects square matrices (..., n, n), got shape {a.shape}")


class Inv(Function):
    """z = a^-1 (for a stack of square matrices);  dz/da = -z^T g z^T."""

    __slots__ = ("out",)
    name = "inv"
    implements = np.linalg.inv
    hint = "a singular matrix has no inverse"

    def forward(self, a):
        _square_matrices(a, "inv")
        self.out = np.linalg.inv(_floating(a))
        return self.out

    def backward(self, grad):
        zt = _matrix_t(self.out)
        return (-(zt @ grad @ zt),)


class Det(Function):
    """z = det(a) (for a stack of square matrices);  dz/da = z a^-T (Jacobi's formula; a singular matrix, whose
    inverse does not exist, has no gradient here)."""

    __slots__ = ("a", "out")
    name = "det"
    implements = np.linalg.det
    backward_hint = "the gradient of det uses the inverse, which a singular matrix does not have"

    def forward(self, a):
        _square_matrices(a, "det")
        self.a = _floating(a)
        self.out = np.asarray(np.linalg.det(self.a))
        return self.out

    def backward(self, grad):
        scale = (grad * self.out)[..., None, None]
        return (scale * _matrix_t(Inv.on(self.a)),)


class LogAbsDet(Function):
    """z = log |det(a)| (np.linalg.slogdet's second result, for a stack of square matrices);  dz/da = a^-T."""

    __slots__ = ("a",)
    name = "logabsdet"
    backward_hint = "the gradient of log|det| is the inverse, which a singular matrix does not have"

    def forward(self, a):
        _square_matrices(a, "slogdet")
        self.a = _floating(a)
        return np.asarray(np.linalg.slogdet(self.a)[1])

    def backward(self, grad):
        return (grad[..., None, None] * _matrix_t(Inv.on(self.a)),)


class Solve(Function):
    """z = a^-1 b, the solution of a z = b (b a vector (n,) or a stack of matrices (..., n, k), as NumPy 2);
    dz/db = a^-T g (a solve with a transposed),  dz/da = -(dz/db) z^T."""

    __slots__ = ("a", "out", "vector")
    name = "solve"
    implements = np.linalg.solve
    hint = "a singular matrix has no solution"

    def forward(self, a, b):
        _square_matrices(a, "solve")
        dtype = result_dtype(_floating(a), _floating(b))
        self.a, self.vector = a.astype(dtype, copy=False), b.ndim == 1
        self.out = np.linalg.solve(self.a, b.astype(dtype, copy=False))
        return self.out

    def backward(self, grad):
        need_a, need_b = self.needs_grad
        if self.vector:  # one vector for every matrix of the stack
            gb = Solve.on(_matrix_t(self.a), grad[..., None])[..., 0]
            ga = -(gb[..., :, None] * self.out[..., None, :]) if need_a else None
        else:
            gb = Solve.on(_matrix_t(self.a), grad)
            ga = -(gb @ _matrix_t(self.out)) if need_a else None
        return ga, (gb if need_b else None)



def _lower_halved(y):
    """Phi(y): the strictly lower triangle of each matrix of ``y``, with half its diagonal (zeros above)."""
    n = y.shape[-1]
    below, diagonal = np.tri(n, n, -1, dtype=bool), np.eye(n, dtype=bool)
    return np.where(below, y, np.where(diagonal, y * 0.5, np.zeros((), y.dtype)))


class Cholesky(Function):
    """z = L, the lower-triangular Cholesky factor of a (a = L L^T; the upper factor L^T with upper=True). As NumPy,
    only a's lower (upper) triangle is read, so the gradient is the one of that function: with
    S = L^-T Phi(L^T g) L^-1, dz/da = Phi(S + S^T), Phi the lower triangle with half the diagonal (the transposed
    formula for the upper factor). For a symmetric input made by other ops the chain rule gives the usual
    symmetric gradient (S + S^T) / 2, PyTorch's."""

    __slots__ = ("out", "upper")
    name = "cholesky"
    implements = np.linalg.cholesky
    hint = "the matrix is not positive definite"

    def forward(self, a, upper=False):
        _square_matrices(a, "cholesky")
        self.upper = bool(upper)
        self.out = np.linalg.cholesky(_floating(a), upper=self.upper)
        return self.out

    def backward(self, grad):
        factor, g = (_matrix_t(self.out), _matrix_t(grad)) if self.upper else (self.out, grad)
        inverse = Inv.on(factor)
        s = _matrix_t(inverse) @ _lower_halved(_matrix_t(factor) @ g) @ inverse
        return (_of_triangle(s, self.upper),)


def _of_triangle(s, upper: bool):
    """The gradient of a function of a symmetric matrix that reads only a's lower triangle (upper: its upper one),
    from S, its gradient as a function of the whole matrix: Phi(S + S^T) (transposed for the upper triangle)."""
    ga = _lower_halved(s + _matrix_t(s))
    return _matrix_t(ga) if upper else ga


def _uplo(value) -> bool:
    """True for NumPy's UPLO='U' (the upper triangle read), False for 'L'."""
    if value not in ("L", "U", "l", "u"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {value!r}")
    return value in ("U", "u")


class Eigvalsh(Function):
    """z = the eigenvalues of the symmetric matrix a, ascending (only a's lower triangle is read, the upper one with
    UPLO='U', as NumPy); with V its eigenvectors, the gradient for the whole symmetric matrix is S = V diag(g) V^T,
    so dz/da = Phi(S + S^T) for the triangle read (Phi: the lower triangle with half the diagonal)."""

    __slots__ = ("a", "uplo")
    name = "eigvalsh"
    implements = np.linalg.eigvalsh

    def forward(self, a, UPLO="L"):  # noqa: N803 - NumPy's name
        _square_matrices(a, "eigvalsh")
        self.a, self.uplo = _floating(a), UPLO
        return np.linalg.eigvalsh(self.a, UPLO=UPLO)

    def backward(self, grad):
        v = EighVectors.on(self.a, UPLO=self.uplo)
        return (_of_triangle((v * grad[..., None, :]) @ _matrix_t(v), _uplo(self.uplo)),)


class EighVectors(Function):
    """z = V, the eigenvectors (columns) of the symmetric matrix a (np.linalg.eigh's second result; a's lower
    triangle read, the upper one with UPLO='U'); with w the eigenvalues and F_ij = 1 / (w_j - w_i) off the
    diagonal, 0 on it, the gradient for the whole symmetric matrix is S = V (F * (V^T g)) V^T, so
    dz/da = Phi(S + S^T) for the triangle read. Repeated eigenvalues have no such gradient (F is infinite)."""

    __slots__ = ("a", "out", "uplo")
    name = "eigh_vectors"
    backward_hint = "the eigenvectors' gradient divides by differences of eigenvalues: repeated ones make it infinite"

    def forward(self, a, UPLO="L"):  # noqa: N803 - NumPy's name
        _square_matrices(a, "eigh")
        self.a, self.uplo = _floating(a), UPLO
        self.out = np.linalg.eigh(self.a, UPLO=UPLO)[1]
        return self.out

    def backward(self, grad):
        v, w = self.out, Eigvalsh.on(self.a, UPLO=self.uplo)
        same = np.eye(v.shape[-1], dtype=bool)
        gaps = w[..., None, :] - w[..., :, None]  # (i, j): w_j - w_i
        f = np.where(same, 0, 1 / np.where(same, 1, gaps))
        s = v @ (f * (_matrix_t(v) @ grad)) @ _matrix_t(v)
        return (_of_triangle(s, _uplo(self.uplo)),)


# Every primitive of this table by name, for drawings, tests and anyone reading along.
RULES: dict[str, type[Function]] = rules(__name__)
