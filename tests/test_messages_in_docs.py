"""The messages the docs quote are the ones the code gives for that input.

Two kinds of quotes: a ``console`` block that shows a ``lightning-clr`` command and what it prints (run here, in
a scratch folder that sees the repository's ``examples/``), and an inline code span that quotes an error message
(``Expected ...``, ``Cannot ...``, ``... fragment ...``). Every such span needs an entry in :data:`INPUTS`, the
input that raises it, so a new quote cannot go unchecked. A quote with ``...`` is checked piece by piece, in
order; one without must be the whole message.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from lightning_clr import CyclicLR
from lightning_clr.cli import main

from helpers import RecordingModel, trainer_kwargs

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
_FENCE = re.compile(r"```.*?```", re.S)
_SPAN = re.compile(r"`([^`]+)`")
_MESSAGE = re.compile(r"(\.\.\. |Expected |Cannot |[A-Z][A-Za-z]+(Error|Exception): )")


def _normal(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------- console blocks
def _console_sessions() -> list[Any]:
    sessions = []
    for page in PAGES:
        for block in re.findall(r"```console\n(.*?)```", page.read_text(), re.S):
            commands: list[tuple[str, list[str]]] = []
            for line in block.splitlines():
                if line.startswith("$ "):
                    commands.append((line[2:], []))
                elif commands:
                    commands[-1][1].append(line)
            sessions.append(pytest.param(commands, id=f"{page.relative_to(ROOT)}:{commands[0][0][:40]}"))
    return sessions


@pytest.mark.parametrize("commands", _console_sessions())
def test_console_blocks_show_what_the_command_prints(commands, tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the docs' relative paths; figures land in tmp_path
    monkeypatch.chdir(tmp_path)
    status = None
    for command, shown in commands:
        if command == "echo $?":
            assert shown == [str(status)], f"{command} after the previous command"
            continue
        argv = shlex.split(command)
        assert argv[0] == "lightning-clr", f"the docs show a command this test does not run: {command}"
        if "-o" in argv or "--output" in argv:
            pytest.importorskip("matplotlib")
        status = main(argv[1:])
        captured = capsys.readouterr()
        printed = (captured.out + captured.err).splitlines()
        assert printed == shown, f"$ {command}\nthe docs show:\n" + "\n".join(shown) + "\nthe command printed:\n" + \
            "\n".join(printed)


# ---------------------------------------------------------------------------------------------- inline quotes
class _Stream(IterableDataset):
    """No ``__len__``: an epoch has no known number of steps."""

    def __iter__(self) -> Any:
        generator = torch.Generator().manual_seed(0)
        for _ in range(20):
            yield (torch.randn(4, generator=generator),)


class _StreamModel(RecordingModel):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Stream(), batch_size=2)


class _StepLRModel(RecordingModel):
    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, step_size=10)}


def _fit_error(tmp_path: Path, model: pl.LightningModule, callback: Any, **trainer: Any) -> str:
    with pytest.raises(ValueError) as error:
        pl.Trainer(**trainer_kwargs(tmp_path, **trainer), callbacks=[callback]).fit(model)
    return str(error.value)


def _constructor_error(build: Callable[[], Any]) -> Callable[[Path], str]:
    def message(tmp_path: Path) -> str:
        with pytest.raises(ValueError) as error:
            build()
        return str(error.value)

    return message


def _epochs_in_a_stream(tmp_path: Path) -> str:
    # lengths-and-clock.md: "(with max_steps=600 ...)"; faq.md: an IterableDataset.
    return _fit_error(tmp_path, _StreamModel(), CyclicLR(0.1, 1.0, step_size_up="1 epochs"), max_steps=600)


#: (page, the quote's first words) -> the message the code gives for the input the page describes.
INPUTS: dict[tuple[str, str], Callable[[Path], str]] = {
    ("getting-started.md", "Expected max_lr > base_lr"): _constructor_error(lambda: CyclicLR(base_lr=0.1, max_lr=0.05)),
    ("lengths-and-clock.md", "Cannot resolve step_size_up='1 epochs'"): _epochs_in_a_stream,
    ("faq.md", "Cannot resolve step_size_up='1 epochs'"): _epochs_in_a_stream,
    ("lightningcli.md", "... returns the LR scheduler StepLR"): lambda tmp_path: _fit_error(
        tmp_path, _StepLRModel(), CyclicLR(0.01, 0.1, step_size_up=4), max_steps=2),
}


def _quotes() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        prose = _FENCE.sub("", page.read_text())
        for span in _SPAN.findall(prose):
            text = _normal(span)
            if _MESSAGE.match(text):
                found.append((str(page.relative_to(ROOT / "docs")), text))
    return found


def _entry(page: str, quote: str) -> Callable[[Path], str] | None:
    return next((produce for (name, start), produce in INPUTS.items() if name == page and quote.startswith(start)),
                None)


def test_every_quoted_message_has_an_input_here():
    quotes = _quotes()
    assert len(quotes) >= len(INPUTS)
    missing = [f"{page}: {quote}" for page, quote in quotes if _entry(page, quote) is None]
    assert missing == [], "quoted messages without an input in INPUTS:\n" + "\n".join(missing)


@pytest.mark.parametrize(("page", "quote"), _quotes(), ids=lambda value: value[:50])
def test_a_quoted_message_is_what_the_code_says(page, quote, tmp_path):
    produce = _entry(page, quote)
    assert produce is not None
    message = _normal(produce(tmp_path))
    pieces = [piece.strip() for piece in quote.split("...") if piece.strip()]
    if len(pieces) == 1 and "..." not in quote:
        assert message == quote, f"{page} quotes:\n{quote}\nthe code says:\n{message}"
        return
    position = 0
    for piece in pieces:
        found = message.find(piece, position)
        assert found >= 0, f"{page} quotes {quote!r}; the code says:\n{message}\n(missing {piece!r})"
        position = found + len(piece)
