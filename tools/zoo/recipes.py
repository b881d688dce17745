"""Randomised, seeded recipes for the pathology zoo (pure Python: no torch import here).

A recipe fixes everything about one tiny training run: the model family and task, the data size,
the optimiser and schedule, the intended pathology and how it is provoked, the writer layout and
whether the run is resumed from a checkpoint. ``sample_recipes(count=..., seed=...)`` returns the
same list for the same arguments on every machine, so the test suite can check coverage without
training anything.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

#: Problem names as in the labelled corpus (underscores).
PROBLEMS = (
    "overfitting",
    "underfitting",
    "erratic_loss",
    "nan_loss",
    "exploding_gradients",
    "vanishing_gradients",
    "dead_neurons",
    "collapsed_predictions",
)

#: Intents: a problem to provoke, "divergence" (loss jumps to a high plateau without NaN) or
#: "healthy". Shares of the recipe list; healthy gets the rest (about 48%: some healthy recipes
#: overfit or stall anyway and are labelled by what they show).
INTENT_SHARES: dict[str, float] = {
    "overfitting": 0.08,
    "underfitting": 0.06,
    "erratic_loss": 0.06,
    "nan_loss": 0.06,
    "exploding_gradients": 0.06,
    "vanishing_gradients": 0.05,
    "dead_neurons": 0.06,
    "collapsed_predictions": 0.05,
    "divergence": 0.04,
}

#: Writer layouts (directory structure and tag style), see ``writers.py``.
LAYOUTS = ("autostock", "puffin", "hf", "lightning", "keras", "tf2loop", "tbx")

#: Recipe families: model x task. Used to group runs for cross-validation.
FAMILIES: dict[str, tuple[str, str]] = {
    "mlp-regression": ("mlp", "regression"),
    "mlp-classification": ("mlp", "classification"),
    "cnn1d-regression": ("cnn1d", "regression"),
    "cnn2d-classification": ("cnn2d", "classification"),
    "rnn-regression": ("rnn", "regression"),
    "rnn-classification": ("rnn", "classification"),
    "transformer-classification": ("transformer", "classification"),
    "transformer-regression": ("transformer", "regression"),
}

# Layouts that log gradient histograms (Keras' callback logs weights only).
_GRAD_HIST_LAYOUTS = tuple(x for x in LAYOUTS if x != "keras")


@dataclass(frozen=True)
class Recipe:
    """Everything needed to train and log one run; plain data, JSON-serialisable."""

    index: int
    name: str
    family: str
    model: str  # mlp | cnn1d | cnn2d | rnn | transformer
    task: str  # regression | classification
    intent: str  # healthy, a PROBLEMS name, or divergence
    variant: str  # how the intent is provoked
    layout: str
    seed: int
    n_train: int
    n_val: int
    noise: float  # target noise (regression) or label-flip share (classification)
    shuffled_targets: bool  # features carry no information about the targets
    width: int
    depth: int
    activation: str  # relu | tanh | sigmoid | gelu
    cell: str  # gru | lstm (rnn only)
    init_scale: float  # multiplies the default initial weights
    dead_bias: float  # constant bias put on a share of the first hidden units (0: none)
    dead_share: float
    optimizer: str  # sgd | adam | adamw
    lr: float
    momentum: float
    weight_decay: float
    decay_biases: bool
    schedule: str  # constant | step | cosine | warm_restarts
    batch_size: int
    epochs: int
    clip_norm: float  # 0: no clipping
    event: str  # none | nan_batch | lr_jump | lr_zero | freeze | lr_warmup_spike
    event_step: int
    event_factor: float
    resume: str  # none | continue | best_first
    resume_epoch: int
    log_histograms: bool
    log_predictions: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain dict (for the run's metadata and hparams)."""
        return asdict(self)


def _loguniform(rng: random.Random, low: float, high: float) -> float:
    # Learning rates are spread over decades, so sample the exponent uniformly.
    return float(f"{10 ** rng.uniform(_log10(low), _log10(high)):.3g}")


def _log10(x: float) -> float:
    import math

    return math.log10(x)


def _intents(count: int) -> list[str]:
    intents: list[str] = []
    for intent, share in INTENT_SHARES.items():
        intents += [intent] * max(1, round(share * count))
    intents += ["healthy"] * max(0, count - len(intents))
    return intents[:count]


def _families_for(intent: str, variant: str) -> list[str]:
    if intent == "vanishing_gradients" or variant in {"dead_bias", "tiny_model", "warmup_spike"}:
        return ["mlp-regression", "mlp-classification"]
    if intent == "collapsed_predictions":
        return ["mlp-regression", "mlp-classification", "cnn1d-regression", "rnn-regression"]
    if intent == "exploding_gradients" and variant == "bad_init":
        return ["mlp-regression", "mlp-classification", "cnn1d-regression"]
    if intent == "overfitting":
        return [
            "mlp-regression",
            "mlp-classification",
            "cnn1d-regression",
            "transformer-classification",
            "rnn-regression",
        ]
    if intent == "erratic_loss":
        return ["mlp-regression", "mlp-classification", "cnn1d-regression", "cnn2d-classification"]
    return list(FAMILIES)


_VARIANTS: dict[str, tuple[str, ...]] = {
    "healthy": ("plain", "plain", "plain", "resumed", "best_first", "clipped"),
    "overfitting": ("tiny_data", "rise_plateau", "rise_plateau", "best_first"),
    "underfitting": ("lr_too_low", "lr_too_low", "tiny_model", "chance"),
    "erratic_loss": ("adam_high_lr", "sgd_high_lr", "tiny_batch"),
    "nan_loss": ("huge_lr", "nan_batch", "lr_jump"),
    "exploding_gradients": ("bad_init",),
    "vanishing_gradients": ("deep_sigmoid", "deep_tanh"),
    "dead_neurons": ("dead_bias", "dead_bias", "warmup_spike", "lr_zero", "freeze"),
    "collapsed_predictions": ("weight_decay", "weight_decay", "shuffled_decay"),
    "divergence": ("lr_jump_adam", "lr_jump_sgd"),
}


def _base(rng: random.Random, family: str) -> dict[str, Any]:
    """A sensible, healthy configuration for the family; intents then change a few knobs."""
    model, task = FAMILIES[family]
    small = model in {"rnn", "transformer"}  # slow per step on CPU: fewer, shorter epochs
    optimizer = rng.choice(["adam", "adam", "adamw", "sgd"])
    if optimizer == "sgd":
        lr = _loguniform(rng, 0.01, 0.08)
        momentum = 0.9
    else:
        lr = _loguniform(rng, 5e-4, 3e-3)
        momentum = 0.0
    n_train = rng.choice([512, 768] if small else [768, 1024, 1536])
    batch = rng.choice([32, 64] if small else [16, 32, 64, 128])
    steps_per_epoch = -(-n_train // batch)
    budget = 700 if small else 1800  # optimizer steps: keeps a run at a few CPU seconds
    # Classification losses creep up from overconfidence when trained long: fewer epochs.
    most = (12 if small else 16) if task == "classification" else (25 if small else 40)
    epochs = max(10, min(most, budget // steps_per_epoch))
    return {
        "model": model,
        "task": task,
        "n_train": n_train,
        "n_val": 300,
        "noise": rng.choice([0.1, 0.2, 0.3]) if task == "regression" else 0.0,
        "shuffled_targets": False,
        "width": rng.choice([32, 48, 64]) if not small else rng.choice([24, 32]),
        "depth": rng.choice([1, 2, 2, 3]) if model == "mlp" else rng.choice([1, 2]),
        "activation": rng.choice(["relu", "relu", "tanh", "gelu"]),
        "cell": rng.choice(["gru", "lstm"]),
        "init_scale": 1.0,
        "dead_bias": 0.0,
        "dead_share": 0.0,
        "optimizer": optimizer,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": 0.01 if optimizer == "adamw" else rng.choice([0.0, 0.0, 1e-4]),
        "decay_biases": False,
        "schedule": rng.choice(["constant", "step", "cosine", "warm_restarts"]),
        "batch_size": batch,
        "epochs": epochs,
        "clip_norm": rng.choice([0.0, 0.0, 1.0, 5.0]),
        "event": "none",
        "event_step": 0,
        "event_factor": 1.0,
        "resume": "none",
        "resume_epoch": 0,
        "log_histograms": rng.random() < 0.6,
        "log_predictions": rng.random() < 0.5,
    }


def _apply_intent(  # noqa: C901 - a table of recipes: one branch per intent and variant
    rng: random.Random, cfg: dict[str, Any], intent: str, variant: str
) -> None:
    """Change the knobs that provoke ``intent`` the way ``variant`` says."""
    small = cfg["model"] in {"rnn", "transformer"}
    spe = lambda: -(-cfg["n_train"] // cfg["batch_size"])  # noqa: E731 - steps per epoch
    if intent == "healthy":
        if variant == "resumed":
            cfg["resume"] = "continue"
        elif variant == "best_first":
            cfg["resume"] = "best_first"
        elif variant == "clipped":
            cfg["clip_norm"] = 1.0
    elif intent == "overfitting":
        # Big model, tiny noisy training set, many epochs.
        cfg["n_train"] = rng.choice([24, 32, 48, 64] if not small else [32, 48])
        cfg["n_val"] = 400
        cfg["noise"] = rng.choice([0.6, 0.8, 1.0]) if cfg["task"] == "regression" else 0.3
        cfg["width"] = rng.choice([128, 256]) if not small else 48
        cfg["depth"] = max(cfg["depth"], 2)
        cfg["optimizer"] = rng.choice(["adam", "adamw"])
        cfg["lr"] = _loguniform(rng, 1e-3, 3e-3)
        cfg["weight_decay"] = 0.0
        cfg["batch_size"] = rng.choice([4, 8])
        cfg["epochs"] = rng.choice([100, 150, 200]) if not small else rng.choice([60, 80])
        cfg["clip_norm"] = 0.0
        cfg["schedule"] = "constant"
        if variant == "rise_plateau":
            # The step decay freezes the damage: val rises from an early minimum, then plateaus
            # noisily while the training loss keeps falling by orders of magnitude.
            cfg["schedule"] = "step"
        elif variant == "best_first":
            cfg["resume"] = "best_first"
    elif intent == "underfitting":
        if variant == "lr_too_low":
            cfg["lr"] = _loguniform(rng, 1e-6, 2e-5) if cfg["optimizer"] != "sgd" else 1e-5
            cfg["schedule"] = rng.choice(["constant", "cosine"])
        elif variant == "tiny_model":
            cfg["depth"] = 0  # a linear model on a target with no linear part
            cfg["extra_target"] = "no_linear_part"
        elif variant == "chance":
            cfg["shuffled_targets"] = True
            cfg["width"] = 8 if not small else 16
            cfg["depth"] = 1
            cfg["n_train"] = max(cfg["n_train"], 1024 if not small else 512)
            cfg["epochs"] = max(12, min(cfg["epochs"], (900 if not small else 500) // spe()))
    elif intent == "erratic_loss":
        cfg["clip_norm"] = 0.0
        cfg["schedule"] = "constant"
        if variant == "adam_high_lr":
            cfg["optimizer"] = "adam"
            cfg["lr"] = _loguniform(rng, 0.02, 0.08)
            cfg["batch_size"] = rng.choice([16, 32])
        elif variant == "sgd_high_lr":
            cfg["optimizer"] = "sgd"
            cfg["momentum"] = 0.9
            cfg["lr"] = _loguniform(rng, 0.15, 0.4)
            cfg["batch_size"] = rng.choice([16, 32])
        else:  # tiny batches at a high learning rate
            cfg["optimizer"] = "adam"
            cfg["lr"] = _loguniform(rng, 0.01, 0.03)
            cfg["batch_size"] = rng.choice([2, 4])
            cfg["n_train"] = 256 if not small else 128
        cfg["epochs"] = max(12, min(40, (1800 if not small else 700) // spe()))
    elif intent == "nan_loss":
        cfg["clip_norm"] = 0.0
        if variant == "huge_lr":
            cfg["optimizer"] = "sgd"
            cfg["momentum"] = rng.choice([0.0, 0.9])
            cfg["lr"] = _loguniform(rng, 2.0, 30.0)
            cfg["activation"] = "relu"
        elif variant == "nan_batch":
            cfg["event"] = "nan_batch"  # one corrupt input batch poisons the weights
            cfg["event_step"] = rng.randint(3, 8) * spe() + rng.randint(0, spe() - 1)
        else:  # the learning rate is multiplied by a huge factor mid-run (a schedule bug)
            cfg["optimizer"] = "sgd"
            cfg["momentum"] = 0.9
            cfg["lr"] = 0.02
            cfg["event"] = "lr_jump"
            cfg["event_factor"] = 1e4
            cfg["event_step"] = rng.randint(4, 10) * spe()
    elif intent == "exploding_gradients":
        if variant == "bad_init":
            # Huge initial weights: gradient norms of 1e4-1e6 at first, clipping and Adam tame it.
            cfg["init_scale"] = rng.choice([15.0, 20.0, 30.0])
            cfg["depth"] = rng.choice([3, 4]) if cfg["model"] == "mlp" else 3
            cfg["activation"] = "relu"
            cfg["clip_norm"] = 1.0
            cfg["optimizer"] = "adam"
            cfg["lr"] = _loguniform(rng, 1e-3, 3e-3)
            cfg["schedule"] = rng.choice(["constant", "cosine"])
    elif intent == "vanishing_gradients":
        cfg["depth"] = rng.choice([8, 10, 12])
        cfg["width"] = 32
        cfg["activation"] = "sigmoid" if variant == "deep_sigmoid" else "tanh"
        cfg["init_scale"] = rng.choice([0.3, 0.5]) if variant == "deep_sigmoid" else 0.15
        cfg["optimizer"] = "sgd"
        cfg["momentum"] = 0.9
        cfg["lr"] = _loguniform(rng, 0.01, 0.05)
        cfg["clip_norm"] = rng.choice([0.0, 1.0])
        cfg["log_histograms"] = True
    elif intent == "dead_neurons":
        cfg["log_histograms"] = True
        if variant == "dead_bias":
            cfg["activation"] = "relu"
            cfg["depth"] = max(cfg["depth"], 2)
            cfg["dead_bias"] = rng.choice([-4.0, -6.0, -10.0])
            cfg["dead_share"] = rng.choice([0.7, 0.9, 1.0])
        elif variant == "warmup_spike":
            cfg["activation"] = "relu"
            cfg["width"] = 128
            cfg["depth"] = 2
            cfg["optimizer"] = "adam"
            cfg["lr"] = 1e-3
            cfg["event"] = "lr_warmup_spike"  # a mis-set warm-up runs epoch 0 at a huge lr
            cfg["event_factor"] = rng.choice([50.0, 100.0])
            cfg["event_step"] = spe()
        else:  # the whole network stops learning after step ~100
            cfg["event"] = variant
            cfg["epochs"] = min(80, max(cfg["epochs"], -(-3 * 120 // spe())))
            cfg["event_step"] = min(rng.choice([80, 100, 120]), spe() * cfg["epochs"] // 3)
    elif intent == "collapsed_predictions":
        cfg["log_predictions"] = True
        cfg["optimizer"] = "sgd"
        cfg["momentum"] = 0.9
        cfg["lr"] = _loguniform(rng, 2e-3, 5e-3)
        cfg["weight_decay"] = rng.choice([2.0, 3.0, 5.0])
        cfg["schedule"] = "constant"
        cfg["epochs"] = max(cfg["epochs"], 30)
        if variant == "shuffled_decay":
            cfg["shuffled_targets"] = True
            cfg["weight_decay"] = 0.3
    elif intent == "divergence":
        # Low loss, then a schedule bug multiplies the learning rate: the loss jumps to a high
        # plateau and stays there without becoming NaN.
        cfg["activation"] = "relu"
        cfg["clip_norm"] = 0.0
        cfg["schedule"] = "constant"
        cfg["event"] = "lr_jump"
        cfg["event_step"] = max(1, cfg["epochs"] // 2 - rng.randint(0, 3)) * spe()
        if variant == "lr_jump_adam":
            cfg["optimizer"] = "adam"
            cfg["lr"] = 1e-3
            cfg["event_factor"] = rng.choice([300.0, 1000.0])
        else:
            cfg["optimizer"] = "sgd"
            cfg["momentum"] = 0.9
            cfg["lr"] = 0.01
            cfg["clip_norm"] = 1.0  # clipped, so the jump cannot overflow into NaN
            cfg["event_factor"] = rng.choice([300.0, 1000.0])
    if cfg["resume"] != "none":
        cfg["resume_epoch"] = max(2, int(cfg["epochs"] * rng.uniform(0.3, 0.6)))
        cfg["epochs"] = max(cfg["epochs"], 16)


def sample_recipes(*, count: int = 220, seed: int = 0) -> list[Recipe]:
    """Draw ``count`` recipes deterministically from ``seed``.

    Intents follow ``INTENT_SHARES`` (the rest healthy); within each intent the variants, families
    and layouts are cycled so that every combination class is represented.
    """
    rng = random.Random(seed)
    intents = _intents(count)
    rng.shuffle(intents)
    seen: dict[str, int] = {}
    recipes: list[Recipe] = []
    layout_cycle = {intent: rng.randrange(len(LAYOUTS)) for intent in [*INTENT_SHARES, "healthy"]}
    for index, intent in enumerate(intents):
        k = seen.get(intent, 0)
        seen[intent] = k + 1
        variants = _VARIANTS[intent]
        variant = variants[k % len(variants)]
        families = _families_for(intent, variant)
        family = families[(k // len(variants) + rng.randrange(len(families))) % len(families)]
        layouts = (
            _GRAD_HIST_LAYOUTS if intent in {"vanishing_gradients", "dead_neurons"} else LAYOUTS
        )
        start = layout_cycle[intent]
        layout = layouts[(start + k) % len(layouts)]
        cfg = _base(rng, family)
        _apply_intent(rng, cfg, intent, variant)
        extra: dict[str, Any] = {}
        for key in [k for k in cfg if k.startswith("extra_")]:
            extra[key[len("extra_") :]] = cfg.pop(key)
        recipes.append(
            Recipe(
                index=index,
                name=f"{family}-{index:03d}",
                family=family,
                intent=intent,
                variant=variant,
                layout=layout,
                seed=seed * 100_003 + index,
                extra=extra,
                **cfg,
            )
        )
    return recipes


def coverage(recipes: list[Recipe]) -> dict[str, set[str]]:
    """Which intents, layouts, families and models a recipe list covers."""
    return {
        "intents": {r.intent for r in recipes},
        "layouts": {r.layout for r in recipes},
        "families": {r.family for r in recipes},
        "models": {r.model for r in recipes},
        "optimizers": {r.optimizer for r in recipes},
        "schedules": {r.schedule for r in recipes},
        "resume": {r.resume for r in recipes},
    }
