"""What the schedule callbacks log: names (``metric_names``) and values, as a real Trainer's loggers get them.

The integration tests in ``test_callbacks.py`` check the names and values for the usual set-ups; these check the
naming rule itself and that the names follow a replaced param-group list (a resume that renames a group).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from lightning_clr import OneCycleLR
from lightning_clr.callbacks.base import metric_names

from helpers import ListLogger, RecordingModel, trainer_kwargs


def test_names_per_group_per_optimizer_and_for_the_momentum():
    one, two = [{}], [{}, {"name": "head"}]
    assert metric_names("lr-clr", [("SGD", two, True), ("SGD", one, True), ("Adam", one, False)], True) == [
        (["lr-clr-SGD/pg1", "lr-clr-SGD/head"], ["lr-clr-SGD/pg1-momentum", "lr-clr-SGD/head-momentum"]),
        (["lr-clr-SGD-1"], ["lr-clr-SGD-1-momentum"]),
        (["lr-clr-Adam"], None),
    ]
    assert metric_names("lr", [("SGD", one, True)], False) == [(["lr-SGD"], None)]


class _RenameGroup(pl.Callback):
    """Reloads the optimizer's state with the second group renamed, as a resume can, after the first epoch."""

    def on_train_epoch_end(self, trainer, pl_module):
        optimizer = trainer.optimizers[0]
        state = optimizer.state_dict()
        state["param_groups"][1]["name"] = "head"
        optimizer.load_state_dict(state)


def test_logged_values_are_the_applied_floats_and_names_follow_replaced_groups(tmp_path):
    logger = ListLogger()
    callback = OneCycleLR(max_lr=[0.2, 0.4], cycle_momentum=False)
    model = RecordingModel(num_batches=4, groups=2, optimizer=lambda p: torch.optim.SGD(p, lr=0.1))
    trainer = pl.Trainer(**trainer_kwargs(tmp_path, max_epochs=2, log_every_n_steps=1, logger=logger),
                         callbacks=[callback, _RenameGroup()])
    trainer.fit(model)
    first, second = logger.series("lr-clr-SGD/pg1"), logger.series("lr-clr-SGD/pg2")
    head = logger.series("lr-clr-SGD/head")
    assert [value for _, value in first] == [used[1][0] for used in model.used]
    assert [value for _, value in second] == [used[1][1] for used in model.used[:4]]
    assert [value for _, value in head] == [used[1][1] for used in model.used[4:]]
    assert [step for step, _ in first] == list(range(8))
