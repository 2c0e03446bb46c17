"""Which software took a run's data: ffzero-lab's version and, from a git checkout, its commit.

Both the command line and the Python API record these with every run (``runs show``).
"""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def software_version() -> str:
    """The installed ffzero-lab version, or ``unknown``."""
    try:
        return version("ffzero-lab")
    except PackageNotFoundError:
        return "unknown"


def software_commit() -> str | None:
    """The git commit of ffzero-lab's source tree, ``+dirty`` when tracked files differ from it;
    None when ffzero-lab does not run from a git checkout (an installed wheel) or git is missing."""
    tree = Path(__file__).resolve().parents[2]  # the checkout holding ffzero_lab/
    if not (tree / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        status = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+dirty" if status.returncode == 0 and status.stdout.strip() else "")
