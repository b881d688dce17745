"""The sample runs as data: one frozen ``RunSpec`` per run, in generation order.

A spec says how the run is trained (``Recipe``, or ``HFRecipe`` for the HuggingFace layout), how
its writer logs it (one spec class per layout: ``Autostock``, ``Puffin``, ``HF``, ``Lightning``,
``Keras``), which training problems it really shows (``problems``, and the debatable ``allowed``
ones) and the prose of ``sample_runs/README.md`` (``done``, ``shows``) and ``labels.json``
(``description``). ``readme.py`` renders both files from here; ``build.py`` trains the recipes.

This module imports neither torch nor numpy: recipes name their datasets, models and schedules
by string (``Part("price_windows", n_train=800, ...)``), resolved by ``data.DATASETS``,
``models.MODELS`` and ``trainer.make_schedule``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

SCHEMA_VERSION = 1  # of labels.json
PROBLEMS = (
    "overfitting",
    "underfitting",
    "erratic-loss",
    "non-finite-loss",
    "exploding-gradients",
    "vanishing-gradients",
    "dead-neurons",
    "collapsed-predictions",
    "weight-collapse",
)


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """A writer layout: where its runs go, the simulated machine that trains them, README notes.

    Every run is its own process (pid ``20000 + 997 * index in RUNS``, starting
    ``process_spacing`` seconds after the layout's previous run) unless ``shared_pid`` is set:
    then all the layout's runs are trained one after another by that one process.
    """

    name: str
    run_path: str  # the run's directory relative to the output, "{name}" is the run's name
    host: str
    start: float  # UTC seconds when the layout's first process starts
    note: str  # README: what the writer logs, and how
    shared_pid: int | None = None
    process_spacing: float = 1800.0
    first_writer_uid: int = 0  # the writer counter in event-file names (TF2 starts past 0)


LAYOUTS: tuple[Layout, ...] = (
    Layout(
        name="autostock",
        # train_models.py --tensorboard trains all AutoStock models one after another in one
        # process; its log directory name is the local start time 2025-01-10 14:30:22 (UTC).
        run_path="autostock/20250110_143022/{name}",
        host="trader-ws",
        start=1736519422.61,
        shared_pid=48213,
        note="AutoStock Trader `BaseModel.fit`: `Loss/train`, `Loss/validation`, "
        "`Learning_Rate`, `Gradient/norm` (total norm before clipping, mean over the epoch), "
        "`Best_Val_Loss` (only when it improves), `Weights/<param>` and `Gradients/<param>` "
        "histograms every 10 epochs; step = epoch; all nine models trained by one process under "
        "one timestamp directory.",
    ),
    Layout(
        name="puffin",
        run_path="puffin/{name}",
        host="quant-mbp.local",
        start=1732200000.0,
        note="puffin `TrainingLogger`: `train_loss`, `val_loss`, `learning_rate/group_0`, "
        "`pred_mean`/`pred_std` (on a fixed validation batch), `weights/<param>` and "
        "`gradients/<param>` every 10 epochs; `add_hparams` once at the end writes a "
        "`<time.time()>` sub-directory holding the hparams and the `hparam/*` metric scalars.",
    ),
    Layout(
        name="hf",
        run_path="hf/{name}/runs/Nov21_10-00-00_host",
        host="host",
        start=1732183203.2,
        process_spacing=0.0,
        note="HuggingFace `Trainer` + `TensorBoardCallback`: `train/loss` (4 decimals, with "
        "`logging_nan_inf_filter`), `train/grad_norm` (before clipping), `train/learning_rate`, "
        "`train/epoch`, `eval/*` at `eval_steps`, end-of-training `train/train_*` and "
        "`train/total_flos`; `args/text_summary` and `model_config/text_summary` at step 0.",
    ),
    Layout(
        name="lightning",
        run_path="lightning/{name}/lightning_logs/version_0",
        host="gpu-node-01",
        start=1731590000.0,
        note="PyTorch Lightning `TensorBoardLogger`: `hp_metric` = -1 and the hparams summaries "
        "in the same event file, `train_loss` every `log_every_n_steps` (step = batches "
        "stepped - 1), `val_loss` per epoch, `epoch` alongside both, `lr-<Optimizer>` from "
        "`LearningRateMonitor`, a user-logged `grad_norm`; `hparams.yaml` next to the file.",
    ),
    Layout(
        name="keras",
        run_path="keras/{name}",
        host="host",
        start=1736519421.5,
        first_writer_uid=1666,
        note="Keras 3 `TensorBoard(histogram_freq=1)` on TF2: `.v2` files in `train/` and "
        "`validation/`, rank-0 float tensors with `scalars` metadata on the first value only, "
        "`epoch_loss` (both), `epoch_learning_rate` (train), `evaluation_loss_vs_iterations` "
        "(validation, step = optimizer iterations), `<layer>/<weight>/histogram` as `[30, 3]` "
        "double tensors every epoch, the `keras` model-config tensor, and the profiler's "
        "`*.profile-empty` marker plus `plugins/profile/<date>/` (both ignored by readers).",
    ),
)
LAYOUT_BY_NAME: Mapping[str, Layout] = _frozen({layout.name: layout for layout in LAYOUTS})


# --------------------------------------------------------------------------------------------
# Recipes: how a run is trained
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class Part:
    """A dataset, model or LR schedule by name, with its keyword arguments."""

    kind: str
    params: Mapping[str, Any] = field(hash=False)

    def __init__(self, kind: str, /, **params: Any) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "params", _frozen(params))


@dataclass(frozen=True)
class Optimizer:
    name: str  # "Adam" or "SGD"
    lr: float
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0
    decay_biases: bool = True  # False: weight decay on weights only (two parameter groups)

    def __post_init__(self) -> None:
        if self.name not in {"Adam", "SGD"}:
            raise ValueError(f"unknown optimizer {self.name!r}")
        if self.momentum and self.name != "SGD":
            raise ValueError("momentum is an SGD argument here")


@dataclass(frozen=True)
class Init:
    """Re-initialise the model's ``Linear`` layers after construction, in module order."""

    weight_std: float | None = None  # weights from N(0, weight_std^2)
    bias: float | None = None  # constant biases
    first: int | None = None  # only the first ``first`` layers (default: all)


# Per-step schedules set the LR before every optimizer step; per-epoch ones are torch schedulers
# stepped after every epoch. See trainer.make_schedule for their parameters.
STEP_SCHEDULES = ("cosine", "switch", "warmup")
EPOCH_SCHEDULES = ("plateau", "multistep", "exponential", "step", "power")


@dataclass(frozen=True)
class Recipe:
    """A training job for ``trainer.Trainer``: ``seed`` seeds torch and numpy, the dataset and
    (unless ``shuffle_seed`` is set) the batch order."""

    seed: int
    data: Part  # a function of data.DATASETS, called with seed=seed
    model: Part  # a class of models.MODELS
    optimizer: Optimizer
    epochs: int
    batch_size: int
    clip_norm: float | None = None
    schedule: Part | None = None
    init: Init | None = None
    shuffle_seed: int | None = None
    # Stop once this many consecutive epochs had a non-finite train loss (None: never).
    stop_after_nonfinite: int | None = 5

    def __post_init__(self) -> None:
        if self.schedule and self.schedule.kind not in STEP_SCHEDULES + EPOCH_SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule.kind!r}")


@dataclass(frozen=True)
class HFRecipe:
    """A fine-tune with the emulated HuggingFace ``Trainer`` (``writers/hf.py``)."""

    data_seed: int
    data: Part  # a function of data.DATASETS, called with seed=data_seed
    config: Mapping[str, Any] = field(hash=False)  # TinyEncoderConfig fields
    args: Mapping[str, Any] = field(hash=False)  # TrainingArguments fields that differ
    # (batch, row) of the first epoch whose training label is NaN (an unparsed "N/A" score).
    nan_label: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", _frozen(self.config))
        object.__setattr__(self, "args", _frozen(self.args))


# --------------------------------------------------------------------------------------------
# Writer settings, one class per layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Autostock:
    layout: ClassVar[str] = "autostock"
    hist_params: tuple[str, ...]  # parameters whose weights and gradients get histograms
    seconds_per_epoch: float


@dataclass(frozen=True)
class Puffin:
    layout: ClassVar[str] = "puffin"
    hparams: Mapping[str, Any] = field(hash=False)  # what add_hparams logs at the end
    hist_params: tuple[str, ...]
    seconds_per_epoch: float
    pred_every: int = 1  # epochs between pred_mean/pred_std points

    def __post_init__(self) -> None:
        object.__setattr__(self, "hparams", _frozen(self.hparams))


@dataclass(frozen=True)
class HF:
    layout: ClassVar[str] = "hf"
    seconds_per_step: float


@dataclass(frozen=True)
class Lightning:
    layout: ClassVar[str] = "lightning"
    hparams: Mapping[str, Any] = field(hash=False)  # self.save_hyperparameters() (lists stay lists)
    log_every_n_steps: int
    seconds_per_step: float
    log_grad_norm: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "hparams", _frozen(self.hparams))


@dataclass(frozen=True)
class Keras:
    """The ``keras`` model-config tensor (layers, activation, optimizer) comes from the recipe."""

    layout: ClassVar[str] = "keras"
    seconds_per_epoch: float


WriterSpec = Autostock | Puffin | HF | Lightning | Keras


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """One run: how it is made, how it is logged, and what it really shows."""

    name: str  # unique; the run's directory name in its layout
    writer: WriterSpec
    recipe: Recipe | HFRecipe
    problems: tuple[str, ...]  # what the run really shows (empty: healthy)
    description: str  # one sentence for labels.json
    done: str  # README "what was done": model, optimiser, LR, data
    shows: str  # README "what it shows": what the curves show
    # Debatable problems: a finding for one is neither required nor a false alarm (the scoring
    # rule of the real-run corpus).
    allowed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for label, names in (("problems", self.problems), ("allowed", self.allowed)):
            unknown = set(names) - set(PROBLEMS)
            if unknown:
                raise ValueError(f"{self.name}: unknown {label} {sorted(unknown)}")
        if set(self.problems) & set(self.allowed):
            raise ValueError(f"{self.name}: a problem is both required and allowed")
        if (self.layout == "hf") != isinstance(self.recipe, HFRecipe):
            raise ValueError(f"{self.name}: HFRecipe goes with the hf layout, and only there")

    @property
    def layout(self) -> str:
        return self.writer.layout

    @property
    def path(self) -> str:
        """The run's directory relative to the output (the logical run of labels.json)."""
        return LAYOUT_BY_NAME[self.layout].run_path.format(name=self.name)


def _hist(*names: str) -> tuple[str, ...]:
    return names


RUNS: tuple[RunSpec, ...] = (
    # ---------------------------------------- autostock -------------------------------------
    RunSpec(
        name="lstm_basic",
        writer=Autostock(_hist("lstm.weight_ih_l0", "fc.weight"), seconds_per_epoch=2.31),
        recipe=Recipe(
            seed=101,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.1),
            model=Part("LSTMForecaster", input_size=2, hidden_size=32),
            optimizer=Optimizer("Adam", lr=1e-3),
            schedule=Part("plateau", factor=0.5, patience=5),
            epochs=65,
            batch_size=32,
            clip_norm=1.0,
        ),
        problems=(),
        description="Healthy LSTM forecaster: both losses fall and flatten together, stable "
        "gradient norm.",
        done="LSTM(2->32) + fc; Adam lr 1e-3 with ReduceLROnPlateau(0.5, patience 5); clip 1.0; "
        "batch 32; 65 epochs; 800/200 windows of a noisy seasonal series",
        shows="train and validation loss fall fast, then flatten with a small gap; the LR halves "
        "once (epoch 38)",
    ),
    RunSpec(
        name="gru_residual",
        writer=Autostock(_hist("gru.weight_ih_l0", "fc.weight"), seconds_per_epoch=3.02),
        recipe=Recipe(
            seed=102,
            data=Part("price_windows", n_train=700, n_val=200, noise=0.12),
            model=Part("ResidualGRU", input_size=2, hidden_size=24),
            optimizer=Optimizer("Adam", lr=2e-3),
            schedule=Part("cosine"),
            epochs=50,
            batch_size=64,
            clip_norm=1.0,
        ),
        problems=(),
        description="Healthy residual GRU with a cosine LR schedule: smooth convergence, "
        "validation tracks training.",
        done="Linear(2->24) + 2-layer GRU(24) with a residual skip + fc; Adam lr 2e-3, cosine "
        "decay per step; clip 1.0; batch 64; 50 epochs; 700/200 windows",
        shows="both losses fall and flatten together; gradient norm settles; LR decays to ~0",
    ),
    RunSpec(
        name="mlp_wide",
        writer=Autostock(_hist("net.0.weight", "net.4.weight"), seconds_per_epoch=0.41),
        recipe=Recipe(
            seed=103,
            data=Part("price_windows", n_train=60, n_val=400, noise=1.0, flat=True),
            model=Part("FeedforwardNet", input_dim=40, hidden_dims=(256, 256), attr="net"),
            optimizer=Optimizer("Adam", lr=3e-4),
            epochs=60,
            batch_size=10,
            clip_norm=1.0,
        ),
        problems=("overfitting",),
        description="Oversized MLP on 60 very noisy windows: validation loss bottoms out after a "
        "few epochs, then climbs while training loss goes to ~0.",
        done="MLP 40->256->256->1 (ReLU), no dropout or weight decay; Adam lr 3e-4; clip 1.0; "
        "batch 10; 60 epochs; only 60 training windows with noise std 1.0, 400 validation windows",
        shows="validation minimum around epoch 4, then a clear rise (~+25%) and a plateau; train "
        "loss falls by orders of magnitude",
    ),
    RunSpec(
        name="lstm_small_lr",
        writer=Autostock(_hist("lstm.weight_ih_l0", "fc.weight"), seconds_per_epoch=2.29),
        recipe=Recipe(
            seed=104,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.1),
            model=Part("LSTMForecaster", input_size=2, hidden_size=32),
            optimizer=Optimizer("Adam", lr=1e-6),
            epochs=60,
            batch_size=32,
            clip_norm=1.0,
        ),
        problems=("underfitting",),
        description="LSTM with the learning rate set 1000x too low: both losses barely move.",
        done="LSTM(2->32) + fc; Adam lr 1e-6 (meant 1e-3); clip 1.0; batch 32; 60 epochs; "
        "800/200 windows",
        shows="train and validation loss stay within ~1% of their starting value for the whole run",
    ),
    RunSpec(
        name="gru_sgd_fast",
        writer=Autostock(_hist("gru.weight_ih_l0", "fc.weight"), seconds_per_epoch=4.4),
        recipe=Recipe(
            seed=105,
            data=Part("price_windows", n_train=200, n_val=200, noise=0.1),
            model=Part("GRUForecaster", input_size=2, hidden_size=32),
            optimizer=Optimizer("SGD", lr=0.3, momentum=0.9),
            epochs=60,
            batch_size=4,
            clip_norm=1.0,
        ),
        problems=("erratic-loss",),
        description="GRU trained with SGD at a too high LR and batch size 4: the loss jumps "
        "around and spikes far above its trend, but clipping keeps it finite.",
        done="GRU(2->32) + fc; SGD lr 0.3 momentum 0.9; clip 1.0; batch 4; 60 epochs; 200/200 "
        "windows",
        shows="train loss wobbles between ~0.14 and ~0.77; validation loss spikes to 3-6x its "
        "neighbours (0.63, 0.74, 1.7 against ~0.2-0.3); no NaN",
    ),
    RunSpec(
        name="lstm_step_lr",
        writer=Autostock(_hist("lstm.weight_ih_l0", "fc.weight"), seconds_per_epoch=2.3),
        recipe=Recipe(
            seed=106,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.1),
            model=Part("LSTMForecaster", input_size=2, hidden_size=32),
            optimizer=Optimizer("SGD", lr=0.3, momentum=0.9),
            schedule=Part("multistep", milestones=(25,), gamma=10.0),
            epochs=60,
            batch_size=32,
        ),
        problems=("non-finite-loss",),
        description="LSTM whose MultiStepLR used gamma=10 instead of 0.1: at epoch 25 the LR "
        "jumps to 3.0 and the loss turns NaN within that epoch.",
        done="LSTM(2->32) + fc; SGD lr 0.3 momentum 0.9, MultiStepLR(milestones=[25], gamma=10); "
        "no clipping; batch 32; stops after 5 NaN epochs; 800/200 windows",
        shows="healthy-looking losses for 25 epochs, then NaN loss and NaN gradient norm from "
        "epoch 25 on",
    ),
    RunSpec(
        name="gru_exp_lr",
        writer=Autostock(_hist("fc.weight", "fc.bias"), seconds_per_epoch=2.0),
        recipe=Recipe(
            seed=107,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.1),
            model=Part("GRUForecaster", input_size=2, hidden_size=32),
            optimizer=Optimizer("SGD", lr=0.05, momentum=0.9),
            schedule=Part("exponential", gamma=1.1),
            epochs=60,
            batch_size=32,
            clip_norm=10.0,
        ),
        problems=("exploding-gradients",),
        # The loss diverges to 1e4-1e5 with a wobbling validation loss: erratic too, debatably.
        allowed=("erratic-loss",),
        description="GRU whose ExponentialLR used gamma=1.1 instead of 0.9: once the LR passes "
        "~1 the gradient norm grows by more than three orders of magnitude; clipping at 10 keeps "
        "everything finite while the loss diverges.",
        done="GRU(2->32) + fc; SGD lr 0.05 momentum 0.9, ExponentialLR(gamma=1.1); clip 10; "
        "batch 32; 60 epochs; 800/200 windows",
        shows="Gradient/norm ~0.3 for 25 epochs, then climbs to >1e3; losses rise to ~1e4-1e5, "
        "all finite",
    ),
    RunSpec(
        name="mlp_deep_sigmoid",
        writer=Autostock(_hist("net.0.weight", "net.20.weight"), seconds_per_epoch=0.8),
        recipe=Recipe(
            seed=108,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.1, flat=True),
            model=Part(
                "FeedforwardNet",
                input_dim=40,
                hidden_dims=(32,) * 10,
                activation="sigmoid",
                attr="net",
            ),
            init=Init(weight_std=0.2, bias=0.0),
            optimizer=Optimizer("SGD", lr=0.05, momentum=0.9),
            epochs=60,
            batch_size=32,
            clip_norm=1.0,
        ),
        problems=("vanishing-gradients", "underfitting"),
        description="Ten stacked sigmoid layers with a small init, trained with SGD: first-layer "
        "gradients are ~1e-8, six to seven orders of magnitude below the output layer, so the "
        "network never learns beyond the mean (both losses stay flat).",
        done="MLP 40->10x32->1 (sigmoid), init N(0, 0.2^2), zero biases; SGD lr 0.05 momentum "
        "0.9; clip 1.0; batch 32; 60 epochs; 800/200 windows",
        shows="Gradients/net.0.weight rms 1.5e-7 -> 6e-9 vs 3e-3..0.14 for net.20.weight; losses "
        "flat near 1.05; Gradient/norm (dominated by the output layer) ~0.3",
    ),
    RunSpec(
        name="mlp_relu_bias",
        writer=Autostock(_hist("net.0.weight", "net.2.weight"), seconds_per_epoch=0.5),
        recipe=Recipe(
            seed=109,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.1, flat=True),
            model=Part("FeedforwardNet", input_dim=40, hidden_dims=(128, 128), attr="net"),
            init=Init(bias=-1.5, first=1),
            optimizer=Optimizer("Adam", lr=1e-3),
            epochs=60,
            batch_size=32,
            clip_norm=1.0,
        ),
        problems=("dead-neurons",),
        description="ReLU MLP whose first-layer biases were initialised to -1.5: ~90% of the "
        "units never activate, so their gradients are exactly zero and their weights never "
        "change; the few live units still fit the data.",
        done="MLP 40->128->128->1 (ReLU), first hidden layer bias init -1.5; Adam lr 1e-3; clip "
        "1.0; batch 32; 60 epochs; 800/200 windows",
        shows="~90% exactly-zero entries in Gradients/net.0.weight and net.2.weight at every "
        "snapshot; losses still fall",
    ),
    # ------------------------------------------ puffin --------------------------------------
    RunSpec(
        name="ffn_return_prediction",
        writer=Puffin(
            hparams={
                "hidden_dims": "[64, 32]",
                "dropout": 0.1,
                "lr": 0.001,
                "batch_size": 64,
                "optimizer": "Adam",
                "epochs": 60,
            },
            hist_params=_hist("network.0.weight", "network.6.weight"),
            seconds_per_epoch=1.1,
        ),
        recipe=Recipe(
            seed=201,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(64, 32), dropout=0.1),
            optimizer=Optimizer("Adam", lr=1e-3),
            epochs=60,
            batch_size=64,
        ),
        problems=(),
        description="Healthy feedforward return model: losses fall and flatten together, "
        "prediction spread stays near the target spread.",
        done="FeedforwardNet(16, [64, 32], dropout 0.1); Adam lr 1e-3; batch 64; 60 epochs; "
        "3000/1000 samples of a non-linear factor->return target (noise 0.5)",
        shows="train 1.16 -> ~0.28, val 0.89 -> ~0.33; pred_std 0.37 -> ~0.96; gradient "
        "histograms steady",
    ),
    RunSpec(
        name="cnn1d_return_prediction",
        writer=Puffin(
            hparams={
                "channels": 16,
                "kernel_size": 5,
                "lr": 0.001,
                "batch_size": 64,
                "optimizer": "Adam",
                "epochs": 50,
            },
            hist_params=_hist("conv1.weight", "fc.weight"),
            seconds_per_epoch=1.6,
            pred_every=10,
        ),
        recipe=Recipe(
            seed=202,
            data=Part("price_windows", n_train=1200, n_val=300, noise=0.1),
            model=Part("Conv1dNet", in_channels=2, channels=16),
            optimizer=Optimizer("Adam", lr=1e-3),
            epochs=50,
            batch_size=64,
        ),
        problems=(),
        description="Healthy temporal CNN on price windows; prediction statistics logged every "
        "10 epochs.",
        done="Conv1d(2->16, k5) -> Conv1d(16->16, k5) -> mean pool -> fc; Adam lr 1e-3; batch "
        "64; 50 epochs; 1200/300 windows of a noisy seasonal series",
        shows="both losses fall fast and flatten with a small gap; pred_mean/pred_std every 10 "
        "epochs",
    ),
    RunSpec(
        name="lstm_return_prediction",
        writer=Puffin(
            hparams={
                "hidden_size": 16,
                "num_layers": 1,
                "lr": 0.003,
                "batch_size": 64,
                "optimizer": "Adam",
                "scheduler": "StepLR(20, 0.3)",
                "epochs": 45,
            },
            hist_params=_hist("lstm.weight_ih_l0", "fc.weight"),
            seconds_per_epoch=1.4,
        ),
        recipe=Recipe(
            seed=203,
            data=Part("price_windows", n_train=800, n_val=200, noise=0.15),
            model=Part("LSTMForecaster", input_size=2, hidden_size=16),
            optimizer=Optimizer("Adam", lr=3e-3),
            schedule=Part("step", step_size=20, gamma=0.3),
            epochs=45,
            batch_size=64,
            clip_norm=1.0,
        ),
        problems=(),
        description="Healthy small LSTM on price windows with a step LR decay.",
        done="LSTM(2->16) + fc; Adam lr 3e-3, StepLR(step 20, gamma 0.3); clip 1.0; batch 64; "
        "45 epochs; 800/200 windows",
        shows="losses fall and flatten together; LR steps down twice; pred_std stable",
    ),
    RunSpec(
        name="ffn_small_sample",
        writer=Puffin(
            hparams={
                "hidden_dims": "[256, 256]",
                "dropout": 0.0,
                "lr": 0.0003,
                "batch_size": 16,
                "n_train": 80,
                "optimizer": "Adam",
                "epochs": 60,
            },
            hist_params=_hist("network.0.weight", "network.4.weight"),
            seconds_per_epoch=0.2,
            pred_every=10,
        ),
        recipe=Recipe(
            seed=204,
            data=Part("factor_returns", n_train=80, n_val=1000, noise=1.0, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(256, 256)),
            optimizer=Optimizer("Adam", lr=3e-4),
            epochs=60,
            batch_size=16,
        ),
        problems=("overfitting",),
        description="Wide feedforward net trained on only 80 noisy samples without "
        "regularisation: validation loss is lowest around epoch 11 and then rises steadily.",
        done="FeedforwardNet(16, [256, 256]), no dropout/weight decay; Adam lr 3e-4; batch 16; "
        "60 epochs; 80 training samples (noise 1.0), 1000 validation samples",
        shows="val 1.95 -> 1.75 (epoch 11) -> 2.05; train -> ~0.02; pred_std grows past the "
        "target's",
    ),
    RunSpec(
        name="ffn_dropout0.3_lr1e-06",
        writer=Puffin(
            hparams={"dropout": 0.3, "learning_rate": 1e-06, "hidden_dims": "[64, 32]"},
            hist_params=_hist("network.0.weight", "network.6.weight"),
            seconds_per_epoch=1.0,
        ),
        recipe=Recipe(
            seed=205,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(64, 32), dropout=0.3),
            optimizer=Optimizer("Adam", lr=1e-6),
            epochs=60,
            batch_size=64,
        ),
        problems=("underfitting",),
        description="Hyper-parameter search member with lr=1e-6: nothing is learned, both "
        "losses stay near their initial value.",
        done="FeedforwardNet(16, [64, 32], dropout 0.3); Adam lr 1e-6; batch 64; 60 epochs; "
        "3000/1000 samples",
        shows="train 1.60 -> 1.54, val 1.48 -> 1.44 over 60 epochs; pred_mean still far from "
        "the target mean",
    ),
    RunSpec(
        name="ffn_tanh_sgd_lr0.12",
        writer=Puffin(
            hparams={
                "hidden_dims": "[64, 32]",
                "activation": "tanh",
                "lr": 0.12,
                "momentum": 0.9,
                "batch_size": 8,
                "optimizer": "SGD",
                "epochs": 60,
            },
            hist_params=_hist("network.0.weight", "network.4.weight"),
            seconds_per_epoch=2.9,
        ),
        recipe=Recipe(
            seed=206,
            data=Part("factor_returns", n_train=1500, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(64, 32), activation="tanh"),
            optimizer=Optimizer("SGD", lr=0.12, momentum=0.9),
            schedule=Part("step", step_size=45, gamma=0.1),
            epochs=60,
            batch_size=8,
            clip_norm=1.0,
            shuffle_seed=1,
        ),
        problems=("erratic-loss",),
        description="Tanh network trained with SGD at a too high LR and batch 8: for 45 epochs "
        "the loss jumps around with validation spikes of 3-5x, until a StepLR decay calms it "
        "down.",
        done="FeedforwardNet(16, [64, 32], tanh); SGD lr 0.12 momentum 0.9, StepLR(step 45, "
        "gamma 0.1); clip 1.0; batch 8; 60 epochs; 1500/1000 samples",
        shows="train 0.9-1.9 and validation 0.6-4.0 without a trend until epoch 45, then both "
        "settle",
    ),
    RunSpec(
        name="ffn_resume_lr_bug",
        writer=Puffin(
            hparams={
                "hidden_dims": "[64, 32]",
                "activation": "tanh",
                "lr": 0.02,
                "resume_lr": 2.0,
                "optimizer": "SGD",
                "batch_size": 64,
            },
            hist_params=_hist("network.0.weight", "network.4.weight"),
            seconds_per_epoch=1.0,
        ),
        recipe=Recipe(
            seed=207,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(64, 32), activation="tanh"),
            optimizer=Optimizer("SGD", lr=0.02, momentum=0.9),
            schedule=Part("switch", before=0.02, after=2.0, at_epoch=30),
            epochs=60,
            batch_size=64,
        ),
        problems=("non-finite-loss",),
        description="Training resumed at epoch 30 with lr 2.0 instead of 0.02: the loss is NaN "
        "from that epoch on (logged for five epochs, then the run stops).",
        done="FeedforwardNet(16, [64, 32], tanh); SGD momentum 0.9, lr 0.02 for 30 epochs then "
        "2.0; no clipping; batch 64; 3000/1000 samples",
        shows="normal convergence to ~0.25/0.38, then NaN train/val loss, NaN pred stats",
    ),
    RunSpec(
        name="ffn_tanh_warmup",
        writer=Puffin(
            hparams={
                "hidden_dims": "[64, 32]",
                "activation": "tanh",
                "max_lr": 0.3,
                "warmup_epochs": 40,
                "optimizer": "SGD",
                "batch_size": 64,
            },
            hist_params=_hist("network.4.weight", "network.4.bias"),
            seconds_per_epoch=1.0,
        ),
        recipe=Recipe(
            seed=207,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(64, 32), activation="tanh"),
            optimizer=Optimizer("SGD", lr=0.005, momentum=0.9),
            schedule=Part("warmup", start=0.005, peak=0.3, epochs=40),
            epochs=60,
            batch_size=64,
        ),
        problems=("exploding-gradients", "non-finite-loss"),
        description="Linear LR warm-up to 0.3 without gradient clipping: once the LR passes "
        "~0.15 the loss diverges by ~30 orders of magnitude in 12 epochs and the output-layer "
        "gradients grow from ~0.1-0.6 to ~3e6 by the epoch-30 snapshot, ending in inf/NaN.",
        done="FeedforwardNet(16, [64, 32], tanh); SGD momentum 0.9, LR warm-up 0.005 -> 0.3 over "
        "40 epochs; no clipping; batch 64; stops after 5 non-finite epochs; 3000/1000 samples",
        shows="train loss 0.36 (epoch 14) -> 2.4 (23) -> 1.5e5 (24) -> 9e29 (34), inf at 35, NaN "
        "after; gradients/network.4.* rms 0.07/0.6 (epoch 20) -> 2e6/4e6 (epoch 30)",
    ),
    RunSpec(
        name="ffn_deep_sigmoid",
        writer=Puffin(
            hparams={
                "hidden_dims": "[32]*10",
                "activation": "sigmoid",
                "init_std": 0.2,
                "lr": 0.05,
                "optimizer": "SGD",
                "batch_size": 64,
            },
            hist_params=_hist("network.0.weight", "network.20.weight"),
            seconds_per_epoch=1.3,
        ),
        recipe=Recipe(
            seed=209,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part(
                "FeedforwardNet", input_dim=16, hidden_dims=(32,) * 10, activation="sigmoid"
            ),
            init=Init(weight_std=0.2, bias=0.0),
            optimizer=Optimizer("SGD", lr=0.05, momentum=0.9),
            epochs=60,
            batch_size=64,
            clip_norm=1.0,
        ),
        problems=("vanishing-gradients", "underfitting", "collapsed-predictions"),
        description="Ten sigmoid layers with a small init, trained with SGD: first-layer "
        "gradients are 1e-8..1e-9 (six to seven orders below the output layer), the loss never "
        "moves and the predictions are constant from the start.",
        done="FeedforwardNet(16, [32]*10, sigmoid), init N(0, 0.2^2), zero biases; SGD lr 0.05 "
        "momentum 0.9; clip 1.0; batch 64; 60 epochs; 3000/1000 samples",
        shows="gradients/network.0.weight rms 4e-8 -> 9e-10 vs 5e-3..0.16 for network.20.weight; "
        "losses flat at ~1.22 (train) and 1.32-1.44 (val); pred_std ~1e-8 while pred_mean "
        "wanders around the target mean",
    ),
    RunSpec(
        name="ffn_warmup_spike",
        writer=Puffin(
            hparams={
                "hidden_dims": "[128, 64]",
                "dropout": 0.2,
                "lr": 0.001,
                "warmup_lr": 0.05,
                "optimizer": "Adam",
                "batch_size": 64,
            },
            hist_params=_hist("network.0.weight", "network.3.weight"),
            seconds_per_epoch=1.2,
        ),
        recipe=Recipe(
            seed=210,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=0.3),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(128, 64), dropout=0.2),
            optimizer=Optimizer("Adam", lr=1e-3),
            schedule=Part("switch", before=0.05, after=1e-3, at_epoch=1),
            epochs=60,
            batch_size=64,
        ),
        problems=("dead-neurons",),
        description="A mis-set warm-up ran the first epoch at lr 0.05 instead of 1e-3: ~95% of "
        "the second hidden layer's ReLUs died and never recover; the rest of the network keeps "
        "learning slowly.",
        done="FeedforwardNet(16, [128, 64], dropout 0.2); Adam, lr 0.05 for epoch 0 then 1e-3; "
        "batch 64; 60 epochs; 3000/1000 samples",
        shows="gradients/network.3.weight ~90% exactly zero at every snapshot; losses still fall "
        "(slower than the healthy run)",
    ),
    RunSpec(
        name="ffn_wd1.0",
        writer=Puffin(
            hparams={
                "hidden_dims": "[64, 32]",
                "dropout": 0.1,
                "lr": 0.001,
                "weight_decay": 1.0,
                "optimizer": "SGD",
                "batch_size": 64,
            },
            hist_params=_hist("network.0.weight", "network.6.weight"),
            seconds_per_epoch=1.0,
        ),
        recipe=Recipe(
            seed=211,
            data=Part("factor_returns", n_train=3000, n_val=1000, noise=0.5, target_mean=1.0),
            model=Part("FeedforwardNet", input_dim=16, hidden_dims=(64, 32), dropout=0.1),
            optimizer=Optimizer("SGD", lr=1e-3, momentum=0.9, weight_decay=1.0, decay_biases=False),
            epochs=60,
            batch_size=64,
        ),
        problems=(
            "collapsed-predictions",
            "underfitting",
            "vanishing-gradients",
            "weight-collapse",
        ),
        description="Weight decay 1.0 on all weight matrices: the weights shrink towards zero "
        "(first-layer weight RMS 0.097 -> 7e-9), pred_std falls from 0.08 to ~1e-7 within 12 "
        "epochs and pred_mean settles on the target mean; the loss stays at the target "
        "variance, and with the downstream weights near zero the first-layer gradients shrink "
        "to ~1e-8 (1e-6 of the output layer's).",
        done="FeedforwardNet(16, [64, 32], dropout 0.1); SGD lr 1e-3 momentum 0.9, weight_decay "
        "1.0 on weights (not biases); batch 64; 60 epochs; 3000/1000 samples, target mean 1.0",
        shows="pred_std 0.08 -> 1e-2 -> 6e-4 -> ~1e-7; pred_mean -> ~0.99; loss 1.48 -> 1.22 "
        "then flat; gradients/network.0.weight rms 1e-2 -> ~1e-8",
    ),
    RunSpec(
        name="ffn_misaligned_features",
        writer=Puffin(
            hparams={
                "hidden_dims": "[64, 32]",
                "activation": "tanh",
                "dropout": 0.1,
                "lr": 0.001,
                "weight_decay": 0.0001,
                "optimizer": "Adam",
                "batch_size": 256,
            },
            hist_params=_hist("network.0.weight", "network.6.weight"),
            seconds_per_epoch=0.9,
        ),
        recipe=Recipe(
            seed=212,
            data=Part(
                "factor_returns",
                n_train=8000,
                n_val=2000,
                noise=0.5,
                target_mean=0.05,
                misaligned=True,
                scale=0.01,
            ),
            model=Part(
                "FeedforwardNet",
                input_dim=16,
                hidden_dims=(64, 32),
                dropout=0.1,
                activation="tanh",
            ),
            optimizer=Optimizer("Adam", lr=1e-3, weight_decay=1e-4),
            epochs=60,
            batch_size=256,
        ),
        problems=("collapsed-predictions",),
        description="Features joined to the wrong dates, so they carry no information about the "
        "raw daily returns: the model gives up and predicts the mean return (pred_std falls 30x "
        "to ~4e-4, 4% of the return spread, while the loss sits at the return variance).",
        done="FeedforwardNet(16, [64, 32], tanh, dropout 0.1); Adam lr 1e-3, weight_decay 1e-4; "
        "batch 256; 60 epochs; 8000/2000 samples, targets shuffled against features, raw "
        "return units (std ~0.011)",
        shows="pred_std 0.012 -> 4e-4; pred_mean within +-1e-3 of the mean return (4e-4); loss "
        "3.9e-3 -> 1.2e-4, flat; gradients shrink but stay ~1e-5",
    ),
    # -------------------------------------------- hf ----------------------------------------
    RunSpec(
        name="tiny-encoder-sst2",
        writer=HF(seconds_per_step=0.061),
        recipe=HFRecipe(
            data_seed=301,
            data=Part("token_sequences", n_train=1024, n_val=256, label_noise=0.05),
            config={"initializer_range": 0.1},
            args={
                "learning_rate": 3e-4,
                "num_train_epochs": 8.0,
                "per_device_train_batch_size": 32,
                "logging_steps": 8,
                "eval_steps": 32,
                "warmup_steps": 32,
                "weight_decay": 0.01,
            },
        ),
        problems=(),
        description="Healthy tiny-encoder fine-tune: train and eval loss fall and flatten "
        "together, grad_norm stays around 1.",
        done="2-layer post-LN encoder (hidden 32, init std 0.1); AdamW lr 3e-4, linear decay, 32 "
        "warm-up steps, weight decay 0.01, clip 1.0; batch 32; 8 epochs (256 steps); 1024/256 "
        "token sequences, 5% label noise",
        shows="train/loss 0.72 -> ~0.40, eval/loss 0.68 -> ~0.44 (accuracy ~0.8); grad_norm "
        "0.35-3.3 without a trend",
    ),
    RunSpec(
        name="tiny-encoder-sst2-64ex",
        writer=HF(seconds_per_step=0.02),
        recipe=HFRecipe(
            data_seed=301,
            data=Part("token_sequences", n_train=64, n_val=256, label_noise=0.2),
            config={"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
            args={
                "learning_rate": 1e-3,
                "num_train_epochs": 40.0,
                "per_device_train_batch_size": 8,
                "logging_steps": 8,
                "eval_steps": 16,
            },
        ),
        problems=("overfitting",),
        description="Tiny encoder trained for 40 epochs on 64 examples with 20% label noise and "
        "no dropout: eval loss bottoms out after ~30 steps and then more than doubles while the "
        "train loss falls to ~0.08.",
        done="2-layer post-LN encoder, dropout 0; AdamW lr 1e-3, linear decay, clip 1.0; batch "
        "8; 40 epochs (320 steps); 64 training / 256 eval sequences, 20% label noise",
        shows="eval/loss 0.69 -> 0.68 (step 32) -> ~1.5; train/loss -> ~0.08; eval accuracy "
        "stuck ~0.6",
    ),
    RunSpec(
        name="tiny-encoder-lr1.2e-2",
        writer=HF(seconds_per_step=0.019),
        recipe=HFRecipe(
            data_seed=301,
            data=Part("token_sequences", n_train=512, n_val=256, label_noise=0.05),
            config={},
            args={
                "learning_rate": 1.2e-2,
                "num_train_epochs": 4.0,
                "per_device_train_batch_size": 8,
                "logging_steps": 4,
                "eval_steps": 16,
            },
        ),
        problems=("erratic-loss",),
        description="Learning rate 1.2e-2 with batch size 8: the logged train loss jumps around "
        "its trend, eval loss spikes to ~2x its neighbours twice, and grad_norm has 10-30x "
        "spikes; the run recovers as the LR decays.",
        done="2-layer post-LN encoder; AdamW lr 1.2e-2, linear decay, clip 1.0; batch 8; 4 "
        "epochs (256 steps); 512/256 sequences",
        shows="train/loss zig-zags 0.26-1.27 around a ~0.45 trend; eval/loss 0.35 -> 0.99 (step "
        "112) -> 0.38; grad_norm spikes to 12 and 28; no NaN",
    ),
    RunSpec(
        name="tiny-encoder-sgd-warmup",
        writer=HF(seconds_per_step=0.021),
        recipe=HFRecipe(
            data_seed=301,
            data=Part("token_sequences", n_train=512, n_val=256, label_noise=0.05),
            config={},
            args={
                "optim": "sgd",
                "learning_rate": 5.0,
                "warmup_steps": 200,
                "max_grad_norm": 0.0,
                "num_train_epochs": 8.0,
                "per_device_train_batch_size": 16,
                "logging_steps": 4,
                "eval_steps": 16,
            },
        ),
        problems=("exploding-gradients", "non-finite-loss"),
        description="Plain SGD with a warm-up to lr 5.0 and gradient clipping disabled: once "
        "the LR passes ~1 the logged grad_norm climbs from ~1 to ~1e7 within 20 steps, then the "
        "weights turn NaN (train/loss then reads 0.0 because of logging_nan_inf_filter).",
        done="2-layer post-LN encoder; optim sgd, lr 5.0 with 200 linear warm-up steps; "
        "max_grad_norm 0 (no clipping); batch 16; 8 epochs (256 steps); 512/256 sequences",
        shows="train/grad_norm 0.3 -> 13 -> 87 -> 7e3 -> 3e7 -> NaN; eval/loss NaN from step 64; "
        "train/loss 0.0 after the NaN",
    ),
    RunSpec(
        name="tiny-encoder-stsb-regression",
        writer=HF(seconds_per_step=0.024),
        recipe=HFRecipe(
            data_seed=302,
            data=Part("token_sequences", n_train=2048, n_val=256, regression=True),
            nan_label=(109, 5),
            config={"initializer_range": 0.1, "num_labels": 1},
            args={
                "learning_rate": 3e-4,
                "num_train_epochs": 3.0,
                "per_device_train_batch_size": 16,
                "logging_steps": 8,
                "eval_steps": 32,
                "seed": 42,
            },
        ),
        problems=("non-finite-loss",),
        description="Regression fine-tune where one training example has a missing (NaN) score: "
        "the step that sees it turns every weight into NaN; eval/loss and grad_norm are NaN "
        "from then on while the filtered train/loss reads 0.0.",
        done="2-layer post-LN encoder with a 1-output regression head; AdamW lr 3e-4, clip 1.0; "
        "batch 16; 3 epochs (384 steps); 2048/256 sequences with a sentiment score target, one "
        "NaN label that is drawn at step 110",
        shows="normal convergence for 109 steps, then grad_norm NaN, eval/loss NaN and "
        "train/loss 0.0 to the end",
    ),
    # ----------------------------------------- lightning ------------------------------------
    RunSpec(
        name="mlp_classifier",
        writer=Lightning(
            hparams={
                "hidden_dims": [32, 32],
                "dropout": 0.1,
                "lr": 0.002,
                "batch_size": 64,
                "scheduler": "cosine",
                "max_epochs": 40,
            },
            log_every_n_steps=50,
            seconds_per_step=0.004,
        ),
        recipe=Recipe(
            seed=401,
            data=Part("gaussian_classes", n_train=6000, n_val=1000, spread=1.5),
            model=Part(
                "FeedforwardNet", input_dim=10, hidden_dims=(32, 32), output_dim=4, dropout=0.1
            ),
            optimizer=Optimizer("Adam", lr=2e-3),
            schedule=Part("cosine"),
            epochs=40,
            batch_size=64,
        ),
        problems=(),
        description="Healthy MLP classifier with a cosine LR schedule: val loss falls and "
        "flattens just below the (dropout-inflated) train loss.",
        done="MLP 10->32->32->4 (ReLU, dropout 0.1); Adam lr 2e-3, cosine decay per step; batch "
        "64; 40 epochs (3760 steps, log_every_n_steps=50); 6000/1000 samples of a 4-class "
        "Gaussian mixture",
        shows="val_loss 0.34 -> 0.24 and flat; step train_loss ~0.25 with batch noise; grad_norm "
        "~0.6",
    ),
    RunSpec(
        name="cnn_bars",
        writer=Lightning(
            hparams={"channels": [8, 16], "lr": 0.002, "batch_size": 32, "max_epochs": 40},
            log_every_n_steps=20,
            seconds_per_step=0.009,
            log_grad_norm=False,
        ),
        recipe=Recipe(
            seed=402,
            data=Part("bar_images", n_train=1200, n_val=300),
            model=Part("ShapeCNN"),
            optimizer=Optimizer("Adam", lr=2e-3),
            epochs=40,
            batch_size=32,
        ),
        problems=(),
        description="Healthy small CNN on noisy bar images: both losses fall steadily and end "
        "close together.",
        done="Conv2d(1->8) -> maxpool -> Conv2d(8->16) -> global mean -> fc(3); Adam lr 2e-3; "
        "batch 32; 40 epochs (1520 steps, log_every_n_steps=20); 1200/300 12x12 images",
        shows="val_loss 1.06 -> ~0.06; train_loss follows; no grad_norm tag in this run",
    ),
    RunSpec(
        name="mlp_small_data",
        writer=Lightning(
            hparams={
                "hidden_dims": [256, 256],
                "lr": 0.001,
                "batch_size": 16,
                "n_train": 100,
                "max_epochs": 100,
            },
            log_every_n_steps=10,
            seconds_per_step=0.005,
        ),
        recipe=Recipe(
            seed=403,
            data=Part("gaussian_classes", n_train=100, n_val=500, label_noise=0.3),
            model=Part("FeedforwardNet", input_dim=10, hidden_dims=(256, 256), output_dim=4),
            optimizer=Optimizer("Adam", lr=1e-3),
            epochs=100,
            batch_size=16,
        ),
        problems=("overfitting",),
        description="Wide MLP on 100 samples with 30% label noise: val loss is lowest at epoch "
        "~3 and then triples while the train loss goes to ~0.",
        done="MLP 10->256->256->4 (ReLU), no regularisation; Adam lr 1e-3; batch 16; 100 epochs "
        "(700 steps, log_every_n_steps=10); 100 training / 500 validation samples",
        shows="val_loss 1.13 -> 0.92 (epoch 3) -> 2.8; train_loss -> ~0.003",
    ),
    RunSpec(
        name="mlp_lr1e-6",
        writer=Lightning(
            hparams={"hidden_dims": [64, 64], "lr": 1e-06, "batch_size": 32, "max_epochs": 40},
            log_every_n_steps=50,
            seconds_per_step=0.004,
        ),
        recipe=Recipe(
            seed=405,
            data=Part("gaussian_classes", n_train=2000, n_val=500),
            model=Part("FeedforwardNet", input_dim=10, hidden_dims=(64, 64), output_dim=4),
            optimizer=Optimizer("Adam", lr=1e-6),
            epochs=40,
            batch_size=32,
        ),
        problems=("underfitting",),
        description="MLP classifier with lr 1e-6: train and val loss stay at the chance level "
        "(~ln 4) for all 40 epochs.",
        done="MLP 10->64->64->4 (ReLU); Adam lr 1e-6; batch 32; 40 epochs (2520 steps, "
        "log_every_n_steps=50); 2000/500 samples",
        shows="val_loss 1.39 -> 1.34 over 40 epochs (<4%); train_loss flat with batch noise",
    ),
    RunSpec(
        name="mlp_adam_lr0.06",
        writer=Lightning(
            hparams={"hidden_dims": [64, 64], "lr": 0.06, "batch_size": 16, "max_epochs": 40},
            log_every_n_steps=10,
            seconds_per_step=0.004,
        ),
        recipe=Recipe(
            seed=404,
            data=Part("gaussian_classes", n_train=800, n_val=400),
            model=Part("FeedforwardNet", input_dim=10, hidden_dims=(64, 64), output_dim=4),
            optimizer=Optimizer("Adam", lr=0.06),
            epochs=40,
            batch_size=16,
            shuffle_seed=1,
        ),
        problems=("erratic-loss",),
        description="Adam at lr 0.06: the model keeps getting knocked out of good solutions, val "
        "loss spikes from ~0.1 to 1-2.7 several times and step losses jump by 10x.",
        done="MLP 10->64->64->4 (ReLU); Adam lr 0.06; batch 16; 40 epochs (2000 steps, "
        "log_every_n_steps=10); 800/400 samples",
        shows="val_loss spikes to 1.9 (epoch 3), 1.2 (epoch 8) and 2.7 (epoch 32) between "
        "stretches at ~0.1-0.3 and stays jumpy (0.5-1.3) to the end; step losses range 0-5; no "
        "NaN",
    ),
    # ------------------------------------------- keras --------------------------------------
    RunSpec(
        name="dense_regression",
        writer=Keras(seconds_per_epoch=0.9),
        recipe=Recipe(
            seed=501,
            data=Part("factor_returns", n_train=2000, n_val=500, n_features=8, noise=0.4),
            model=Part("FeedforwardNet", input_dim=8, hidden_dims=(64,)),
            optimizer=Optimizer("Adam", lr=1e-3),
            epochs=40,
            batch_size=32,
            stop_after_nonfinite=None,
        ),
        problems=(),
        description="Healthy Keras-style regression MLP: epoch_loss in train/ and validation/ "
        "fall and flatten together.",
        done="Dense(64, relu) -> Dense(1); Adam lr 1e-3; MSE; batch 32; 40 epochs; 2000/500 "
        "samples of the non-linear factor target (8 features)",
        shows="train/epoch_loss and validation/epoch_loss fall together and flatten; weights "
        "drift smoothly",
    ),
    RunSpec(
        name="dense_tanh_surface",
        writer=Keras(seconds_per_epoch=0.7),
        recipe=Recipe(
            seed=502,
            data=Part("nonlinear_surface", n_train=3000, n_val=600),
            model=Part("FeedforwardNet", input_dim=8, hidden_dims=(32,), activation="tanh"),
            optimizer=Optimizer("Adam", lr=3e-3),
            epochs=40,
            batch_size=64,
            stop_after_nonfinite=None,
        ),
        problems=(),
        description="Healthy tanh MLP fitting a smooth surface; different seed, width and "
        "activation from dense_regression.",
        done="Dense(32, tanh) -> Dense(1); Adam lr 3e-3; MSE; batch 64; 40 epochs; 3000/600 "
        "samples of a smooth non-linear surface (8 features)",
        shows="both epoch_loss curves fall from ~1 to ~0.04 and flatten together",
    ),
    RunSpec(
        name="dense_wide_small_data",
        writer=Keras(seconds_per_epoch=0.2),
        recipe=Recipe(
            seed=503,
            data=Part("factor_returns", n_train=60, n_val=500, n_features=8, noise=1.0),
            model=Part("FeedforwardNet", input_dim=8, hidden_dims=(512,)),
            optimizer=Optimizer("Adam", lr=1e-3),
            epochs=45,
            batch_size=8,
            stop_after_nonfinite=None,
        ),
        problems=("overfitting",),
        description="Dense(512) on 60 noisy samples: validation epoch_loss bottoms out early, "
        "then rises steadily while the training loss keeps falling.",
        done="Dense(512, relu) -> Dense(1); Adam lr 1e-3; MSE; batch 8; 45 epochs; 60 training "
        "samples (noise 1.0), 500 validation samples",
        shows="validation/epoch_loss minimum within the first ~10 epochs, then a clear rise; "
        "train/epoch_loss keeps falling",
    ),
    RunSpec(
        name="linear_on_nonlinear",
        writer=Keras(seconds_per_epoch=0.4),
        recipe=Recipe(
            seed=504,
            data=Part("nonlinear_surface", n_train=2000, n_val=500),
            model=Part("FeedforwardNet", input_dim=8, hidden_dims=()),
            optimizer=Optimizer("Adam", lr=1e-2),
            epochs=40,
            batch_size=32,
            stop_after_nonfinite=None,
        ),
        problems=("underfitting",),
        description="A single Dense(1) layer (linear regression) on a target with no linear "
        "component: both losses stay at the target variance.",
        done="Dense(1) only; Adam lr 1e-2; MSE; batch 32; 40 epochs; 2000/500 samples of a "
        "smooth surface with zero linear part (8 features)",
        shows="train/validation epoch_loss ~1.0 from the first epoch to the last",
    ),
    RunSpec(
        name="dense_sgd_lr_schedule",
        writer=Keras(seconds_per_epoch=0.5),
        recipe=Recipe(
            seed=505,
            data=Part("factor_returns", n_train=2000, n_val=500, n_features=8, noise=0.5),
            model=Part("FeedforwardNet", input_dim=8, hidden_dims=(64,)),
            optimizer=Optimizer("SGD", lr=0.01),
            schedule=Part("power", base=1.25),
            epochs=40,
            batch_size=32,
            stop_after_nonfinite=None,
        ),
        problems=("non-finite-loss",),
        description="LearningRateScheduler multiplies the LR by 1.25 every epoch (meant 0.8): "
        "the loss improves, drifts up once the LR passes ~0.1, and is NaN from epoch 21 to the "
        "end.",
        done="Dense(64, relu) -> Dense(1); SGD lr 0.01 x 1.25^epoch; MSE; batch 32; 40 epochs; "
        "2000/500 samples (8 features)",
        shows="epoch_loss 0.98 -> 0.46 (epoch 9) -> 2.2 (epoch 20), then NaN in train/ and "
        "validation/ for the last 19 epochs; epoch_learning_rate grows to ~60; weight "
        "histograms NaN at the end",
    ),
)


def _check_catalogue(runs: Iterable[RunSpec]) -> None:
    names = [r.name for r in runs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate run names: {duplicates}")


_check_catalogue(RUNS)


# --------------------------------------------------------------------------------------------
# Selection and simulated processes
# --------------------------------------------------------------------------------------------


def select(keys: Iterable[str]) -> list[RunSpec]:
    """The runs named by ``keys`` (a run's name, its path, or a layout), in catalogue order."""
    keys = list(keys)
    unknown = [k for k in keys if not any(k in (r.name, r.path, r.layout) for r in RUNS)]
    if unknown:
        raise KeyError(f"no sample run or layout named {', '.join(map(repr, unknown))}")
    return [r for r in RUNS if {r.name, r.path, r.layout} & set(keys)]


@dataclass(frozen=True)
class Process:
    """The simulated training process that writes a run."""

    key: str  # runs with the same key are trained one after another by one process
    host: str
    pid: int
    start: float
    first_writer_uid: int


def process_of(spec: RunSpec) -> Process:
    layout = LAYOUT_BY_NAME[spec.layout]
    if layout.shared_pid is not None:
        return Process(
            layout.name, layout.host, layout.shared_pid, layout.start, layout.first_writer_uid
        )
    index = RUNS.index(spec)
    earlier = sum(1 for r in RUNS[:index] if r.layout == spec.layout)
    return Process(
        key=spec.path,
        host=layout.host,
        pid=20000 + 997 * index,
        start=layout.start + layout.process_spacing * earlier,
        first_writer_uid=layout.first_writer_uid,
    )
