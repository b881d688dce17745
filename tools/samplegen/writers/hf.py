"""Layout 3: the HuggingFace ``Trainer`` + ``TensorBoardCallback`` (emulated, no transformers).

``hf_train`` trains like ``Trainer.train()`` (AdamW or SGD over decay/no-decay groups, a linear or
constant schedule with warm-up, the NaN/inf loss filter) and logs like the callback.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter

from tools.samplegen.data import Dataset
from tools.samplegen.machine import SimulatedMachine
from tools.samplegen.models import TinyEncoderForSequenceClassification
from tools.samplegen.trainer import StepInfo, Trainer


def hf_training_args(name: str, **overrides: Any) -> dict[str, Any]:
    """A TrainingArguments.to_dict()-like mapping (field order as in transformers 4.46)."""
    args: dict[str, Any] = {
        "output_dir": f"hf/{name}",
        "overwrite_output_dir": False,
        "do_train": False,
        "do_eval": True,
        "do_predict": False,
        "eval_strategy": "steps",
        "prediction_loss_only": False,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "per_gpu_train_batch_size": None,
        "per_gpu_eval_batch_size": None,
        "gradient_accumulation_steps": 1,
        "eval_accumulation_steps": None,
        "eval_delay": 0,
        "torch_empty_cache_steps": None,
        "learning_rate": 5e-05,
        "weight_decay": 0.0,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-08,
        "max_grad_norm": 1.0,
        "num_train_epochs": 3.0,
        "max_steps": -1,
        "lr_scheduler_type": "linear",
        "lr_scheduler_kwargs": {},
        "warmup_ratio": 0.0,
        "warmup_steps": 0,
        "log_level": "passive",
        "log_level_replica": "warning",
        "log_on_each_node": True,
        "logging_dir": f"hf/{name}/runs/Nov21_10-00-00_host",
        "logging_strategy": "steps",
        "logging_first_step": False,
        "logging_steps": 10,
        "logging_nan_inf_filter": True,
        "save_strategy": "no",
        "save_steps": 500,
        "save_total_limit": None,
        "save_safetensors": True,
        "save_on_each_node": False,
        "save_only_model": False,
        "no_cuda": False,
        "use_cpu": True,
        "seed": 42,
        "data_seed": None,
        "jit_mode_eval": False,
        "bf16": False,
        "fp16": False,
        "fp16_opt_level": "O1",
        "half_precision_backend": "auto",
        "local_rank": 0,
        "tpu_num_cores": None,
        "debug": [],
        "dataloader_drop_last": False,
        "eval_steps": 20,
        "dataloader_num_workers": 0,
        "dataloader_prefetch_factor": None,
        "past_index": -1,
        "run_name": f"hf/{name}",
        "disable_tqdm": False,
        "remove_unused_columns": True,
        "label_names": None,
        "load_best_model_at_end": False,
        "metric_for_best_model": None,
        "greater_is_better": None,
        "ignore_data_skip": False,
        "optim": "adamw_torch",
        "optim_args": None,
        "adafactor": False,
        "group_by_length": False,
        "report_to": ["tensorboard"],
        "dataloader_pin_memory": True,
        "skip_memory_metrics": True,
        "push_to_hub": False,
        "hub_token": "<HUB_TOKEN>",
        "gradient_checkpointing": False,
        "include_inputs_for_metrics": False,
        "eval_do_concat_batches": True,
        "torch_compile": False,
        "include_tokens_per_second": False,
        "include_num_input_tokens_seen": False,
    }
    for key, value in overrides.items():
        if key not in args:
            raise KeyError(f"not a TrainingArguments field here: {key}")
        args[key] = value
    return args


def hf_train(
    machine: SimulatedMachine,
    logdir: Path,
    *,
    model: TinyEncoderForSequenceClassification,
    data: Dataset,
    args: dict[str, Any],
    seconds_per_step: float,
) -> list[dict[str, float]]:
    """Train like ``Trainer.train()`` and log like ``TensorBoardCallback``; returns the logs."""
    torch.manual_seed(args["seed"])
    batch = args["per_device_train_batch_size"]
    steps_per_epoch = math.ceil(data.n_train / batch)
    epochs = int(args["num_train_epochs"])
    total_steps = steps_per_epoch * epochs
    base_lr, warmup = args["learning_rate"], args["warmup_steps"]

    def lr_at(step: int) -> float:  # get_{linear,constant}_schedule_with_warmup
        if step < warmup:
            return base_lr * step / max(1, warmup)
        if args["lr_scheduler_type"] == "constant":
            return base_lr
        return base_lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    decay, no_decay = [], []
    for pname, param in model.named_parameters():
        (no_decay if pname.endswith("bias") or "norm" in pname else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": args["weight_decay"]},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if args["optim"] == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(groups, lr=base_lr)
    else:
        optimizer = torch.optim.AdamW(
            groups,
            lr=base_lr,
            betas=(args["adam_beta1"], args["adam_beta2"]),
            eps=args["adam_epsilon"],
        )
    trainer = Trainer(
        model,
        data,
        optimizer,
        epochs=epochs,
        batch_size=batch,
        seed=args["seed"],
        clip_norm=args["max_grad_norm"] or None,
        lr_at_step=lr_at,
        stop_after_nonfinite=None,
        eval_batch_size=args["per_device_eval_batch_size"],
    )

    writer = SummaryWriter(log_dir=str(logdir))
    writer.add_text("args", json.dumps(args, indent=2))  # args.to_json_string()
    writer.add_text("model_config", model.config.to_json_string())
    logs_written: list[dict[str, float]] = []

    def log(logs: dict[str, float], step: int) -> None:  # Trainer.log -> TensorBoardCallback.on_log
        logs_written.append({**logs, "step": step})
        for key, value in logs.items():
            # rewrite_logs: eval_* -> eval/*, everything else -> train/*
            tag = "eval/" + key[len("eval_") :] if key.startswith("eval_") else "train/" + key
            writer.add_scalar(tag, value, step)
        writer.flush()

    n_params = sum(p.numel() for p in model.parameters())
    window = {"sum": 0.0, "last_logged": 0}
    total_loss = 0.0
    start = machine.clock.now

    @torch.no_grad()
    def evaluate(epoch_float: float, step: int) -> None:
        model.eval()
        logits = torch.cat([model(data.x_val[i : i + 64]) for i in range(0, len(data.x_val), 64)])
        model.train()
        metrics: dict[str, float] = {}
        if data.kind == "classification":
            metrics["eval_loss"] = float(F.cross_entropy(logits, data.y_val))
            metrics["eval_accuracy"] = float((logits.argmax(1) == data.y_val).float().mean())
        else:
            metrics["eval_loss"] = float(F.mse_loss(logits, data.y_val))
        eval_steps = math.ceil(len(data.x_val) / args["per_device_eval_batch_size"])
        runtime = round(0.0213 * eval_steps + 0.0087, 4)
        machine.clock.advance(runtime)
        log(
            {
                **metrics,
                "eval_runtime": runtime,
                "eval_samples_per_second": round(len(data.x_val) / runtime, 3),
                "eval_steps_per_second": round(eval_steps / runtime, 3),
                "epoch": epoch_float,
            },
            step,
        )

    def on_step(info: StepInfo) -> None:
        nonlocal total_loss
        machine.clock.advance(seconds_per_step)
        steps_before = info.global_step - 1
        if args["logging_nan_inf_filter"] and not math.isfinite(info.loss):
            # Trainer replaces a NaN/inf step loss by the running average of the window, so
            # once the model is NaN every logged train loss becomes 0.0.
            window["sum"] += window["sum"] / (1 + steps_before - window["last_logged"])
        else:
            window["sum"] += info.loss
        epoch_float = info.epoch + (info.step_in_epoch + 1) / info.steps_per_epoch
        step = info.global_step
        if step % args["logging_steps"] == 0:
            loss = window["sum"] / (step - window["last_logged"])
            total_loss += window["sum"]
            window.update(sum=0.0, last_logged=step)
            log(
                {
                    "loss": round(loss, 4),
                    "grad_norm": info.grad_norm,
                    "learning_rate": lr_at(step),
                    "epoch": epoch_float,
                },
                step,
            )
        if step % args["eval_steps"] == 0:
            evaluate(epoch_float, step)

    trainer.fit(on_step=on_step)
    runtime = round(machine.clock.now - start, 4)
    step = trainer.global_step
    total_loss += window["sum"]
    log(
        {
            "train_runtime": runtime,
            "train_samples_per_second": round(data.n_train * epochs / runtime, 3),
            "train_steps_per_second": round(step / runtime, 3),
            "total_flos": float(6 * n_params * data.x_train.numel() * epochs),
            "train_loss": total_loss / step,
            "epoch": float(epochs),
        },
        step,
    )
    writer.close()
    return logs_written
