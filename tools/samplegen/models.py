"""The models (their parameter names are what the writers put into histogram tags).

``MODELS`` maps the names the catalogue uses (``Part("LSTMForecaster", ...)``) to the classes;
``init_linears`` applies a catalogue ``Init``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
}


class FeedforwardNet(nn.Module):
    """MLP as ``self.network = nn.Sequential(Linear, act, [Dropout], ..., Linear)``."""

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        output_dim: int = 1,
        *,
        dropout: float = 0.0,
        activation: str = "relu",
        attr: str = "network",
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = input_dim
        for width in hidden_dims:
            layers += [nn.Linear(prev, width), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            prev = width
        layers.append(nn.Linear(prev, output_dim))
        self.attr = attr
        setattr(self, attr, nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.attr)(x)

    def linears(self) -> list[nn.Linear]:
        return [m for m in getattr(self, self.attr) if isinstance(m, nn.Linear)]


class LSTMForecaster(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class ResidualGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 2) -> None:
        super().__init__()
        self.input_proj = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_proj(x)
        out, _ = self.gru(h)
        return self.fc(out[:, -1] + h[:, -1])


class GRUForecaster(nn.Module):
    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.gru = nn.GRU(input_size, hidden_size, batch_first=True)
        self.fc = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(x)
        return self.fc(out[:, -1])


class Conv1dNet(nn.Module):
    """Temporal CNN over (batch, time, features) windows."""

    def __init__(self, in_channels: int, channels: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, channels, kernel_size=5, padding=2)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=5, padding=2)
        self.fc = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv1(x.transpose(1, 2)))
        h = F.relu(self.conv2(h))
        return self.fc(h.mean(dim=2))


class ShapeCNN(nn.Module):
    def __init__(self, n_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.relu(self.conv2(h))
        return self.fc(h.mean(dim=(2, 3)))


@dataclass
class TinyEncoderConfig:
    """A BERT-like config; serialised into the HF ``model_config`` text."""

    vocab_size: int = 24
    hidden_size: int = 32
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    intermediate_size: int = 64
    max_position_embeddings: int = 16
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    use_layer_norm: bool = True
    num_labels: int = 2

    def to_json_string(self) -> str:
        config = {
            "_name_or_path": "tiny-encoder",
            "architectures": ["TinyEncoderForSequenceClassification"],
            "attention_probs_dropout_prob": self.attention_probs_dropout_prob,
            "classifier_dropout": None,
            "hidden_act": "gelu",
            "hidden_dropout_prob": self.hidden_dropout_prob,
            "hidden_size": self.hidden_size,
            "id2label": {str(i): f"LABEL_{i}" for i in range(self.num_labels)},
            "initializer_range": self.initializer_range,
            "intermediate_size": self.intermediate_size,
            "label2id": {f"LABEL_{i}": i for i in range(self.num_labels)},
            "layer_norm_eps": self.layer_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "model_type": "tiny-encoder",
            "num_attention_heads": self.num_attention_heads,
            "num_hidden_layers": self.num_hidden_layers,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
            "problem_type": "regression" if self.num_labels == 1 else "single_label_classification",
            "torch_dtype": "float32",
            "transformers_version": "4.46.3",
            "use_layer_norm": self.use_layer_norm,
            "vocab_size": self.vocab_size,
        }
        return json.dumps(config, indent=2, sort_keys=True) + "\n"


class _EncoderLayer(nn.Module):
    def __init__(self, cfg: TinyEncoderConfig) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(
            cfg.hidden_size,
            cfg.num_attention_heads,
            dropout=cfg.attention_probs_dropout_prob,
            batch_first=True,
        )
        norm = (
            (lambda: nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps))
            if cfg.use_layer_norm
            else nn.Identity
        )
        self.attention_norm = norm()
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.output_norm = norm()
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        attn, _ = self.attention(h, h, h, need_weights=False)
        h = self.attention_norm(h + self.dropout(attn))
        ffn = self.output(F.gelu(self.intermediate(h)))
        return self.output_norm(h + self.dropout(ffn))


class TinyEncoderForSequenceClassification(nn.Module):
    def __init__(self, cfg: TinyEncoderConfig) -> None:
        super().__init__()
        self.config = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.layers = nn.ModuleList(_EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.classifier = nn.Linear(cfg.hidden_size, cfg.num_labels)
        for module in self.modules():  # BERT-style init
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=cfg.initializer_range)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
        for layer in self.layers:
            nn.init.normal_(layer.attention.in_proj_weight, std=cfg.initializer_range)
            nn.init.normal_(layer.attention.out_proj.weight, std=cfg.initializer_range)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1])
        h = self.word_embeddings(ids) + self.position_embeddings(pos)[None]
        for layer in self.layers:
            h = layer(h)
        return self.classifier(h.mean(dim=1))


MODELS: dict[str, type[nn.Module]] = {
    cls.__name__: cls
    for cls in (
        FeedforwardNet,
        LSTMForecaster,
        ResidualGRU,
        GRUForecaster,
        Conv1dNet,
        ShapeCNN,
    )
}


def init_linears(
    model: nn.Module,
    *,
    weight_std: float | None = None,
    bias: float | None = None,
    first: int | None = None,
) -> None:
    """Re-initialise the model's ``Linear`` layers (the first ``first`` of them, in module order):
    weights from N(0, weight_std^2), biases to the constant ``bias``; ``None`` leaves them."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for lin in linears[:first]:
        if weight_std is not None:
            nn.init.normal_(lin.weight, std=weight_std)
        if bias is not None:
            nn.init.constant_(lin.bias, bias)
