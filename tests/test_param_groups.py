"""The primitive every rate goes in through: a float entry is replaced, a tensor entry filled in place."""

from __future__ import annotations

import pytest
import torch

from lightning_clr._param_groups import MOMENTUM_KEYS, momentum_key, update_groups


def _groups(**entries):
    return [{"params": [], **entries}, {"params": [], **entries}]


class _Optimizer:  # anything with param_groups
    def __init__(self, groups):
        self.param_groups = groups


def test_momentum_key_prefers_betas_as_adam_has_both():
    assert MOMENTUM_KEYS == ("betas", "momentum")
    assert momentum_key({"betas": (0.9, 0.999), "momentum": 0.0}) == "betas"
    assert momentum_key({"momentum": 0.9}) == "momentum"
    assert momentum_key({"lr": 0.1}) is None


def test_a_float_entry_is_replaced_and_betas_keeps_its_second_value():
    group = {"lr": 0.1, "momentum": 0.9, "betas": (0.9, 0.999)}
    optimizer = _Optimizer([group])
    assert update_groups(optimizer, "lr", 0.25) == [0.25] and group["lr"] == 0.25
    assert update_groups(optimizer, "momentum", [0.8]) == [0.8] and group["momentum"] == 0.8
    assert update_groups(optimizer, "betas", 0.85) == [0.85] and group["betas"] == (0.85, 0.999)


def test_a_tensor_entry_is_filled_in_place_and_returned():
    rate, beta = torch.tensor(0.1), torch.tensor(0.9)
    group = {"lr": rate, "betas": (beta, 0.999)}
    optimizer = _Optimizer([group])
    assert update_groups(optimizer, "lr", 0.25)[0] is rate and group["lr"] is rate and rate.item() == 0.25
    assert update_groups(optimizer, "betas", 0.85)[0] is beta and group["betas"][0] is beta
    assert beta.item() == pytest.approx(0.85) and group["betas"][1] == 0.999


def test_none_leaves_a_group_alone():
    optimizer = _Optimizer(_groups(lr=0.1, momentum=0.9))
    assert update_groups(optimizer, "momentum", [None, 0.5]) == [None, 0.5]
    assert [g["momentum"] for g in optimizer.param_groups] == [0.9, 0.5]


def test_update_groups_writes_one_value_or_one_per_group():
    optimizer = _Optimizer(_groups(lr=0.1))
    update_groups(optimizer, "lr", 0.3)
    assert [g["lr"] for g in optimizer.param_groups] == [0.3, 0.3]
    update_groups(optimizer, "lr", (0.3, 0.4))
    assert [g["lr"] for g in optimizer.param_groups] == [0.3, 0.4]
    with pytest.raises(ValueError, match=r"one value per param group \(2\), but got 1: \[0.5\]"):
        update_groups(optimizer, "lr", [0.5])
    assert [g["lr"] for g in optimizer.param_groups] == [0.3, 0.4]  # nothing written
