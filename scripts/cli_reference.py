"""Write docs/cli.md from the commands' own --help (run after changing the CLI).

python scripts/cli_reference.py          # rewrite docs/cli.md
python scripts/cli_reference.py --check  # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from timebank.cli import cli

TARGET = Path(__file__).parent.parent / "docs" / "cli.md"

INTRO = """# The `timebank` command

Every command calls the Python API method of the same name (with `-` for
`_`), takes the global options `--db URL` and `--actor ID` before the command
name, and on a refused command prints one line, `error: CODE: message`, and
exits 1 having written nothing: a file it cannot read or write is
`file_error`, and the files a command writes (a report's `-o`, an export)
are replaced whole when it succeeds and left as they were when it fails.
Usage errors (a missing argument, an unknown option) exit 2. A command
stopped by Ctrl-C (`SIGINT`) prints `error: interrupted: …` and exits 130:
what it had not committed is not in the store (an import: none of its
rows), and running it again completes it. Amounts are
hours: `2`, `1.5` or `1:30`. Dates are ISO (`2026-02-01`). `--format json`
output is a list of objects.

A bank is named in one of two ways. The commands that change a bank take it
as an argument (`join BANK MEMBER`, `record-exchange BANK PROVIDER RECEIVER
HOURS`); the reports and lists take `--bank BANK` (`report`, `inactive`,
`near-limit`, `activity`, `one-connection`, `entries`, `balances`). Either
form given to a command of the other family is a usage error (exit 2) that
says how to write it: `timebank inactive thurrock` answers "give the bank
as --bank thurrock".

Some refusals add where to look. A member named in a bank they are not in
names the banks they are in (`'m3' is not a member of bank 'thurrock' (a
member of 'thurrock/tilbury-hub')`): an entry's BANK is its provider's,
and `--receiver-bank` names the receiver's when it is another. A store
not found says how one is made and, with no `--db` given,
the working directory where it looked for `timebank.db`.

Output is UTF-8. What a command writes to a file or a pipe (`> report.html`,
`| another-tool`) is UTF-8 whatever the machine's locale, as the files it
writes itself are: a report's HTML says it is UTF-8, and CSV and JSON are
read as UTF-8. (Python would write the locale's encoding, such as Windows'
cp1252, which has no `ŵ` for a Welsh ward or `أ` for a name, and stop on
the first one.) JSON holds names as written, not as `\\u` escapes. A
terminal whose encoding lacks a character shows its escape (`\\u0175`).

This page is generated from the commands' `--help` by
`python scripts/cli_reference.py`; a test fails when it is out of date.

## `timebank`

```
{main}
```
"""


def render() -> str:
    settings = {**cli.context_settings, "terminal_width": 88}
    root = click.Context(cli, info_name="timebank", **settings)
    parts = [INTRO.format(main=cli.get_help(root).rstrip())]
    _commands(cli, root, settings, parts)
    return "\n".join(parts)


def _commands(
    group: click.Group, parent: click.Context, settings: dict[str, object], parts: list[str]
) -> None:
    """Each command of ``group``'s help, and its own commands' after it (a
    group such as ``import`` or ``read-model``)."""
    for name in sorted(group.commands):
        command = group.commands[name]
        ctx = click.Context(command, info_name=name, parent=parent, **settings)
        text = command.get_help(ctx).rstrip()
        parts.append(f"### `{ctx.command_path}`\n\n```\n{text}\n```\n")
        if isinstance(command, click.Group):
            _commands(command, ctx, settings, parts)


if __name__ == "__main__":
    wanted = render()
    if "--check" in sys.argv:
        sys.exit(0 if TARGET.read_text() == wanted else 1)
    TARGET.write_text(wanted)
