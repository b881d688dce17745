"""Synthetic datasets: every generator is seeded and draws from its own ``numpy`` generator.

``DATASETS`` maps the names the catalogue uses (``Part("price_windows", ...)``) to the functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    kind: str  # "regression" or "classification"

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])


def _as_tensors(x_tr, y_tr, x_va, y_va, kind: str) -> Dataset:
    def conv(a, target):
        a = np.asarray(a)
        if (kind == "classification" and target) or np.issubdtype(a.dtype, np.integer):
            return torch.from_numpy(a.astype(np.int64))  # class labels and token ids
        return torch.from_numpy(a.astype(np.float32))

    return Dataset(conv(x_tr, False), conv(y_tr, True), conv(x_va, False), conv(y_va, True), kind)


def factor_returns(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    n_features: int = 16,
    noise: float = 0.3,
    target_mean: float = 0.0,
    misaligned: bool = False,
    scale: float = 1.0,
) -> Dataset:
    """Tabular "factor -> next-period return" regression with a non-linear signal.

    ``misaligned=True`` shuffles the targets against the features (a broken join), so the features
    carry no information about the target at all. ``scale`` multiplies the target (0.01 gives
    raw daily-return units).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.standard_normal((n, n_features))
    w1, w2 = rng.standard_normal((2, n_features)) / math.sqrt(n_features)
    signal = 1.2 * np.tanh(1.5 * x @ w1) + 0.8 * np.sin(2.0 * x @ w2) + 0.5 * x[:, 0] * x[:, 1]
    signal = (signal - signal.mean()) / signal.std()
    y = target_mean + signal + noise * rng.standard_normal(n)
    if misaligned:
        y = rng.permutation(y)
    y = scale * y[:, None]
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")


def nonlinear_surface(
    *, seed: int, n_train: int, n_val: int, n_features: int = 8, noise: float = 0.1
) -> Dataset:
    """A smooth target with no linear component at all (a linear model cannot beat the mean)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.uniform(-2.0, 2.0, size=(n, n_features))
    y = (
        np.cos(1.7 * x[:, 0]) * np.cos(1.3 * x[:, 1])
        + 0.6 * (x[:, 2] ** 2 - 4.0 / 3.0)
        + 0.5 * np.cos(2.0 * x[:, 3])
    )
    y = (y - y.mean()) / y.std() + noise * rng.standard_normal(n)
    y = y[:, None]
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")


def price_windows(
    *, seed: int, n_train: int, n_val: int, window: int = 20, noise: float = 0.1, flat: bool = False
) -> Dataset:
    """Windows of a synthetic, seasonal "price" series; the target is the next value.

    Each sample is ``window`` steps of (level, one-step change). ``flat=True`` flattens the window
    for MLP models.
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    length = window + 1
    periods = np.array([7.0, 17.0, 41.0])
    amps = rng.uniform(0.4, 1.0, size=(n, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(n, 3))
    start = rng.uniform(0, 200, size=(n, 1))
    t = start + np.arange(length)[None, :]
    level = np.zeros((n, length))
    for k, period in enumerate(periods):
        level += amps[:, k : k + 1] * np.sin(2 * np.pi * t / period + phases[:, k : k + 1])
    level += noise * rng.standard_normal((n, length))
    level /= level[:, :window].std()
    change = np.diff(level[:, :window], axis=1, prepend=level[:, :1])
    x = np.stack([level[:, :window], change], axis=-1)
    y = level[:, window:]
    if flat:
        x = x.reshape(n, -1)
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")


def gaussian_classes(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    n_features: int = 10,
    n_classes: int = 4,
    spread: float = 1.0,
    label_noise: float = 0.0,
) -> Dataset:
    """Mixture-of-Gaussians classification, two clusters per class (not linearly separable)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    centres = rng.standard_normal((n_classes * 2, n_features)) * 1.6
    cluster = rng.integers(0, n_classes * 2, size=n)
    x = centres[cluster] + spread * rng.standard_normal((n, n_features))
    y = cluster % n_classes
    flip = rng.random(n) < label_noise
    y = np.where(flip, rng.integers(0, n_classes, size=n), y)
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "classification")


def bar_images(
    *, seed: int, n_train: int, n_val: int, size: int = 12, noise: float = 0.6
) -> Dataset:
    """Noisy 1-channel images holding a horizontal, vertical or diagonal bar (3 classes)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    y = rng.integers(0, 3, size=n)
    imgs = noise * rng.standard_normal((n, 1, size, size))
    pos = rng.integers(2, size - 2, size=n)
    for i in range(n):
        p = pos[i]
        if y[i] == 0:
            imgs[i, 0, p, 1:-1] += 1.5
        elif y[i] == 1:
            imgs[i, 0, 1:-1, p] += 1.5
        else:
            idx = np.arange(1, size - 1)
            imgs[i, 0, idx, (idx + p) % size] += 1.5
    return _as_tensors(imgs[:n_train], y[:n_train], imgs[n_train:], y[n_train:], "classification")


def token_sequences(
    *,
    seed: int,
    n_train: int,
    n_val: int,
    seq_len: int = 16,
    vocab: int = 24,
    label_noise: float = 0.05,
    regression: bool = False,
) -> Dataset:
    """Token sequences labelled 1 when token 5 occurs more often than token 6 ("sentiment").

    ``regression=True`` returns the noisy sentiment score itself (scaled to unit variance).
    """
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    x = rng.integers(3, vocab, size=(n, seq_len))
    # Plant a few of the two marker tokens so the classes are balanced but not trivial.
    for i in range(n):
        k_pos, k_neg = rng.integers(0, 4, size=2)
        slots = rng.choice(seq_len, size=k_pos + k_neg, replace=False)
        x[i, slots[:k_pos]] = 5
        x[i, slots[k_pos:]] = 6
    score = (x == 5).sum(1) - (x == 6).sum(1) + 0.5 * rng.standard_normal(n)
    if regression:
        y = (score / score.std())[:, None]
        return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "regression")
    y = (score > 0).astype(np.int64)
    flip = rng.random(n) < label_noise
    y = np.where(flip, 1 - y, y)
    return _as_tensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:], "classification")


DATASETS: dict[str, Callable[..., Dataset]] = {
    fn.__name__: fn
    for fn in (
        factor_returns,
        nonlinear_surface,
        price_windows,
        gaussian_classes,
        bar_images,
        token_sequences,
    )
}
