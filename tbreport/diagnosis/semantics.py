"""Tag semantics: what each scalar tag of a logical run means, and what kind of training it is.

Every writer names its tags differently (``Loss/train``, ``train_loss_epoch``, ``val/box_loss``,
``rollout/ep_rew_mean``, ``loss_D``...). Detectors never look at tag names: they ask for roles
(training loss, validation loss, learning rate...) that are resolved here from each tag's
*meaning*: its split (train, validation, test), its quantity (a loss, a metric to maximise or
minimise, the learning rate, a reward...), its granularity (per step or per epoch) and the
evidence for the decision, shown by ``tbreport ls --meaning`` so a user can correct it with
``--role``.

A tag is read as words: the lower-cased tag split on anything that is not a letter or digit
(``train/epoch_loss`` -> ``train epoch loss``). Split words are looked for first (as a path
segment, a prefix or a suffix), then the remaining words name the quantity.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

TRAIN, VALIDATION, TEST = "train", "validation", "test"

#: Quantities a tag can hold.
LOSS = "loss"
METRIC = "metric"
LEARNING_RATE = "learning-rate"
GRAD_NORM = "gradient-norm"
PRED_MEAN = "prediction-mean"
PRED_STD = "prediction-std"
REWARD = "reward"
EPISODE_LENGTH = "episode-length"
ENTROPY = "entropy"
KL = "kl-divergence"
EXPLAINED_VARIANCE = "explained-variance"
BOOKKEEPING = "bookkeeping"
UNKNOWN = "unknown"

SUPERVISED = "supervised"
REINFORCEMENT = "reinforcement-learning"
ADVERSARIAL = "adversarial"
UNKNOWN_KIND = "unknown"
RUN_KINDS = (SUPERVISED, REINFORCEMENT, ADVERSARIAL, UNKNOWN_KIND)

_SPLIT_WORDS = {
    "train": TRAIN,
    "training": TRAIN,
    "learn": TRAIN,
    "trn": TRAIN,
    "val": VALIDATION,
    "valid": VALIDATION,
    "validation": VALIDATION,
    "eval": VALIDATION,
    "evaluation": VALIDATION,
    "dev": VALIDATION,
    "test": TEST,
    "testing": TEST,
}
_LOSS_WORDS = {"loss", "losses", "cost", "logloss", "objective"}
_TOTAL_WORDS = {"total", "overall", "all", "sum", "full", "avg", "average", "mean", "epoch", "step"}
# Metrics to minimise: errors and divergences that are not the optimised loss.
_MIN_METRIC_WORDS = {
    "kl", "mse", "mae", "rmse", "nll", "error", "err", "perplexity", "ppl", "wer", "cer", "mape",
    "smape", "mspe", "bpd", "distance", "fid",
}  # fmt: skip
_MAX_METRIC_PREFIXES = (
    "acc", "auc", "f1", "precision", "recall", "map", "iou", "miou", "dice", "bleu", "rouge",
    "top1", "top5", "r2", "ap50", "ap75", "ap", "ndcg", "mrr", "fitness", "score", "kappa",
    "correct",
)  # fmt: skip
_BOOKKEEPING_WORDS = {
    "epoch", "epochs", "step", "steps", "global", "iteration", "iterations", "iter", "time",
    "fps", "speed", "runtime", "throughput", "samples", "flos", "memory", "mem", "gpu", "hp",
    "episodes", "epsilon", "exploration", "beta", "temperature", "clip", "momentum", "num",
    "count", "batch", "scales", "updates", "weight", "timesteps", "sigma", "snr", "seconds",
    "clipfrac",
}  # fmt: skip
_RL_REWARD = re.compile(
    r"(?:^| )(?:ep rew|episode reward|episodic return|mean reward|reward|rewards|return|returns|"
    r"episode return|ep ret|avg return|average return)(?: |$)"
)
_PREDICTIONS = r"(?:pred|preds|prediction|predictions|output|outputs)"
_RL_LENGTH = re.compile(r"(?:^| )(?:ep len|episode len|episode length|episodic length|mean ep)")
_GAN_D = re.compile(r"(?:^| )(?:d|disc|discriminator|errd|lossd|dloss)(?: |$)")
_GAN_G = re.compile(r"(?:^| )(?:g|gen|generator|errg|lossg|gloss)(?: |$)")


@dataclass(frozen=True)
class TagMeaning:
    """What one scalar tag holds.

    Attributes:
        tag: The logical tag.
        split: ``"train"``, ``"validation"``, ``"test"`` or None (no split named).
        quantity: One of the module's quantity constants (``"loss"``, ``"metric"``...).
        goal: ``"minimise"``, ``"maximise"`` or None (not a quantity to optimise).
        name: The quantity's name without split words (``"box loss"``, ``"accuracy"``),
            used to pair a training tag with its validation tag.
        component: A term of a composite loss (``box_loss``, ``loss_cls``, ``kl``) rather than
            the total.
        granularity: ``"step"``, ``"epoch"`` or ``"unknown"``.
        evidence: Why, in a few words.
    """

    tag: str
    split: str | None
    quantity: str
    goal: str | None
    name: str
    component: bool = False
    granularity: str = "unknown"
    evidence: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "tag": self.tag,
            "split": self.split,
            "quantity": self.quantity,
            "goal": self.goal,
            "name": self.name,
            "component": self.component,
            "granularity": self.granularity,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class RunSemantics:
    """The meanings of one logical run's tags, its kind and the roles detectors ask for.

    Attributes:
        meanings: Tag -> its meaning, for every scalar tag.
        kind: ``"supervised"``, ``"reinforcement-learning"``, ``"adversarial"`` or
            ``"unknown"``.
        kind_evidence: The tags that decided the kind.
        roles: Scalar role -> tags (``train_loss``, ``val_loss``, ``learning_rate``...).
        loss_sum: When the losses are judged on their sum (several components and no total):
            role -> the component tags summed.
    """

    meanings: Mapping[str, TagMeaning]
    kind: str
    kind_evidence: str
    roles: Mapping[str, tuple[str, ...]]
    loss_sum: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _words(tag: str) -> list[str]:
    # camelCase and digits are kept together ("mAP50" -> "map50"): only separators split words.
    return [w for w in re.split(r"[^0-9a-z]+", tag.lower()) if w]


def _split_of(segments: list[list[str]]) -> tuple[str | None, list[list[str]], str]:
    """The split named by a tag's path segments, and the segments without the split words."""
    # A whole segment (train/, validation/, Loss/train, eval/...).
    for i, seg in enumerate(segments):
        if len(seg) == 1 and seg[0] in _SPLIT_WORDS:
            rest = segments[:i] + segments[i + 1 :]
            if rest:
                return _SPLIT_WORDS[seg[0]], rest, f"path segment {seg[0]!r}"
    # A word at the start or end of a segment (train_loss, loss_val, val_acc, v_loss).
    for i, seg in enumerate(segments):
        if len(seg) >= 2:
            for pos in (0, -1):
                word = seg[pos]
                if word in _SPLIT_WORDS:
                    trimmed = seg[1:] if pos == 0 else seg[:-1]
                    rest = [*segments[:i], trimmed, *segments[i + 1 :]]
                    return _SPLIT_WORDS[word], rest, f"word {word!r}"
            if seg[0] == "v" and seg[1] in ("loss", "acc", "accuracy"):
                # TensorFlow's custom-loop tutorials log v_loss / v_acc for validation.
                rest = [*segments[:i], seg[1:], *segments[i + 1 :]]
                return VALIDATION, rest, "prefix 'v_'"
    return None, segments, ""


#: Tags longer than this are not interpreted (no writer names a quantity that way), which also
#: keeps every pattern below linear-time on hostile tags.
MAX_TAG_LENGTH = 256


@functools.lru_cache(maxsize=65536)  # runs share their tags: read each name once
def describe_tag(tag: str) -> TagMeaning:
    """The meaning of one scalar tag, from its name alone."""
    if len(tag) > MAX_TAG_LENGTH:
        return TagMeaning(
            tag=tag, split=None, quantity=UNKNOWN, goal=None, name="", evidence="tag too long"
        )
    raw_segments = [s for s in re.split(r"/", tag) if s]
    if len(raw_segments) >= 2 and raw_segments[0].lower() == "losses":
        # CleanRL files its KL, clip fraction and explained variance under losses/ too: the
        # namespace makes a loss only of what names no other quantity.
        inner = describe_tag("/".join(raw_segments[1:]))
        if inner.quantity != LOSS and not inner.evidence.endswith(
            ("no known quantity", "no words")
        ):
            return replace(inner, tag=tag, evidence="namespace 'losses/'; " + inner.evidence)
    segments = [_words(s) for s in raw_segments]
    segments = [s for s in segments if s]
    split, rest, split_why = _split_of(segments)
    last = rest[-1] if rest else []
    if split is not None and len(last) >= 2 and last[0] == "v" and last[1] in ("loss", "acc"):
        rest = [*rest[:-1], last[1:]]  # test/v_loss: TensorFlow tutorials' naming
    # Repeated words (loss/train_loss) and RL/SB3 namespaces say nothing about the quantity.
    words: list[str] = []
    for seg in rest:
        for w in seg:
            if w not in words:
                words.append(w)
    name = " ".join(words)
    why = [split_why] if split_why else []

    granularity = "unknown"
    if words and words[-1] in ("step", "batch"):
        granularity = "step"
    elif (words and words[-1] == "epoch") or (words[:1] == ["epoch"] and len(words) > 1):
        granularity = "epoch"
    core = [w for w in words if w not in ("epoch", "step", "batch") or len(words) == 1]
    found = _quantity_of(core, tag.lower()) if core else _Quantity(UNKNOWN, None, "no words")
    return TagMeaning(
        tag=tag,
        split=split,
        quantity=found.quantity,
        goal=found.goal,
        name=" ".join(w for w in core if w not in ("rollout",)) or name,
        component=found.component,
        granularity=granularity,
        evidence="; ".join([*why, found.reason]),
    )


class _Quantity(NamedTuple):
    """What the words of a tag name: the quantity, its goal, why, and whether it is one term of
    a loss."""

    quantity: str
    goal: str | None
    reason: str
    component: bool = False


def _quantity_of(core: list[str], lowered: str) -> _Quantity:
    """The quantity named by a tag's words (``core``; ``lowered``: the whole tag in lower case),
    the first rule that matches deciding."""
    core_text = " ".join(core)
    return (
        _summary_schedule_or_model(core, core_text, lowered)
        or _rl_quantity(core, core_text, lowered)
        or _loss_or_metric(core, core_text)
    )


def _summary_schedule_or_model(core: list[str], core_text: str, lowered: str) -> _Quantity | None:
    """Summaries of the run, the learning rate, the gradient norm, the predictions' spread."""
    # HF Trainer's end-of-run averages (train/train_loss) and summaries of the best value say
    # nothing about the curve's shape.
    if re.search(r"(?:^|/)train/train_", lowered) or core[0] in ("best", "min", "max", "final"):
        return _Quantity(BOOKKEEPING, None, "a summary of the run (best/final/average value)")
    if lowered.endswith("_vs_iterations"):
        return _Quantity(BOOKKEEPING, None, "Keras' evaluation curve repeated on the step axis")
    if core_text in ("hp metric",):
        return _Quantity(BOOKKEEPING, None, "add_hparams' placeholder metric")
    # Lightning's LearningRateMonitor logs lr-Adam beside lr-Adam-momentum and
    # lr-Adam-weight_decay: other optimiser settings, not learning rates.
    lr_setting = "momentum" in core or ("weight" in core and "decay" in core)
    if not lr_setting and (
        re.fullmatch(r"(?:.* )?(?:learning rate|lr(?: \w+)?|lr\d+)", core_text)
        or core[0] in ("lr", "lr0", "lr1", "lr2")
    ):
        return _Quantity(LEARNING_RATE, None, "learning-rate name")
    if "learning" in core and "rate" in core:
        return _Quantity(LEARNING_RATE, None, "learning-rate name")
    if re.search(
        r"(?:^| )(?:grad|grads|gradient|gradients)(?: \w+)? (?:norm|l2)(?: |$)|"
        r"(?:^| )(?:global|total) (?:grad|gradient) norm|grad 2 0 norm|(?:^| )g(?:rad)?norm(?: |$)",
        core_text,
    ) or core_text in ("gradient norm", "grad norm"):
        return _Quantity(GRAD_NORM, None, "gradient-norm name")
    if re.search(
        r"(?:^| )(?:pred|preds|prediction|predictions|output|outputs) std(?: |$)", core_text
    ):
        return _Quantity(PRED_STD, None, "prediction-spread name")
    if re.search(
        r"(?:^| )(?:pred|preds|prediction|predictions|output|outputs) mean(?: |$)", core_text
    ):
        return _Quantity(PRED_MEAN, None, "prediction-mean name")
    return None


def _rl_quantity(core: list[str], core_text: str, lowered: str) -> _Quantity | None:
    """Reinforcement learning's and GANs' own quantities, and the loss scale of mixed precision."""
    if "explained" in core and ("variance" in core or "var" in core):  # RLlib vf_explained_var
        return _Quantity(EXPLAINED_VARIANCE, "maximise", "RL value-function fit")
    if re.fullmatch(r"(?:old )?approx ?kl", core_text):
        return _Quantity(KL, None, "approximate policy KL divergence (RL)")
    if re.fullmatch(r"(?:.*/)?err[dg]", lowered):
        return _Quantity(LOSS, "minimise", "a GAN loss (errD/errG)", component=True)
    if "entropy" in core and (len(core) <= 2 or "policy" in core):
        return _Quantity(ENTROPY, None, "policy entropy (RL)")
    if _RL_LENGTH.search(core_text):
        return _Quantity(EPISODE_LENGTH, None, "episode-length name (RL)")
    if _RL_REWARD.search(core_text) and not (set(core) & _LOSS_WORDS):
        return _Quantity(REWARD, "maximise", "reward name (RL)")
    if core_text.endswith("loss scale"):
        # fairseq's fp16 loss scaler (train/loss_scale): a multiplier, not a loss.
        return _Quantity(BOOKKEEPING, None, "mixed-precision loss scale")
    return None


def _loss_or_metric(core: list[str], core_text: str) -> _Quantity:
    """Losses (or loss terms), metrics by their direction, bookkeeping, or nothing known."""
    has_loss = bool(set(core) & _LOSS_WORDS)
    if has_loss:
        others = [w for w in core if w not in _LOSS_WORDS and w not in _TOTAL_WORDS]
        component = bool(others)
        return _Quantity(
            LOSS,
            "minimise",
            "a loss" + (f" term ({' '.join(others)})" if component else ""),
            component=component,
        )
    if set(core) & _MIN_METRIC_WORDS:
        return _Quantity(METRIC, "minimise", "an error metric (lower is better)")
    if any(w.startswith(_MAX_METRIC_PREFIXES) for w in core):
        return _Quantity(METRIC, "maximise", "a score metric (higher is better)")
    if set(core) & _BOOKKEEPING_WORDS or core_text in ("lr", "episodes"):
        return _Quantity(BOOKKEEPING, None, "bookkeeping (epochs, time, schedules, exploration)")
    if re.fullmatch(r"(?:values? mean|q value|q values|values|baseline|advantage.*)", core_text):
        return _Quantity(UNKNOWN, None, "RL value estimate")
    return _Quantity(UNKNOWN, None, "no known quantity")


def _is_gan_loss(meaning: TagMeaning) -> str | None:
    if meaning.quantity != LOSS:
        return None
    words = _words(meaning.tag)
    text = " ".join(words)
    # Joined spellings: loss_D, d_loss, errD, lossD, Loss/D, discriminator_loss.
    tag = meaning.tag.lower()
    if _GAN_D.search(text) or re.search(r"(?:^|[^a-z])(?:err|loss)_?d(?:$|[^a-z])", tag):
        return "discriminator"
    if _GAN_G.search(text) or re.search(r"(?:^|[^a-z])(?:err|loss)_?g(?:$|[^a-z])", tag):
        return "generator"
    return None


_RL_SPECIFIC = {ENTROPY, KL, EXPLAINED_VARIANCE, EPISODE_LENGTH}


def classify_run(meanings: Mapping[str, TagMeaning]) -> tuple[str, str]:
    """``(kind, evidence)`` of a logical run from its tag meanings."""
    values = list(meanings.values())
    rewards = [m.tag for m in values if m.quantity == REWARD]
    rl_specific = [m.tag for m in values if m.quantity in _RL_SPECIFIC and m.quantity != ENTROPY]
    rl_words = [
        m.tag
        for m in values
        if re.search(r"(?:^|/)(?:rollout|charts|ray/tune)/|epsilon|exploration|policy|critic|actor|"
                     r"value_loss|q_loss|td_error", m.tag.lower())
    ]  # fmt: skip
    if rewards or rl_specific or len(set(rl_words)) >= 2:
        shown = (rewards + rl_specific + rl_words)[:3]
        return REINFORCEMENT, "reinforcement-learning tags: " + ", ".join(shown)
    sides: dict[str, str] = {}
    for m in values:
        side = _is_gan_loss(m)
        if side:
            sides.setdefault(side, m.tag)
    if len(sides) == 2:
        return ADVERSARIAL, "discriminator and generator losses: " + ", ".join(sides.values())
    losses = [m.tag for m in values if m.quantity in (LOSS, METRIC)]
    if losses:
        return SUPERVISED, "losses or metrics: " + ", ".join(losses[:3])
    return UNKNOWN_KIND, "no loss, metric or reward tag"


def _pair_key(meaning: TagMeaning) -> str:
    return " ".join(w for w in meaning.name.split() if w not in _TOTAL_WORDS) or "loss"


def _choose_total(candidates: Sequence[TagMeaning], counts: Mapping[str, int]) -> list[TagMeaning]:
    """Total losses first (no component words), then per-epoch curves (minibatch noise is
    averaged out there), then the curve with the most points."""
    totals = [m for m in candidates if not m.component]
    pool = totals or list(candidates)
    order = {"epoch": 0, "unknown": 1, "step": 2}
    return sorted(pool, key=lambda m: (order[m.granularity], -counts.get(m.tag, 0)))


def resolve_roles(
    meanings: Mapping[str, TagMeaning], *, counts: Mapping[str, int] | None = None
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]:
    """Scalar roles from tag meanings: ``(roles, loss_sum)``.

    ``train_loss``/``val_loss`` are a *pair*: a validation loss and the training loss of the
    same name (``loss``, ``epoch loss``, ``box loss``). A run with only loss terms and no total
    (YOLO's box/cls/dfl) is judged on their sum; ``loss_sum`` names the summed tags.
    ``train_loss_epoch`` is the per-epoch training loss when the training loss is also logged
    per step. A validation loss falls back to the test split when no validation split exists.
    """
    counts = counts or {}
    values = list(meanings.values())
    roles: dict[str, list[str]] = {}
    train, val = _train_and_val_losses(values, counts)
    loss_sum = _pair_losses(train, val, counts, roles)
    _add_step_loss(meanings, train, loss_sum, roles)
    _add_metrics_and_single_roles(values, counts, roles)
    return {k: tuple(v) for k, v in roles.items()}, loss_sum


def _train_and_val_losses(
    values: list[TagMeaning], counts: Mapping[str, int]
) -> tuple[list[TagMeaning], list[TagMeaning]]:
    """The training losses and the validation losses (else the test losses) of a run."""
    losses = [m for m in values if m.quantity == LOSS]
    train = [m for m in losses if m.split in (TRAIN, None)]
    val = [m for m in losses if m.split == VALIDATION and counts.get(m.tag, 2) >= 2]
    if not val:
        val = [m for m in losses if m.split == TEST and counts.get(m.tag, 0) >= 3]
    # An explicit train split beats a bare "loss" when both exist.
    if any(m.split == TRAIN for m in train):
        train = [m for m in train if m.split == TRAIN]
    return train, val


def _pair_losses(
    train: list[TagMeaning],
    val: list[TagMeaning],
    counts: Mapping[str, int],
    roles: dict[str, list[str]],
) -> dict[str, tuple[str, ...]]:
    """The ``train_loss`` and ``val_loss`` roles, paired by name where both splits have a loss;
    returns the loss terms summed into a role (empty when a total was logged)."""
    loss_sum: dict[str, tuple[str, ...]] = {}
    train_keys = {_pair_key(m) for m in train}
    paired_val = [m for m in val if _pair_key(m) in train_keys]
    if paired_val:
        totals = [m for m in paired_val if not m.component]
        if totals:
            v = _choose_total(totals, counts)[0]
            roles["val_loss"] = [v.tag]
            same = [m for m in train if _pair_key(m) == _pair_key(v)]
            chosen = _choose_total(same, counts)
            roles["train_loss"] = [chosen[0].tag]
        else:
            keys = sorted({_pair_key(m) for m in paired_val})
            v_tags = tuple(
                _choose_total([m for m in paired_val if _pair_key(m) == k], counts)[0].tag
                for k in keys
            )
            t_tags = tuple(
                _choose_total([m for m in train if _pair_key(m) == k], counts)[0].tag for k in keys
            )
            if len(keys) == 1:
                roles["val_loss"], roles["train_loss"] = [v_tags[0]], [t_tags[0]]
            else:
                loss_sum = {"train_loss": t_tags, "val_loss": v_tags}
                roles["val_loss"] = ["+".join(v_tags)]
                roles["train_loss"] = ["+".join(t_tags)]
    else:
        if train:
            chosen = _choose_total(train, counts)
            totals = [m for m in train if not m.component]
            if totals or len(train) == 1:
                roles["train_loss"] = [chosen[0].tag]
            else:
                keys = sorted({_pair_key(m) for m in train})
                t_tags = tuple(
                    _choose_total([m for m in train if _pair_key(m) == k], counts)[0].tag
                    for k in keys
                )
                loss_sum = {"train_loss": t_tags}
                roles["train_loss"] = ["+".join(t_tags)]
        if val:
            roles["val_loss"] = [_choose_total(val, counts)[0].tag]
    return loss_sum


def _add_step_loss(
    meanings: Mapping[str, TagMeaning],
    train: list[TagMeaning],
    loss_sum: dict[str, tuple[str, ...]],
    roles: dict[str, list[str]],
) -> None:
    # The per-step training loss beside a per-epoch one (Lightning on_step + on_epoch).
    if "train_loss" in roles and "train_loss" not in loss_sum:
        main = meanings.get(roles["train_loss"][0])
        if main is not None:
            finer = [
                m
                for m in train
                if m.granularity == "step" and _pair_key(m) == _pair_key(main) and m.tag != main.tag
            ]
            if finer:
                roles["train_loss_step"] = [finer[0].tag]


def _add_metrics_and_single_roles(
    values: list[TagMeaning], counts: Mapping[str, int], roles: dict[str, list[str]]
) -> None:
    """The metric roles, paired as the losses are, and the roles of one quantity each."""
    # Metrics paired the same way (for runs that log accuracy but no validation loss).
    metrics = [m for m in values if m.quantity == METRIC and m.goal == "maximise"]
    val_metric = [m for m in metrics if m.split == VALIDATION and counts.get(m.tag, 2) >= 2]
    if val_metric:
        roles["val_metric"] = [
            sorted(val_metric, key=lambda m: (m.component, -counts.get(m.tag, 0), m.tag))[0].tag
        ]
    train_metric = [m for m in metrics if m.split == TRAIN]
    if train_metric:
        roles["train_metric"] = [sorted(train_metric, key=lambda m: m.tag)[0].tag]
    single = {
        "learning_rate": LEARNING_RATE,
        "grad_norm": GRAD_NORM,
        "pred_std": PRED_STD,
        "pred_mean": PRED_MEAN,
        "reward": REWARD,
        "entropy": ENTROPY,
        "approx_kl": KL,
        "explained_variance": EXPLAINED_VARIANCE,
    }
    for role, quantity in single.items():
        tags = [m for m in values if m.quantity == quantity]
        if role == "reward":
            # The training-time episode reward (SB3 rollout/, plain reward) before eval rewards;
            # a smoothed reward (reward_100) before the raw per-episode one.
            tags.sort(
                key=lambda m: (m.split == VALIDATION, "100" not in m.tag and "mean" not in m.tag)
            )
        if tags:
            roles[role] = [tags[0].tag]


def describe_run(
    scalar_tags: Iterable[str], *, counts: Mapping[str, int] | None = None
) -> RunSemantics:
    """Meanings, kind and roles for one logical run's scalar tags.

    Args:
        scalar_tags: The run's logical scalar tags.
        counts: Tag -> number of points (decides granularity and which curve is finer).
    """
    counts = dict(counts or {})
    meanings = {tag: describe_tag(tag) for tag in dict.fromkeys(scalar_tags)}
    meanings = _refine_granularity(meanings, counts)
    kind, why = classify_run(meanings)
    roles, loss_sum = resolve_roles(meanings, counts=counts)
    return RunSemantics(
        meanings=meanings, kind=kind, kind_evidence=why, roles=roles, loss_sum=loss_sum
    )


def _refine_granularity(
    meanings: dict[str, TagMeaning], counts: Mapping[str, int]
) -> dict[str, TagMeaning]:
    """Unknown granularities from point counts: a curve with the run's epoch count (the
    ``epoch`` tag's distinct values, or the validation curve's length) is per epoch; one with
    several times more points is per step."""
    reference = [
        counts.get(m.tag, 0)
        for m in meanings.values()
        if m.split == VALIDATION and m.quantity in (LOSS, METRIC) and counts.get(m.tag, 0) >= 2
    ]
    if not reference:
        return meanings
    epochs = max(reference)
    out = {}
    for tag, m in meanings.items():
        n = counts.get(tag, 0)
        if m.granularity == "unknown" and m.quantity in (LOSS, METRIC) and n:
            if n >= 3 * epochs:
                m = replace(m, granularity="step")
            elif n <= epochs * 1.5:
                m = replace(m, granularity="epoch")
        out[tag] = m
    return out
