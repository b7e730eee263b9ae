"""How a benchmark reports: markdown tables, the machine it ran on, and the command that made a figure.

Every README figure names the command, the seeds and the machine that produced it; ``finish_report`` appends
the first and the last to a report, prints it and saves it. Importing this module loads no torch (the summary
scripts that only rebuild tables from records stay light); ``machine_info`` imports it when called.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["command_line", "finish_report", "machine_info", "markdown_table", "save_report"]


def machine_info() -> dict[str, Any]:
    """CPU model, core count and library versions, for the report."""
    model = platform.processor() or "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    import pytorch_lightning as pl
    import torch

    import lightning_clr

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
        "lightning_clr": lightning_clr.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def save_report(text: str, folder: str | None, name: str) -> None:
    """Writes a report's ``text`` to ``folder/name`` (the folder made if need be); nothing when ``folder`` is unset."""
    if folder:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "w") as file:
            file.write(text + "\n")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that ran ``benchmarks/<script>`` with ``argv`` (``None``: this process's arguments)."""
    return f"python benchmarks/{script} " + " ".join(argv if argv is not None else sys.argv[1:])


def finish_report(text: str, script: str, argv: Sequence[str] | None, folder: str | None, name: str) -> str:
    """``text`` with the command that made it and the machine appended; printed, and saved as ``folder/name``."""
    text += f"\n\nCommand: `{command_line(script, argv)}`; machine: {json.dumps(machine_info())}"
    print(text)
    save_report(text, folder, name)
    return text


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
