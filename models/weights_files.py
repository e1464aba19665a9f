"""State-dict files from the server's disk, opened as if every one of them were hostile.

Only the operator names files: one file in ``DROPBLOCK_LAB_WEIGHTS``, or a directory in
``DROPBLOCK_LAB_WEIGHTS_DIR`` whose regular ``*.pth``/``*.pt`` files are offered by name in the
sidebar. A visitor never types a path. Every file is opened the same careful way:

* the path is resolved (``realpath``) and, for the directory, must stay inside it (no symlink out);
* it is opened with ``O_NONBLOCK | O_NOFOLLOW`` and ``fstat``-ed: only a regular file of at most
  ``MAX_WEIGHTS_BYTES`` is read (a named pipe would otherwise block a server thread for good);
* ``torch.load(weights_only=True)`` reads it (no pickle code runs), and every floating tensor must
  be finite.

Failures raise :class:`WeightsFileError`, whose message is "could not load <file name>: <reason
class>": never the file's contents, never a path, never the text of the underlying exception
(which can hold either). The details go to the server log.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from .text import N_, Text

__all__ = [
    "ENV_WEIGHTS",
    "ENV_WEIGHTS_DIR",
    "MAX_WEIGHTS_BYTES",
    "REASONS",
    "WEIGHTS_SUFFIXES",
    "WeightsFileError",
    "check_finite",
    "list_weights_dir",
    "load_into",
    "operator_file",
    "read_state_dict",
    "resolve_in_dir",
]

ENV_WEIGHTS = "DROPBLOCK_LAB_WEIGHTS"  # one operator file, loaded at start-up
ENV_WEIGHTS_DIR = "DROPBLOCK_LAB_WEIGHTS_DIR"  # an operator directory offered in the sidebar
MAX_WEIGHTS_BYTES = 1 << 30  # 1 GiB: ResNet-152 is 230 MB, wide_resnet50_2 263 MB
WEIGHTS_SUFFIXES = (".pth", ".pt")
REASONS = (
    N_("not a state dict"),
    N_("does not match the architecture"),
    N_("non-finite values"),
    N_("too large"),
    N_("not a regular file"),
    N_("not in the weights directory"),
    N_("unreadable"),
)
_LOG = logging.getLogger("dropblock_lab.weights")


class WeightsFileError(ValueError):
    """A weights file that cannot be used; ``str(err)`` is safe to show to any visitor."""

    def __init__(self, name: str, reason: str):
        assert reason in REASONS, reason
        self.name = name
        self.reason = reason
        super().__init__(Text(N_("could not load {name}: {reason}"), name=name, reason=Text(reason)))


def _refuse(name: str, reason: str, detail: object = None) -> WeightsFileError:
    """Log the details for the operator; return the error a visitor may see."""
    _LOG.warning("weights file %r refused (%s): %s", name, reason, detail)
    return WeightsFileError(name, reason)


def _display_name(path: str | os.PathLike[str]) -> str:
    return os.path.basename(os.fspath(path)) or "the weights file"


def _is_inside(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory and path != directory


def list_weights_dir(directory: str | os.PathLike[str]) -> tuple[str, ...]:
    """Names of the regular ``*.pth``/``*.pt`` files directly inside ``directory``, sorted.

    A name whose ``realpath`` leaves the directory (a symlink out), or which is not a regular
    file (directory, FIFO, socket, device), is not offered. Nothing is opened.
    """
    root = os.path.realpath(directory)
    names = []
    try:
        entries = list(os.scandir(root))
    except OSError as err:
        _LOG.warning("weights directory unreadable: %s", err)
        return ()
    for entry in entries:
        if not entry.name.endswith(WEIGHTS_SUFFIXES) or entry.name.startswith("."):
            continue
        real = os.path.realpath(entry.path)
        try:
            regular = stat.S_ISREG(os.stat(real).st_mode)
        except OSError:
            continue
        if regular and _is_inside(real, root):
            names.append(entry.name)
    return tuple(sorted(names))


def resolve_in_dir(directory: str | os.PathLike[str], name: str) -> str:
    """The real path of file ``name`` offered by :func:`list_weights_dir` (re-checked now).

    Raises:
        WeightsFileError: ``name`` is not one of the directory's offered files.
    """
    shown = name if isinstance(name, str) and name and "/" not in name and "\0" not in name else "the file"
    if shown == "the file" or name in (".", "..") or name not in list_weights_dir(directory):
        raise _refuse(shown, "not in the weights directory", repr(name)[:300])
    return os.path.realpath(os.path.join(os.path.realpath(directory), name))


def check_finite(state: Mapping[str, Tensor], name: str) -> None:
    """Raise :class:`WeightsFileError` if any floating tensor holds NaN or inf."""
    for key, value in state.items():
        if value.is_floating_point() or value.is_complex():
            if not bool(torch.isfinite(value).all()):
                raise _refuse(name, "non-finite values", key)


def read_state_dict(path: str | os.PathLike[str], *, max_bytes: int = MAX_WEIGHTS_BYTES,
                    name: str | None = None) -> dict[str, Tensor]:
    """Open ``path`` safely and return its state dict (``module.`` prefixes removed, finite).

    Accepts a plain state dict or a ``{"state_dict": ...}`` checkpoint.

    Args:
        path: an operator-given file (resolved here; the final component is opened without
            following links).
        max_bytes: larger files are refused before anything is read.
        name: what messages call the file (defaults to its base name).

    Raises:
        WeightsFileError: with a reason class from ``REASONS``.
    """
    name = name or _display_name(path)
    real = os.path.realpath(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as err:
        raise _refuse(name, "unreadable", err) from None
    with open(fd, "rb", closefd=True) as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(name, "not a regular file", stat.filemode(info.st_mode))
        if info.st_size > max_bytes:
            raise _refuse(name, "too large", f"{info.st_size} bytes > {max_bytes}")
        if info.st_size == 0:  # empty, or a /proc file whose length stat cannot tell
            raise _refuse(name, "not a state dict", "zero length")
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except MemoryError:
            raise _refuse(name, "too large", "MemoryError") from None
        except Exception as err:  # noqa: BLE001 -- any parse failure; its text may quote the file
            raise _refuse(name, "not a state dict", f"{type(err).__name__}: {err}"[:500]) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise _refuse(name, "not a state dict", type(state).__name__)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    check_finite(state, name)
    return state


def load_into(model: torch.nn.Module, state: Mapping[str, Tensor], name: str) -> None:
    """``model.load_state_dict(state)``, strictly; a mismatch is a :class:`WeightsFileError`."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError, KeyError) as err:
        raise _refuse(name, "does not match the architecture", str(err)[:500]) from None


def operator_file() -> Path | None:
    """``$DROPBLOCK_LAB_WEIGHTS``, when the operator set it."""
    value = os.environ.get(ENV_WEIGHTS, "").strip()
    return Path(value).expanduser() if value else None
