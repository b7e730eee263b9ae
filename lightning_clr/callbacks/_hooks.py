"""The life of torch optimizer step hooks a callback registers for one fit, written once."""

from __future__ import annotations

from typing import Any

from typing_extensions import override

from lightning_clr._compat import CallbackBase

__all__ = ["StepHookOwner"]


class StepHookOwner(CallbackBase):
    """A callback that registers torch optimizer step hooks for a fit and removes them when the fit ends.

    Subclasses append the handles ``register_step_pre_hook`` / ``register_step_post_hook`` return to
    ``self._handles`` (set up in ``__init__``).
    """

    _handles: list[Any]

    @override
    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._remove_hooks()

    @override
    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
