"""Recurrent layers, as PyTorch's: the cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` (one time step) and the
sequence layers ``RNN``, ``LSTM``, ``GRU`` (layers stacked, each run over the whole sequence, in both directions
when ``bidirectional``).

Names, arguments, parameter names and shapes (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
``weight_hr_l0`` for an LSTM's projection, ``..._reverse`` for the backward direction), gate orders and the
initialisation U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) are PyTorch's, so weights copy across unchanged.
Everything is composed of Tensor operations (linear, sigmoid, tanh, slicing, stack, cat) and, for an LSTM step
without projection, the fused rule ``lstm_step`` (one node per time step rather than about twelve), so gradients
of every order come from the engine.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from ..ops import LSTMStep
from ..tensors import Tensor
from . import functional as F
from . import init
from .args import check_flag, check_int, check_probability, dtype_config, factory_dtype
from .module import Module

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}  # blocks of hidden_size rows in weight_ih / weight_hh
_MODES = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}


# ----------------------------------------------------------------------------------------------------------
# Parameters and inputs (the constructor arguments are checked by the helpers of args.py)
# ----------------------------------------------------------------------------------------------------------


def _parameter(shape: tuple[int, ...], bound: float, dtype: np.dtype) -> Tensor:
    """A parameter drawn from U(-bound, bound) (the generator ``manual_seed`` seeds)."""
    return init.uniform_(Tensor.zeros(*shape, dtype=dtype, requires_grad=True), -bound, bound)


def _check_input_dtype(x: Tensor, weight: Tensor, owner: str) -> None:
    if x.dtype != weight.dtype:  # the engine would promote silently; PyTorch refuses
        raise ValueError(f"{owner}: input dtype ({x.dtype}) does not match weight dtype ({weight.dtype}); convert "
                         f"the input (input.to({weight.dtype})) or the model")


# ----------------------------------------------------------------------------------------------------------
# One time step, shared by the cells and the sequence layers
# ----------------------------------------------------------------------------------------------------------


def _input_gates(mode: str, x: Tensor, w_ih: Tensor, b_ih: Tensor | None, b_hh: Tensor | None,
                 w_hr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """(gx, b_hh) for ``_step``: the input's part of the gates gx = x W_ih^T + b_ih for every time step in one
    product, and the bias b_hh the steps add. An LSTM without projection takes b_hh into gx once, (x W_ih^T + b_ih
    + b_hh, None), so that each of its steps is the one fused rule."""
    if mode == "LSTM" and w_hr is None and b_hh is not None:
        return F.linear(x, w_ih, b_ih + b_hh), None
    return F.linear(x, w_ih, b_ih), b_hh


def _step(mode: str, gx: Tensor, h: Tensor, c: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
          w_hr: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """The new state (h', c') from the input's part of the gates ``gx`` and the bias ``b_hh`` that
    ``_input_gates`` gave, and the state (h, c).

    RNN:  h' = act(gx + h W_hh^T + b_hh), act tanh or relu.
    LSTM (gate blocks i, f, g, o):  c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c'),
          then h' = h' W_hr^T with a projection.
    GRU (blocks r, z, n):  r, z = sigmoid(gx_r + gh_r), sigmoid(gx_z + gh_z),  n = tanh(gx_n + r * gh_n),
          h' = (1 - z) * n + z * h, where gh = h W_hh^T + b_hh (so r multiplies b_hn too, as in PyTorch).
    """
    if mode == "LSTM" and w_hr is None and b_hh is None:  # b_hh, if any, is in gx: the fused rule, then [h', c']
        hc = LSTMStep.apply(gx, h, c, w_hh)
        size = c.shape[-1]
        return hc[..., :size], hc[..., size:]
    gh = F.linear(h, w_hh, b_hh)
    if mode == "RNN_TANH":
        return (gx + gh).tanh(), None
    if mode == "RNN_RELU":
        return (gx + gh).relu(), None
    size = gh.shape[-1] // _GATES[mode]

    def block(t: Tensor, k: int) -> Tensor:
        return t[..., k * size:(k + 1) * size]

    if mode == "GRU":
        r = (block(gx, 0) + block(gh, 0)).sigmoid()
        z = (block(gx, 1) + block(gh, 1)).sigmoid()
        n = (block(gx, 2) + r * block(gh, 2)).tanh()
        return (1 - z) * n + z * h, None
    gates = gx + gh
    act = gates.sigmoid()  # one op for the three sigmoid gates (g's block of it goes unused): fewer nodes per step
    c = block(act, 1) * c + block(act, 0) * block(gates, 2).tanh()
    h = block(act, 3) * c.tanh()
    return (h if w_hr is None else F.linear(h, w_hr)), c


# ----------------------------------------------------------------------------------------------------------
# Cells: one time step
# ----------------------------------------------------------------------------------------------------------


class _CellBase(Module):
    """The parameters of a cell: weight_ih (gates * hidden_size, input_size), weight_hh (gates * hidden_size,
    hidden_size), bias_ih and bias_hh (gates * hidden_size,) when ``bias``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, mode: str, device: Any, dtype: Any) -> None:
        owner = type(self).__name__
        self.input_size = check_int(input_size, "input_size", owner)
        self.hidden_size = check_int(hidden_size, "hidden_size", owner)
        self.bias = check_flag(bias, "bias", owner)
        self._mode, dtype = mode, factory_dtype(dtype, device, owner)
        rows, bound = _GATES[mode] * hidden_size, 1 / math.sqrt(hidden_size)
        self.weight_ih = _parameter((rows, input_size), bound, dtype)
        self.weight_hh = _parameter((rows, hidden_size), bound, dtype)
        self.bias_ih = _parameter((rows,), bound, dtype) if bias else None
        self.bias_hh = _parameter((rows,), bound, dtype) if bias else None

    def _run(self, input: Tensor, hx: tuple[Tensor, ...] | None, states: int) -> tuple[Tensor, ...]:  # noqa: A002
        """The new state(s) from a (N, input_size) or unbatched (input_size,) input and the state(s) ``hx``
        (zeros when None) of shape (N, hidden_size) or (hidden_size,)."""
        owner, input = type(self).__name__, input if isinstance(input, Tensor) else Tensor(input)
        if input.ndim not in (1, 2):
            raise ValueError(f"{owner}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input has inconsistent input_size: got {input.shape[-1]}, expected "
                             f"{self.input_size} (input shape {input.shape})")
        _check_input_dtype(input, self.weight_ih, owner)
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        expected = (x.shape[0], self.hidden_size)
        if hx is None:
            hx = (Tensor.zeros(*expected, dtype=input.dtype),) * states
        else:
            hx = tuple(h if batched else h.unsqueeze(0) for h in hx)
            for i, h in enumerate(hx):
                if h.shape != expected:
                    raise ValueError(f"{owner}: hx{f'[{i}]' if states > 1 else ''} of shape "
                                     f"{h.shape if batched else h.shape[1:]} does not fit the input of shape "
                                     f"{input.shape}: expected {expected if batched else expected[1:]}")
        gx, b_hh = _input_gates(self._mode, x, self.weight_ih, self.bias_ih, self.bias_hh)
        h, c = _step(self._mode, gx, hx[0], hx[-1] if states > 1 else None, self.weight_hh, b_hh)
        new = (h,) if c is None else (h, c)
        return new if batched else tuple(s.squeeze(0) for s in new)

    @staticmethod
    def _check_dims(hx: Tensor, owner: str, what: str) -> Tensor:
        if hx.ndim not in (1, 2):
            raise ValueError(f"{owner}: Expected {what} to be 1D or 2D, got {hx.ndim}D instead")
        return hx

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")
        return text + (", nonlinearity='relu'" if self._mode == "RNN_RELU" else "")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias,
                **dtype_config(self)}


class RNNCell(_CellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (``nonlinearity='relu'``: relu), as ``torch.nn.RNNCell``.

    ``cell(input, hx=None)``: input (N, input_size) or unbatched (input_size,), hx (N, hidden_size) or
    (hidden_size,), zeros when None; returns h'.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh", *,
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in _MODES:
            raise ValueError(f"RNNCell: Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, _MODES[nonlinearity], device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002 - PyTorch's name
        return self._run(input, None if hx is None else (self._check_dims(hx, "RNNCell", "hidden"),), 1)[0]

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {**super().config(), "nonlinearity": self.nonlinearity}


class LSTMCell(_CellBase):
    """One LSTM step, as ``torch.nn.LSTMCell``: gates i, f, g, o = blocks of x W_ih^T + b_ih + h W_hh^T + b_hh;
    c' = sigmoid(f) * c + sigmoid(i) * tanh(g),  h' = sigmoid(o) * tanh(c').

    ``cell(input, hx=None)``: hx is the pair (h, c) (zeros when None); returns the pair (h', c').
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, "LSTM", device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        if hx is not None:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise ValueError(f"LSTMCell: hx must be the pair (h, c), got {type(hx).__name__}")
            hx = tuple(self._check_dims(h, "LSTMCell", f"hx[{i}]") for i, h in enumerate(hx))
        h, c = self._run(input, hx, 2)
        return h, c


class GRUCell(_CellBase):
    """One GRU step, as ``torch.nn.GRUCell``: with gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh in blocks r, z, n:
    r = sigmoid(gi_r + gh_r),  z = sigmoid(gi_z + gh_z),  n = tanh(gi_n + r * gh_n),  h' = (1 - z) * n + z * h.

    ``cell(input, hx=None)`` returns h'.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, "GRU", device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002 - PyTorch's name
        return self._run(input, None if hx is None else (self._check_dims(hx, "GRUCell", "hidden"),), 1)[0]


# ----------------------------------------------------------------------------------------------------------
# Sequence layers
# ----------------------------------------------------------------------------------------------------------


class _RNNBase(Module):
    """Layers of cells run over a sequence. Layer l, direction d has the parameters ``weight_ih_l{l}``
    (gates * hidden_size, layer input), ``weight_hh_l{l}`` (gates * hidden_size, H_out), ``bias_ih_l{l}``,
    ``bias_hh_l{l}`` (when ``bias``) and ``weight_hr_l{l}`` (proj_size, hidden_size; LSTM with ``proj_size``),
    suffixed ``_reverse`` for the backward direction. H_out is ``proj_size`` when set, else ``hidden_size``; the
    first layer's input is ``input_size``, a later layer's the previous layer's output (directions * H_out).
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, proj_size: int, device: Any,
                 dtype: Any) -> None:
        owner = type(self).__name__
        self.input_size = check_int(input_size, "input_size", owner)
        self.hidden_size = check_int(hidden_size, "hidden_size", owner)
        self.num_layers = check_int(num_layers, "num_layers", owner)
        self.bias = check_flag(bias, "bias", owner)
        self.batch_first = check_flag(batch_first, "batch_first", owner)
        self.dropout = check_probability(dropout, "dropout", owner)
        self.bidirectional = check_flag(bidirectional, "bidirectional", owner)
        self.proj_size = check_int(proj_size, "proj_size", owner, minimum=0)
        if self.proj_size >= hidden_size:
            raise ValueError(f"{owner}: proj_size has to be smaller than hidden_size, got {proj_size} and "
                             f"{hidden_size}")
        if self.dropout > 0 and num_layers == 1:  # as PyTorch: a warning, since it is legal but does nothing
            warnings.warn(f"{owner}: dropout option adds dropout after all but last recurrent layer, so non-zero "
                          f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                          f"num_layers={num_layers}", stacklevel=3)
        self._mode, dtype = mode, factory_dtype(dtype, device, owner)
        rows, out, bound = _GATES[mode] * hidden_size, self.proj_size or hidden_size, 1 / math.sqrt(hidden_size)
        # created in PyTorch's order, which is the state_dict's order and the order initial values are drawn in
        for layer in range(num_layers):
            for suffix in self._suffixes(layer):
                fan_in = input_size if layer == 0 else out * self._directions
                setattr(self, f"weight_ih{suffix}", _parameter((rows, fan_in), bound, dtype))
                setattr(self, f"weight_hh{suffix}", _parameter((rows, out), bound, dtype))
                if bias:
                    setattr(self, f"bias_ih{suffix}", _parameter((rows,), bound, dtype))
                    setattr(self, f"bias_hh{suffix}", _parameter((rows,), bound, dtype))
                if self.proj_size:
                    setattr(self, f"weight_hr{suffix}", _parameter((self.proj_size, hidden_size), bound, dtype))

    @property
    def _directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][:self._directions]

    def _weights(self, suffix: str) -> tuple[Tensor | None, ...]:
        """(weight_ih, bias_ih, weight_hh, bias_hh, weight_hr) of one layer and direction; None where absent."""
        return tuple(getattr(self, f"{name}{suffix}", None)
                     for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh", "weight_hr"))

    def _initial_states(self, hx: Any, batched: bool, batch: int, dtype: np.dtype) -> list[Tensor]:
        """[h0] or [h0, c0] (LSTM), each (directions * num_layers, batch, size), zeros when ``hx`` is None."""
        owner, lstm = type(self).__name__, self._mode == "LSTM"
        count = self._directions * self.num_layers
        shapes = [(count, batch, self.proj_size or self.hidden_size)] + ([(count, batch, self.hidden_size)] if lstm
                                                                         else [])
        if hx is None:
            return [Tensor.zeros(*shape, dtype=dtype) for shape in shapes]
        if lstm and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError(f"LSTM: hx must be the pair (h_0, c_0), got {type(hx).__name__}")
        states = list(hx) if lstm else [hx]
        dims = 3 if batched else 2
        if any(s.ndim != dims for s in states):
            raise ValueError(f"{owner}: For {'batched 3-D' if batched else 'unbatched 2-D'} input, hx should also "
                             f"be {dims}-D but got {', '.join(f'{s.ndim}-D' for s in states)} tensor(s)")
        states = states if batched else [s.unsqueeze(1) for s in states]
        for i, (state, shape) in enumerate(zip(states, shapes)):
            if state.shape != shape:
                want, got = (shape, state.shape) if batched else ((shape[0], shape[2]), state.shape[::2])
                raise ValueError(f"{owner}: Expected hidden{f'[{i}]' if lstm else ''} size {want}, got {got}")
        return states

    def _run(self, input: Tensor, hx: Any) -> tuple[Tensor, list[Tensor]]:  # noqa: A002 - PyTorch's name
        """(output, [h_n] or [h_n, c_n]) in PyTorch's layouts."""
        owner, input = type(self).__name__, input if isinstance(input, Tensor) else Tensor(input)
        if input.ndim not in (2, 3):
            raise ValueError(f"{owner}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {input.shape[-1]} (input shape {input.shape})")
        _check_input_dtype(input, self.weight_ih_l0, owner)
        batched = input.ndim == 3
        # inside, the sequence runs along axis 0: (L, N, features)
        swap = batched and self.batch_first
        x = input.permute(1, 0, 2) if swap else input if batched else input.unsqueeze(1)
        if x.shape[0] == 0:
            raise ValueError(f"{owner}: Expected sequence length to be larger than 0 (input shape {input.shape})")
        states = self._initial_states(hx, batched, x.shape[1], input.dtype)
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:  # between layers, as PyTorch: not after the last
                x = F.dropout(x, self.dropout, True)
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                w_ih, b_ih, w_hh, b_hh, w_hr = self._weights(suffix)
                gx, b_hh = _input_gates(self._mode, x, w_ih, b_ih, b_hh, w_hr)
                index = layer * self._directions + direction
                h, c = states[0][index], states[1][index] if len(states) > 1 else None
                hs: list[Tensor] = [h] * len(gx)
                for t in (reversed(range(len(gx))) if direction else range(len(gx))):
                    h, c = _step(self._mode, gx[t], h, c, w_hh, b_hh, w_hr)
                    hs[t] = h
                outputs.append(Tensor.stack(hs))
                for final, state in zip(finals, (h, c)):
                    final.append(state)
            x = outputs[0] if len(outputs) == 1 else Tensor.cat(outputs, dim=-1)
        output = x.permute(1, 0, 2) if swap else x if batched else x.squeeze(1)
        final_states = [Tensor.stack(f) for f in finals]
        return output, final_states if batched else [s.squeeze(1) for s in final_states]

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        text += f", proj_size={self.proj_size}" if self.proj_size else ""
        text += f", num_layers={self.num_layers}" if self.num_layers != 1 else ""
        text += "" if self.bias else ", bias=False"
        text += ", batch_first=True" if self.batch_first else ""
        text += f", dropout={self.dropout}" if self.dropout else ""
        return text + (", bidirectional=True" if self.bidirectional else "")

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "bias": self.bias, "batch_first": self.batch_first, "dropout": self.dropout,
                "bidirectional": self.bidirectional, **dtype_config(self)}


class RNN(_RNNBase):
    """Elman RNN layers, as ``torch.nn.RNN``: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu).

    ``rnn(input, hx=None)``: input (L, N, input_size), (N, L, input_size) with ``batch_first``, or unbatched
    (L, input_size); hx (directions * num_layers, N, hidden_size) or unbatched (directions * num_layers,
    hidden_size), zeros when None. Returns ``(output, h_n)``: output (L, N, directions * hidden_size) (batch first
    with ``batch_first``), the last layer's h_t for every t; h_n the final state of every layer and direction.
    ``dropout`` applies to every layer's output but the last, in training.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in _MODES:
            raise ValueError(f"RNN: Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        super().__init__(_MODES[nonlinearity], input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        output, (h_n,) = self._run(input, hx)
        return output, h_n

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {**super().config(), "nonlinearity": self.nonlinearity}


class LSTM(_RNNBase):
    """LSTM layers, as ``torch.nn.LSTM`` (gates i, f, g, o; see ``LSTMCell``); with ``proj_size`` > 0 each h_t is
    projected: h_t = W_hr (sigmoid(o) * tanh(c_t)).

    ``lstm(input, hx=None)``: input as ``RNN``'s; hx the pair (h_0, c_0), zeros when None. Returns
    ``(output, (h_n, c_n))``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0, *,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)

    def forward(self, input: Tensor,  # noqa: A002 - PyTorch's name
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        output, (h_n, c_n) = self._run(input, hx)
        return output, (h_n, c_n)

    def config(self) -> dict[str, Any]:
        """The constructor arguments, saved with the weights."""
        return {**super().config(), "proj_size": self.proj_size}


class GRU(_RNNBase):
    """GRU layers, as ``torch.nn.GRU`` (gates r, z, n; see ``GRUCell``).

    ``gru(input, hx=None)``: input and hx as ``RNN``'s. Returns ``(output, h_n)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
                         device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        output, (h_n,) = self._run(input, hx)
        return output, h_n
