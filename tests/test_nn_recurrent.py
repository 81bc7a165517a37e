"""Recurrent layers (tinygrad_like.nn.recurrent): RNNCell, LSTMCell, GRUCell, RNN, LSTM, GRU against PyTorch
with the same weights (float64): outputs and final states, gradients of inputs, initial states and every
parameter under random upstream gradients, second order; parameter names, state_dict, saving and loading,
refusals, and an LSTM trained as a lecture does."""

import json
import math
import re
import warnings

import numpy as np
import pytest
from helpers import check_against_torch, flat, gaussian, twins

from tinygrad_like import Tensor, manual_seed, nn, no_grad, optim
from tinygrad_like.nn import functional as F

# ----------------------------------------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------------------------------------

CELLS = [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}), ("GRUCell", {}),
         ("GRUCell", {"bias": False})]


@pytest.mark.parametrize("name, kwargs", CELLS)
@pytest.mark.parametrize("batched", [True, False])
def test_a_cell_step_and_its_gradients_of_two_orders_are_pytorchs(torch, name, kwargs, batched):
    ours, theirs = twins(torch, name, 3, 4, **kwargs)
    lead = (2,) if batched else ()
    x, h, c = gaussian(*lead, 3, seed=1), gaussian(*lead, 4, seed=2), gaussian(*lead, 4, seed=3)
    if name == "LSTMCell":
        check_against_torch(torch, ours, theirs, [x, h, c], lambda m, x, h, c: m(x, (h, c)), second_order=True)
    else:
        check_against_torch(torch, ours, theirs, [x, h], second_order=True)


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_a_cell_without_a_state_starts_from_zeros(torch, name):
    ours, theirs = twins(torch, name, 3, 4)
    check_against_torch(torch, ours, theirs, [gaussian(5, 3)])
    check_against_torch(torch, ours, theirs, [gaussian(3)])  # unbatched


def test_the_cells_compute_the_documented_gate_formulas():
    cell = nn.GRUCell(2, 3, dtype=np.float64)
    x, h = gaussian(4, 2), gaussian(4, 3, seed=2)
    gi = x @ cell.weight_ih.data.T + cell.bias_ih.data
    gh = h @ cell.weight_hh.data.T + cell.bias_hh.data
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    r, z = sig(gi[:, :3] + gh[:, :3]), sig(gi[:, 3:6] + gh[:, 3:6])
    n = np.tanh(gi[:, 6:] + r * gh[:, 6:])  # r multiplies W_hn h + b_hn, bias included
    np.testing.assert_allclose(cell(Tensor(x), Tensor(h)).data, (1 - z) * n + z * h, rtol=1e-12)
    lstm = nn.LSTMCell(2, 3, bias=False, dtype=np.float64)
    g = x @ lstm.weight_ih.data.T + h @ lstm.weight_hh.data.T
    c = sig(g[:, 3:6]) * h + sig(g[:, :3]) * np.tanh(g[:, 6:9])  # i, f, g, o
    h2, c2 = lstm(Tensor(x), (Tensor(h), Tensor(h)))
    np.testing.assert_allclose(c2.data, c, rtol=1e-12)
    np.testing.assert_allclose(h2.data, sig(g[:, 9:]) * np.tanh(c), rtol=1e-12)


# ----------------------------------------------------------------------------------------------------------
# Sequence layers
# ----------------------------------------------------------------------------------------------------------

LAYERS = [
    ("RNN", {"num_layers": 2}),
    ("RNN", {"nonlinearity": "relu", "batch_first": True, "bias": False}),
    ("LSTM", {"num_layers": 2}),
    ("LSTM", {"batch_first": True, "bias": False}),
    ("LSTM", {"num_layers": 2, "bidirectional": True, "proj_size": 2}),
    ("GRU", {"num_layers": 2, "batch_first": True}),
    ("GRU", {"bidirectional": True, "bias": False}),
]


def initial_state(name, kwargs, batch):
    """Random (h_0,) or (h_0, c_0) arrays for a layer built with ``kwargs`` (input 3, hidden 5)."""
    count = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    lead = (count, batch) if batch else (count,)
    h = gaussian(*lead, kwargs.get("proj_size") or 5, seed=2)
    return [h, gaussian(*lead, 5, seed=3)] if name == "LSTM" else [h]


def with_state(name):
    return (lambda m, x, h, c: m(x, (h, c))) if name == "LSTM" else (lambda m, x, h: m(x, h))


@pytest.mark.parametrize("name, kwargs", LAYERS)
def test_a_layer_over_a_batch_gives_pytorchs_outputs_states_and_gradients(torch, name, kwargs):
    ours, theirs = twins(torch, name, 3, 5, **kwargs)
    x = gaussian(2, 4, 3) if kwargs.get("batch_first") else gaussian(4, 2, 3)
    check_against_torch(torch, ours, theirs, [x, *initial_state(name, kwargs, 2)], with_state(name))
    check_against_torch(torch, ours, theirs, [x])  # no state: zeros


@pytest.mark.parametrize("name, kwargs", LAYERS[::2])
def test_an_unbatched_sequence_gives_pytorchs_outputs_states_and_gradients(torch, name, kwargs):
    ours, theirs = twins(torch, name, 3, 5, **kwargs)
    check_against_torch(torch, ours, theirs, [gaussian(4, 3), *initial_state(name, kwargs, None)], with_state(name))
    outs = check_against_torch(torch, ours, theirs, [gaussian(4, 3)])
    assert outs[0].shape == (4, (kwargs.get("proj_size") or 5) * (1 + kwargs.get("bidirectional", False)))


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_a_layer_has_pytorchs_second_order_gradients(torch, name):
    ours, theirs = twins(torch, name, 3, 5, num_layers=2)
    check_against_torch(torch, ours, theirs, [gaussian(3, 2, 3), *initial_state(name, {"num_layers": 2}, 2)],
                        with_state(name), second_order=True)


def test_output_holds_the_last_layers_states_and_h_n_every_layers_last(torch):
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, batch_first=True)
    out, (h_n, c_n) = lstm(Tensor.randn(4, 6, 2))
    assert out.shape == (4, 6, 6) and h_n.shape == c_n.shape == (4, 4, 3)
    np.testing.assert_array_equal(out.data[:, -1, :3], h_n.data[2])  # last layer, forward: its last step
    np.testing.assert_array_equal(out.data[:, 0, 3:], h_n.data[3])  # last layer, backward: its first step


def test_dropout_acts_between_layers_in_training_only(torch):
    manual_seed(0)
    ours, theirs = twins(torch, "GRU", 3, 5, num_layers=2, dropout=0.5)
    x = Tensor(gaussian(4, 2, 3))
    assert not np.array_equal(ours(x)[0].data, ours(x)[0].data)  # a new mask each call
    theirs.eval()
    assert ours.eval() is ours
    check_against_torch(torch, ours, theirs, [x.data])  # no dropout: PyTorch's numbers


# ----------------------------------------------------------------------------------------------------------
# Parameters, initialisation, configuration, saving
# ----------------------------------------------------------------------------------------------------------


def test_parameter_names_and_shapes_are_pytorchs(torch):
    for name, kwargs in LAYERS:
        mine, theirs = getattr(nn, name)(3, 5, **kwargs), getattr(torch.nn, name)(3, 5, **kwargs)
        assert [(k, v.shape) for k, v in mine.named_parameters()] == [
            (k, tuple(v.shape)) for k, v in theirs.named_parameters()]
    assert list(nn.LSTMCell(3, 4).state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert list(nn.GRUCell(3, 4, bias=False).state_dict()) == ["weight_ih", "weight_hh"]


def test_initial_values_are_uniform_within_one_over_sqrt_hidden_size_and_follow_manual_seed():
    manual_seed(3)
    lstm = nn.LSTM(3, 16, num_layers=2)
    values = np.concatenate([p.data.ravel() for p in lstm.parameters()])
    assert values.dtype == np.float32 and np.abs(values).max() <= 1 / math.sqrt(16)
    assert np.abs(values).max() > 0.95 / math.sqrt(16) and abs(values.mean()) < 0.01
    manual_seed(3)
    np.testing.assert_array_equal(nn.LSTM(3, 16, num_layers=2).weight_hh_l1.data, lstm.weight_hh_l1.data)


@pytest.mark.parametrize("name, kwargs", [*LAYERS, ("RNNCell", {"nonlinearity": "relu"}), ("LSTMCell", {}),
                                          ("GRUCell", {"bias": False})])
def test_save_and_load_rebuild_the_layer_and_its_numbers(tmp_path, name, kwargs):
    layer = getattr(nn, name)(3, 5, **kwargs)
    loaded = nn.Module.load(layer.save(tmp_path / "layer.npz"))
    assert type(loaded) is type(layer) and loaded.config() == layer.config()
    x = Tensor(gaussian(4, 3).astype(np.float32))
    with no_grad():
        np.testing.assert_array_equal(flat(loaded(x))[0].data, flat(layer(x))[0].data)


@pytest.mark.parametrize("layer, argument, value, message", [
    (nn.GRU(3, 5), "hidden_size", "5", "GRU argument hidden_size: must be an int, got '5'"),
    (nn.RNN(3, 5), "nonlinearity", "exec", "RNN argument nonlinearity: must be one of 'tanh', 'relu', got 'exec'"),
    (nn.LSTMCell(3, 5), "dtype", "object",
     "LSTMCell argument dtype: must be one of 'float16', 'float32', 'float64', got 'object'"),
    (nn.MultiheadAttention(4, 2), "kdim", True, "MultiheadAttention argument kdim: must be an int, got True")])
def test_a_crafted_config_is_refused_by_name(tmp_path, layer, argument, value, message):
    path = layer.save(tmp_path / "layer.npz")
    arrays = dict(np.load(path))
    config = json.loads(str(arrays[nn.CONFIG_KEY]))
    config["args"][argument] = value
    np.savez(path, **{**arrays, nn.CONFIG_KEY: np.array(json.dumps(config))})
    with pytest.raises(ValueError, match=re.escape(message)):
        nn.Module.load(path)


def test_config_holds_pytorchs_constructor_arguments(torch):
    config = nn.LSTM(3, 5, 2, batch_first=True, proj_size=2).config()
    assert config == {"input_size": 3, "hidden_size": 5, "num_layers": 2, "bias": True, "batch_first": True,
                      "dropout": 0.0, "bidirectional": False, "proj_size": 2}
    torch.nn.LSTM(**config)  # PyTorch accepts it as it is
    torch.nn.RNN(**nn.RNN(3, 5, nonlinearity="relu").config())
    torch.nn.GRUCell(**nn.GRUCell(3, 5).config())
    assert nn.GRU(3, 5, dtype=np.float64).config()["dtype"] == "float64"  # the default float32 is left out


def test_reprs_read_as_pytorchs(torch):
    for args, kwargs in [((3, 5, 2), {"batch_first": True}), ((3, 5), {"bias": False, "bidirectional": True})]:
        assert repr(nn.LSTM(*args, **kwargs)).startswith(repr(torch.nn.LSTM(*args, **kwargs)).rstrip(")"))
    assert nn.RNNCell(3, 4, nonlinearity="relu").extra_repr() == "3, 4, nonlinearity='relu'"


# ----------------------------------------------------------------------------------------------------------
# Refusals
# ----------------------------------------------------------------------------------------------------------


def test_bad_constructor_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="RNN: Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="LSTM: proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="GRU: hidden_size must be at least 1, got 0"):
        nn.GRU(3, 0)
    with pytest.raises(TypeError, match="LSTMCell: input_size must be an int, got 3.0"):
        nn.LSTMCell(3.0, 4)
    with pytest.raises(TypeError, match="RNN: bias must be a bool, got 'yes'"):
        nn.RNN(3, 4, bias="yes")
    with pytest.raises(ValueError, match=r"GRU: dropout must be a probability in \[0, 1\], got 1.5"):
        nn.GRU(3, 4, 2, dropout=1.5)
    with pytest.raises(RuntimeError, match="device 'cuda' is not available"):
        nn.LSTM(3, 4, device="cuda")
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


def test_bad_inputs_and_states_are_refused_with_their_shapes():
    lstm = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="LSTM: Expected input to be 2D or 3D, got 4D instead"):
        lstm(Tensor.zeros(1, 2, 3, 3))
    with pytest.raises(ValueError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        lstm(Tensor.zeros(5, 2, 2))
    with pytest.raises(ValueError, match="Expected hidden\\[1\\] size \\(2, 2, 4\\), got \\(2, 3, 4\\)"):
        lstm(Tensor.zeros(5, 2, 3), (Tensor.zeros(2, 2, 4), Tensor.zeros(2, 3, 4)))
    with pytest.raises(ValueError, match="For unbatched 2-D input, hx should also be 2-D"):
        lstm(Tensor.zeros(5, 3), (Tensor.zeros(2, 1, 4), Tensor.zeros(2, 1, 4)))
    with pytest.raises(ValueError, match="LSTM: hx must be the pair"):
        lstm(Tensor.zeros(5, 2, 3), Tensor.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="Expected sequence length to be larger than 0"):
        nn.GRU(3, 4)(Tensor.zeros(0, 2, 3))
    with pytest.raises(ValueError, match="input dtype \\(float64\\) does not match weight dtype \\(float32\\)"):
        nn.RNN(3, 4)(Tensor.zeros(5, 2, 3, dtype=np.float64))
    cell = nn.GRUCell(3, 4)
    with pytest.raises(ValueError, match="GRUCell: Expected input to be 1D or 2D, got 3D instead"):
        cell(Tensor.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="GRUCell: hx of shape \\(3, 4\\) does not fit the input of shape \\(2, 3\\)"):
        cell(Tensor.zeros(2, 3), Tensor.zeros(3, 4))


# ----------------------------------------------------------------------------------------------------------
# As a lecture writes it
# ----------------------------------------------------------------------------------------------------------


def test_an_lstm_learning_a_sine_wave_follows_pytorchs_losses_step_by_step(torch):
    # predict the next value of sin(t) from the previous ones, as a first sequence-model lecture does
    t = np.linspace(0, 4 * np.pi, 41)
    series = np.sin(t)[None, :, None].repeat(3, axis=0) * np.array([1.0, 0.5, -0.8])[:, None, None]
    inputs, targets = series[:, :-1], series[:, 1:]

    class Model(nn.Module):
        def __init__(self):
            self.lstm = nn.LSTM(input_size=1, hidden_size=8, batch_first=True, dtype=np.float64)
            self.head = nn.Linear(8, 1)
            for p in self.head.parameters():
                p.data = p.data.astype(np.float64)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.head(out)

    theirs = torch.nn.ModuleDict({"lstm": torch.nn.LSTM(1, 8, batch_first=True),
                                  "head": torch.nn.Linear(8, 1)}).double()
    model = Model()
    model.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    opt, topt = optim.Adam(model.parameters(), lr=0.01), torch.optim.Adam(theirs.parameters(), lr=0.01)
    losses, tlosses = [], []
    for _ in range(8):
        loss = F.mse_loss(model(Tensor(inputs)), Tensor(targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        tloss = torch.nn.functional.mse_loss(theirs["head"](theirs["lstm"](torch.tensor(inputs))[0]),
                                             torch.tensor(targets))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        tlosses.append(tloss.item())
    np.testing.assert_allclose(losses, tlosses, rtol=1e-9)
    assert losses[-1] < losses[0]


def test_a_hand_written_loop_over_lstmcell_equals_the_lstm_layer():
    # the loop a lecture writes to explain nn.LSTM: one cell, one step at a time
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lstm = nn.LSTM(3, 4, dtype=np.float64)
        cell = nn.LSTMCell(3, 4, dtype=np.float64)
        cell.load_state_dict({k[:-3]: v for k, v in lstm.state_dict().items()})
        x = Tensor(gaussian(6, 2, 3))
        h = c = Tensor.zeros(2, 4, dtype=np.float64)
        steps = []
        for x_t in x:
            h, c = cell(x_t, (h, c))
            steps.append(h)
        out, (h_n, c_n) = lstm(x)
    np.testing.assert_allclose(Tensor.stack(steps).data, out.data, rtol=1e-13)
    np.testing.assert_allclose(c.data, c_n.data[0], rtol=1e-13)
