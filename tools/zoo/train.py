"""Train one recipe on synthetic data and record everything the writers may log.

Training and writing are separate: ``train_recipe`` returns a ``History`` (per-step losses,
gradient norms and learning rates; per-epoch train/validation loss, metric, prediction spread;
weight and gradient snapshots of a few parameters), and the layout writers replay it into event
files. That keeps every layout's numbers identical to what the model really did.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tools.zoo.recipes import Recipe

_ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}
N_FEATURES = 10
N_CLASSES = 4
SEQ_LEN = 16
VOCAB = 24
IMAGE = 10


# ------------------------------------------------------------------------------------------
# Synthetic data (deterministic from the recipe's seed)
# ------------------------------------------------------------------------------------------


@dataclass
class Data:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    task: str
    n_classes: int = 1


def _tabular(rng: np.random.Generator, n: int, task: str, target: str) -> tuple:
    x = rng.standard_normal((n, N_FEATURES))
    if task == "classification":
        centres = rng.standard_normal((N_CLASSES * 2, N_FEATURES)) * 1.6
        cluster = rng.integers(0, N_CLASSES * 2, size=n)
        x = centres[cluster] + rng.standard_normal((n, N_FEATURES))
        return x, cluster % N_CLASSES
    if target == "no_linear_part":  # cosines and centred squares: a linear model cannot fit it
        y = np.cos(1.7 * x[:, 0]) * np.cos(1.3 * x[:, 1]) + 0.6 * (x[:, 2] ** 2 - 1)
    else:
        w1, w2 = rng.standard_normal((2, N_FEATURES)) / math.sqrt(N_FEATURES)
        y = 1.2 * np.tanh(1.5 * x @ w1) + 0.8 * np.sin(2.0 * x @ w2) + 0.5 * x[:, 0] * x[:, 1]
    return x, y


def _windows(rng: np.random.Generator, n: int) -> tuple:
    t = rng.uniform(0, 200, size=(n, 1)) + np.arange(SEQ_LEN + 1)[None, :]
    level = np.zeros((n, SEQ_LEN + 1))
    for period in (7.0, 17.0, 41.0):
        amp, phase = rng.uniform(0.4, 1.0, (n, 1)), rng.uniform(0, 2 * np.pi, (n, 1))
        level += amp * np.sin(2 * np.pi * t / period + phase)
    change = np.diff(level[:, :SEQ_LEN], axis=1, prepend=level[:, :1])
    return np.stack([level[:, :SEQ_LEN], change], axis=-1), level[:, SEQ_LEN]


def _tokens(rng: np.random.Generator, n: int) -> tuple:
    x = rng.integers(3, VOCAB, size=(n, SEQ_LEN))
    for i in range(n):
        k_pos, k_neg = rng.integers(0, 4, size=2)
        slots = rng.choice(SEQ_LEN, size=k_pos + k_neg, replace=False)
        x[i, slots[:k_pos]], x[i, slots[k_pos:]] = 5, 6
    return x, (x == 5).sum(1) - (x == 6).sum(1) + 0.3 * rng.standard_normal(n)


def _images(rng: np.random.Generator, n: int) -> tuple:
    y = rng.integers(0, 3, size=n)
    imgs = 0.6 * rng.standard_normal((n, 1, IMAGE, IMAGE))
    pos = rng.integers(2, IMAGE - 2, size=n)
    idx = np.arange(1, IMAGE - 1)
    for i in range(n):
        if y[i] == 0:
            imgs[i, 0, pos[i], 1:-1] += 1.5
        elif y[i] == 1:
            imgs[i, 0, 1:-1, pos[i]] += 1.5
        else:
            imgs[i, 0, idx, (idx + pos[i]) % IMAGE] += 1.5
    return imgs, y


def make_data(*, recipe: Recipe) -> Data:
    """Synthetic train/validation data for the recipe's model and task, from its seed."""
    rng = np.random.default_rng(recipe.seed)
    n = recipe.n_train + recipe.n_val
    model, task = recipe.model, recipe.task
    if model == "mlp":
        x, y = _tabular(rng, n, task, recipe.extra.get("target", ""))
    elif model == "cnn2d":
        x, y = _images(rng, n)
    elif model in {"rnn", "transformer"} and (task == "classification" or model == "transformer"):
        x, y = _tokens(rng, n)
        if task == "classification":
            y = (y > 0).astype(np.int64)
    else:
        x, y = _windows(rng, n)
    n_classes = 1
    if task == "classification":
        y = np.asarray(y).astype(np.int64)
        n_classes = int(y.max()) + 1 if model != "mlp" else N_CLASSES
        n_classes = max(n_classes, 2)
        flip = rng.random(n) < recipe.noise
        y = np.where(flip, rng.integers(0, n_classes, size=n), y)
    else:
        y = np.asarray(y, dtype=np.float64)
        y = (y - y.mean()) / y.std()
        y = y + recipe.noise * rng.standard_normal(n)
        y = y[:, None]
    if recipe.shuffled_targets:  # a broken join: features and targets are unrelated
        y = y[rng.permutation(n)]

    def conv(a: np.ndarray, target: bool) -> torch.Tensor:
        if a.dtype.kind in "iu" or (target and task == "classification"):
            return torch.from_numpy(np.asarray(a, dtype=np.int64))
        return torch.from_numpy(np.asarray(a, dtype=np.float32))

    k = recipe.n_train
    return Data(
        conv(x[:k], False),
        conv(y[:k], True),
        conv(x[k:], False),
        conv(y[k:], True),
        task,
        n_classes,
    )


# ------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------


class MLP(nn.Module):
    def __init__(self, n_in: int, width: int, depth: int, act: str, n_out: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = n_in
        for _ in range(depth):
            layers += [nn.Linear(prev, width), _ACT[act]()]
            prev = width
        layers.append(nn.Linear(prev, n_out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN1d(nn.Module):
    def __init__(self, width: int, depth: int, act: str, n_out: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(2 if i == 0 else width, width, 5, padding=2) for i in range(max(1, depth))
        )
        self.act = _ACT[act]()
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        for conv in self.convs:
            h = self.act(conv(h))
        return self.head(h.mean(dim=2))


class CNN2d(nn.Module):
    def __init__(self, width: int, depth: int, act: str, n_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, width, 3, padding=1)
        self.act = _ACT[act]()
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(self.act(self.conv1(x)), 2)
        return self.head(self.act(self.conv2(h)).mean(dim=(2, 3)))


class RNN(nn.Module):
    def __init__(self, cell: str, width: int, depth: int, n_out: int, tokens: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width) if tokens else None
        cls = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = cls(width if tokens else 2, width, num_layers=max(1, depth), batch_first=True)
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) if self.embed is not None else x
        out, _ = self.rnn(h)
        return self.head(out[:, -1])


class Transformer(nn.Module):
    def __init__(self, width: int, depth: int, n_out: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, width)
        self.pos = nn.Embedding(SEQ_LEN, width)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)
            for _ in range(max(1, depth))
        )
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.pos(torch.arange(x.shape[1]))[None]
        for layer in self.layers:
            h = layer(h)
        return self.head(h.mean(dim=1))


def make_model(*, recipe: Recipe, data: Data) -> nn.Module:
    """The recipe's model, seeded, with its initialisation changes applied."""
    torch.manual_seed(recipe.seed)
    n_out = data.n_classes if recipe.task == "classification" else 1
    if recipe.model == "mlp":
        model: nn.Module = MLP(N_FEATURES, recipe.width, recipe.depth, recipe.activation, n_out)
    elif recipe.model == "cnn1d":
        model = CNN1d(recipe.width, recipe.depth, recipe.activation, n_out)
    elif recipe.model == "cnn2d":
        model = CNN2d(recipe.width, recipe.depth, recipe.activation, n_out)
    elif recipe.model == "rnn":
        model = RNN(
            recipe.cell, recipe.width, recipe.depth, n_out, data.x_train.dtype == torch.int64
        )
    else:
        model = Transformer(recipe.width, recipe.depth, n_out)
    with torch.no_grad():
        if recipe.init_scale != 1.0:
            for name, p in model.named_parameters():
                if p.dim() >= 2 and "embed" not in name and "pos" not in name:
                    p.mul_(recipe.init_scale)
        if recipe.dead_bias:
            # A share of the first hidden layer's ReLUs starts far below zero and never fires.
            first = next(m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d)))
            k = max(1, round(recipe.dead_share * first.bias.numel()))
            first.bias[:k] = recipe.dead_bias
            if recipe.depth >= 2 and recipe.dead_share >= 0.9:
                second = [m for m in model.modules() if isinstance(m, nn.Linear)][1]
                second.bias[: max(1, round(0.5 * second.bias.numel()))] = recipe.dead_bias
    return model


def hist_param_names(model: nn.Module) -> list[str]:
    """The parameters whose weights and gradients are snapshotted: first, middle and last
    weight matrices (the first and last are what layer-ratio checks need)."""
    names = [n for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n]
    names = [n for n in names if not n.startswith("pos")]
    if len(names) <= 3:
        return names
    return [names[0], names[len(names) // 2], names[-1]]


# ------------------------------------------------------------------------------------------
# Training
# ------------------------------------------------------------------------------------------


@dataclass
class Epoch:
    epoch: int
    global_step: int  # optimizer steps done at the end of this epoch
    train_loss: float
    val_loss: float
    val_metric: float  # accuracy (classification) or mean absolute error (regression)
    grad_norm: float  # mean of the epoch's total gradient norms (before clipping)
    lr: float
    pred_mean: float
    pred_std: float
    clipped_share: float


@dataclass
class History:
    recipe: Recipe
    steps_per_epoch: int
    step_loss: list[float] = field(default_factory=list)  # index = global step - 1
    step_grad_norm: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    epochs: list[Epoch] = field(default_factory=list)
    # epoch -> {param name: (weights, gradients or None)}
    snapshots: dict[int, dict[str, tuple[np.ndarray, np.ndarray | None]]] = field(
        default_factory=dict
    )
    hist_params: list[str] = field(default_factory=list)
    layer_names: dict[str, str] = field(default_factory=dict)  # param -> keras-style layer name
    baseline_train: float = float("nan")  # loss of the best constant prediction
    baseline_val: float = float("nan")
    n_params: int = 0
    seconds: float = 0.0


def _lr_factor(recipe: Recipe, step: int, total: int, spe: int) -> float:
    if recipe.schedule == "step":
        return 0.3 ** (int(step >= total / 2) + int(step >= 3 * total / 4))
    if recipe.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
    if recipe.schedule == "warm_restarts":  # CosineAnnealingWarmRestarts(T_0=4 epochs, T_mult=2)
        period, start = 4 * spe, 0
        while step >= start + period:
            start, period = start + period, period * 2
        return 0.5 * (1 + math.cos(math.pi * (step - start) / period))
    return 1.0


def _lr_at(recipe: Recipe, step: int, total: int, spe: int) -> float:
    lr = recipe.lr * _lr_factor(recipe, step, total, spe)
    if recipe.event == "lr_jump" and step >= recipe.event_step:
        lr *= recipe.event_factor
    elif recipe.event == "lr_zero" and step >= recipe.event_step:
        lr = 0.0
    elif recipe.event == "lr_warmup_spike" and step < recipe.event_step:
        lr *= recipe.event_factor
    return lr


def _baseline(y_fit: torch.Tensor, y: torch.Tensor, task: str, n_classes: int) -> float:
    if task == "classification":
        prior = torch.bincount(y_fit, minlength=n_classes).double() + 1.0
        prior = prior / prior.sum()
        return float(-torch.log(prior[y]).mean())
    return float(((y.double() - y_fit.double().mean()) ** 2).mean())


def _optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if recipe.decay_biases or not name.endswith("bias") else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": recipe.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    return torch.optim.Adam(groups, lr=recipe.lr)


def train_recipe(*, recipe: Recipe, stop_after_nonfinite: int = 3) -> History:
    """Train the recipe's model and return its full history (CPU, one thread)."""
    started = time.process_time()
    data = make_data(recipe=recipe)
    model = make_model(recipe=recipe, data=data)
    optimizer = _optimizer(recipe, model)
    loss_fn = F.cross_entropy if recipe.task == "classification" else F.mse_loss
    n = recipe.n_train
    spe = math.ceil(n / recipe.batch_size)
    total = spe * recipe.epochs
    hist = History(recipe=recipe, steps_per_epoch=spe)
    hist.n_params = sum(p.numel() for p in model.parameters())
    hist.hist_params = hist_param_names(model)
    hist.baseline_train = _baseline(data.y_train, data.y_train, data.task, data.n_classes)
    hist.baseline_val = _baseline(data.y_train, data.y_val, data.task, data.n_classes)
    named = dict(model.named_parameters())
    snap_every = max(1, round(recipe.epochs / 12))
    gen = torch.Generator().manual_seed(recipe.seed + 1)
    step = 0
    nonfinite = 0
    sample = data.x_val[:256]
    for epoch in range(recipe.epochs):
        order = torch.randperm(n, generator=gen)
        losses, norms, clipped = [], [], 0
        model.train()
        for b in range(spe):
            idx = order[b * recipe.batch_size : (b + 1) * recipe.batch_size]
            if recipe.event == "freeze" and step == recipe.event_step:
                # Someone froze the backbone "for fine-tuning" and forgot to unfreeze it:
                # only the output bias still learns.
                last_bias = [n for n in named if n.endswith("bias")][-1]
                for name, p in named.items():
                    p.requires_grad_(name == last_bias)
            lr = _lr_at(recipe, step, total, spe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x = data.x_train[idx]
            corrupt = recipe.event == "nan_batch" and step == recipe.event_step
            if corrupt and x.is_floating_point():
                x = x.clone()
                x[0] = float("nan")  # one corrupt record poisons the weights
            optimizer.zero_grad(set_to_none=True)
            out = model(x)
            if corrupt and not x.is_floating_point():
                out = out * float("nan")  # token inputs: a NaN side feature, same effect
            loss = loss_fn(out, data.y_train[idx])
            loss.backward()
            params = [p for p in model.parameters() if p.grad is not None]
            grads = [p.grad.detach() for p in params]
            norm = (
                float(
                    torch.linalg.vector_norm(
                        torch.stack([torch.linalg.vector_norm(g) for g in grads])
                    )
                )
                if grads
                else 0.0
            )
            if recipe.clip_norm:
                torch.nn.utils.clip_grad_norm_(params, recipe.clip_norm)
                clipped += int(norm > recipe.clip_norm)
            optimizer.step()
            step += 1
            losses.append(loss.item())
            norms.append(norm)
            hist.step_loss.append(losses[-1])
            hist.step_grad_norm.append(norm)
            hist.step_lr.append(lr)
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(data.x_val[i : i + 256]) for i in range(0, recipe.n_val, 256)])
            val_loss = float(loss_fn(out, data.y_val))
            if recipe.task == "classification":
                metric = float((out.argmax(1) == data.y_val).float().mean())
            else:
                metric = float((out - data.y_val).abs().mean())
            preds = model(sample)
            pred_std = float(preds.std(dim=0).mean()) if preds.shape[0] > 1 else 0.0
            pred_mean = float(preds.mean())
        train_loss = float(np.mean(losses))
        hist.epochs.append(
            Epoch(
                epoch,
                step,
                train_loss,
                val_loss,
                metric,
                float(np.mean(norms)),
                lr,
                pred_mean,
                pred_std,
                clipped / spe,
            )
        )
        if epoch % snap_every == 0 or epoch == recipe.epochs - 1:
            snap = {}
            for name in hist.hist_params:
                p = named[name]
                grad = p.grad.detach().numpy().copy() if p.grad is not None else None
                snap[name] = (p.detach().numpy().copy(), grad)
            hist.snapshots[epoch] = snap
        nonfinite = 0 if math.isfinite(train_loss) else nonfinite + 1
        if nonfinite >= stop_after_nonfinite:
            break  # the loop keeps logging NaN for a few epochs, then the user kills it
    hist.seconds = time.process_time() - started
    return hist
