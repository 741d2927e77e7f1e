"""Nothing lost: writes that refuse to overwrite changed work, and keep a backup when forced."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


class WouldOverwrite(FileExistsError):
    """A command would replace a file that someone changed."""


def backup(path: Path) -> Path:
    """Copy `path` beside itself as NAME.YYYYmmdd-HHMMSS.bak (never replacing an older backup)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{stamp}.bak")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.{stamp}-{counter}.bak")
        counter += 1
    shutil.copy2(path, target)
    return target


def write_guarded(path: Path, text: str, *, force: bool = False) -> str:
    """Write `text` unless `path` holds different text; with force, back it up first.

    Returns what happened: "created", "unchanged", or "replaced (backup: NAME)".
    """
    path = Path(path)
    if path.exists():
        if path.read_text(encoding="utf-8", errors="replace") == text:
            return "unchanged"
        if not force:
            raise WouldOverwrite(
                f"{path} already exists and differs from what this command would write; it may hold "
                f"someone's edits. Move it away, or rerun with --force to replace it (a timestamped "
                f"backup is kept beside it)."
            )
        saved = backup(path)
        atomic_write(path, text)
        return f"replaced (backup: {saved.name})"
    atomic_write(path, text)
    return "created"


def atomic_write(path: Path, text: str):
    """Write `text` to `path` so that readers see the old file or the new one, never a part:
    a temporary file in the same folder, flushed to disk, then renamed over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file readable by its owner only: give it the permissions an
        # ordinary write would (the old file's, or what the umask allows).
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: put it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
