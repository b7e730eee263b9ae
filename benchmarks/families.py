"""Five small model families for the "auto" bounds benchmark, each on data generated or shipped locally.

| family | data | model | optimizer |
|---|---|---|---|
| ``convbase`` | MNIST-1D (generated) | the mnist1d paper's ConvBase, no normalisation | SGD, momentum 0.9 |
| ``resnet`` | MNIST-1D | a residual 1-D CNN with BatchNorm | SGD, Nesterov 0.9, weight decay 5e-4 |
| ``mlp`` | scikit-learn's digits (shipped) | a two-layer MLP | AdamW, weight decay 0.01 |
| ``charlm`` | Python's ``pydoc_data.topics`` (shipped) | a causal pre-LN transformer, character level | AdamW, 0.01 |
| ``gru`` | MNIST-1D, read as a sequence | a one-layer GRU | Adam |

Each family is sized so that one run takes a few seconds on one CPU thread; accuracy is in percent (next-character
accuracy for the language model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import torch
from torch import nn

from benchmarks.common import ConvBase, Splits, make_mnist1d

__all__ = ["FAMILIES", "Family", "family_data"]


@dataclass(frozen=True)
class Family:
    """A model, its data and its optimizer (``"sgd"`` with momentum 0.9, ``"nesterov"``, ``"adamw"`` or ``"adam"``),
    with the run length, the batch size, the 1cycle peaks tuned over on validation (``grid``, a half decade apart),
    a line for the report and the validation seeds per grid point."""

    name: str
    optimizer: str
    weight_decay: float
    epochs: int
    batch_size: int
    grid: tuple[float, ...]
    describe: str
    tune_seeds: int = 2

    @property
    def adam_family(self) -> bool:
        return self.optimizer in ("adam", "adamw")

    def model(self) -> nn.Module:
        return _MODELS[self.name]()


# ---------------------------------------------------------------------------------------------- the data
def _digits() -> Splits:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return Splits(x[:1200], y[:1200], x[1200:1500], y[1200:1500], x[1500:], y[1500:])


CONTEXT = 32


def _text() -> str:
    from pydoc_data.topics import topics

    text = "\n".join(topics[k] for k in sorted(topics))
    return "".join(c if 32 <= ord(c) < 127 or c == "\n" else "?" for c in text)


def _charlm() -> Splits:
    """Windows of ``CONTEXT + 1`` characters: the first ``CONTEXT`` are the input, each next one the target."""
    text = _text()[:100_000]
    codes = torch.tensor([ord(c) - 31 if c != "\n" else 0 for c in text], dtype=torch.int64)  # 0..95
    n = (len(codes) - 1) // CONTEXT
    windows = torch.stack([codes[i * CONTEXT: i * CONTEXT + CONTEXT + 1] for i in range(n)])
    a, b = int(n * 0.9), int(n * 0.95)
    x, y = windows[:, :-1], windows[:, 1:]
    return Splits(x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:])


@cache
def family_data(name: str) -> Splits:
    """The splits of a family (train / validation for tuning / test), made once per process."""
    if name == "mlp":
        return _digits()
    if name == "charlm":
        return _charlm()
    return make_mnist1d()


# ---------------------------------------------------------------------------------------------- the models
class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(channels)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.bn1(self.conv1(x)).relu()
        return (x + self.bn2(self.conv2(h))).relu()


class ResNet1d(nn.Module):
    """A stem convolution, two residual blocks at stride 2 between them, global average pooling, a linear head."""

    def __init__(self, channels: int = 24) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, channels, 5, stride=2, padding=2, bias=False),
                                  nn.BatchNorm1d(channels), nn.ReLU())
        self.block1 = _ResidualBlock(channels)
        self.down = nn.Sequential(nn.Conv1d(channels, channels, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm1d(channels), nn.ReLU())
        self.block2 = _ResidualBlock(channels)
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x.view(-1, 1, x.shape[-1]))
        h = self.block2(self.down(self.block1(h)))
        return self.head(h.mean(-1))


class MLP(nn.Module):
    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CharTransformer(nn.Module):
    """A causal pre-LN transformer over characters: 2 layers, width 48, 4 heads, learned positions."""

    def __init__(self, vocab: int = 96, width: int = 48, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(CONTEXT, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(CONTEXT), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position[: x.shape[1]]
        h = self.blocks(h, mask=self.mask[: x.shape[1], : x.shape[1]], is_causal=True)
        return self.head(self.norm(h))


class GRUClassifier(nn.Module):
    """MNIST-1D read as a sequence of 40 values, 4 at a time: a GRU of 48 units, a linear head on the last state."""

    def __init__(self, hidden: int = 48, chunk: int = 4) -> None:
        super().__init__()
        self.chunk = chunk
        self.gru = nn.GRU(chunk, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.view(x.shape[0], -1, self.chunk)
        _, h = self.gru(seq)
        return self.head(h[-1])


_MODELS: dict[str, Callable[[], nn.Module]] = {
    "convbase": ConvBase,
    "resnet": ResNet1d,
    "mlp": MLP,
    "charlm": CharTransformer,
    "gru": GRUClassifier,
}

_HALF = math.sqrt(10.0)


def _grid(low: float, points: int) -> tuple[float, ...]:
    return tuple(float(f"{low * _HALF ** k:.3g}") for k in range(points))


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("convbase", "sgd", 0.0, 10, 100, _grid(0.01, 6), "ConvBase (no norm), SGD momentum 0.9, MNIST-1D"),
        Family("resnet", "nesterov", 5e-4, 8, 100, _grid(0.01, 6),
               "residual CNN + BatchNorm, SGD Nesterov, wd 5e-4, MNIST-1D"),
        Family("mlp", "adamw", 0.01, 10, 64, _grid(3e-4, 6), "MLP 64-128-128-10, AdamW wd 0.01, digits"),
        Family("charlm", "adamw", 0.01, 2, 32, _grid(3e-4, 6), "char pre-LN transformer 2x48, AdamW, pydoc text"),
        Family("gru", "adam", 0.0, 10, 100, _grid(3e-4, 6), "GRU 48 units, Adam, MNIST-1D as a sequence",
               tune_seeds=1),
    )
}


def loss_and_correct(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """Cross-entropy and the number of correct predictions (per character for the language model)."""
    logits = model(x)
    if logits.dim() == 3:
        logits, y = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
    return nn.functional.cross_entropy(logits, y), (logits.argmax(-1) == y).sum()
