"""The vanilla RNN of the notes in NumPy, with backpropagation through time written out.

Forward, for t = 1..T (batch rows are independent; the loss sums over time and batch)::

    a_t = b + W h_{t-1} + U x_t
    h_t = tanh(a_t)
    o_t = c + V h_t
    yhat_t = softmax(o_t)
    L = -sum_t log yhat_t[y_t]

Backward, exactly the BPTT equations::

    dL/do_t = yhat_t - onehot(y_t)
    dL/dh_T = V^T dL/do_T
    dL/dh_t = W^T diag(1 - h_{t+1}^2) dL/dh_{t+1} + V^T dL/do_t
    dL/dc = sum_t dL/do_t                  dL/dV = sum_t dL/do_t h_t^T
    dL/db = sum_t diag(1 - h_t^2) dL/dh_t  dL/dW = sum_t diag(1 - h_t^2) dL/dh_t h_{t-1}^T
                                          dL/dU = sum_t diag(1 - h_t^2) dL/dh_t x_t^T

Used as an independent oracle for the gradients of rnnlab's Elman cell (``tests``).

Shapes: ``x [T, B, I]``, ``y [T, B]`` integer targets, ``h0 [B, H]``, ``W [H, H]``, ``U [H, I]``,
``b [H]``, ``V [K, H]``, ``c [K]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class VanillaRNNParams:
    """Parameters of the notes' vanilla RNN (``W`` recurrent, ``U`` input, ``V`` output)."""

    W: np.ndarray
    U: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray


def forward(params: VanillaRNNParams, x: np.ndarray, y: np.ndarray, h0: np.ndarray):
    """Run the RNN; return the summed NLL and the cache ``(h [T+1, B, H], yhat [T, B, K])``."""
    steps = x.shape[0]
    h = np.zeros((steps + 1, *h0.shape))
    h[0] = h0
    yhat = np.zeros((steps, x.shape[1], params.V.shape[0]))
    loss = 0.0
    for t in range(steps):
        a = params.b + h[t] @ params.W.T + x[t] @ params.U.T
        h[t + 1] = np.tanh(a)
        o = params.c + h[t + 1] @ params.V.T
        e = np.exp(o - o.max(axis=1, keepdims=True))
        yhat[t] = e / e.sum(axis=1, keepdims=True)
        loss -= np.log(yhat[t, np.arange(x.shape[1]), y[t]]).sum()
    return loss, (h, yhat)


def backward(params: VanillaRNNParams, x: np.ndarray, y: np.ndarray, cache) -> dict:
    """Gradients of the summed NLL by BPTT: ``W U b V c`` and ``h0`` plus ``dh [T, B, H]``."""
    h, yhat = cache
    steps, batch = x.shape[:2]
    do = yhat.copy()
    do[np.arange(steps)[:, None], np.arange(batch)[None, :], y] -= 1.0
    grads = {name: np.zeros_like(getattr(params, name)) for name in "WUbVc"}
    dh = np.zeros((steps, batch, params.W.shape[0]))
    da_next = np.zeros((batch, params.W.shape[0]))
    for t in range(steps - 1, -1, -1):
        dh[t] = do[t] @ params.V + da_next @ params.W  # V^T do_t + W^T diag(1-h^2) dh_{t+1}
        da = (1.0 - h[t + 1] ** 2) * dh[t]
        grads["c"] += do[t].sum(axis=0)
        grads["V"] += do[t].T @ h[t + 1]
        grads["b"] += da.sum(axis=0)
        grads["W"] += da.T @ h[t]
        grads["U"] += da.T @ x[t]
        da_next = da
    grads["h0"] = da_next @ params.W
    grads["dh"] = dh
    return grads
