"""Variance of Gradients (VOG, Agarwal et al. 2022) at the feature level.

Per sample and per network, VOG is the mean over gradient dimensions of the population standard
deviation of a per-sample gradient across the last ``window`` epochs. The default gradient is the
gradient of the sample's cross-entropy loss w.r.t. the final linear layer's row for its given label
(bias included), which has the closed form ``(p_y - 1) * [1, h]`` for logits ``z = W h + b``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def _check_rows(name: str, n: int, arr_rows: int) -> None:
    if arr_rows != n:
        raise ValueError(f"{name} has {arr_rows} rows, expected {n}")


def last_layer_gradients(features: ArrayLike, probs: ArrayLike, labels: ArrayLike) -> ArrayLike:
    """Per-sample gradient of CE w.r.t. ``(bias[y], W[y, :])``, shape ``(N, D + 1)``.

    For logits ``z = W h + b``, softmax ``p`` and given label ``y`` the gradient of
    ``-log p_y`` w.r.t. the label's bias and weight row is ``(p_y - 1) * [1, h]``. Column 0 is
    the bias part. Torch inputs give a torch tensor (on the same device), numpy inputs a numpy
    array.
    """
    if isinstance(features, torch.Tensor):
        probs_t = torch.as_tensor(probs, device=features.device)
        labels_t = torch.as_tensor(labels, device=features.device, dtype=torch.long)
        n = features.shape[0]
        _check_rows("probs", n, probs_t.shape[0])
        _check_rows("labels", n, labels_t.shape[0])
        coef = probs_t.gather(1, labels_t[:, None]).to(features.dtype) - 1.0
        ones = torch.ones((n, 1), dtype=features.dtype, device=features.device)
        return coef * torch.cat([ones, features], dim=1)
    h = np.asarray(features)
    p = np.asarray(probs)
    y = np.asarray(labels, dtype=np.int64)
    n = h.shape[0]
    _check_rows("probs", n, p.shape[0])
    _check_rows("labels", n, y.shape[0])
    coef = p[np.arange(n), y].astype(h.dtype)[:, None] - 1.0
    return coef * np.concatenate([np.ones((n, 1), dtype=h.dtype), h], axis=1)


def input_feature_gradients(
    hidden: torch.Tensor, labels: torch.Tensor, fc_weight: torch.Tensor, in_weight: torch.Tensor
) -> torch.Tensor:
    """Gradient of the given-label logit w.r.t. the input of a one-hidden-layer ReLU head.

    For ``z = W2 relu(W1 x + b1) + b2`` and post-activation ``hidden = relu(W1 x + b1)``, the
    gradient of ``z_y`` w.r.t. ``x`` is ``W1^T (1[hidden > 0] * W2[y])``, shape ``(N, D_in)``.
    This is the paper's ``dA_y / dx`` at the feature level; for a linear head it would be
    ``W[y]``, identical for every sample of a class, so it is only meaningful for MLP heads.
    """
    labels = torch.as_tensor(labels, device=hidden.device, dtype=torch.long)
    _check_rows("labels", hidden.shape[0], labels.shape[0])
    if fc_weight.shape[1] != hidden.shape[1] or in_weight.shape[0] != hidden.shape[1]:
        raise ValueError(
            f"weight shapes {tuple(fc_weight.shape)}, {tuple(in_weight.shape)} do not match "
            f"hidden width {hidden.shape[1]}"
        )
    gate = (hidden > 0).to(fc_weight.dtype) * fc_weight[labels]
    return gate @ in_weight


class VOGTracker:
    """Sliding window of per-sample gradients and their VOG scores.

    The window is a ring buffer of shape ``(window, num_samples, dim)`` (memory
    ``num_samples * window * dim`` values, float32 or float16). During an epoch, :meth:`update`
    writes gradients into the current slot; :meth:`end_epoch` closes the epoch and, once
    ``window`` epochs are stored (:attr:`ready`), computes the scores over the last ``window``
    epochs. :meth:`scores` returns the scores of the last closed window, so they stay valid while
    the next epoch overwrites the oldest slot. Samples not updated in every epoch of the window
    score ``nan``.
    """

    def __init__(
        self,
        num_samples: int,
        dim: int,
        window: int = 5,
        dtype: Literal["float32", "float16"] | type[np.floating] = "float32",
    ) -> None:
        if num_samples < 1 or dim < 1:
            raise ValueError(f"num_samples and dim must be >= 1, got {num_samples}, {dim}")
        if window < 2:
            raise ValueError(f"window must be >= 2, got {window}")
        np_dtype = np.dtype(dtype)
        if np_dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"dtype must be float32 or float16, got {np_dtype}")
        self.num_samples = int(num_samples)
        self.dim = int(dim)
        self.window = int(window)
        self._buf = np.zeros((self.window, self.num_samples, self.dim), dtype=np_dtype)
        self._filled = np.zeros((self.window, self.num_samples), dtype=bool)
        self._pos = 0
        self._epochs = 0
        self._scores: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the gradient window."""
        return int(self._buf.nbytes)

    @property
    def epochs_stored(self) -> int:
        """Number of closed epochs held in the window (at most ``window``)."""
        return min(self._epochs, self.window)

    @property
    def ready(self) -> bool:
        """True once ``window`` epochs have been closed."""
        return self._epochs >= self.window

    def update(self, indices: ArrayLike, grads: ArrayLike) -> None:
        """Store this epoch's gradients ``grads`` (``(n, dim)``) for samples ``indices``."""
        if isinstance(indices, torch.Tensor):
            indices = indices.detach().cpu().numpy()
        idx = np.asarray(indices, dtype=np.int64)
        if isinstance(grads, torch.Tensor):
            grads = grads.detach().float().cpu().numpy()
        g = np.asarray(grads)
        if g.shape != (idx.shape[0], self.dim):
            raise ValueError(f"grads has shape {g.shape}, expected ({idx.shape[0]}, {self.dim})")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_samples):
            raise ValueError(f"sample index out of range [0, {self.num_samples})")
        self._buf[self._pos, idx] = g
        self._filled[self._pos, idx] = True

    def end_epoch(self) -> None:
        """Close the current epoch; compute the scores when the window is full."""
        self._epochs += 1
        self._pos = (self._pos + 1) % self.window
        if self.ready:
            self._scores = self._compute()
        self._filled[self._pos] = False

    def scores(self) -> np.ndarray:
        """VOG per sample, ``(num_samples,)`` float64, over the last ``window`` closed epochs."""
        if self._scores is None:
            raise RuntimeError(
                f"VOG needs {self.window} epochs of gradients, {self.epochs_stored} stored"
            )
        return self._scores.copy()

    def _compute(self, chunk: int = 1024) -> np.ndarray:
        # Two-pass population std over the window, one slot at a time: several times faster
        # than torch.std over the outer axis; row chunks stay cache-resident, and float16
        # slots are widened chunk by chunk.
        out = np.empty(self.num_samples, dtype=np.float64)
        buf = torch.from_numpy(self._buf)
        for start in range(0, self.num_samples, chunk):
            rows = slice(start, start + chunk)
            mean = buf[0, rows].to(torch.float32, copy=True)
            for k in range(1, self.window):
                mean += buf[k, rows]
            mean /= self.window
            acc = torch.zeros_like(mean)
            for k in range(self.window):
                diff = buf[k, rows] - mean
                acc.addcmul_(diff, diff)
            out[rows] = acc.div_(self.window).sqrt_().mean(dim=1).double().numpy()
        out[~self._filled.all(axis=0)] = np.nan
        return out
