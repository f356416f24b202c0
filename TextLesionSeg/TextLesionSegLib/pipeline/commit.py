"""Several files written as one: under temporary names beside their targets, then renamed
together, or none of them (the user's old files back where they were)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import InputError


def temporary_beside(target: Path, tag: str) -> Path:
    """A new empty file in ``target``'s folder whose name ends like ``target`` (writers pick the
    format from the suffix)."""
    suffix = "".join(target.suffixes[-2:]) if target.name.lower().endswith(".gz") else target.suffix
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{tag}{suffix}", dir=target.parent)
    os.close(fd)
    return Path(name)


def _keep_copy(target: Path) -> Path:
    """A second name for the user's ``target`` (a hard link, or a copy where the file system has
    none), so an undo can put it back; ``target`` itself stays where it is until it is replaced."""
    backup = temporary_beside(target, "old")
    try:
        backup.unlink()
        try:
            os.link(target, backup, follow_symlinks=False)  # a symlink is kept as the link
        except (OSError, NotImplementedError):
            shutil.copy2(target, backup, follow_symlinks=False)
    except BaseException:
        with contextlib.suppress(OSError):
            backup.unlink()
        raise
    return backup


def commit_all(pairs: list[tuple[Path, Path]], overwrite: bool) -> None:
    """Rename each written temporary onto its target; on any failure undo the renames done.

    The user's file is never moved away: ``os.replace`` swaps the new file in atomically, so a
    failed rename leaves it as it was, and an undo renames the kept link (or copy) back."""
    mask = os.umask(0o022)
    os.umask(mask)
    done: list[tuple[Path, Path | None]] = []  # (target, backup of the user's file or None)
    backups: list[Path] = []
    current: Path | None = None
    try:
        for tmp, target in pairs:
            current, backup = target, None
            if os.path.lexists(target):
                if not overwrite:  # appeared while the model ran: never clobber
                    raise InputError(f"{target}: output file exists; use --overwrite to replace it")
                backup = _keep_copy(target)
                backups.append(backup)
            os.chmod(tmp, 0o666 & ~mask)  # mkstemp made it private; give it a new file's mode
            os.replace(tmp, target)
            done.append((target, backup))
    except BaseException as exc:
        stranded = []  # user's files an undo could not put back: kept under their backup name
        for target, backup in reversed(done):
            try:
                if backup is not None:
                    os.replace(backup, target)
                else:
                    target.unlink()
            except OSError:
                if backup is not None:
                    backups.remove(backup)
                    stranded.append(f"{target} is kept as {backup}")
        note = f" ({'; '.join(stranded)})" if stranded else ""
        if isinstance(exc, OSError):
            raise InputError(f"{current}: cannot write: {exc.strerror or exc}{note}") from None
        if stranded and isinstance(exc, InputError):
            raise InputError(f"{exc}{note}") from None
        raise
    finally:
        for backup in backups:  # gone already where an undo renamed it back
            with contextlib.suppress(OSError):
                backup.unlink()
