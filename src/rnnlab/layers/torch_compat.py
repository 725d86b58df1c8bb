"""Drop-in replacements for torch.nn.LSTM, torch.nn.GRU and torch.nn.RNN built from rnnlab cells.

``rnnlab.LSTM(...)`` takes torch.nn.LSTM's arguments, inputs, states and outputs, and its
``state_dict`` has torch's keys (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``, ...),
so checkpoints move both ways between the two. Inside it is a :class:`~rnnlab.layers.stack.Stack`
of :class:`~rnnlab.layers.unroll.Recurrent` (or :class:`~rnnlab.layers.bidirectional.Bidirectional`)
layers over registered rnnlab cells; extra keyword arguments go to every layer's cell.

When every cell is plain (``cell.torch_kernel()`` is not None) the whole stack runs as one call of
torch's fused multi-layer kernel, exactly as torch.nn does; otherwise (a cell variant, or
``fast=False``) it runs layer by layer, each layer on its cell's own path.

Initialisation is torch.nn's by default (``init="torch"``): every parameter U(-1/sqrt(H),
1/sqrt(H)), drawn in torch's parameter order, so ``torch.manual_seed(s)`` gives torch.nn's weights
bit for bit. ``init="orthogonal"`` (or ``"uniform"``, ``"identity"``) is rnnlab's recommended
initialisation instead: each cell's own (orthogonal recurrent blocks, LSTM forget bias 1.0).

``torch.save`` of a whole model holding these layers loads with ``torch.load(weights_only=True)``:
the classes a layer is built from are registered as safe globals (:data:`SAFE_GLOBALS`, on import
of rnnlab).
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab import cells
from rnnlab.cells.base import Cell
from rnnlab.cells.elman import ElmanCell
from rnnlab.cells.gru import GRUCell
from rnnlab.cells.init import RECURRENT_INITS, init_uniform_, reset_weight_
from rnnlab.cells.lstm import LSTMCell, LSTMState
from rnnlab.cells.norm import RecurrentBatchNorm
from rnnlab.errors import ConfigError
from rnnlab.fast.torch_kernels import TorchState, run_kernel, run_kernel_packed
from rnnlab.layers.bidirectional import Bidirectional
from rnnlab.layers.stack import Stack
from rnnlab.layers.unroll import Recurrent
from rnnlab.regularize.recurrent_dropout import RecurrentDropout
from rnnlab.regularize.weight_drop import WeightDrop, _Step
from rnnlab.regularize.wrap import CELL_REGULARIZERS, innermost, wrap_cell, wrapper_depth
from rnnlab.regularize.zoneout import Zoneout
from rnnlab.sequences import State, check_lengths
from rnnlab.validation import check_positive, check_probability

INITS = ("torch", *RECURRENT_INITS)
"""The drop-in layers' ``init``: torch.nn's, or the recurrent scheme of rnnlab's own cell init."""

TORCH_PARAMETERS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
"""A cell's parameters that torch.nn has, in torch's order within a layer and direction."""

CELL_INIT_KEYWORDS = ("forget_bias", "chrono")
"""Cell keywords that only set rnnlab's initialisation (so they need an ``init`` other than
``"torch"``)."""

# Internal parameter paths and torch's names for them:
#   stack.layers.1.cell.weight_ih                  <-> weight_ih_l1
#   stack.layers.1.backward_rnn.cell.bias_hh       <-> bias_hh_l1_reverse
#   stack.layers.0.forward_rnn.cell.norm.weight    <-> norm_l0.weight   (a cell's submodule)
#   stack.layers.0.cell.inner.inner.weight_hh      <-> weight_hh_l0     (inside regularisers)
_INTERNAL_NAME = re.compile(
    r"^stack\.layers\.(?P<layer>\d+)\.(?:(?P<direction>forward_rnn|backward_rnn)\.)?cell\.(?:inner\.)*"
    r"(?P<name>[^.]+)(?P<rest>\..+)?$"
)
_TORCH_NAME = re.compile(r"^(?P<name>[^.]+?)_l(?P<layer>\d+)(?P<reverse>_reverse)?(?P<rest>\..+)?$")


class TorchCompatibleRNN(nn.Module):
    """The common machinery of :class:`LSTM`, :class:`GRU` and :class:`RNN` (torch's RNNBase)."""

    def __init__(
        self,
        cell_name: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
        fast: bool,
        init: str,
        cell_kwargs: dict[str, Any],
        fixed_cell_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_positive(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        _check_init(init, cell_kwargs)
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, int | float)
            or not (0.0 <= dropout <= 1.0)
        ):
            raise ConfigError(f"dropout must be a probability in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout is applied between recurrent layers, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers=1",
                stacklevel=3,
            )
        cell_kwargs = dict(cell_kwargs)
        regularizers, variational = _pop_regularizers(cell_kwargs, dropout)
        if variational:
            dropout = regularizers["recurrent_dropout"]
        _check_cell_kwargs(cell_name, cell_kwargs)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.cell_kwargs = cell_kwargs
        self.regularizers = {k: v for k, v in regularizers.items() if v}
        self.variational = variational
        self.init = init
        # with torch's init the cells' own draws are thrown away: a cheap scheme, on a forked RNG
        cell_init = "uniform" if init == "torch" else init
        cell_kwargs = {**(fixed_cell_kwargs or {}), **cell_kwargs, "init": cell_init}
        with torch.random.fork_rng(devices=[], enabled=init == "torch"):
            layers: list[nn.Module] = []
            layer_cells: list[Cell] = []  # torch's order: layer 0 forward, layer 0 backward, ...
            layer_input = input_size
            for _ in range(num_layers):
                directions = [
                    wrap_cell(
                        cells.create(
                            cell_name,
                            input_size=layer_input,
                            hidden_size=hidden_size,
                            bias=bias,
                            **cell_kwargs,
                        ),
                        **regularizers,
                    )
                    for _ in range(2 if self.bidirectional else 1)
                ]
                layer_cells += directions
                if self.bidirectional:
                    forward = Recurrent(directions[0], fast=fast)
                    backward = Recurrent(directions[1], reverse=True, fast=fast)
                    layers.append(Bidirectional(forward, backward))
                else:
                    layers.append(Recurrent(directions[0], fast=fast))
                layer_input = layers[-1].output_size
        self.stack = Stack(layers, dropout=dropout, locked=self.variational)
        self._cells = tuple(layer_cells)  # fixed at construction; read on every forward pass
        self._cell_path = "cell." + "inner." * wrapper_depth(layer_cells[0])
        self.output_size = self._cells[0].output_size
        self._fast = fast
        if device is not None or dtype is not None:
            self.to(device=device, dtype=dtype)
        if init == "torch":  # as torch.nn, on the final device and dtype
            self.reset_parameters()
        self._register_renaming()
        self.flatten_parameters()

    def _register_renaming(self) -> None:
        """The hooks that give ``state_dict`` and ``load_state_dict`` torch's names (their handles
        in ``_renaming``; :meth:`__getstate__` leaves them out of a pickle)."""
        # public in recent torch; the private spelling behaves the same in older versions
        register = getattr(self, "register_state_dict_post_hook", self._register_state_dict_hook)
        self._renaming = (
            register(_rename_to_torch),
            self.register_load_state_dict_pre_hook(_rename_from_torch),
            self.register_load_state_dict_post_hook(_rename_incompatible_keys),
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the renaming hooks (:meth:`__setstate__` registers them again), so that
        a pickled layer holds only :data:`SAFE_GLOBALS` and ``weights_only`` loading takes it."""
        state = self.__dict__.copy()
        ours = {handle.id for handle in state.pop("_renaming")}
        for key in (
            "_state_dict_hooks",
            "_load_state_dict_pre_hooks",
            "_load_state_dict_post_hooks",
        ):
            state[key] = OrderedDict((k, v) for k, v in state[key].items() if k not in ours)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._register_renaming()

    # ---- structure -------------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def fast(self) -> bool:
        """Use torch's fused kernels where they apply (``False``: the reference loop everywhere)."""
        return self._fast

    @fast.setter
    def fast(self, value: bool) -> None:
        self._fast = value
        for module in self.modules():
            if isinstance(module, Recurrent):
                module.fast = value

    def cells(self) -> list[Cell]:
        """Every cell in torch's order: layer 0 forward, layer 0 backward, layer 1 forward, ..."""
        return list(self._cells)

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Per layer and direction, the parameters in torch's order (as torch.nn.RNNBase)."""
        return [list(cell.parameters()) for cell in self.cells()]

    def reset_parameters(self) -> None:
        """Re-initialise: with ``init="torch"`` as torch.nn does (every parameter of torch's
        U(-1/sqrt(H), 1/sqrt(H)) in torch's order; a variant's own parameters as its cell sets
        them), otherwise every cell with its own (documented) initialisation."""
        for cell in self.cells():
            cell = innermost(cell)
            if self.init != "torch":
                cell.reset_parameters()
                continue
            for name in TORCH_PARAMETERS:
                if getattr(cell, name, None) is not None:
                    reset_weight_(cell, name, lambda w: init_uniform_(w, self.hidden_size))

    # ---- torch's parameter names ---------------------------------------------------------------

    def torch_name(self, internal: str) -> str:
        """torch's name for an internal parameter path (unchanged when it has none)."""
        match = _INTERNAL_NAME.match(internal)
        if match is None:
            return internal
        reverse = "_reverse" if match["direction"] == "backward_rnn" else ""
        return f"{match['name']}_l{match['layer']}{reverse}{match['rest'] or ''}"

    def internal_name(self, name: str) -> str | None:
        """The internal path of a torch parameter name, or None when this layer has no such one."""
        match = _TORCH_NAME.match(name)
        if match is None or int(match["layer"]) >= self.num_layers:
            return None
        if not self.bidirectional:
            if match["reverse"]:
                return None
            direction = ""
        else:
            direction = "backward_rnn." if match["reverse"] else "forward_rnn."
        path = f"stack.layers.{match['layer']}.{direction}{self._cell_path}"
        return f"{path}{match['name']}{match['rest'] or ''}"

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if "stack" not in self.__dict__.get("_modules", {}):
                raise
            internal = self.internal_name(name)
            if internal is None:
                raise
            owner, _, leaf = internal.rpartition(".")
            try:
                value = getattr(self.get_submodule(owner), leaf)
            except AttributeError:
                value = None
            if value is None:  # as torch.nn: no bias_ih_l0 without bias, no weight_hr_l0 ...
                raise AttributeError(f"{type(self).__name__} has no attribute {name!r}") from None
            return value

    def __setattr__(self, name: str, value: Any) -> None:
        internal = (
            self.internal_name(name) if "stack" in self.__dict__.get("_modules", {}) else None
        )
        if internal is None:
            super().__setattr__(name, value)
            return
        owner_name, _, leaf = internal.rpartition(".")
        owner = self.get_submodule(owner_name)
        if (
            leaf in owner._parameters
            and isinstance(value, Tensor)
            and not isinstance(value, nn.Parameter)
        ):
            # a plain tensor standing in for a parameter, as torch.func.functional_call does
            owner._parameters[leaf] = value
        else:
            setattr(owner, leaf, value)

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        """torch's names: ``weight_ih_l0``, ..., ``weight_hr_l1_reverse``."""
        dot = "." if prefix else ""
        for name, param in super().named_parameters(remove_duplicate=remove_duplicate):
            yield prefix + dot + self.torch_name(name), param

    # ---- running ------------------------------------------------------------------------------

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: TorchState | None = None,
        *,
        lengths: Tensor | list[int] | None = None,
    ) -> tuple[Tensor | PackedSequence, TorchState]:
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ConfigError("pass lengths or a PackedSequence, not both")
            return self._forward_packed(input, hx)
        if input.dim() not in (2, 3):
            raise ConfigError(
                f"{type(self).__name__} expects input [T, B, H_in] (or [B, T, H_in] with "
                f"batch_first=True, or unbatched [T, H_in]), got shape {list(input.shape)}"
            )
        batched = input.dim() == 3
        if not batched:
            if lengths is not None:
                raise ConfigError("lengths needs a batched input [T, B, H_in]")
            input = input.unsqueeze(0 if self.batch_first else 1)
        x = input.transpose(0, 1) if self.batch_first else input
        self._check_input(x)
        steps, batch = x.shape[:2]
        hx = self._initial_state(hx, batch, batched, x)
        if lengths is not None:
            lengths = check_lengths(lengths, steps, batch, torch.device("cpu"))
        kernel = self._fused_kernel()
        if kernel is None:
            y, states = self.stack(x, self._layer_states(hx), lengths)
            hn = self._torch_state(states)
        else:
            mode, weights = kernel
            y, hn = run_kernel(
                mode,
                weights,
                x,
                hx,
                lengths,
                self.num_layers,
                self.bidirectional,
                self.dropout,
                self.training,
                self.bias,
            )
        if self.batch_first:
            y = y.transpose(0, 1)
        if not batched:
            y = y.squeeze(0 if self.batch_first else 1)
            hn = hn.squeeze(1) if isinstance(hn, Tensor) else tuple(h.squeeze(1) for h in hn)
        return y, hn

    def _forward_packed(
        self, packed: PackedSequence, hx: TorchState | None
    ) -> tuple[PackedSequence, TorchState]:
        self._check_input(packed.data)
        hx = self._initial_state(hx, int(packed.batch_sizes[0]), True, packed.data)
        kernel = self._fused_kernel()
        if kernel is not None:
            mode, weights = kernel
            return run_kernel_packed(
                mode,
                weights,
                packed,
                hx,
                self.num_layers,
                self.bidirectional,
                self.dropout,
                self.training,
                self.bias,
            )
        x, lengths = pad_packed_sequence(packed)
        y, states = self.stack(x, self._layer_states(hx), lengths)
        return _pack_like(y, lengths, packed), self._torch_state(states)

    def _fused_kernel(self) -> tuple[str, list[Tensor]] | None:
        """``(mode, flat weights of all layers)`` when torch's multi-layer kernel computes the
        whole stack, else None."""
        if not self._fast:
            return None
        mode, weights = None, []
        for cell in self._cells:
            kernel = cell.torch_kernel()
            if kernel is None or mode not in (None, kernel[0]):
                return None
            mode = kernel[0]
            weights += kernel[1]
        return mode, weights

    def _check_input(self, x: Tensor) -> None:
        if x.shape[-1] != self.input_size:
            raise ConfigError(
                f"{type(self).__name__} has input_size={self.input_size} but the input has "
                f"{x.shape[-1]} features (shape {list(x.shape)})"
            )

    def _state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        """torch's state shapes: ``[D*L, B, H_out]`` (and the cell ``[D*L, B, H]`` for LSTM)."""
        return [(self.num_directions * self.num_layers, batch, self.output_size)]

    def _initial_state(
        self, hx: TorchState | None, batch: int, batched: bool, x: Tensor
    ) -> TorchState:
        shapes = self._state_shapes(batch)
        if hx is None:
            zeros = [x.new_zeros(shape) for shape in shapes]
            return zeros[0] if len(zeros) == 1 else tuple(zeros)
        parts = [hx] if isinstance(hx, Tensor) else list(hx)
        expected = " and ".join(str(list(s if batched else s[:1] + s[2:])) for s in shapes)
        if len(parts) != len(shapes) or not all(isinstance(p, Tensor) for p in parts):
            raise ConfigError(
                f"{type(self).__name__} takes the initial state as "
                f"{'a tensor' if len(shapes) == 1 else '(h_0, c_0)'} of shape {expected}"
            )
        if not batched:
            parts = [p.unsqueeze(1) if p.dim() == 2 else p for p in parts]
        if any(tuple(p.shape) != shape for p, shape in zip(parts, shapes)):
            got = " and ".join(str(list(p.shape)) for p in parts)
            raise ConfigError(
                f"{type(self).__name__} expects an initial state of shape {expected} "
                f"([num_layers * num_directions, batch, size]), got {got}"
            )
        return parts[0] if len(parts) == 1 else tuple(parts)

    def _cell_state(self, hx: TorchState, index: int) -> State:
        return hx[index]

    def _layer_states(self, hx: TorchState) -> list[State]:
        """torch's stacked state -> one state per layer (a pair per layer when bidirectional)."""
        if not self.bidirectional:
            return [self._cell_state(hx, k) for k in range(self.num_layers)]
        return [
            (self._cell_state(hx, 2 * k), self._cell_state(hx, 2 * k + 1))
            for k in range(self.num_layers)
        ]

    def _torch_state(self, states: list[State]) -> TorchState:
        """One state per layer -> torch's stacked layout."""
        flat = [s for state in states for s in (state if self.bidirectional else [state])]
        if isinstance(flat[0], Tensor):
            return torch.stack(flat)
        # torch's parts only (h, or h and c): a batch-norm cell's step counter is dropped
        parts = [torch.stack(p) for p in zip(*flat)][: 2 if self.mode == "LSTM" else 1]
        return tuple(parts) if len(parts) > 1 else parts[0]

    # ---- device moves ------------------------------------------------------------------------

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.flatten_parameters()
        return result

    def flatten_parameters(self) -> None:
        """Put the weights of all layers in one contiguous cuDNN buffer, as torch.nn does.

        Only acts on CUDA with cuDNN and plain cells; elsewhere it does nothing (CPU kernels
        read the weights where they are)."""
        kernel = self._fused_kernel() if "stack" in self._modules else None
        if kernel is None:
            return
        mode, weights = kernel
        first = weights[0]
        if len({w.data_ptr() for w in weights}) != len(weights) or not all(
            w.is_cuda and w.dtype == first.dtype and torch.backends.cudnn.is_acceptable(w)
            for w in weights
        ):
            return
        import torch.backends.cudnn.rnn as cudnn_rnn

        with torch.cuda.device_of(first), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                proj_size = getattr(self, "proj_size", 0)
                torch._cudnn_rnn_flatten_weight(
                    weights,
                    (4 if self.bias else 2) + (1 if proj_size else 0),
                    self.input_size,
                    cudnn_rnn.get_cudnn_mode(mode),
                    self.hidden_size,
                    proj_size,
                    self.num_layers,
                    self.batch_first,
                    self.bidirectional,
                )

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if getattr(self, "proj_size", 0):
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.init != "torch":
            s += f", init={self.init!r}"
        for key, value in self.cell_kwargs.items():
            s += f", {key}={value!r}"
        return s


class LSTM(TorchCompatibleRNN):
    r"""Multi-layer LSTM with torch.nn.LSTM's interface, built from rnnlab's ``lstm`` cell.

    For each layer and time step (equations of :mod:`rnnlab.cells.lstm`)::

        i_t = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)
        f_t = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf)
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)
        o_t = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho)
        c_t = f_t * c_{t-1} + i_t * g_t
        h_t = o_t * tanh(c_t)          (proj_size > 0: h_t = W_hr (o_t * tanh(c_t)))

    Layer k > 0 reads layer k-1's output, with dropout in training when ``dropout > 0``.

    Example::

        lstm = rnnlab.LSTM(10, 20, num_layers=2, batch_first=True)
        out, (h_n, c_n) = lstm(torch.randn(3, 5, 10))          # out [3, 5, 20]
        lstm.load_state_dict(torch.nn.LSTM(10, 20, 2, batch_first=True).state_dict())

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
        proj_size, device, dtype: as torch.nn.LSTM.
        fast: run on torch's fused kernels when every cell is plain (``False``: reference loop).
        init: ``"torch"`` (torch.nn's initialisation) or the cell's recurrent scheme
            (``"orthogonal"``: rnnlab's recommended initialisation; ``"uniform"``, ``"identity"``).
        **cell_kwargs: passed to every layer's cell (``forget_bias`` and ``chrono``, which need
            an ``init`` other than ``"torch"``, and the variants' keywords); a cell that is no
            longer plain runs layer by layer on its own path.

    Initialisation: by default torch.nn.LSTM's, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) drawn
    in torch's order (the same seed gives the same weights). ``init="orthogonal"``: rnnlab's,
    ``weight_ih`` and ``weight_hr`` ~ U(-1/sqrt(H), 1/sqrt(H)); each gate block of ``weight_hh``
    orthogonal (``"uniform"``, ``"identity"``: that scheme instead); biases zero except the
    forget-gate slice of ``bias_ih``, which is ``forget_bias=1.0``. ``load_state_dict`` replaces
    all of it.

    Shapes (N = batch, L = sequence length, D = 2 if bidirectional else 1, H_in = input_size,
    H_cell = hidden_size, H_out = proj_size if proj_size > 0 else hidden_size):

    ===========  ==============================================================================
    input        ``[L, N, H_in]``, ``[N, L, H_in]`` with batch_first, ``[L, H_in]`` unbatched,
                 or a PackedSequence
    lengths      (keyword, rnnlab) ``[N]`` valid lengths of a padded batch
    h_0, c_0     ``[D * num_layers, N, H_out]`` and ``[D * num_layers, N, H_cell]`` (zeros if
                 omitted; ``[D * num_layers, H_*]`` unbatched)
    output       ``[L, N, D * H_out]`` (batch_first: ``[N, L, D * H_out]``), zero past each
                 length, or a PackedSequence when the input is one
    h_n, c_n     like h_0, c_0: each sequence's state after its last valid step
    ===========  ==============================================================================

    Parameters (torch's names; ``_reverse`` for the backward direction):
    ``weight_ih_l{k} [4 H_cell, H_in or D * H_out]`` (rows i, f, g, o), ``weight_hh_l{k}
    [4 H_cell, H_out]``, ``bias_ih_l{k}``, ``bias_hh_l{k} [4 H_cell]``, ``weight_hr_l{k}
    [H_out, H_cell]`` when proj_size > 0.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        fast: bool = True,
        init: str = "torch",
        **cell_kwargs: Any,
    ) -> None:
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ConfigError(f"proj_size must be a non-negative integer, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ConfigError(
                f"proj_size ({proj_size}) must be smaller than hidden_size ({hidden_size})"
            )
        self.proj_size = proj_size
        super().__init__(
            "lstm",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            fast,
            init,
            cell_kwargs,
            {"proj_size": proj_size} if proj_size else None,
        )
        self.mode = "LSTM"

    def _state_shapes(self, batch: int) -> list[tuple[int, ...]]:
        size = self.num_directions * self.num_layers
        return [(size, batch, self.output_size), (size, batch, self.hidden_size)]

    def _cell_state(self, hx: TorchState, index: int) -> State:
        return LSTMState(hx[0][index], hx[1][index])


class GRU(TorchCompatibleRNN):
    r"""Multi-layer GRU with torch.nn.GRU's interface, built from rnnlab's ``gru`` cell.

    For each layer and time step (equations of :mod:`rnnlab.cells.gru`)::

        r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)
        z_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h_{t-1}

    Example::

        gru = rnnlab.GRU(10, 20, num_layers=2, bidirectional=True)
        out, h_n = gru(torch.randn(5, 3, 10))                  # out [5, 3, 40], h_n [4, 3, 20]

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
        dtype: as torch.nn.GRU.
        fast: run on torch's fused kernels when every cell is plain (``False``: reference loop).
        init: ``"torch"`` (torch.nn's initialisation) or the cell's recurrent scheme
            (``"orthogonal"``: rnnlab's recommended initialisation; ``"uniform"``, ``"identity"``).
        **cell_kwargs: passed to every layer's cell (``chrono``, which needs an ``init`` other
            than ``"torch"``, and the variants' keywords).

    Initialisation: by default torch.nn.GRU's, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) drawn
    in torch's order. ``init="orthogonal"``: rnnlab's, ``weight_ih`` and the biases ~
    U(-1/sqrt(H), 1/sqrt(H)) and each gate block of ``weight_hh`` orthogonal.

    Shapes (N = batch, L = sequence length, D = 2 if bidirectional else 1, H_in = input_size,
    H_out = hidden_size):

    ===========  ==============================================================================
    input        ``[L, N, H_in]``, ``[N, L, H_in]`` with batch_first, ``[L, H_in]`` unbatched,
                 or a PackedSequence
    lengths      (keyword, rnnlab) ``[N]`` valid lengths of a padded batch
    h_0          ``[D * num_layers, N, H_out]`` (zeros if omitted; ``[D * num_layers, H_out]``
                 unbatched)
    output       ``[L, N, D * H_out]`` (batch_first: ``[N, L, D * H_out]``), zero past each
                 length, or a PackedSequence when the input is one
    h_n          like h_0: each sequence's state after its last valid step
    ===========  ==============================================================================

    Parameters: ``weight_ih_l{k} [3 H_out, H_in or D * H_out]`` (rows r, z, n), ``weight_hh_l{k}
    [3 H_out, H_out]``, ``bias_ih_l{k}``, ``bias_hh_l{k} [3 H_out]``; ``_reverse`` suffix for the
    backward direction.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        fast: bool = True,
        init: str = "torch",
        **cell_kwargs: Any,
    ) -> None:
        super().__init__(
            "gru",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            fast,
            init,
            cell_kwargs,
        )
        self.mode = "GRU"


class RNN(TorchCompatibleRNN):
    r"""Multi-layer Elman RNN with torch.nn.RNN's interface, built from rnnlab's ``rnn`` cell.

    For each layer and time step::

        h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   act = tanh or relu

    Example::

        rnn = rnnlab.RNN(10, 20, num_layers=2, nonlinearity="relu")
        out, h_n = rnn(torch.randn(5, 3, 10))                  # out [5, 3, 20], h_n [2, 3, 20]

    Args:
        input_size, hidden_size, num_layers, nonlinearity, bias, batch_first, dropout,
        bidirectional, device, dtype: as torch.nn.RNN (same positional order).
        fast: run on torch's fused kernels when every cell is plain (``False``: reference loop).
        init: ``"torch"`` (torch.nn's initialisation) or the cell's recurrent scheme
            (``"orthogonal"``: rnnlab's recommended initialisation; ``"identity"`` for an IRNN;
            ``"uniform"``).
        **cell_kwargs: passed to every layer's cell.

    Initialisation: by default torch.nn.RNN's, every parameter ~ U(-1/sqrt(H), 1/sqrt(H)) drawn
    in torch's order. ``init="orthogonal"``: rnnlab's, ``weight_ih`` and the biases ~
    U(-1/sqrt(H), 1/sqrt(H)) and ``weight_hh`` orthogonal (``"identity"``: the identity).

    Shapes (N = batch, L = sequence length, D = 2 if bidirectional else 1, H_in = input_size,
    H_out = hidden_size):

    ===========  ==============================================================================
    input        ``[L, N, H_in]``, ``[N, L, H_in]`` with batch_first, ``[L, H_in]`` unbatched,
                 or a PackedSequence
    lengths      (keyword, rnnlab) ``[N]`` valid lengths of a padded batch
    h_0          ``[D * num_layers, N, H_out]`` (zeros if omitted; ``[D * num_layers, H_out]``
                 unbatched)
    output       ``[L, N, D * H_out]`` (batch_first: ``[N, L, D * H_out]``), zero past each
                 length, or a PackedSequence when the input is one
    h_n          like h_0: each sequence's state after its last valid step
    ===========  ==============================================================================

    Parameters: ``weight_ih_l{k} [H_out, H_in or D * H_out]``, ``weight_hh_l{k} [H_out, H_out]``,
    ``bias_ih_l{k}``, ``bias_hh_l{k} [H_out]``; ``_reverse`` suffix for the backward direction.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        *,
        fast: bool = True,
        init: str = "torch",
        **cell_kwargs: Any,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ConfigError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(
            "rnn",
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            device,
            dtype,
            fast,
            init,
            cell_kwargs,
            {"nonlinearity": nonlinearity},
        )
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"


def _pop_regularizers(cell_kwargs: dict[str, Any], dropout: float) -> tuple[dict[str, float], bool]:
    """Take the regulariser keywords out of ``cell_kwargs`` (:func:`wrap_cell`'s, and
    ``variational_dropout``: ``recurrent_dropout`` plus one mask per sequence between layers in
    place of ``dropout``'s fresh masks)."""
    found = {name: float(cell_kwargs.pop(name, 0.0)) for name in CELL_REGULARIZERS}
    variational = cell_kwargs.pop("variational_dropout", None)
    if variational is not None:
        if found["recurrent_dropout"]:
            raise ConfigError("give variational_dropout or recurrent_dropout, not both")
        if dropout:
            raise ConfigError(
                "variational_dropout replaces dropout between layers (one mask per sequence); "
                "give one of them"
            )
        found["recurrent_dropout"] = check_probability("variational_dropout", variational)
    return found, variational is not None


def _check_init(init: str, cell_kwargs: dict[str, Any]) -> None:
    """Reject an unknown ``init``, and rnnlab's init keywords together with torch's init."""
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    given = [key for key in CELL_INIT_KEYWORDS if key in cell_kwargs]
    if init == "torch" and given:
        raise ConfigError(
            f"{given[0]} sets rnnlab's initialisation, which the default init='torch' replaces; "
            f"pass init='orthogonal' (or 'uniform', 'identity') with it"
        )


def _check_cell_kwargs(cell_name: str, cell_kwargs: dict[str, Any]) -> None:
    """Reject keywords the cell does not take, naming the ones it does."""
    parameters = inspect.signature(cells.get(cell_name)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [n for n in parameters if n not in ("self", "input_size", "hidden_size", "bias")]
    for key in cell_kwargs:
        if key not in parameters:
            raise ConfigError(
                f"unknown keyword {key!r} for the {cell_name!r} cell; it accepts: "
                f"{', '.join(accepted)}"
            )


def _pack_like(y: Tensor, lengths: Tensor, packed: PackedSequence) -> PackedSequence:
    """Pack a padded time-major ``y`` with the batch order of ``packed`` (as torch.nn returns)."""
    order = packed.sorted_indices
    if order is not None:
        y, lengths = y.index_select(1, order), lengths[order.cpu()]
    data = pack_padded_sequence(y, lengths, enforce_sorted=True).data
    return PackedSequence(data, packed.batch_sizes, order, packed.unsorted_indices)


def _rename_to_torch(module: TorchCompatibleRNN, state_dict, prefix: str, local_metadata) -> None:
    """state_dict hook: internal keys -> torch's keys, in place and in the same order."""
    items = list(state_dict.items())
    state_dict.clear()
    for key, value in items:
        if key.startswith(prefix):
            key = prefix + module.torch_name(key[len(prefix) :])
        state_dict[key] = value


def _rename_from_torch(module: TorchCompatibleRNN, state_dict, prefix: str, *_) -> None:
    """load_state_dict pre-hook: torch's keys -> internal keys (unknown keys stay as they are,
    so that a strict load reports them by their own name)."""
    module._loading_prefix = prefix
    for key in [k for k in state_dict if k.startswith(prefix)]:
        internal = module.internal_name(key[len(prefix) :])
        if internal is not None:
            state_dict[prefix + internal] = state_dict.pop(key)


def _rename_incompatible_keys(module: TorchCompatibleRNN, incompatible_keys) -> None:
    """load_state_dict post-hook: report missing keys by torch's names."""
    prefix = module.__dict__.pop("_loading_prefix", "")
    for keys in (incompatible_keys.missing_keys, incompatible_keys.unexpected_keys):
        for i, key in enumerate(keys):
            if key.startswith(prefix):
                keys[i] = prefix + module.torch_name(key[len(prefix) :])


SAFE_GLOBALS = [
    LSTM,
    GRU,
    RNN,
    Stack,
    Recurrent,
    Bidirectional,
    nn.ModuleList,
    LSTMCell,
    GRUCell,
    ElmanCell,
    nn.LayerNorm,
    RecurrentBatchNorm,
    RecurrentDropout,
    WeightDrop,
    _Step,  # WeightDrop's step module
    Zoneout,
]
"""Every class a pickled drop-in layer holds (its structures, cells, the variants' normalisations
and the regularisers of its keywords): rnnlab registers them with
``torch.serialization.add_safe_globals``, so ``torch.load(..., weights_only=True)`` of a whole
model needs only the model's own classes allowlisted, as with torch.nn layers."""
