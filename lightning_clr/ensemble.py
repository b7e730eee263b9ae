"""``SnapshotEnsemble``: averages the predicted probabilities of several snapshots of a model.

Huang et al. (Snapshot Ensembles, ICLR 2017) average the softmax outputs of the last ``M`` snapshots taken
at the cycle minima of a cyclic cosine schedule (see :class:`~lightning_clr.SnapshotCheckpoint`).
Averaging probabilities, not logits, is what the paper does and what keeps each member's calibration.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from typing import Any, Literal

import torch

from lightning_clr._checks import check_choice

__all__ = ["SnapshotEnsemble"]

OutputKind = Literal["logits", "probs", "log_probs", "binary_logits"]
_OUTPUTS: tuple[str, ...] = ("logits", "probs", "log_probs", "binary_logits")


class SnapshotEnsemble(torch.nn.Module):
    """An ensemble of models whose output is the mean of the members' predicted probabilities.

    Example::

        ensemble = SnapshotEnsemble.from_checkpoints(MyModel, snapshots.snapshot_paths[-3:])
        with torch.no_grad():
            probs = ensemble(x)  # (batch, classes), rows sum to 1
        predicted = probs.argmax(dim=-1)

    Args:
        members: the models; each is called with the ensemble's arguments and returns one tensor.
        output: what a member returns: `"logits"` (softmax over `dim` gives probabilities),
            `"probs"` (used as they are), `"log_probs"` (exponentiated, e.g. after `log_softmax`) or
            `"binary_logits"` (a sigmoid per element, for binary or multi-label outputs).
        dim: the class dimension for `"logits"`.

    Raises:
        ValueError: if ``members`` is empty or holds something that is not an ``nn.Module``, or ``output`` is
            unknown.
    """

    def __init__(self, members: Sequence[torch.nn.Module], output: OutputKind = "logits", dim: int = -1) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("Expected at least one member model, but got none.")
        wrong = [type(m).__name__ for m in members if not isinstance(m, torch.nn.Module)]
        if wrong:
            raise ValueError(f"Expected every member to be a torch.nn.Module, but got {wrong}.")
        check_choice(output, "output", _OUTPUTS)
        self.members = torch.nn.ModuleList(members)
        self.output = output
        self.dim = dim

    def __len__(self) -> int:
        return len(self.members)

    def _probabilities(self, value: torch.Tensor) -> torch.Tensor:
        if self.output == "logits":
            return torch.softmax(value.float(), dim=self.dim)
        if self.output == "log_probs":
            return value.float().exp()
        if self.output == "binary_logits":
            return torch.sigmoid(value.float())
        return value.float()

    def member_probabilities(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Each member's probabilities, stacked along a new first dimension: ``(len(self), *output_shape)``."""
        return torch.stack([self._probabilities(member(*args, **kwargs)) for member in self.members])

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The mean of the members' probabilities (computed in float32 at least)."""
        first, *others = self.members
        total = self._probabilities(first(*args, **kwargs))
        for member in others:
            total = total + self._probabilities(member(*args, **kwargs))
        return total / len(self.members)

    @classmethod
    def from_checkpoints(
        cls,
        module_class: Any,
        paths: str | os.PathLike | Sequence[str | os.PathLike],
        output: OutputKind = "logits",
        dim: int = -1,
        **load_kwargs: Any,
    ) -> SnapshotEnsemble:
        """Loads each checkpoint with ``module_class.load_from_checkpoint`` and returns the ensemble in eval mode.

        Args:
            module_class: the `LightningModule` class that was trained.
            paths: the checkpoint files, or a folder whose `*.ckpt` files (sorted by name, which is the step
                order for `SnapshotCheckpoint`'s names) are loaded.
            output: see the class.
            dim: see the class.
            **load_kwargs: passed to `load_from_checkpoint` (`map_location`, `strict`, hyper-parameter
                overrides).

        Raises:
            ValueError: if ``module_class`` has no ``load_from_checkpoint``, or no checkpoint is given or found.
            FileNotFoundError: if a path does not exist.
        """
        if not callable(getattr(module_class, "load_from_checkpoint", None)):
            raise ValueError(f"Expected module_class to be a LightningModule class with `load_from_checkpoint`, "
                             f"but got {module_class!r}.")
        if isinstance(paths, (str, os.PathLike)):
            folder = os.fspath(paths)
            if not os.path.isdir(folder):
                raise ValueError(f"Expected paths to be a list of checkpoint files or a folder of them, but got "
                                 f"{folder!r}, which is not a folder. Pass a single file as [path].")
            files = sorted(glob.glob(os.path.join(glob.escape(folder), "*.ckpt")))
            if not files:
                raise ValueError(f"Expected checkpoint files (*.ckpt) in {folder!r}, but found none.")
        else:
            files = [os.fspath(p) for p in paths]
            if not files:
                raise ValueError("Expected at least one checkpoint path, but got an empty list.")
        for path in files:
            if not os.path.exists(path):
                raise FileNotFoundError(f"Checkpoint {path!r} does not exist.")
        members = [module_class.load_from_checkpoint(path, **load_kwargs) for path in files]
        return cls(members, output=output, dim=dim).eval()
