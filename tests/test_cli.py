"""End-to-end tests of the ``timebank`` command; outcomes are checked through the API."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import timebank
import timebank.storage.sqlite
from timebank.cli import cli
from timebank.domain.values import format_hours
from timebank.storage import ENV_VAR

from .conftest import a_reader_of, fixed_clock, read_terminal


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(db: str, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", *args])
    if ok:
        assert result.exit_code == 0, result.output
        return result.output
    assert result.exit_code == 1, result.output
    return result.output


@pytest.fixture
def bank(db: str) -> str:
    run(db, "create-bank", "riverside", "--name", "Riverside", "--opened-on", "2026-01-01",
        "--individual-lowest", "-10")  # fmt: skip
    run(db, "join", "riverside", "ann", "--kind", "individual", "--joined-on", "2026-01-01",
        "--display-name", "Ann")  # fmt: skip
    run(db, "join", "riverside", "bob", "--kind", "individual", "--joined-on", "2026-01-01")
    run(db, "join", "riverside", "org", "--kind", "organisation", "--joined-on", "2026-01-01")
    return "riverside"


#: The commands that print one entry (or pending entry): a line, or its JSON.
ONE_ENTRY = ("record-exchange", "record-pot-exchange", "donate", "gift", "record-group-exchange",
             "record-opening-balance", "reverse", "entry", "propose", "confirm", "approve")  # fmt: skip


def test_a_command_that_prints_one_entry_offers_no_csv(db: str, bank: str) -> None:
    """``--format csv`` was offered by every entry command and printed the
    table's line, not CSV: a script that asked for CSV got something else
    without a word. Now it is refused before anything is recorded; the
    commands that print rows (statement, members, balances...) keep it."""
    for name in ONE_ENTRY:
        (option,) = [o for o in cli.commands[name].params if o.name == "fmt"]
        assert list(option.type.choices) == ["table", "json"], name  # type: ignore[attr-defined]
    result = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", "record-exchange", bank,
                                      "ann", "bob", "1", "--entry-id", "x1", "--format", "csv"])  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "'csv' is not one of 'table', 'json'" in result.output
    with timebank.open(db) as tb:
        assert tb.balance(bank, "ann") == 0
    line = run(db, "record-exchange", bank, "ann", "bob", "1", "--entry-id", "x1", "--on",
               "2026-02-01")  # fmt: skip
    assert line == "x1: exchange 1:00 on 2026-02-01 in riverside (ann +1:00, bob -1:00)\n"
    # an entry past a limit of a bank that flags rather than refuses says so
    run(db, "set-policy", bank, "--limit-mode", "flag", "--individual-lowest", "-1")
    line = run(db, "record-exchange", bank, "ann", "bob", "0:30", "--entry-id", "x2", "--on",
               "2026-02-02")  # fmt: skip
    assert line == (
        "x2: exchange 0:30 on 2026-02-02 in riverside (ann +0:30, bob -0:30) flags: limit:bob:-60\n"
    )
    assert json.loads(run(db, "entry", "x1", "--format", "json"))[0]["entry_id"] == "x1"
    rows = list(csv.DictReader(io.StringIO(run(db, "statement", "ann", "--format", "csv"))))
    assert [(r["entry_id"], r["minutes"]) for r in rows] == [("x1", "60"), ("x2", "30")]


def test_every_entry_command_records_through_the_api(db: str, bank: str) -> None:
    run(
        db,
        "record-exchange",
        bank,
        "ann",
        "bob",
        "1:30",
        "--on",
        "2026-02-01",
        "--category",
        "diy",
        "--entry-id",
        "x1",
    )
    run(db, "donate", bank, "org", "2", "--entry-id", "d1")
    run(db, "record-pot-exchange", bank, "bob", "ann", "1", "--entry-id", "p1")
    run(db, "gift", bank, "ann", "bob", "0.5", "--entry-id", "g1")
    run(db, "record-opening-balance", "--entry-id", "o1", bank, "org", "--", "-3:00")
    error = run(db, "reverse", "x1", "--on-behalf-of", "org", ok=False)
    assert error == "error: invalid_input: on_behalf_of must name a party of entry 'x1': 'org'\n"
    run(db, "reverse", "x1", "--reversal-id", "r1", "--on-behalf-of", "bob")
    assert run(db, "entry", "x1").splitlines() == [
        "x1: exchange 1:30 on 2026-02-01 in riverside (ann +1:30, bob -1:30)",
        "reversed by r1",
    ]
    assert json.loads(run(db, "entry", "x1", "--format", "json"))[0]["reversed_by"] == "r1"
    with timebank.open(db) as tb:
        assert {b.account: b.balance_minutes for b in tb.balances(bank)} == {
            "@pot": 60, "@opening": 180, "ann": -30, "bob": 90, "org": -300,
        }  # fmt: skip
        assert (tb.entry("r1").actor, tb.entry("r1").on_behalf_of) == ("coord-1", "bob")
        assert tb.entry("x1").reversed_by == "r1"
        assert tb.entry("x1").actor == "coord-1"
        assert tb.entry("x1").category == "diy"
        assert tb.policy(bank).individual.lowest_minutes == -600


def test_balances_as_json_csv_and_table(db: str, bank: str) -> None:
    run(db, "record-exchange", bank, "ann", "bob", "2")
    rows = json.loads(run(db, "balances", "--format", "json"))
    assert {(r["account"], r["kind"], r["balance_minutes"]) for r in rows} == {
        ("@pot", "pot", 0), ("@opening", "system", 0), ("ann", "individual", 120),
        ("bob", "individual", -120), ("org", "organisation", 0),
    }  # fmt: skip
    csv_lines = run(db, "balances", "--bank", bank, "--format", "csv").splitlines()
    assert csv_lines[0] == "bank,account,kind,balance_minutes,balance_hours"
    assert "riverside,ann,individual,120,2:00" in csv_lines
    table = run(db, "balances")
    assert "ann" in table
    assert "2:00" in table


def test_statement_and_entry_and_figures(db: str, bank: str) -> None:
    run(db, "record-exchange", bank, "ann", "bob", "2", "--entry-id", "a")
    run(db, "record-exchange", bank, "bob", "ann", "1", "--entry-id", "b")
    lines = json.loads(run(db, "statement", "ann", "--format", "json"))
    assert {x["bank"] for x in lines} == {bank}
    assert [(x["entry_id"], x["balance_minutes"]) for x in lines] == [("a", 120), ("b", 60)]
    assert json.loads(run(db, "entry", "a", "--format", "json"))[0]["legs"] == [
        ["ann", 120],
        ["bob", -120],
    ]
    figures = json.loads(run(db, "figures", bank, "--format", "json"))[0]
    assert (figures["exchanges"], figures["exchanged_minutes"]) == (2, 180)
    # the table names in hours what it shows in hours; CSV keeps the minutes
    table = run(db, "figures", bank)
    assert re.search(r"^hours_exchanged +3:00$", table, re.MULTILINE), table
    assert re.search(r"^pot_balance_hours +0:00$", table, re.MULTILINE), table
    assert "_minutes" not in table
    rows = dict(csv.reader(io.StringIO(run(db, "figures", bank, "--format", "csv"))))
    assert (rows["exchanged_minutes"], rows["pot_balance_minutes"]) == ("180", "0")
    assert run(db, "balance", bank, "ann").strip() == "1:00"


def test_every_policy_option_sets_its_own_field(db: str, bank: str) -> None:
    """Each option of set-policy lands in the field it names, each limit at
    its own end; the options not given keep their values; a mini bank
    starts from its parent's policy with its own options applied."""
    run(db, "set-policy", bank, "--entry-max-hours", "5", "--opening-max-hours", "100",
        "--individual-lowest", "-2", "--individual-highest", "20", "--organisation-lowest",
        "-3", "--organisation-highest", "30", "--pot-highest", "40", "--limit-mode", "flag",
        "--timezone", "Europe/Dublin", "--on-leave", "donate", "--clearing-lowest", "-50",
        "--clearing-highest", "60", "--approval-threshold-hours", "4:30",
        "--pending-expiry-days", "7", "--permission", "reverse=admin", "--permission",
        "record=member")  # fmt: skip
    policy = json.loads(run(db, "policy", bank))[0]
    default = timebank.Policy().to_dict()
    assert policy == {
        **default,
        "entry_minutes_max": 300,
        "opening_balance_minutes_max": 6000,
        "individual": {"lowest_minutes": -120, "highest_minutes": 1200},
        "organisation": {"lowest_minutes": -180, "highest_minutes": 1800},
        "pot": {"lowest_minutes": 0, "highest_minutes": 2400},
        "limit_mode": "flag",
        "timezone": "Europe/Dublin",
        "on_leave": "donate",
        "clearing": {"lowest_minutes": -3000, "highest_minutes": 3600},
        "permissions": {**default["permissions"], "reverse": "admin", "record": "member"},
        "pending_expiry_days": 7,
        "approval_threshold_minutes": 270,
    }
    # one option changed: every other field as it was, permissions included
    run(db, "set-policy", bank, "--permission", "approve=admin")
    again = json.loads(run(db, "policy", bank))[0]
    assert again == {**policy, "permissions": {**policy["permissions"], "approve": "admin"}}
    # a mini bank: its parent's policy, with the options given to it
    run(db, "create-bank", f"{bank}/hub", "--name", "Hub", "--pot-highest", "8")
    hub = json.loads(run(db, "policy", f"{bank}/hub"))[0]
    assert hub == {**again, "pot": {"lowest_minutes": 0, "highest_minutes": 480}}
    # a permission without its role is refused, and nothing changes
    output = run(db, "set-policy", bank, "--permission", "reverse", ok=False)
    assert output == "error: invalid_policy: --permission takes ACTION=ROLE: 'reverse'\n"
    assert json.loads(run(db, "policy", bank))[0] == again


def test_members_banks_policy_and_profiles(db: str, bank: str) -> None:
    assert [m["member"] for m in json.loads(run(db, "members", bank, "--format", "json"))] == [
        "ann",
        "bob",
        "org",
    ]
    assert json.loads(run(db, "banks", "--format", "json"))[0]["members"] == 3
    assert json.loads(run(db, "bank", bank))[0]["name"] == "Riverside"
    assert json.loads(run(db, "member", bank, "org"))[0]["kind"] == "organisation"
    run(db, "set-policy", bank, "--entry-max-hours", "3", "--limit-mode", "flag")
    policy = json.loads(run(db, "policy", bank))[0]
    assert (policy["entry_minutes_max"], policy["limit_mode"]) == (180, "flag")
    assert policy["individual"]["lowest_minutes"] == -600  # untouched options keep their value
    assert json.loads(run(db, "profile", "ann"))[0]["display_name"] == "Ann"
    # a member who joined with no details has no profile, not an empty one
    assert run(db, "profile", "bob", ok=False) == "error: profile_not_found: no profile for 'bob'\n"
    run(db, "set-profile", "bob", "--display-name", "Bob", "--area", "north-ward")
    assert json.loads(run(db, "profile", "bob"))[0]["area"] == "north-ward"
    # the fields given change, an empty one is cleared, the others stay
    run(db, "set-profile", "bob", "--email", "bob@example.org", "--area", "")
    assert json.loads(run(db, "profile", "bob"))[0] == {
        "display_name": "Bob", "email": "bob@example.org", "phone": None, "area": None,
    }  # fmt: skip
    nothing = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", "set-profile", "bob"])
    assert nothing.exit_code == 2
    assert "give a field to change: --display-name, --email, --phone or --area" in nothing.output
    assert json.loads(run(db, "profile", "bob"))[0]["email"] == "bob@example.org"


@pytest.mark.parametrize(
    ("args", "code"),
    [(["record-exchange", "riverside", "ann", "ann", "1"], "self_exchange"),
     (["record-exchange", "riverside", "ann", "bob", "1.333"], "invalid_amount"),
     (["record-exchange", "riverside", "ann", "zed", "1"], "member_not_found"),
     (["record-exchange", "riverside", "ann", "bob", "1", "--on", "2099-01-01"], "occurred_in_future"),
     (["record-exchange", "riverside", "ann", "bob", "11"], "balance_limit_exceeded"),
     (["record-pot-exchange", "riverside", "ann", "bob", "1"], "pot_overdrawn"),
     (["donate", "nowhere", "ann", "1"], "bank_not_found"),
     (["reverse", "missing"], "entry_not_found"),
     (["join", "riverside", "ann", "--kind", "individual"], "member_already_joined"),
     (["create-bank", "Bad Name", "--name", "x"], "invalid_id"),
     (["create-bank", "b2", "--name", "x", "--individual-lowest", "5"], "invalid_policy"),
     (["profile", "nobody"], "profile_not_found")],
)  # fmt: skip
def test_errors_are_one_line_exit_1_and_write_nothing(
    db: str, bank: str, args: list[str], code: str
) -> None:
    with timebank.open(db) as tb:
        before = (
            tb.balances(),
            [b.bank for b in tb.banks()],
            tb._app.recorder.max_notification_id(),
        )
    output = run(db, *args, ok=False)
    assert output.startswith(f"error: {code}: ")
    assert output.count("\n") == 1
    with timebank.open(db) as tb:
        assert (
            tb.balances(),
            [b.bank for b in tb.banks()],
            tb._app.recorder.max_notification_id(),
        ) == before


def test_a_query_on_a_missing_store_does_not_create_it(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'absent.db'}"
    output = run(db, "balances", ok=False)
    assert output.startswith(f"error: store_not_found: no timebank store at {tmp_path}")
    # how a store is made; where it looked is said only when that was the default
    assert "`timebank create-bank`, or an import with --create-banks, creates a store" in output
    assert "working directory" not in output
    assert not (tmp_path / "absent.db").exists()
    # A command that makes the store, refused a directory that is not
    # there, names the directory, and does not say to make a store.
    output = run(f"sqlite:///{tmp_path / 'nowhere' / 'new.db'}", "create-bank", "b", "--name",
                 "B", ok=False)  # fmt: skip
    assert output == (
        f"error: store_not_found: directory {tmp_path / 'nowhere'} does not exist"
        f" (sqlite:///{tmp_path / 'nowhere' / 'new.db'})\n"
    )


def test_a_missing_default_store_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A coordinator who runs a command in another directory than the
    store's, with no --db, is told where the default store was looked for."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    result = CliRunner().invoke(cli, ["balances"])
    assert result.exit_code == 1
    assert (
        f"(no --db given and {ENV_VAR} not set, so it looked in the working directory {tmp_path};"
        in " ".join(result.output.split())
    )
    assert not (tmp_path / "timebank.db").exists()
    monkeypatch.setenv(ENV_VAR, f"sqlite:///{tmp_path / 'set.db'}")
    result = CliRunner().invoke(cli, ["balances"])
    assert result.exit_code == 1
    assert "no timebank store at" in result.output
    assert "working directory" not in result.output


def test_a_member_named_in_a_bank_they_are_not_in_is_told_where_they_are(
    db: str, bank: str
) -> None:
    """As an import's refusal does: a mini bank's member given under its
    parent, or the parent's under the mini bank, names the banks they are
    in; an id of no member says so; other refusals of the kind say nothing
    more. Nothing is recorded."""
    hub = f"{bank}/hub"
    run(db, "create-bank", hub, "--name", "Hub", "--opened-on", "2026-01-01")
    run(db, "join", hub, "hal", "--kind", "individual", "--joined-on", "2026-01-01")
    with timebank.open(db) as tb:
        before = tb._app.recorder.max_notification_id()
    assert run(db, "record-exchange", bank, "hal", "ann", "1", ok=False) == (
        f"error: member_not_found: 'hal' is not a member of bank '{bank}' (a member of '{hub}')\n"
    )
    assert run(db, "record-exchange", hub, "hal", "ann", "1", ok=False) == (
        f"error: member_not_found: 'ann' is not a member of bank '{hub}' (a member of '{bank}')\n"
    )
    assert run(db, "member", bank, "zed", ok=False) == (
        f"error: member_not_found: 'zed' is not a member of bank '{bank}' (a member of no bank)\n"
    )
    assert run(db, "member", bank, "HAL", ok=False) == (
        f"error: member_not_found: 'HAL' is not a member of bank '{bank}' (a member of no bank;"
        f" member ids are case-sensitive: 'hal' is a member of '{hub}')\n"
    )
    assert run(db, "balance", bank, "@clearing:nowhere", ok=False) == (
        f"error: member_not_found: no account '@clearing:nowhere' in bank '{bank}'\n"
    )
    # a refusal that names no bank (a statement of every bank) says nothing more
    assert run(db, "statement", "zed", ok=False) == (
        "error: member_not_found: no member 'zed' in any bank\n"
    )
    with timebank.open(db) as tb:
        assert tb._app.recorder.max_notification_id() == before


def test_join_warns_of_a_new_member_told_from_another_only_by_case(db: str, bank: str) -> None:
    """As a members file's import does: the member joins, as ids are
    case-sensitive, and stderr names the member whose id is theirs but for
    case; a member joining a second bank under their own id is not warned
    about, nor is an id unlike any other."""
    hub = f"{bank}/hub"
    run(db, "create-bank", hub, "--name", "Hub", "--opened-on", "2026-01-01")
    joined = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", "join", hub, "ANN",
                                      "--kind", "individual", "--joined-on", "2026-02-01"])  # fmt: skip
    assert joined.exit_code == 0, joined.output
    assert joined.stdout == f"ANN joined {hub} as individual on 2026-02-01\n"
    assert joined.stderr == (f"warning: ANN: a new member, told from another only by case:"
                             f" 'ann' is a member of '{bank}'\n")  # fmt: skip
    for member in ("ann", "cat"):
        plain = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", "join", hub, member,
                                         "--kind", "individual", "--joined-on", "2026-02-01"])  # fmt: skip
        assert (plain.exit_code, plain.stderr) == (0, ""), plain.output
    with timebank.open(db) as tb:
        assert [m.member for m in tb.members(hub)] == ["ANN", "ann", "cat"]


def test_an_error_is_one_line_when_what_it_quotes_breaks_lines(
    db: str, bank: str, tmp_path: Path
) -> None:
    """A message that quotes something with a line break in it (here a
    file's name) is still one line, which a script reads with one read."""
    words = tmp_path / "two\nlines.json"
    words.write_text("{", encoding="utf-8")
    output = run(db, "report", "--bank", bank, "--format", "html", "--words", str(words),
                 ok=False)  # fmt: skip
    assert output.startswith(f"error: invalid_input: the words file {tmp_path}/two lines.json")
    assert output.count("\n") == 1


def test_a_corrupt_store_file_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "bad.db").write_bytes(b"this is not a database" * 100)
    assert run(f"sqlite:///{tmp_path / 'bad.db'}", "balances", ok=False).startswith(
        "error: storage_error:"
    )


def test_the_installed_command_runs_the_demo_in_the_default_store(tmp_path: Path) -> None:
    """The real console script, in a fresh directory, with no --db: the default
    sqlite:///timebank.db is created there; a second run shows the same bank."""
    env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DB"}
    script = Path(sys.executable).with_name("timebank")
    first = subprocess.run(
        [script, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert "hours exchanged" in first.stdout
    assert (tmp_path / "timebank.db").exists()
    page = (tmp_path / "timebank-report.html").read_text()
    assert "Riverside Time Bank" in page
    assert page.count("<svg") == 3
    assert 'id="table-by-area"' in page
    for ward in ("north-ward", "south-ward", "old-town", "(no area)"):
        assert ward in first.stdout[first.stdout.index("By area") :], ward
    second = subprocess.run(
        [script, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert "already in" in second.stdout
    with timebank.open(f"sqlite:///{tmp_path / 'timebank.db'}") as tb:
        fig = tb.figures("riverside")
        assert fig.reversals == 1
        assert fig.pot_funded_minutes > 0
        assert fig.organisations == 3
        assert sum(b.balance_minutes for b in tb.balances("riverside")) == 0
        # the first run's table of balances: each account, its name, its hours
        table = first.stdout[first.stdout.index("Balances") : first.stdout.index("Headline")]
        for b in tb.balances("riverside"):
            (line,) = [row for row in table.splitlines() if row.split()[:1] == [b.account]]
            assert line.split()[-1] == format_hours(b.balance_minutes), line
            profile = tb.profile(b.account) if not b.account.startswith("@") else None
            name = {"@pot": "(community pot)"}.get(b.account, profile and profile.display_name)
            assert f" {name} " in line if name else line.split()[1] == b.kind, line
    failed = subprocess.run([script, "--actor", "coord-demo", "record-exchange", "riverside", "m-001", "m-001", "1"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: self_exchange:")


WELSH_BANK = "Banc Amser Torfaen — Café Ynysybŵl"


@pytest.fixture
def welsh_store(tmp_path: Path) -> str:
    """A bank whose name, wards and members' names lack letters in cp1252."""
    url = f"sqlite:///{tmp_path / 'cymru.db'}"
    with timebank.open(url) as tb:
        tb.create_bank("torfaen", name=WELSH_BANK, actor="coord-1", opened_on="2026-01-01")
        for member, name, area in (("amira", "أميرة", "Ynysybŵl"), ("bryn", "Brŷn", "Pontypŵl")):
            tb.join("torfaen", member, kind="individual", actor="coord-1", joined_on="2026-01-01",
                    profile=timebank.Profile(display_name=name, area=area))  # fmt: skip
        tb.record_exchange(
            "torfaen", "amira", "bryn", "2", actor="coord-1", occurred_on="2026-02-01"
        )
    return url


def _cli_in(encoding: str, *args: str, **run: Any) -> subprocess.CompletedProcess[bytes]:
    """The installed command, its standard streams in ``encoding`` (as a
    Windows locale's cp1252 is when the output is redirected)."""
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    script = Path(sys.executable).with_name("timebank")
    return subprocess.run([script, "--actor", "coord-1", *args], env=env, check=False, **run)


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "html"])
def test_output_to_a_file_is_utf8_whatever_the_locale(welsh_store: str, fmt: str) -> None:
    """Under cp1252 the report stopped at the first ward without a cp1252
    letter (UnicodeEncodeError, the page cut off), and a letter cp1252 has
    was written in cp1252 into a page that declares UTF-8."""
    done = _cli_in("cp1252", "--db", welsh_store, "report", "--bank", "torfaen", "--from",
                   "2026-01-01", "--to", "2026-12-31", "--by-area", "--format", fmt,
                   capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode("utf-8")  # raises on any byte that is not UTF-8
    assert "Ynysybŵl" in text
    assert "Pontypŵl" in text
    if fmt == "json":
        assert "\\u" not in text  # names as written, not escaped
        assert {a["area"] for a in json.loads(text)["by_area"]} == {"Ynysybŵl", "Pontypŵl"}
    if fmt == "html":
        assert 'charset="utf-8"' in text.lower()
        assert "Café" in text  # in cp1252 it would have been b"Caf\\xe9"
        assert text.rstrip().endswith("</html>")
    profile = _cli_in("cp1252", "--db", welsh_store, "profile", "amira", capture_output=True)
    assert profile.returncode == 0, profile.stderr.decode()
    assert json.loads(profile.stdout.decode("utf-8"))[0]["display_name"] == "أميرة"


def test_a_terminal_that_lacks_a_letter_shows_its_escape(welsh_store: str) -> None:
    """On a terminal (a pseudo-terminal here) in cp1252, the names it cannot
    show are escaped, the rest as they are, and the command succeeds."""
    main, terminal = pty.openpty()
    try:
        done = _cli_in("cp1252", "--db", welsh_store, "banks", stdout=terminal, stderr=terminal)
        os.close(terminal)
        shown = read_terminal(main)
    finally:
        os.close(main)
    assert done.returncode == 0, shown
    assert "Banc Amser Torfaen — Café Ynysyb\\u0175l".encode("cp1252") in shown


def test_the_store_url_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMEBANK_DB", f"sqlite:///{tmp_path / 'env.db'}")
    result = CliRunner().invoke(cli, ["create-bank", "envbank", "--name", "Env"])
    assert result.exit_code == 0, result.output
    with timebank.open(f"sqlite:///{tmp_path / 'env.db'}", create=False) as tb:
        assert [b.bank for b in tb.banks()] == ["envbank"]


def test_membership_lifecycle_and_erasure_commands(db: str, bank: str) -> None:
    run(db, "set-policy", bank, "--on-leave", "donate")
    run(db, "record-exchange", bank, "ann", "bob", "2", "--on", "2026-03-01")
    assert "suspended" in run(db, "suspend", bank, "bob")
    assert run(db, "record-exchange", bank, "ann", "bob", "1", ok=False).startswith(
        "error: member_not_active:"
    )
    assert "active" in run(db, "reinstate", bank, "bob")
    assert "left" in run(db, "leave", bank, "ann", "--on", "2026-04-01", "--donation-id", "ann-out")
    assert "active" in run(db, "rejoin", bank, "ann", "--on", "2026-05-01")
    assert run(db, "erase", "ann").strip() == "profile of ann erased"
    assert run(db, "erase", "ann").strip() == "ann had no profile; the erasure is recorded"
    with timebank.open(db) as tb:
        assert tb.entry("ann-out").minutes == 120
        assert tb.balance(bank, "@pot") == 120
        assert tb.profile("ann") is None
        assert [m.status for m in tb.members(bank)] == ["active", "active", "active"]
    members = json.loads(run(db, "members", bank, "--format", "json"))
    assert members[0]["status"] == "active"


def test_an_erasure_held_back_by_a_reader_fails_until_run_again_without_one(
    db: str, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While another process reads the store, the write-ahead log may keep a
    copy of the profile: the command says so and exits 1, however many times
    it is run (the profile is gone after the first), and succeeds once the
    reader has gone."""
    monkeypatch.setattr(timebank.storage.sqlite, "ERASE_CHECKPOINT_S", 0.3)
    busy = (
        "but other processes were reading the store, whose files may still hold a copy of the"
        " profile; run the erasure again to finish it\n"
    )
    with a_reader_of(Path(db.removeprefix("sqlite:///"))):
        assert (
            run(db, "erase", "ann", ok=False)
            == f"error: erasure_incomplete: profile of ann erased, {busy}"
        )
        assert run(db, "erase", "ann", ok=False) == (
            f"error: erasure_incomplete: ann had no profile; the erasure is recorded, {busy}"
        )
    assert run(db, "erase", "ann") == "ann had no profile; the erasure is recorded\n"


def test_group_exchange_command(db: str, bank: str) -> None:
    run(
        db,
        "record-group-exchange",
        bank,
        "--provider",
        "org=2",
        "--receiver",
        "ann=1",
        "--receiver",
        "bob=1",
        "--entry-id",
        "g1",
    )
    with timebank.open(db) as tb:
        assert tb.entry("g1").legs == (("org", 120), ("ann", -60), ("bob", -60))
    assert run(
        db, "record-group-exchange", bank, "--provider", "org", "--receiver", "ann=1", ok=False
    ).startswith("error: invalid_group:")
    assert run(
        db, "record-group-exchange", bank, "--provider", "org=2", "--receiver", "ann=1", ok=False
    ).startswith("error: invalid_group:")
    # each member once, and a member named: refused before the store is opened
    for given, value in ((["--receiver", "ann=1", "--receiver", "ann=1"], "ann=1"),
                         (["--receiver", "=2"], "=2")):  # fmt: skip
        output = run(db, "record-group-exchange", bank, "--provider", "org=2", *given, ok=False)
        assert output == (
            f"error: invalid_group: --receiver takes MEMBER=HOURS, each member once: {value!r}\n"
        )
    with timebank.open(db) as tb:
        assert [e.entry_id for e in tb.entries(bank)] == ["g1"]


def run_as(db: str, actor: str, *args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, ["--db", db, "--actor", actor, *args])
    assert result.exit_code == (0 if ok else 1), result.output
    return result.output


def _roles(table: str) -> dict[str, str]:
    """A table of roles as printed (a heading, a rule, then a row each)."""
    return dict(line.split() for line in table.splitlines()[2:])


def test_workflow_commands_roles_mini_banks_inter_bank_and_pending(db: str, bank: str) -> None:
    assert _roles(run(db, "grant-role", bank, "tmp", "admin")) == {
        "coord-1": "admin",
        "tmp": "admin",
    }
    assert _roles(run(db, "revoke-role", bank, "tmp")) == {"coord-1": "admin"}
    assert _roles(run(db, "grant-role", bank, "co", "coordinator")) == {
        "coord-1": "admin", "co": "coordinator",
    }  # fmt: skip
    assert run(db, "role", bank, "co").strip() == "coordinator"
    assert run(db, "role", bank, "ann").strip() == "member"
    assert run(db, "role", bank, "zed") == "none\n"
    hub = f"{bank}/north-hub"
    run_as(db, "co", "create-bank", hub, "--name", "North hub", ok=False)  # admins only
    run(db, "create-bank", hub, "--name", "North hub", "--opened-on", "2026-01-01",
        "--approval-threshold-hours", "3", "--permission", "reverse=admin")  # fmt: skip
    run_as(db, "co", "join", hub, "dan", "--kind", "individual", "--joined-on", "2026-01-01")
    run_as(db, "co", "join", hub, "ann", "--kind", "individual", "--joined-on", "2026-01-01")
    out = run_as(db, "co", "record-exchange", bank, "bob", "dan", "2", "--receiver-bank", hub,
                 "--entry-id", "x1", "--on-behalf-of", "bob")  # fmt: skip
    assert "@clearing:riverside/north-hub" in out
    assert [m["bank"] for m in json.loads(run(db, "memberships", "ann", "--format", "json"))] == [
        bank, hub,
    ]  # fmt: skip
    error = run_as(db, "ann", "record-exchange", bank, "ann", "bob", "1", ok=False)
    assert error.startswith("error: not_permitted:")
    out = run_as(db, "ann", "propose", bank, "exchange", "ann", "1", "--receiver", "bob",
                 "--entry-id", "p1")  # fmt: skip
    run_as(db, "ann", "propose", bank, "exchange", "ann", "1", "--receiver", "org",
           "--entry-id", "p0")  # fmt: skip
    listed = json.loads(run(db, "pending", bank, "--member", "bob", "--format", "json"))
    assert [p["entry_id"] for p in listed] == ["p1"]
    every = json.loads(run(db, "pending", bank, "--format", "json"))
    assert {p["entry_id"] for p in every} == {"p0", "p1"}
    run_as(db, "ann", "decline", "p0")
    assert out == (
        f"p1: exchange 1:00 on {listed[0]['occurred_on']} in {bank}, pending: awaits bob's"
        f" confirmation until {listed[0]['expires_on']}\n"
    )
    run_as(db, "bob", "confirm", "p1")
    run_as(db, "dan", "propose", hub, "exchange", "dan", "4", "--receiver", "ann", "--entry-id",
           "p2")  # fmt: skip
    assert "approval" in run_as(db, "ann", "confirm", "p2", "--on-behalf-of", "ann")
    run_as(db, "co", "approve", "p2")
    run_as(db, "ann", "propose", bank, "gift", "ann", "1", "--receiver", "bob", "--entry-id", "p3")
    assert run_as(db, "ann", "decline", "p3") == "p3: declined\n"
    assert run(db, "expire-pending", bank).startswith("expired 0")
    run(db, "appoint-guardian", bank, "bob", "gwen")
    assert run(db, "appoint-guardian", bank, "bob", "gabe") == (
        f"guardians of bob in {bank}: gwen, gabe\n"
    )
    run_as(db, "gabe", "gift", bank, "bob", "ann", "0:30", "--on-behalf-of", "bob")
    # a guardian confirms, and declines, for the member who awaits it
    for entry_id in ("p5", "p6"):
        run_as(db, "ann", "propose", bank, "exchange", "ann", "1", "--receiver", "bob",
               "--entry-id", entry_id)  # fmt: skip
    run_as(db, "gabe", "confirm", "p5", "--on-behalf-of", "bob")
    assert run_as(db, "gabe", "decline", "p6", "--on-behalf-of", "bob") == "p6: declined\n"
    # a proposal to a member of another bank of the tree
    shown = json.loads(run_as(db, "ann", "propose", bank, "exchange", "ann", "1", "--receiver",
                              "dan", "--receiver-bank", hub, "--entry-id", "p7", "--format",
                              "json"))  # fmt: skip
    assert shown == json.loads(run(db, "pending", bank, "--format", "json"))
    assert (shown[0]["entry_id"], shown[0]["receiver_bank"]) == ("p7", hub)
    run_as(db, "ann", "decline", "p7")
    rolled = json.loads(run(db, "figures", bank, "--rollup", "--format", "json"))[0]
    assert (rolled["exchanges"], rolled["banks"]) == (4, [bank, hub])
    with timebank.open(db) as tb:
        assert (tb.balance(bank, "bob"), tb.balance(hub, "ann")) == (-30, -240)
        assert tb.entry("x1").on_behalf_of == "bob"
        assert (tb.entry("p5").actor, tb.entry("p5").on_behalf_of) == ("ann", None)
        assert tb.policy(hub).permissions.reverse == "admin"
        assert tb.policy(hub).individual.lowest_minutes == -600  # the rest is the parent's
        assert tb.pending(bank) == []
        tb.check_invariants()


def test_pending_entries_past_their_day_are_listed_and_expired(db: str, bank: str) -> None:
    """Proposals made on an earlier day (the test's fixed clock) are past their
    expiry by the time the command runs: the list says so in its own column,
    and expire-pending names each entry it expired."""
    with timebank.open(db, clock=fixed_clock) as tb:
        for entry_id in ("old1", "old2"):
            tb.propose(bank, "exchange", "ann", "bob", "1", actor="ann", entry_id=entry_id)
    rows = list(csv.DictReader(io.StringIO(run(db, "pending", bank, "--format", "csv"))))
    assert list(rows[0]) == [
        "entry_id", "bank", "kind", "provider", "receiver", "receiver_bank", "minutes",
        "occurred_on", "awaiting", "confirmer", "actor", "on_behalf_of", "expires_on", "expired",
    ]  # fmt: skip
    assert [(r["entry_id"], r["expired"]) for r in rows] == [("old1", "True"), ("old2", "True")]
    assert run(db, "expire-pending", bank) == "expired 2 pending entries: old1, old2\n"
    assert run(db, "pending", bank, "--format", "json") == "[]\n"


def test_a_refusal_of_the_default_actor_says_how_to_name_one(
    db: str, bank: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIMEBANK_ACTOR", raising=False)
    record = ["record-exchange", bank, "ann", "bob", "1"]
    result = CliRunner().invoke(cli, ["--db", db, *record])
    assert result.exit_code == 1
    assert result.output.startswith("error: not_permitted: 'cli' may not record")
    assert result.output.endswith(
        "(no --actor given, so it ran as 'cli': give --actor ID or set TIMEBANK_ACTOR)\n"
    )
    # named, by the option or the environment: the refusal is about them alone
    for args, env in (
        (["--db", db, "--actor", "ann-friend", *record], {}),
        (["--db", db, *record], {"TIMEBANK_ACTOR": "ann-friend"}),
    ):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1
        assert "'ann-friend' may not record" in result.output
        assert "no --actor given" not in result.output
    # a refusal of another kind is about the command, not who ran it
    result = CliRunner().invoke(cli, ["--db", db, "member", bank, "zed"])
    assert result.exit_code == 1
    assert result.output.startswith("error: member_not_found:")
    assert "--actor" not in result.output


#: Values no command takes where an id, a date or an amount goes, and some
#: it does take ("0", "-1"): each command must answer them in its own words.
#: (No NUL: a command line cannot hold one.)
MALFORMED = ["", "x" * 300, "-1", "0", "nan", "1e400", "9" * 40, "2026-02-30",
             "\u202eevil", " ann", "riverside/../x", "@pot"]  # fmt: skip
#: A good value of each command argument, by name (the bank fixture's).
GOOD_ARGUMENTS = {"bank": "riverside", "member": "ann", "provider": "ann", "receiver": "bob",
                  "hours": "1", "entry_id": "e1", "account": "ann", "person": "ann",
                  "user": "bob", "role": "coordinator", "donor": "ann", "giver": "ann",
                  "recipient": "bob", "guardian": "bob"}  # fmt: skip
#: Commands that act on the whole store's files or run the demo.
NOT_SWEPT = {"demo", "restore", "migrate"}


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
        elif name not in NOT_SWEPT:
            found.append(((*prefix, name), command))
    return found


def test_no_malformed_argument_or_option_reaches_a_traceback(
    db: str, bank: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every command, given each malformed value in place of each of its
    arguments and as each of its options, ends with its own message and
    status (0, 1 or 2), never with an exception out of the command. Run in
    a directory of its own: a value taken as a file's name is written."""
    import click

    monkeypatch.chdir(tmp_path)
    run(db, "record-exchange", bank, "ann", "bob", "1", "--entry-id", "e1", "--on", "2026-02-01")
    tried, answered = 0, set()
    for path, command in _commands(cli):
        arguments = [p for p in command.params if isinstance(p, click.Argument)]
        options = [p for p in command.params if isinstance(p, click.Option) and not p.is_flag]
        good = [GOOD_ARGUMENTS.get(str(p.name), "x") for p in arguments]
        given = [[*good[:i], bad, *good[i + 1 :]] for i in range(len(good)) for bad in MALFORMED]
        given += [[*good, option.opts[0], bad] for option in options for bad in MALFORMED]
        for args in given:
            result = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", *path, *args])
            assert result.exit_code in {0, 1, 2}, (path, args, result.output)
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                path, args, repr(result.exception),
            )  # fmt: skip
            tried += 1
            answered.add(result.exit_code)
    assert tried > 2000
    assert answered == {0, 1, 2}


def _bank_families() -> tuple[list[str], list[str]]:
    """The root commands that take BANK as an argument, and those that take
    ``--bank`` and no argument at all."""
    import click

    as_argument, as_option = [], []
    for name, command in cli.commands.items():  # type: ignore[attr-defined]
        bank = next((p for p in command.params if p.name == "bank"), None)
        if isinstance(bank, click.Argument):
            as_argument.append(name)
        elif isinstance(bank, click.Option) and not any(
            isinstance(p, click.Argument) for p in command.params
        ):
            as_option.append(name)
    return sorted(as_argument), sorted(as_option)


def test_a_bank_given_in_the_other_commands_form_is_told_the_form_it_takes(
    db: str, bank: str
) -> None:
    """Commands that change a bank take BANK as an argument; the reports and
    lists take --bank. Either form given to the other family is a usage
    error (exit 2) that says how to write it, and nothing is written."""
    as_argument, as_option = _bank_families()
    assert {"join", "record-exchange", "members", "create-bank"} <= set(as_argument)
    assert {"report", "inactive", "near-limit", "activity", "balances"} <= set(as_option)
    with timebank.open(db) as tb:
        before = tb._app.recorder.max_notification_id()
    for name in as_argument:
        for given in (["--bank", bank], [f"--bank={bank}"]):
            result = CliRunner().invoke(
                cli, ["--db", db, "--actor", "coord-1", name, *given], prog_name="timebank"
            )
            assert result.exit_code == 2, (name, result.output)
            assert (
                f"timebank {name} takes the bank as an argument, not --bank: timebank {name}"
                f" [OPTIONS] BANK"
            ) in result.output, result.output
    for name in as_option:
        result = CliRunner().invoke(
            cli, ["--db", db, "--actor", "coord-1", name, bank], prog_name="timebank"
        )
        assert result.exit_code == 2, (name, result.output)
        assert (
            f"got an argument ({bank}), and timebank {name} takes no argument: give the bank"
            f" as --bank {bank}"
        ) in result.output, result.output
    with timebank.open(db) as tb:
        assert tb._app.recorder.max_notification_id() == before
    # the form each hint gives is taken
    assert "ann" in run(db, "members", bank)
    assert run(
        db, "report", "--bank", bank, "--from", "2026-01-01", "--to", "2026-06-30"
    ).startswith(f"{bank}: 2026-01-01 to 2026-06-30")
    # a quoted bank is quoted in the hint; two arguments, or --bank given too, are click's
    odd = CliRunner().invoke(cli, ["--db", db, "inactive", "river side"])
    assert "give the bank as --bank 'river side'" in odd.output, odd.output
    for args in (["inactive", bank, "x"], ["inactive", bank, "--bank", bank]):
        result = CliRunner().invoke(cli, ["--db", db, *args])
        assert result.exit_code == 2
        assert "give the bank as" not in result.output, result.output
    # --bank after "--" is a value, not the option; a command with its own
    # argument and an optional --bank (statement MEMBER) reads as before
    hours = CliRunner().invoke(cli, ["--db", db, "--actor", "coord-1", "record-exchange", bank,
                                     "ann", "bob", "--", "--bank"])  # fmt: skip
    assert hours.exit_code == 1, hours.output
    assert "invalid_amount: amount is not a number of hours: '--bank'" in hours.output
    short = CliRunner().invoke(cli, ["--db", db, "record-exchange", bank, "ann", "--", "--bank"])
    assert short.exit_code == 2, short.output
    assert "Missing argument 'HOURS'" in short.output, short.output  # click's, not the hint
    run(db, "record-exchange", bank, "ann", "bob", "1:30", "--entry-id", "e-1")
    assert "e-1" in run(db, "statement", "ann", "--bank", bank)
    # shell completion goes on past either form
    from click.shell_completion import ShellComplete

    complete = ShellComplete(cli, {}, "timebank", "_TIMEBANK_COMPLETE")
    assert "--format" in [
        c.value for c in complete.get_completions(["members", "--bank", bank], "--")
    ]
    assert "--days" in [c.value for c in complete.get_completions(["inactive", bank], "--")]
