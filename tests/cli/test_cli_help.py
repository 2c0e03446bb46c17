"""Every ``--help``: plain metavars, and every option's default written out."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from ffzero_lab.cli.app import app

runner = CliRunner()


def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, group)]
    for name, sub in getattr(group, "commands", {}).items():
        found += commands(sub, (*path, name))
    return found


ALL = commands(typer.main.get_command(app))


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "ffzero-lab" for p, _ in ALL])
def test_help_shows_plain_metavars_and_defaults(path: tuple[str, ...], command: Any) -> None:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    options = text[text.index("Options:"):]  # plain help, no rich panels
    assert not re.search(r"<(bool|path|file|dir|int|float|str|text|list\[|\w+ range)", options), options
    for param in command.params:
        if not isinstance(param, typer.core.TyperOption) or param.name == "version":
            continue
        line = next(line for line in options.splitlines()
                    if line.startswith("  -") and set(param.opts) & set(line.replace(",", " ").split()))
        if param.is_flag:
            assert re.search(rf"{re.escape(max(param.opts, key=len))}(\s{{2,}}|$)", line), line  # no metavar
        elif param.default is not None or isinstance(param.show_default, str):
            block = options[options.index(line):].split("\n  -")[0]
            assert "[default:" in block, block


def test_the_runs_dir_default_is_shown_not_swallowed() -> None:
    text = runner.invoke(app, ["dry-run", "--help"], env={"COLUMNS": "200"}).stdout
    assert "--runs-dir DIR" in text and "[default: ($FFZERO_RUNS_DIR or ./runs)]" in " ".join(text.split())
    assert "--set FIELD=VALUE" in text and re.search(r"--wait-subscribers INT(EGER)? ", text)
