"""Docs are part of done: every CLI command is documented, examples run."""

from __future__ import annotations

import ast
import inspect
import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from timebank.cli import cli

from .conftest import POSTGRES_URL

ROOT = Path(__file__).parent.parent


def test_every_cli_command_is_in_the_cli_reference() -> None:
    reference = (ROOT / "docs" / "cli.md").read_text()
    documented = set(re.findall(r"^### `timebank ([a-z-]+)`", reference, flags=re.M))
    assert documented == set(cli.commands)


def test_every_event_is_in_the_event_catalogue() -> None:
    from .release_logs import event_classes

    catalogue = (ROOT / "docs" / "events.md").read_text()
    events = set(event_classes())
    assert len(events) == 27
    missing = {e for e in events if f"`{e}`" not in catalogue}
    assert missing == set()


def test_every_name_the_package_exports_is_on_its_page() -> None:
    import timebank
    from timebank import testing

    for module, page in ((timebank, "api.md"), (testing, "testing.md")):
        text = (ROOT / "docs" / page).read_text()
        blocks = re.findall(r"^```.*?^```", text, flags=re.S | re.M)
        prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
        code = " ".join(blocks + re.findall(r"`[^`]+`", prose))
        assert [n for n in module.__all__ if not re.search(rf"\b{n}\b", code)] == [], page


def ids_each_error_is_raised_with() -> dict[str, set[str]]:
    """Every keyword the package passes to an error it raises (the ids the
    error carries), by error name; ``**ids`` is followed to the dict
    ``ids = {...}`` of the same function, and a re-raise with ``**e.ids``
    passes the same error's own ids on."""
    from timebank import errors

    names = {n for n in errors.__all__ if isinstance(getattr(errors, n), type)}
    found: dict[str, set[str]] = {n: set() for n in names}
    for path in (ROOT / "timebank").rglob("*.py"):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            dicts = {
                target.id: {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
                for node in ast.walk(function)
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                for target in node.targets
                if isinstance(target, ast.Name)
            }
            for call in ast.walk(function):
                if not isinstance(call, ast.Call):
                    continue
                func = call.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if name not in names:
                    continue
                for keyword in call.keywords:
                    if keyword.arg is not None:
                        found[name].add(keyword.arg)
                    elif isinstance(keyword.value, ast.Name):
                        found[name] |= dicts[keyword.value.id]
    return found


def test_every_error_its_code_and_its_ids_are_in_the_errors_table() -> None:
    """docs/concepts.md, "Errors": an app keys its handling and its wording
    by the codes, and reads the ids; each must be there and right."""
    from timebank import errors

    page = (ROOT / "docs" / "concepts.md").read_text()
    section = page[page.index("## Errors") : page.index("## Balances, statements")]
    rows = {
        m["name"]: (m["code"], set(re.findall(r"`([a-z_]+)`", m["ids"])))
        for m in re.finditer(
            r"^\| `(?P<name>\w+)` \| `(?P<code>\w+)` \| (?P<ids>[^|]*)\|", section, flags=re.M
        )
    }
    families = dict(re.findall(r"\(`(\w+)`, `(\w+)`", section))
    raised = ids_each_error_is_raised_with()
    assert raised["BalanceLimitExceeded"] >= {"account", "limit_minutes"}  # **ids followed
    for name in errors.__all__:
        error = getattr(errors, name)
        if not isinstance(error, type):
            continue
        documented = rows.get(name, (families.get(name), set()))
        assert documented[0] == error.code, name
        if name in rows:
            assert raised[name] <= documented[1], name
        else:  # a family's base, named in its heading with the ids it is raised with
            heading = section[section.index(f"(`{name}`, `{error.code}`") :].split("\n\n")[0]
            assert raised[name] <= set(re.findall(r"`([a-z_]+)`", heading)), name


def test_an_error_that_refuses_a_value_always_carries_it() -> None:
    """``InvalidAmount``, ``InvalidDate`` and ``InvalidId`` carry the value
    they refuse as ``value`` (``InvalidId`` also ``what`` it is) wherever the
    package raises them, so an app can show a person which of their values
    was wrong without reading the message. The errors table's "each set only
    where it applies" is not for these: a value always applies."""
    needed = {"InvalidAmount": {"value"}, "InvalidDate": {"value"}, "InvalidId": {"value", "what"}}
    raises, lacking = 0, []
    for path in sorted((ROOT / "timebank").rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text())):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in needed:
                raises += 1
                passed = {k.arg for k in call.keywords}
                if not needed[name] <= passed:
                    where = f"{path.relative_to(ROOT)}:{call.lineno}"
                    lacking.append(f"{where}: {name} without {needed[name] - passed}")
    assert lacking == []
    assert raises > 20, raises


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_examples_run(example: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, example],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_api_doctest_in_the_module_docstring() -> None:
    import doctest

    import timebank.api

    failures, tried = doctest.testmod(timebank.api)
    assert tried > 0
    assert failures == 0


def test_the_cli_reference_is_generated_from_the_current_help() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import cli_reference
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text() == cli_reference.render()


def test_the_benchmark_runs_and_prints_every_figure(tmp_path: Path) -> None:
    """A smoke run on small stores: the figures are checked to exist, never timed."""
    result = subprocess.run(
        [sys.executable, ROOT / "bench" / "ledger.py", "--quick"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for figure in ("record_p50_ms", "record_p99_ms", "commit_floor_ms", "balance_p50_us",
                   "open_s", "cold_load_ms"):  # fmt: skip
        assert re.search(rf"{figure}:\s+\d+\.\d+", result.stdout), figure


@pytest.mark.slow
def test_the_storage_benchmark_runs_and_prints_every_figure(tmp_path: Path) -> None:
    """A smoke run on SQLite (PostgreSQL too when the suite has a server):
    every figure is printed, with its ratio to one writer; nothing is timed."""
    result = subprocess.run(
        [sys.executable, ROOT / "bench" / "storage.py", "--quick"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    kinds = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
    for kind in kinds:
        assert re.search(rf"{kind}: open and close the store \d+\.\d\d ms", result.stdout)
        assert re.search(rf"{kind}: single-entry latency p50 \d+\.\d+ ms", result.stdout)
        if kind == "postgres":
            checked = r"checked as it is taken \d+\.\d\d µs; an empty statement's round trip"
            assert re.search(rf"postgres: a pooled connection {checked} \d+\.\d µs", result.stdout)
        for label in ("different banks", "one bank"):
            for writers in (1, 2):  # (and 4 without --quick)
                pattern = rf"{kind}: {writers} writer\(s\), {label}: +\d+ entries/s, x\d\.\d\d"
                assert re.search(pattern, result.stdout), (kind, label, writers)


#: Each --quick benchmark and what its output must hold (every figure line,
#: and a count where one is known).
QUICK_BENCHMARKS = {
    "reports.py": ("catch up from empty", "rebuild (drop, then catch up)",
                   "report, whole history", "statement of m0", "statement of the pot, last",
                   "subject access of m0", "open the store", "then the first balance",
                   "entries of one month, listed", "flagged entries, whole history",
                   "entries, a page of 100 at row", "entries, the same page by after",
                   "HTML report, whole history",
                   "ratio",
                   "equal to the report's", "report from the rows alone (narrow read model)",
                   "SQLite floor, entry + party rows", "catch-up / floor",
                   "times this machine's floor", "SQLite floor, fresh file, no journal",
                   "without a journal, the target is", "tables equal to the read model's",
                   "catch up, two-party entries in SQL", "in SQL / projector",
                   "catch up after 200 entries, median of 2",
                   "catch up after 200 entries, slowest of 2",
                   "catch up after 200 reversals, median of 2",
                   "catch up after 200 reversals, slowest of 2"),
    "import.py": ("recorded 2,000", "import, SQLite", "peak memory",
                  "the same file again (every row present)", "plain executemany",
                  "ratio import", "store write ceiling", "ratio ceiling / executemany",
                  "import / ceiling", "of the ratio target",
                  "ceiling, postings sorted at the end", "with the postings sorted",
                  "would record 2,000", "dry run (rows parsed, checked, applied)",
                  "bound: dry run, then sorted ceiling", "import / dry run",
                  "parse only (rows parsed and sorted)", "bound: parse only, then sorted ceiling"),
    "audit.py": ("audit, without the read model", "audit, whole audit", "ratio"),
    "balances.py": ("recorded 2,000", "read model caught up", "201 rows read; 201 agree; 0 differ",
                    "check, final balances", "per row", "check, halfway balances given as zero"),
    "banks.py": ("20 mini banks", "record_exchange (one bank)", "banks", "memberships",
                 "set_profile", "subject_access", "check_invariants", "figures, rolled up",
                 "report, rolled up"),
}  # fmt: skip


#: What reports.py adds with --postgres.
ON_POSTGRES = (
    "postgres: catch up from empty", "postgres: report, whole history",
    "postgres: report, one month", "postgres: report by area, one month",
    "postgres: member activity, one month", "postgres: statement of m0",
    "postgres: catch up after 200 entries, median of 2",
    "postgres: catch up after 200 reversals, slowest of 2",
    "postgres: entries, a page of 100 at row",
    "postgres: entries, the same page by after",
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(QUICK_BENCHMARKS))
def test_each_benchmark_runs_and_prints_every_figure(script: str, tmp_path: Path) -> None:
    from .conftest import new_postgres_schema

    on_postgres = script == "reports.py" and POSTGRES_URL is not None
    extra = ["--postgres", new_postgres_schema()] if on_postgres else []
    out = subprocess.run(
        [sys.executable, ROOT / "bench" / script, "--quick", *extra],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    for figure in QUICK_BENCHMARKS[script] + (ON_POSTGRES if on_postgres else ()):
        assert figure in out, figure
    if script == "audit.py":
        assert out.count("clean") == 2  # both audits of the generated store


def _documented_command_lines() -> list[tuple[str, list[str]]]:
    """Every ``timebank`` command line in a shell block of the README and the
    docs (not the generated CLI reference), continuations joined, comments
    dropped: (where, arguments after ``timebank``)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if page.name == "cli.md":
            continue
        for block in re.findall(r"```sh\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0] == "timebank" and "|" not in words:  # not a synopsis
                    found.append((f"{page.name}: {line.strip()}", words[1:]))
    return found


def test_every_documented_command_line_is_one_the_cli_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parsed by the real CLI (arguments, options, choices), with each
    command's body replaced by a no-op: a page's example that the CLI
    refuses, such as an extra argument, fails here."""
    import click
    from click.testing import CliRunner

    ran: list[str] = []

    def leaves(group: click.Group) -> list[click.Command]:
        commands = list(group.commands.values())
        return [c for c in commands if not isinstance(c, click.Group)] + [
            leaf for c in commands if isinstance(c, click.Group) for leaf in leaves(c)
        ]

    for command in leaves(cli):
        monkeypatch.setattr(command, "callback", lambda name=command.name, **_: ran.append(name))
    monkeypatch.chdir(tmp_path)
    lines = _documented_command_lines()
    assert len(lines) > 20
    for where, args in lines:
        for arg in args:  # files the examples import must exist to parse
            if arg.endswith((".csv", ".json")):
                (tmp_path / arg).touch()
        before = len(ran)
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, (where, result.output)
        assert len(ran) == before + 1, where


def test_the_nightly_job_of_the_operations_page_runs_as_written(tmp_path: Path) -> None:
    """docs/operations.md's nightly job, run by ``sh`` on the demo's store
    with the environment the page names: a checked backup, each bank's
    pending entries expired (the demo has a mini bank), the read model
    caught up; and a missing store stops it with exit 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    command = bin_dir / "timebank"
    command.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "from timebank.cli import main; main()" "$@"\n'
    )
    command.chmod(0o755)
    job = re.findall(r"```sh\n(.*?)```", (ROOT / "docs" / "operations.md").read_text(), re.S)[0]
    backups = tmp_path / "backups"
    backups.mkdir()
    script = tmp_path / "nightly.sh"
    script.write_text(job.replace("/srv/backups", str(backups)))
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "TIMEBANK_DB": f"sqlite:///{tmp_path / 'timebank.db'}",
        "TIMEBANK_ACTOR": "coord-demo",
    }

    def run_job() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True
        )

    subprocess.run([command, "demo"], cwd=tmp_path, env=env, check=True, capture_output=True)
    done = run_job()
    assert done.returncode == 0, done.stderr
    (backup,) = backups.iterdir()
    assert re.fullmatch(r"timebank-\d{4}-\d{2}-\d{2}\.db", backup.name)
    assert done.stdout.count("expired 0 pending entries") == 2  # riverside and its mini bank
    assert re.search(r"applied 0 events; at event \d+\n\Z", done.stdout), done.stdout
    env["TIMEBANK_DB"] = f"sqlite:///{tmp_path / 'missing.db'}"
    missing = run_job()
    assert missing.returncode == 1
    assert "store_not_found" in missing.stderr


def test_the_readme_taste_runs(tmp_path: Path) -> None:
    """The README's Python example, then its two commands on the file it
    made, for real."""
    from click.testing import CliRunner

    readme = (ROOT / "README.md").read_text()
    taste = readme[readme.index("## A taste") :]
    code = re.search(r"```python\n(.*?)```", taste, flags=re.S)
    assert code is not None
    result = subprocess.run(
        [sys.executable, "-c", code.group(1)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "90"
    commands = [args for where, args in _documented_command_lines() if where.startswith("README")]
    assert len(commands) == 2
    for args in commands:
        here = [a.replace("sqlite:///", f"sqlite:///{tmp_path}/") for a in args]
        out = CliRunner().invoke(cli, here)
        assert out.exit_code == 0, (here, out.output)
        assert "m-1" in out.output or "app-42" in out.output


def _python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "docs" / page).read_text(), flags=re.S)


def test_every_python_block_in_the_docs_compiles() -> None:
    blocks = [
        (page.name, block)
        for page in sorted((ROOT / "docs").glob("*.md"))
        for block in _python_blocks(page.name)
    ]
    assert len(blocks) > 5
    for name, block in blocks:
        compile(block, name, "exec")  # a SyntaxError names the page


def _documented_callable(path: str, page: str) -> Any:
    """What a name written in the docs as ``path(...)`` is: ``tb.X`` (and, on
    the API page, a bare ``X``) a method of an open store, ``timebank.X`` or
    ``testing.X`` a name of the package; ``None`` for anything else."""
    import timebank
    from timebank import testing
    from timebank.api import Timebank

    head, _, name = path.rpartition(".")
    if head in ("tb", "") and (head or page == "api.md"):
        return getattr(Timebank, name, None)
    owners = {"timebank": timebank, "testing": testing, "timebank.testing": testing}
    if head == "timebank.importing":
        from timebank import importing

        owners[head] = importing
    return getattr(owners[head], name, None) if head in owners else None


def _shape(params: str) -> list[tuple[str, str, Any]]:
    """Each parameter of a written signature: name, kind, default."""
    function = ast.parse(f"def f({params}): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    a = function.args
    positional = a.posonlyargs + a.args
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(a.defaults))
    shape = []
    for p, d in zip(positional, defaults + list(a.defaults), strict=True):
        shape.append(
            (p.arg, "positional", inspect.Parameter.empty if d is None else ast.literal_eval(d))
        )
    if a.vararg:
        shape.append((a.vararg.arg, "*", inspect.Parameter.empty))
    for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        shape.append(
            (p.arg, "keyword", inspect.Parameter.empty if d is None else ast.literal_eval(d))
        )
    if a.kwarg:
        shape.append((a.kwarg.arg, "**", inspect.Parameter.empty))
    return shape


def _real_shape(function: Any) -> list[tuple[str, str, Any]]:
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "positional",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
        inspect.Parameter.VAR_POSITIONAL: "*",
        inspect.Parameter.KEYWORD_ONLY: "keyword",
        inspect.Parameter.VAR_KEYWORD: "**",
    }
    parameters = inspect.signature(function).parameters.values()
    return [(p.name, kinds[p.kind], p.default) for p in parameters if p.name != "self"]


def _not_taken(page: str, path: str, function: Any, keywords: list[str]) -> list[str]:
    real = _real_shape(function)
    if any(kind == "**" for _, kind, _ in real):
        return []
    names = {name for name, _, _ in real}
    return [f"{page}: {path}(... {k}=) is not a parameter" for k in keywords if k not in names]


def test_the_signatures_the_docs_write_out_are_the_functions_own() -> None:
    """The API page is an embedder's reference: every signature it writes
    (``record_exchange(bank, provider, ...)``), and every one on another page
    that marks its keyword-only parameters with ``*``, is the method's own:
    names, order, keyword-only marker and defaults. One cut short with
    ``...`` begins as the method does. A keyword written in any call the docs
    show (``tb.report(..., by_area=True)``) is one the method takes."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    signatures = keywords = 0
    wrong = []
    for page in pages:
        for m in re.finditer(r"`((?:[a-z_]+\.)*[a-z_]+)\(([^`]*)\)", page.read_text()):
            path, params = m.group(1), " ".join(m.group(2).split())
            function = _documented_callable(path, page.name)
            if function is None or not callable(function):
                continue
            real = _real_shape(function)
            short = params.endswith("...")
            try:
                written = _shape(params.removesuffix("...").rstrip(", ") if short else params)
            except (SyntaxError, ValueError):
                written = None  # a call whose arguments are not a signature
            is_signature = (
                written is not None and params and (page.name == "api.md" or "*" in params)
            )
            if is_signature:
                signatures += 1
                if (real[: len(written)] if short else real) != written:
                    wrong.append(f"{page.name}: {path}({params}) is not {path}{real}")
                continue
            written_keywords = re.findall(r"(?<![=!<>])\b([a-z_]+)=(?!=)", params)
            keywords += len(written_keywords)
            wrong += _not_taken(page.name, path, function, written_keywords)
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    path = f"{ast.unparse(node.func.value)}.{node.func.attr}"
                    function = _documented_callable(path, page.name)
                    if function is None or not callable(function):
                        continue
                    written_keywords = [k.arg for k in node.keywords if k.arg is not None]
                    keywords += len(written_keywords)
                    wrong += _not_taken(page.name, path, function, written_keywords)
    assert wrong == []
    assert signatures > 60, signatures
    assert keywords > 10, keywords


def test_every_link_between_the_pages_reaches_its_file_and_heading() -> None:
    """A relative link in the README, the changelog or a docs page names a
    file that exists and, after ``#``, a heading of it (as GitHub makes a
    heading's anchor): three links to the erasure section once led nowhere."""
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    links, broken = 0, []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            links += 1
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            if not linked.exists():
                broken.append(f"{page.name}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                broken.append(f"{page.name}: {target}: no such heading")
    assert links > 50
    assert broken == []


def _anchors(page: Path) -> set[str]:
    """The anchors of a page's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated one numbered."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    found: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found[slug] = found.get(slug, 0) + 1
    return {s if n == 0 else f"{s}-{n}" for s, count in found.items() for n in range(count)}


def test_the_api_pages_read_a_long_statement_and_list_of_entries_whole() -> None:
    """docs/api.md's two loops, run as written on 1,201 entries recorded
    out of date order (three pages of 500): the statement's, by offset,
    and the list of entries', by after, each give the whole."""
    import timebank

    (statement_loop,) = [b for b in _python_blocks("api.md") if "offset=" in b]
    (entries_loop,) = [b for b in _python_blocks("api.md") if "after=" in b]
    with timebank.open("memory://") as tb:
        tb.create_bank("riverside", name="Riverside", actor="coord-1", opened_on="2026-01-01")
        for member in ("m-001", "m-002"):
            tb.join("riverside", member, kind="individual", actor="coord-1", joined_on="2026-01-01")
        for n in range(1201):
            giver, taker = ("m-001", "m-002") if n % 2 else ("m-002", "m-001")
            tb.record_exchange("riverside", giver, taker, "0:15", actor="coord-1",
                               occurred_on=f"2026-02-{1 + n % 28:02d}")  # fmt: skip
        namespace = {"tb": tb}
        exec(statement_loop, namespace)
        assert len(namespace["lines"]) == 1201
        assert namespace["lines"] == tb.statement("riverside", "m-001", limit=1201)
        exec(entries_loop, namespace)
        rows = namespace["rows"]
        assert rows[499].occurred_on == rows[500].occurred_on  # a page ends within a day
        assert rows == tb.entries("riverside", limit=1201)


def test_the_public_api_has_docstrings() -> None:
    """Every public method of Timebank, and every name timebank and
    timebank.testing export, says what it does."""
    import timebank
    from timebank import testing

    undocumented = [  # its own methods and its mixins' (reports, imports)
        f"Timebank.{name}"
        for name in dir(timebank.Timebank)
        if not name.startswith("_") and not inspect.getdoc(getattr(timebank.Timebank, name))
    ]
    commented = commented_assignments()
    for module in (timebank, testing):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) or inspect.isroutine(value):
                documented = bool(inspect.getdoc(value))
            else:  # a constant or a type alias: a ``#:`` comment above its assignment
                documented = name in commented
            if not documented:
                undocumented.append(f"{module.__name__}.{name}")
    assert undocumented == []


def commented_assignments() -> set[str]:
    """The names assigned at the top of the package's modules right under a
    ``#:`` comment, which Sphinx and readers take as their docstring."""
    assignment = re.compile(r"^([A-Za-z_][\w, ]*?)\s*(?::[^=]*)?=")
    names: set[str] = set()
    for path in (ROOT / "timebank").rglob("*.py"):
        lines = path.read_text().splitlines()
        for above, line in itertools.pairwise(["", *lines]):
            match = assignment.match(line)
            if match and above.startswith("#:"):
                names.update(part.strip() for part in match[1].split(","))
    return names


def _script(name: str) -> Any:
    """scripts/``name`` loaded as a module (most have no .py suffix), so that
    a test reads what the script itself reads and names; the path it puts
    on sys.path to import its neighbours is taken off again."""
    from importlib.machinery import SourceFileLoader
    from importlib.util import module_from_spec, spec_from_loader

    loader = SourceFileLoader(f"scripts_{name.removesuffix('.py')}", str(ROOT / "scripts" / name))
    spec = spec_from_loader(loader.name, loader)
    assert spec is not None
    module = module_from_spec(spec)
    saved = list(sys.path)
    try:
        loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


def test_every_lower_bound_is_the_version_scripts_lowest_tests() -> None:
    """Each package pyproject.toml gives a floor (its dependencies, and the
    extras an app installs) is pinned at that floor in
    scripts/lowest-versions.txt, and nothing else is: a floor raised or added
    without the pin would go untested. The test extra's floors are the same."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    floors: dict[str, dict[str, Version]] = {"app": {}, "test": {}}
    for group, requirements in (
        ("app", project["dependencies"] + extras["postgres"] + extras["charts"]
         + extras["testing"]),
        ("test", extras["test"]),
    ):  # fmt: skip
        for text in requirements:
            requirement = Requirement(text)
            for spec in requirement.specifier:
                if spec.operator == ">=":
                    floors[group][requirement.name.lower()] = Version(spec.version)
    pinned = {name: Version(version) for name, version in _script("lowest").pins().items()}
    assert pinned.pop("psycopg-binary") == pinned["psycopg"]  # psycopg[binary] pins it to psycopg
    assert pinned == floors["app"]
    for name, floor in floors["test"].items():
        assert floors["app"].get(name, floor) == floor, name


def test_the_version_is_written_once_and_the_changelog_is_headed_with_it() -> None:
    """``timebank.__version__`` is the one place the version is written:
    pyproject.toml reads it (so ``timebank --version`` and the package's
    metadata say the same), and CHANGELOG.md's newest section names it, so
    a release cannot bump one and not the others."""
    import tomllib
    from importlib.metadata import version

    import timebank

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "timebank.__version__"}
    assert version("timebank") == timebank.__version__, "installed before a version change?"
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\S+)", changelog, re.MULTILINE)
    assert newest is not None
    assert newest.group(1) == timebank.__version__


def test_scripts_lowest_builds_the_oldest_sqlite_timebank_takes() -> None:
    """The SQLite that scripts/lowest builds and runs every test on is the
    floor that opening a store checks (SQLITE_FLOOR), and the one the
    storage page names."""
    from timebank.storage._sqlite_failures import SQLITE_FLOOR

    floor = ".".join(str(n) for n in SQLITE_FLOOR)
    lowest = _script("lowest")
    assert floor == lowest.SQLITE
    assert lowest.SQLITE_TARBALL.endswith(
        f"sqlite-autoconf-{SQLITE_FLOOR[0]}{SQLITE_FLOOR[1]:02}{SQLITE_FLOOR[2]:02}00.tar.gz"
    )
    assert f"SQLite {floor} or newer" in (ROOT / "docs" / "storage.md").read_text(encoding="utf-8")


def test_the_runs_beside_ci_work_in_a_copy_that_shares_only_the_fetched_tools(
    tmp_path: Path,
) -> None:
    """So that .ci/run can run scripts/lowest beside the README's test
    command (and scripts/newest may run beside them): the copy holds the
    tree's files byte for byte, none of what one run writes into the tree
    (a venv, *.egg-info, the tools' caches, stores), and reaches the tree's
    .cache/ (the SQLite build, axe-core) through a link."""
    source = tmp_path / "source"
    for name in ("pyproject.toml", "timebank/api.py", "tests/test_x.py", "docs/a.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(f"the file {name}\n")
    written = (".venv/bin/python", "timebank.egg-info/PKG-INFO", ".mypy_cache/3.11/x.json",
               ".ruff_cache/x", ".pytest_cache/v/x", ".hypothesis/examples/x", ".git/HEAD",
               "timebank/__pycache__/api.cpython-311.pyc", "timebank.db", "timebank.db-wal",
               "timebank.db-shm")  # fmt: skip
    for name in written:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("written by a run\n")
    (source / ".cache" / "sqlite-3.26.0").mkdir(parents=True)

    tree = _script("_tree.py").copy_tree(tmp_path / "copy", root=source)

    copied = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert copied == ["docs/a.md", "pyproject.toml", "tests/test_x.py", "timebank/api.py"]
    assert (tree / "timebank" / "api.py").read_text() == "the file timebank/api.py\n"
    assert (tree / ".cache").is_symlink()
    assert (tree / ".cache" / "sqlite-3.26.0").is_dir()
    assert (tree / ".cache").resolve() == (source / ".cache").resolve()


def test_the_copy_leaves_out_everything_git_ignores(tmp_path: Path) -> None:
    """A file for each line of .gitignore is left out of the copy (but
    ``.cache/``, which it links): a wheel's ``build/`` was copied, and the
    newest ruff, in scripts/newest's copy, linted its stale package."""
    source = tmp_path / "source"
    (source / "timebank").mkdir(parents=True)
    (source / "timebank" / "api.py").write_text("kept\n")
    patterns = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    ignored = []
    for pattern in filter(None, patterns):
        if pattern == "/.cache/":
            continue
        # a file the pattern matches: *.db as x.db, a directory's as DIR/f
        name = pattern.lstrip("/").replace("*", "x") + ("f" if pattern.endswith("/") else "")
        ignored.append(name)
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text("ignored\n")
    assert {"build/f", "dist/f", "bench/results/f", "x.db", ".coverage"} <= set(ignored)

    tree = _script("_tree.py").copy_tree(tmp_path / "copy", root=source)

    copied = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert copied == ["timebank/api.py"]


def test_scripts_newest_picks_the_newest_python_that_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It passes over a Python that does not run (a pyenv shim of a version
    not selected) and those no newer than its own, and says when none is
    newer."""
    newest = _script("newest")
    here = sys.version_info
    fakes = {
        f"python3.{here.minor + 3}": "exit 127",  # a shim that does not run
        f"python3.{here.minor + 2}": f"echo 3 {here.minor + 2} 0",
        f"python3.{here.minor + 1}": f"echo 3 {here.minor + 1} 5",
        f"python3.{here.minor}": f"echo 3 {here.minor} 99",
    }
    for name, body in fakes.items():
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))  # and no pyenv
    assert newest.newest_python() == (
        str(tmp_path / f"python3.{here.minor + 2}"),
        (3, here.minor + 2, 0),
    )
    (tmp_path / f"python3.{here.minor + 2}").unlink()
    (tmp_path / f"python3.{here.minor + 1}").unlink()
    assert newest.newest_python() is None
    not_a_program = tmp_path / "notes.txt"
    not_a_program.write_text("3.14\n")
    for given in (tmp_path / "no-such-python", not_a_program):  # --python PATH, mistyped
        assert newest.version_of(str(given)) is None  # 'does not run', not a traceback
