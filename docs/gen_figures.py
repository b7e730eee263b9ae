"""Draws the schedule figures of the documentation with the library's own ``.plot()``.

    python docs/gen_figures.py            # writes docs/figures/*.png (committed)

Deterministic: no data, no training, no random numbers; the figures show exactly what the callbacks would
apply for the run lengths given here (matplotlib's Agg backend, 100 dpi).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from lightning_clr import CosineRestartsLR, CyclicLR, OneCycleLR
from lightning_clr.schedules import ExponentialRamp, LinearRamp

OUT = Path(__file__).resolve().parent / "figures"

#: name -> (object with .plot, steps, plot keyword arguments). 50 optimizer steps per epoch throughout.
FIGURES = {
    "cyclic_triangular": (CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="2 epochs"), 800, {}),
    "cyclic_triangular2": (CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="2 epochs", mode="triangular2"),
                           800, {}),
    "cyclic_exp_range": (CyclicLR(base_lr=0.01, max_lr=0.1, step_size_up="2 epochs", mode="exp_range",
                                  gamma=0.998), 800, {}),
    "one_cycle": (OneCycleLR(max_lr=0.1), 800, {}),
    "one_cycle_three_phase": (OneCycleLR(max_lr=0.1, three_phase=True, anneal_strategy="linear"), 800, {}),
    "cosine_restarts": (CosineRestartsLR(max_lr=0.1, first_cycle="2 epochs", t_mul=2.0), 700, {}),
    "cosine_restarts_m_mul": (CosineRestartsLR(max_lr=0.1, first_cycle="2 epochs", t_mul=1.0, m_mul=0.7,
                                               alpha=0.05), 800, {}),
    "cosine_restarts_warmup": (CosineRestartsLR(max_lr=0.1, first_cycle="2 epochs", t_mul=2.0, warmup="1 epochs"),
                               750, {}),
    "ramps": (LinearRamp(0.0, 0.1, 200), 300, {}),
    "exponential_ramp": (ExponentialRamp(1e-7, 10.0, 100), 100, {"log_scale": True}),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (obj, steps, kwargs) in FIGURES.items():
        if hasattr(obj, "schedules"):  # a callback: lengths in epochs need the epoch's size
            kwargs = {"steps_per_epoch": 50, **kwargs}
        path = OUT / f"{name}.png"
        obj.plot(steps, path=str(path), **kwargs)
        print(f"wrote {path.relative_to(OUT.parent.parent)}")


if __name__ == "__main__":
    main()
