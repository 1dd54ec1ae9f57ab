"""The report, statement, coordinator-list, export and read-model commands,
end to end; and the HTML report opened in a real headless Chromium."""

from __future__ import annotations

import csv
import errno
import html as html_module
import io
import json
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

import timebank
from timebank.cli import cli
from timebank.errors import InvalidInput

from .conftest import report_chart
from .test_cli import run

CHROMIUM = os.environ.get("TIMEBANK_CHROMIUM") or shutil.which("chromium")
if os.environ.get("CI") and CHROMIUM is None:
    raise RuntimeError("CI checks the HTML report in Chromium: scripts/check installs it")
#: axe-core's script, which scripts/check fetches (a pinned version from npm).
AXE = os.environ.get("TIMEBANK_AXE")
if os.environ.get("CI") and not (AXE and Path(AXE).exists()):
    raise RuntimeError("CI audits the HTML report with axe-core: scripts/check fetches it")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def ledger(db: str) -> str:
    """A bank with a mini bank and a few months of varied entries."""
    run(
        db,
        "create-bank",
        "riverside",
        "--name",
        "Riverside <Time> Bank",
        "--opened-on",
        "2026-01-01",
    )
    run(db, "create-bank", "riverside/hub", "--name", "Hub", "--opened-on", "2026-01-01")
    for member, kind, bank in (
        ("ann", "individual", "riverside"),
        ("bob", "individual", "riverside"),
        ("org", "organisation", "riverside"),
        ("hal", "individual", "riverside/hub"),
    ):
        run(
            db, "join", bank, member, "--kind", kind, "--joined-on", "2026-01-01", "--area", "north"
        )
    run(
        db,
        "record-exchange",
        "riverside",
        "ann",
        "bob",
        "2:00",
        "--on",
        "2026-02-03",
        "--category",
        "gardening",
        "--entry-id",
        "e1",
    )
    run(
        db,
        "record-exchange",
        "riverside",
        "bob",
        "org",
        "1:30",
        "--on",
        "2026-03-04",
        "--category",
        "befriending",
        "--entry-id",
        "e2",
    )
    run(
        db,
        "record-exchange",
        "riverside",
        "org",
        "ann",
        "1:00",
        "--on",
        "2026-03-05",
        "--entry-id",
        "e3",
    )
    run(db, "reverse", "e3", "--reversal-id", "e3-r", "--on", "2026-03-06")
    run(db, "donate", "riverside", "ann", "3", "--on", "2026-03-07", "--entry-id", "d1")
    run(
        db,
        "record-opening-balance",
        "riverside",
        "bob",
        "5",
        "--on",
        "2026-01-02",
        "--entry-id",
        "o1",
    )
    run(
        db,
        "record-exchange",
        "riverside",
        "ann",
        "hal",
        "1:00",
        "--receiver-bank",
        "riverside/hub",
        "--on",
        "2026-04-01",
        "--category",
        "gardening",
        "--entry-id",
        "ib1",
    )
    return "riverside"


def test_report_json_has_the_issue_field_names(db: str, ledger: str) -> None:
    data = json.loads(
        run(
            db,
            "report",
            "--bank",
            ledger,
            "--from",
            "2026-01-01",
            "--to",
            "2026-04-30",
            "--format",
            "json",
        )
    )
    assert list(data)[:4] == ["bank", "banks", "rollup", "from"]
    for name in (
        "hours_exchanged",
        "exchanges",
        "transactions",
        "individual_members",
        "organisations",
        "new_members",
        "active_members",
        "inactive_members",
        "donated_to_pot_hours",
        "pot_funded_hours",
        "pot_balance_hours",
        "connections",
        "new_connections",
        "members_with_one_connection",
        "by_month",
        "by_category",
        "by_kind",
    ):
        assert name in data, name
    assert (data["hours_exchanged"], data["exchanges"], data["transactions"]) == (4.5, 3, 4)
    assert data["donated_to_pot_hours"] == 3
    assert [m["month"] for m in data["by_month"]] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert data["by_category"][0] == {
        "category": "gardening",
        "hours": 3,
        "exchanges": 2,
        "exchanged_minutes": 180,
    }
    rollup = json.loads(
        run(db, "report", "--bank", ledger, "--rollup", "--format", "json", "--to", "2026-06-01")
    )
    assert rollup["banks"] == ["riverside", "riverside/hub"]
    assert rollup["individual_members"] == 3
    assert [(k["kind"], k["members"]) for k in data["by_kind"]] == [
        ("individual", data["individual_members"]), ("organisation", data["organisations"]),
    ]  # fmt: skip
    assert sum(k["new_members"] for k in data["by_kind"]) == data["new_members"]


def test_report_table_and_csv(db: str, ledger: str, tmp_path: Path) -> None:
    table = run(db, "report", "--bank", ledger, "--to", "2026-04-30")
    assert "hours_exchanged" in table
    assert "By month" in table
    assert "2026-03" in table
    out = tmp_path / "r.csv"
    run(db, "report", "--bank", ledger, "--to", "2026-04-30", "--format", "csv", "-o", str(out))
    rows = list(csv.DictReader(out.open()))
    figures = {r["name"]: r["value"] for r in rows if r["section"] == "figures"}
    assert figures["exchanges"] == "3"
    assert figures["connections"] == "3"
    # ann (bob, and hal in the hub) and bob (ann, org) have two; org has bob
    assert figures["members_with_one_connection"] == "1"
    assert {"section": "month 2026-02", "name": "hours", "value": "2"} in rows
    # each month's rows are its figures in the JSON report, every one of them
    data = json.loads(run(db, "report", "--bank", ledger, "--to", "2026-04-30", "--format", "json"))
    assert len(data["by_month"]) >= 3
    for month in data["by_month"]:
        given = {r["name"]: r["value"] for r in rows if r["section"] == f"month {month['month']}"}
        assert given == {k: str(month[k]) for k in ("hours", "exchanges", "new_members", "members")}
    assert {"section": "kind organisation", "name": "members", "value": "1"} in rows
    assert table.index("By kind of member") > table.index("By category")
    # a roll-up's table names every bank it covers
    rolled = json.loads(run(db, "report", "--bank", ledger, "--rollup", "--format", "json"))
    assert len(rolled["banks"]) == 2
    assert run(db, "report", "--bank", ledger, "--rollup").splitlines()[0] == (
        f"{ledger}: {rolled['from']} to {rolled['to']} (banks: {', '.join(rolled['banks'])})"
    )


def test_a_csv_for_a_spreadsheet_begins_with_a_byte_order_mark_on_request(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """``--bom``: the same CSV, begun with U+FEFF, which Excel reads as
    "this is UTF-8" when a coordinator double-clicks the file; every command
    that writes CSV takes it, and no other format does."""
    run(db, "set-profile", "ann", "--display-name", "Siân")
    plain = run(db, "inactive", "--bank", ledger, "--as-of", "2026-12-31", "--format", "csv")
    marked = run(db, "inactive", "--bank", ledger, "--as-of", "2026-12-31", "--format", "csv",
                 "--bom")  # fmt: skip
    assert not plain.startswith("\ufeff")
    assert marked == "\ufeff" + plain
    assert "Siân" in plain
    out = tmp_path / "r.csv"
    run(db, "report", "--bank", ledger, "--format", "csv", "--bom", "-o", str(out))
    assert out.read_bytes().startswith(b"\xef\xbb\xbf" + b"section,name,value\n")
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert {"section": "figures", "name": "exchanges", "value": "3"} in rows
    for args in (("statement", "ann"), ("report", "--bank", ledger, "--format", "json")):
        result = CliRunner().invoke(cli, ["--db", db, *args, "--bom"])
        assert result.exit_code == 2, result.output
        assert "--bom is for --format csv, not --format" in result.output
    for name, command in cli.commands.items():
        formats = [p for p in command.params if p.name == "fmt"]
        takes_csv = formats and "csv" in formats[0].type.choices  # type: ignore[attr-defined]
        takes_bom = any(p.name == "bom" for p in command.params)
        assert bool(takes_csv and name != "export") == takes_bom, name


def test_report_by_area(db: str, ledger: str, tmp_path: Path) -> None:
    args = ("report", "--bank", ledger, "--to", "2026-04-30", "--by-area")
    data = json.loads(run(db, *args, "--format", "json"))
    # every member is in "north": ann gave 2:00 (e1) and 1:00 (ib1), bob 1:30
    # (e2); bob and org received 2:00 and 1:30 (hal, who received 1:00, is the hub's)
    assert data["by_area"] == [
        {"area": "north", "members": 3, "new_members": 3, "active_members": 3,
         "hours_given": 4.5, "hours_received": 3.5, "exchanges": 3,
         "given_minutes": 270, "received_minutes": 210},
    ]  # fmt: skip
    assert "by_area" not in json.loads(run(db, *args[:-1], "--format", "json"))
    out = tmp_path / "r.csv"
    run(db, *args, "--format", "csv", "-o", str(out))
    rows = list(csv.DictReader(out.open()))
    assert {"section": "area north", "name": "hours_given", "value": "4.5"} in rows
    table = run(db, *args)
    assert table.index("By area") > table.index("By category")
    assert "4:30" in table[table.index("By area") :]
    page = tmp_path / "r.html"
    run(db, *args, "--format", "html", "-o", str(page))
    assert 'id="table-by-area"' in page.read_text()
    run(db, *args[:-1], "--format", "html", "-o", str(page))
    assert 'id="table-by-area"' not in page.read_text()


def test_a_table_names_the_figures_of_no_category_and_no_area(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """The table a coordinator reads says "(none)" and "(no area)", as the
    HTML page does, where a blank cell read as a figure without a name;
    JSON and CSV keep them empty for programs."""
    run(db, "join", "riverside", "dee", "--kind", "individual", "--joined-on", "2026-01-01")
    run(db, "record-exchange", "riverside", "dee", "bob", "0:45", "--on", "2026-04-02")
    args = ("report", "--bank", ledger, "--to", "2026-04-30", "--by-area")
    table = run(db, *args)
    categories = table[table.index("By category") : table.index("By kind of member")]
    areas = table[table.index("By area") :]
    assert re.search(r"^\(none\) +0:45 +1$", categories, re.MULTILINE), categories
    assert re.search(r"^\(no area\) +1 +1 +1 +0:45 +0:00 +1$", areas, re.MULTILINE), areas
    data = json.loads(run(db, *args, "--format", "json"))
    assert {"category": None, "hours": 0.75, "exchanges": 1, "exchanged_minutes": 45} in data[
        "by_category"
    ]
    assert [a["area"] for a in data["by_area"]] == ["north", None]
    out = tmp_path / "r.csv"
    run(db, *args, "--format", "csv", "-o", str(out))
    sections = {r["section"] for r in csv.DictReader(out.open())}
    assert {"category ", "area "} <= sections
    page = tmp_path / "r.html"
    run(db, *args, "--format", "html", "-o", str(page))
    assert "<td>(none)</td>" in page.read_text()
    assert "<td>(no area)</td>" in page.read_text()


def test_member_activity(db: str, ledger: str) -> None:
    args = ("activity", "--bank", ledger, "--from", "2026-03-01", "--to", "2026-04-30")
    rows = json.loads(run(db, *args, "--format", "json"))
    # e2 (bob -> org, 1:30) and ib1 (ann -> hal in the hub, 1:00); e3 was reversed
    assert [(r["member"], r["exchanges"], r["hours_given"], r["hours_received"], r["partners"])
            for r in rows] == [("ann", 1, 1, 0, 1), ("bob", 1, 1.5, 0, 1), ("org", 1, 0, 1.5, 1)]  # fmt: skip
    table = run(db, *args, "--rollup")
    assert "last_exchange_on" in table
    assert "hal" in table  # the hub's member, in the roll-up
    csv_rows = list(csv.DictReader(io.StringIO(run(db, *args, "--format", "csv"))))
    assert csv_rows[0]["first_exchange_on"] == "2026-04-01"  # ann's ib1


def test_members_with_one_connection_for_coordinators(db: str, ledger: str) -> None:
    listed = json.loads(
        run(db, "one-connection", "--bank", ledger, "--as-of", "2026-04-30", "--format", "json")
    )
    assert listed == [
        {"bank": ledger, "member": "org", "kind": "organisation", "connected_with": "bob",
         "connected_on": "2026-03-04", "name": ""},
    ]  # fmt: skip
    rollup = run(db, "one-connection", "--bank", ledger, "--as-of", "2026-04-30", "--rollup")
    assert [line.split()[1] for line in rollup.splitlines()[2:]] == ["hal", "org"]


def test_a_bad_report_request_is_one_line(db: str, ledger: str) -> None:
    out = run(
        db, "report", "--bank", ledger, "--from", "2026-05-01", "--to", "2026-04-01", ok=False
    )
    assert out.startswith("error: invalid_input:")
    assert run(db, "report", "--bank", "nowhere", ok=False).startswith("error: bank_not_found:")


def test_statement_inactive_near_limit(db: str, ledger: str) -> None:
    lines = json.loads(run(db, "statement", "ann", "--format", "json"))
    assert [x["entry_id"] for x in lines] == ["e1", "e3", "e3-r", "d1", "ib1"]
    assert lines[1]["reversed_by"] == "e3-r"
    # read a page at a time: every line, not the first page only
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("timebank._cli_reports._STATEMENT_PAGE", 2)
        assert json.loads(run(db, "statement", "ann", "--format", "json")) == lines
    # a member of no bank: an error, not an empty statement
    assert run(db, "statement", "anne", ok=False) == (
        "error: member_not_found: no member 'anne' in any bank\n"
    )
    assert run(db, "statement", "Ann", ok=False) == (  # ids are case-sensitive
        "error: member_not_found: no member 'Ann' in any bank (member ids are case-sensitive:"
        " 'ann' is a member of 'riverside')\n"
    )
    out = run(db, "statement", "anne", "--bank", ledger, ok=False)
    assert out.startswith("error: member_not_found:")
    assert (
        json.loads(run(db, "statement", "@pot", "--bank", ledger, "--format", "json"))[0][
            "balance_minutes"
        ]
        == 180
    )
    run(db, "set-profile", "bob", "--display-name", "Bob Ray", "--area", "north")
    quiet = json.loads(
        run(db, "inactive", "--bank", ledger, "--as-of", "2026-06-15", "--format", "json")
    )
    # each with the name a coordinator calls them by (org has none)
    assert [(q["member"], q["name"]) for q in quiet] == [("bob", "Bob Ray"), ("org", "")]
    table = run(db, "activity", "--bank", ledger, "--to", "2026-04-30")
    assert table.splitlines()[0].split()[:3] == ["bank", "member", "name"]
    assert "Bob Ray" in table
    # a name a spreadsheet would run as a formula: defused in CSV only
    formula = '=HYPERLINK("http://x.example","Bob")'
    run(db, "set-profile", "bob", "--display-name", formula)
    listed = run(db, "activity", "--bank", ledger, "--to", "2026-04-30", "--format", "csv")
    names = {r["member"]: r["name"] for r in csv.DictReader(io.StringIO(listed))}
    assert names["bob"] == "'" + formula
    listed = run(db, "activity", "--bank", ledger, "--to", "2026-04-30", "--format", "json")
    assert {r["member"]: r["name"] for r in json.loads(listed)}["bob"] == formula
    for start in "+-@":  # each beginning a spreadsheet reads as a formula
        run(db, "set-profile", "bob", "--display-name", f"{start}2+3")
        listed = run(db, "activity", "--bank", ledger, "--to", "2026-04-30", "--format", "csv")
        names = {r["member"]: r["name"] for r in csv.DictReader(io.StringIO(listed))}
        assert names["bob"] == f"'{start}2+3"
    near = json.loads(
        run(db, "near-limit", "--bank", ledger, "--within", "100", "--format", "json")
    )
    assert near == []  # the bank has no balance limits
    at_or_beyond = run(db, "near-limit", "--bank", ledger, "--within", "0", "--format", "json")
    assert json.loads(at_or_beyond) == []  # 0 was refused as an amount


def test_a_banks_entries_for_a_coordinator_to_read_through(db: str, ledger: str) -> None:
    table = run(db, "entries", "--bank", ledger).splitlines()
    assert table[0].split()[:4] == ["occurred_on", "entry_id", "kind", "hours"]
    # by date, the opening balance (recorded last) first; the reversal after e3
    assert [line.split()[1] for line in table[2:]] == [
        "o1", "e1", "e2", "e3", "e3-r", "d1", "ib1",
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(run(db, "entries", "--bank", ledger, "--rollup",
                                                "--from", "2026-03-05", "--format", "csv"))))  # fmt: skip
    assert [(r["entry_id"], r["hours"], r["minutes"], r["reverses"], r["reversed_by"])
            for r in rows] == [
        ("e3", "1:00", "60", "", "e3-r"), ("e3-r", "1:00", "60", "e3", ""),
        ("d1", "3:00", "180", "", ""), ("ib1", "1:00", "60", "", ""),
    ]  # fmt: skip
    assert rows[-1]["receiver_bank"] == "riverside/hub"
    hub = json.loads(run(db, "entries", "--bank", "riverside/hub", "--format", "json"))
    assert [(r["entry_id"], r["bank"], r["flags"]) for r in hub] == [("ib1", ledger, [])]
    assert json.loads(run(db, "entries", "--bank", ledger, "--flagged", "--format", "json")) == []
    whole = run(db, "entries", "--bank", ledger, "--format", "json")
    with pytest.MonkeyPatch.context() as patch:  # read a page at a time: every row
        patch.setattr("timebank._cli_reports._STATEMENT_PAGE", 2)
        assert run(db, "entries", "--bank", ledger, "--format", "json") == whole


def test_the_entries_command_reads_each_page_after_the_last_row(db: str, ledger: str) -> None:
    """An entry recorded between the command's pages, dated among the rows
    it has printed, repeats no row: the next page starts after the last row
    read (paged by offset, the last row of a page came again)."""
    whole = json.loads(run(db, "entries", "--bank", ledger, "--format", "json"))
    assert len(whole) > 4  # three pages of two at least
    read = timebank.Timebank.entries
    pages: list[list[str]] = []

    def another_process_records_between_pages(
        self: timebank.Timebank, *args: Any, **kwargs: Any
    ) -> list[timebank.BankEntry]:
        page = read(self, *args, **kwargs)
        pages.append([e.entry_id for e in page])
        with timebank.open(db) as other:
            other.record_exchange(ledger, "bob", "ann", "0:15", actor="coord-1",
                                  occurred_on=whole[0]["occurred_on"])  # fmt: skip
        return page

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("timebank._cli_reports._STATEMENT_PAGE", 2)
        patch.setattr(timebank.Timebank, "entries", another_process_records_between_pages)
        assert json.loads(run(db, "entries", "--bank", ledger, "--format", "json")) == whole
    assert len(pages) == len(whole) // 2 + 1
    after = json.loads(run(db, "entries", "--bank", ledger, "--format", "json"))
    assert len(after) == len(whole) + len(pages)  # they were recorded, before the rows read


def test_export_writes_the_interchange_layout(db: str, ledger: str, tmp_path: Path) -> None:
    out = run(db, "export", "--format", "csv", "--to", str(tmp_path / "x"))
    assert "members.csv (4 rows)" in out
    members = list(csv.DictReader((tmp_path / "x" / "members.csv").open()))
    assert members[0] == {
        "member_id": "ann",
        "kind": "individual",
        "bank": "riverside",
        "joined_on": "2026-01-01",
        "display_name": "",
        "area": "north",
        "left_on": "",
    }
    entries = {r["entry_id"]: r for r in csv.DictReader((tmp_path / "x" / "entries.csv").open())}
    assert entries["e2"]["hours"] == "1:30"
    assert entries["e2"]["category"] == "befriending"
    assert entries["e3-r"]["kind"] == "reversal"
    assert entries["e3-r"]["reverses"] == "e3"
    assert entries["o1"]["kind"] == "opening_balance"
    assert entries["o1"]["provider"] == "bob"
    assert entries["ib1"]["receiver_bank"] == "riverside/hub"
    assert entries["d1"]["receiver"] == ""


def test_a_file_the_command_cannot_write_is_one_error_line(
    db: str, ledger: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "report.json"
    out = run(db, "report", "--bank", ledger, "--format", "json", "-o", str(missing), ok=False)
    assert out == f"error: file_error: [Errno 2] No such file or directory: '{missing}'\n"
    # a file where the export's directory should be made
    (tmp_path / "taken").write_text("a file\n")
    out = run(db, "export", "--to", str(tmp_path / "taken" / "x"), ok=False)
    assert out.startswith("error: file_error: ")
    assert (tmp_path / "taken").read_text() == "a file\n"


def test_a_report_written_to_a_file_leaves_standard_output_empty(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """With -o the report goes to the file; the line that names the file
    goes to standard error, so a script's standard output stays empty."""
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        cli, ["--db", db, "report", "--bank", ledger, "--format", "json", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (result.stdout, result.stderr) == ("", f"wrote {out}\n")
    assert json.loads(out.read_text(encoding="utf-8"))["bank"] == ledger


def test_outputs_are_replaced_whole_or_not_at_all(tmp_path: Path) -> None:
    """Each output is written under a temporary name and renamed over its
    file only when the command succeeded: a failure half way (here, an
    error raised inside the block) leaves the earlier files as they were
    and no temporary file behind."""
    from timebank._cli_reports import _replacing

    members, entries = tmp_path / "members.csv", tmp_path / "entries.csv"
    members.write_text("old members\n")
    entries.write_text("old entries\n")

    def half_an_export() -> None:
        with _replacing(members, entries) as (m, e):
            m.write("new members\n")
            e.write("half of the new entr")
            raise RuntimeError("the store failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        half_an_export()
    assert (members.read_text(), entries.read_text()) == ("old members\n", "old entries\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entries.csv", "members.csv"]
    with _replacing(members, entries) as (m, e):
        m.write("new members\n")
        e.write("new entries\n")
    assert (members.read_text(), entries.read_text()) == ("new members\n", "new entries\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entries.csv", "members.csv"]
    # a file replaced keeps its permissions (an export holds members' names)
    members.chmod(0o600)
    with _replacing(members) as (out,):
        out.write("private\n")
    assert (members.stat().st_mode & 0o777, members.read_text()) == (0o600, "private\n")
    # through a symbolic link: the file it points at is replaced, the link kept
    (tmp_path / "latest.csv").symlink_to(members)
    with _replacing(tmp_path / "latest.csv") as (out,):
        out.write("newest\n")
    assert (tmp_path / "latest.csv").is_symlink()
    assert members.read_text() == "newest\n"


def test_an_error_in_the_block_is_told_about_the_output_only_if_it_names_no_file(
    tmp_path: Path,
) -> None:
    """A failed write names no file (a full disk): it is told about the
    output, or the directory of two. An error that names a file already
    (one the block read) keeps its name."""
    from timebank._cli_reports import _replacing

    report = tmp_path / "r.csv"
    with pytest.raises(OSError, match="No space") as unnamed, _replacing(report):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert (unnamed.value.errno, unnamed.value.filename) == (errno.ENOSPC, str(report))
    with pytest.raises(OSError, match="No space") as both, _replacing(report, tmp_path / "s.csv"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert both.value.filename == str(tmp_path)
    with pytest.raises(FileNotFoundError) as named, _replacing(report):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "words.txt")
    assert named.value.filename == "words.txt"
    assert list(tmp_path.iterdir()) == []


def test_export_writes_group_exchanges_one_row_per_participant(tmp_path: Path) -> None:
    with timebank.open(f"sqlite:///{tmp_path / 'g.db'}") as tb:
        tb.create_bank("b", name="B", actor="c", opened_on="2026-01-01")
        for m in ("t", "a", "b"):
            tb.join("b", m, kind="individual", actor="c", joined_on="2026-01-01")
        tb.record_group_exchange(
            "b",
            {"t": 2},
            {"a": 1, "b": 1},
            actor="c",
            occurred_on="2026-02-01",
            entry_id="class-1",
            category="class",
        )
        import io

        members, entries = io.StringIO(), io.StringIO()
        assert tb.export_csv(members, entries) == (3, 3)
    rows = list(csv.DictReader(io.StringIO(entries.getvalue())))
    assert [(r["provider"], r["receiver"], r["hours"], r["group_id"]) for r in rows] == [
        ("", "a", "1:00", "class-1"),
        ("", "b", "1:00", "class-1"),
        ("t", "", "2:00", "class-1"),
    ]


def test_read_model_commands(db: str, ledger: str) -> None:
    assert "applied" in run(db, "read-model", "catch-up")
    status = run(db, "read-model", "status")
    assert "cli.reports.db" in status
    assert "at event" in status
    assert "rebuilt" in run(db, "read-model", "rebuild")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs it)")
def test_the_html_report_in_a_real_browser(db: str, ledger: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    run(
        db,
        "report",
        "--bank",
        ledger,
        "--rollup",
        "--from",
        "2026-01-01",
        "--to",
        "2026-04-30",
        "--format",
        "html",
        "-o",
        str(page),
    )
    html = page.read_text()
    for fetching in ("<script", "<link", " src=", "@import", 'href="http'):
        assert fetching not in html, fetching  # self-contained: nothing to fetch
    assert re.findall(r"url\((?!#)", html) == []  # only references inside the page
    assert "Riverside &lt;Time&gt; Bank" in html  # escaped
    assert 'id="table-by-kind"' in html
    # The page itself has no script; a copy with one measures what Chromium laid out.
    seen = _probe_in_chromium(html, _PROBE, tmp_path)
    assert seen["title"].startswith("Riverside <Time> Bank")
    assert seen["figures"]["hours_exchanged"] == "4.5"  # 2 + 1.5 + 1 (e3 reversed; ib1 once)
    assert seen["figures"]["exchanges"] == "3"
    assert seen["figures"]["individual_members"] == "3"
    assert seen["figures"]["organisations"] == "1"
    assert seen["figures"]["members_with_one_connection"] == "2"  # org and hal
    charts = seen["charts"]
    assert set(charts) == {"chart-by-month", "chart-by-category", "chart-members"}
    for name, chart in charts.items():
        assert chart["width"] > 300, (name, chart)
        assert chart["height"] > 100, (name, chart)
        assert chart["marks"] > 3, name  # bars, lines, points drawn
    assert {"2026-02", "2026-03", "hours exchanged"} <= set(charts["chart-by-month"]["text"])
    assert {"gardening", "befriending"} <= set(charts["chart-by-category"]["text"])
    assert "members" in charts["chart-members"]["text"]
    # each chart is one image to a screen reader, named by its caption and
    # described by the note that names the table holding its figures
    for name, caption in (("chart-by-month", "Hours and exchanges per month"),
                          ("chart-by-category", "Hours by category of help"),
                          ("chart-members", "Members over time")):  # fmt: skip
        assert (charts[name]["role"], charts[name]["name"]) == ("image", caption), name
        assert re.search(r"in\s+the\s+table By (month|category) below", charts[name]["note"])
    assert seen["months"] == ["2026-01", "2026-02", "2026-03", "2026-04"]


def _probe_in_chromium(html: str, probe: str, tmp_path: Path) -> Any:
    """Open a copy of the page with ``probe`` (a script that writes JSON into
    ``<pre id="probe">``) in headless Chromium; what the probe wrote. The
    page itself has no script."""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", probe + "</body>"))
    dom = _chromium(
        page,
        tmp_path,
        # element.computedRole and .computedName: what Chromium gives
        # assistive technology, not only what the markup says
        "--enable-blink-features=ComputedAccessibilityInfo",
        "--window-size=1200,3000",
        "--virtual-time-budget=10000",
        "--dump-dom",
    )
    start = dom.index('<pre id="probe">') + len('<pre id="probe">')
    return json.loads(html_module.unescape(dom[start : dom.index("</pre>", start)]))


def _chromium(page: Path, tmp_path: Path, *flags: str) -> str:
    """Headless Chromium run on the file ``page`` with ``flags``, offline
    and with a profile of its own in ``tmp_path``: its standard output."""
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            *flags,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


#: Paper a council officer may print on: its CSS ``@page`` size. Each moves
#: the page breaks to other places in the report.
PAPERS = ("A4", "A4 landscape", "letter", "letter landscape", "A5", "A5 landscape")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (CI has it)")
def test_the_html_report_prints_with_nothing_split_or_cut_off(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """Printed by Chromium on each paper size in turn, the report keeps each
    chart on one page with its caption and its note, each table whole under
    its heading, each headline figure's value with its label and the first
    under their heading; every page carries something, and the footnotes
    are printed whole and end the last page. The parts looked for are read
    from the page's own markup."""
    page = tmp_path / "report.html"
    run(db, "report", "--bank", ledger, "--rollup", "--from", "2026-01-01",
        "--to", "2026-04-30", "--by-area", "--format", "html", "-o", str(page))  # fmt: skip
    html = page.read_text()
    kept = _parts_kept_together(html)
    # the headline figures' heading, three charts, four tables; each other figure
    assert len([name for name in kept if not name.startswith("figure ")]) == 8
    assert len(kept) == 8 + len(re.findall("data-figure=", html)) - 1
    footer = re.search(r'<footer class="notes">(.*?)</footer>', html, re.S)
    assert footer
    footnotes = [_squeezed(p) for p in re.findall(r"<p>(.*?)</p>", footer[1], re.S)]
    for paper in PAPERS:
        pages = _printed(html.replace("</head>", f"<style>@page {{ size: {paper} }}</style></head>"),
                         tmp_path / paper.replace(" ", "-"))  # fmt: skip
        assert all(pages), (paper, pages)  # no blank page
        for name, bits in kept.items():
            assert any(all(bit in text for bit in bits) for text in pages), (paper, name, pages)
        # the footnotes' running text may go on over a page, but ends the last
        assert all(note in "".join(pages) for note in footnotes), (paper, pages)
        assert pages[-1].endswith(footnotes[-1]), (paper, pages)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (CI has it)")
def test_the_printed_report_uses_the_papers_width_and_no_ink_on_backgrounds(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """On landscape paper, wider than the page is on a screen, the print
    starts its text as near the paper's left edge as on portrait paper:
    the page fills the paper, not a centred column. The headline figures'
    tinted tiles print plain, spending no ink, though Chromium's print to
    PDF prints backgrounds (as the print dialog's "background graphics"
    does): a copy of the page that asks for the tint in print shows it."""
    page = tmp_path / "report.html"
    run(db, "report", "--bank", ledger, "--rollup", "--from", "2026-01-01",
        "--to", "2026-04-30", "--format", "html", "-o", str(page))  # fmt: skip
    html = page.read_text()
    tint = re.search(r"\.figures li \{[^}]*background: #([0-9a-f]{6})", html)
    assert tint  # the tiles' colour on a screen
    tinted = tuple(int(tint[1][i : i + 2], 16) / 255 for i in (0, 2, 4))

    def printed(name: str, style: str) -> PdfReader:
        return _print(html.replace("</head>", f"<style>{style}</style></head>"), tmp_path / name)

    portrait = printed("portrait", "@page { size: A4 }")
    landscape = printed("landscape", "@page { size: A4 landscape }")
    assert landscape.pages[0].mediabox.width > portrait.pages[0].mediabox.width
    assert abs(_left_edge(landscape) - _left_edge(portrait)) < 1, (
        _left_edge(landscape),
        _left_edge(portrait),
    )
    assert len(_fills(portrait)) > 2  # the charts' colours, the text's
    assert not any(_same_colour(fill, tinted) for fill in _fills(portrait)), _fills(portrait)
    asked = printed("asked", f"@media print {{ .figures li {{ background: #{tint[1]} }} }}")
    assert any(_same_colour(fill, tinted) for fill in _fills(asked)), _fills(asked)


def _same_colour(one: tuple[float, ...], other: tuple[float, ...]) -> bool:
    """Two RGB colours alike to the precision a PDF writes them with."""
    return all(abs(a - b) < 0.002 for a, b in zip(one, other, strict=True))


def _parts_kept_together(html: str) -> dict[str, list[str]]:
    """The parts of the report that must each print on one page, each as
    the texts that page must hold (squeezed: see :func:`_squeezed`): the
    headline figures' heading with the first figure; each other figure's
    value with its label; each chart's caption, note and every word it
    draws; each table's heading with its header row, then its every row."""
    parts: dict[str, list[str]] = {}
    heading, figures = re.search(
        r'<h2>([^<]*)</h2>\s*<ul class="figures"[^>]*>(.*?)</ul>', html, re.S
    ).groups()  # type: ignore[union-attr]
    values = re.findall(
        r'<span class="value">(.*?)</span><span class="label">(.*?)</span>', figures, re.S
    )
    parts["headline"] = [_squeezed(heading + values[0][0] + values[0][1])]
    for value, label in values[1:]:
        parts[f"figure {label}"] = [_squeezed(value + label)]
    for name, body in re.findall(r'<figure id="([^"]+)">(.*?)</figure>', html, re.S):
        caption = re.search(r"<figcaption[^>]*>(.*?)</figcaption>", body, re.S)
        note = re.search(r'<p class="chart-note"[^>]*>(.*?)</p>', body, re.S)
        drawn = re.findall(r"<text[^>]*>([^<]*)</text>", body)
        assert caption, name
        assert note, name
        assert drawn, name
        parts[name] = [_squeezed(t) for t in (caption[1], note[1], *drawn) if t.strip()]
    for heading, name, body in re.findall(
        r'<h2>([^<]*)</h2>\s*<table id="([^"]+)">(.*?)</table>', html, re.S
    ):
        rows = ["".join(re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S))
                for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]  # fmt: skip
        assert len(rows) > 1, name
        parts[name] = [_squeezed(heading + rows[0])] + [_squeezed(row) for row in rows[1:]]
    return parts


def _printed(html: str, where: Path) -> list[str]:
    """``html`` printed to PDF by Chromium: each page's text, squeezed."""
    return [_squeezed(page.extract_text()) for page in _print(html, where).pages]


def _print(html: str, where: Path) -> PdfReader:
    """``html`` printed to PDF by Chromium, in the new directory ``where``."""
    where.mkdir()
    (where / "report.html").write_text(html)
    pdf = where / "report.pdf"
    _chromium(where / "report.html", where, "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    return PdfReader(pdf)


def _left_edge(pdf: PdfReader) -> float:
    """How far from the paper's left edge the first page's text starts, in
    points: where each piece of text is placed (its text matrix's origin,
    through the page's transformation matrix, a rotated label's too)."""
    starts: list[float] = []

    def placed(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            starts.append(tm[4] * cm[0] + tm[5] * cm[2] + cm[4])

    pdf.pages[0].extract_text(visitor_text=placed)
    return min(starts)


def _fills(pdf: PdfReader) -> set[tuple[float, ...]]:
    """The fill colours (the ``rg`` operator's RGB) the pages paint with."""
    return {
        tuple(float(c) for c in colour.split())
        for page in pdf.pages
        for colour in re.findall(
            r"(?<![\w.])((?:[\d.]+ ){3})rg\b", page.get_contents().get_data().decode("latin-1")
        )
    }


def _squeezed(text: str) -> str:
    """Text compared as printed: entities read, ligatures (the "fi" of a
    PDF's font) as letters, and no white space, which a PDF's text leaves
    out or adds wherever its lines and columns fall."""
    return "".join(unicodedata.normalize("NFKC", html_module.unescape(text)).split())


@pytest.mark.skipif(CHROMIUM is None or AXE is None, reason="needs Chromium and axe-core (CI)")
@pytest.mark.parametrize("lang", [None, "cy"])
def test_the_html_report_passes_an_automated_accessibility_audit(
    db: str, ledger: str, tmp_path: Path, lang: str | None
) -> None:
    """axe-core, the rules engine accessibility auditors use, run in Chromium
    on the report with the WCAG 2.1 A and AA rules: no violation (text
    contrast, language, headings, tables, names of images and lists...);
    in English, and with the words of a page in Welsh (its language tag)."""
    assert AXE is not None
    page = tmp_path / "report.html"
    words = []
    if lang is not None:
        (tmp_path / "words.json").write_text(json.dumps({**timebank.REPORT_WORDS, "lang": lang}))
        words = ["--words", str(tmp_path / "words.json")]
    run(db, "report", "--bank", ledger, "--rollup", "--by-area", "--format", "html", *words,
        "-o", str(page))  # fmt: skip
    assert f'<html lang="{lang or "en-GB"}">' in page.read_text()
    assert 'id="table-by-area"' in page.read_text()  # its table is audited too
    audit = (
        '<pre id="probe"></pre><script>' + Path(AXE).read_text() + "</script><script>"
        "axe.run(document, {runOnly: {type: 'tag',"
        " values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}).then(r => {"
        " document.getElementById('probe').textContent = JSON.stringify({"
        "  violations: r.violations.map(v => ({id: v.id, help: v.help,"
        "   nodes: v.nodes.map(n => n.target.join(' '))})),"
        "  passed: r.passes.map(p => p.id)}); });</script>"
    )
    found = _probe_in_chromium(page.read_text(), audit, tmp_path)
    assert isinstance(found, dict)
    assert found["violations"] == []
    # the rules that matter here ran and passed
    assert {"color-contrast", "html-has-lang", "svg-img-alt", "list"} <= set(found["passed"])


_PROBE = """<pre id="probe"></pre><script>
const figures = {};
document.querySelectorAll('[data-figure]').forEach(li => {
  figures[li.dataset.figure] = li.querySelector('.value').textContent; });
const charts = {};
document.querySelectorAll('figure').forEach(f => {
  const svg = f.querySelector('svg'); const box = svg.getBoundingClientRect();
  const note = document.getElementById(svg.getAttribute('aria-describedby'));
  charts[f.id] = {width: box.width, height: box.height,
    role: svg.computedRole, name: svg.computedName, note: note ? note.textContent : null,
    marks: svg.querySelectorAll('path, rect, use').length,
    text: Array.from(svg.querySelectorAll('text')).map(t => t.textContent.trim())}; });
const months = Array.from(document.querySelectorAll('#table-by-month tbody tr'))
  .map(tr => tr.cells[0].textContent);
document.getElementById('probe').textContent = JSON.stringify(
  {title: document.querySelector('h1').textContent, figures, charts, months});
</script>"""


def test_an_empty_period_draws_its_charts_from_zero(db: str, tmp_path: Path) -> None:
    """A new bank's report: no chart axis below zero or in fractions of an
    exchange or a member (matplotlib centres an all-zero series on 0, which
    labelled the axes -0.04 hours), and the category chart only says there
    were no exchanges."""
    run(db, "create-bank", "quiet", "--name", "Quiet", "--opened-on", "2026-03-01")
    page = tmp_path / "quiet.html"
    run(db, "report", "--bank", "quiet", "--to", "2026-03-31", "--format", "html", "-o", str(page))
    text = page.read_text()
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", text)  # the charts' own words
    assert "no exchanges in this period" in labels
    numbers = [x for x in labels if re.fullmatch(r"[\u2212-]?[\d.]+", x.strip())]
    assert numbers  # the axes are labelled
    assert all(not x.strip().startswith(("\u2212", "-")) for x in numbers), numbers
    assert "0.04" not in numbers  # the old axis, centred on an all-zero series
    members = report_chart(text, "chart-members")
    counts = [x.strip() for x in re.findall(r"<text[^>]*>([^<]*)</text>", members)
              if re.fullmatch(r"[\d.]+", x.strip())]  # fmt: skip
    assert counts  # its axis is labelled, in whole members (0 and 1), not 0.2 of one
    assert all(x.isdigit() for x in counts), counts


def _pseudo_translation() -> dict[str, str]:
    """Every word of the report marked, placeholders kept: what a
    translation gives, in a form a test can tell from English."""
    words = {key: f"\u27ea{text}\u27eb" for key, text in timebank.REPORT_WORDS.items()}
    return {**words, "lang": "qaa"}  # qaa-qtz: for local use


def _page_text(page: str) -> list[str]:
    """Every piece of text the page shows or gives assistive technology:
    its text nodes (the charts' SVG text too), not its style or the charts'
    metadata, and the attributes read out (``aria-label``, ``alt``)."""
    import html.parser

    class Text(html.parser.HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hidden = 0
            self.found: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("style", "metadata"):
                self.hidden += 1
            self.found += [v for k, v in attrs if k in ("aria-label", "alt", "title") and v]

        def handle_endtag(self, tag: str) -> None:
            if tag in ("style", "metadata"):
                self.hidden -= 1

        def handle_data(self, data: str) -> None:
            if not self.hidden and data.strip():
                self.found.append(data.strip())

    parser = Text()
    parser.feed(page)
    return parser.found


def test_a_translated_report_leaves_no_english_word_on_the_page(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """A council in Wales publishes in Welsh: with a translation of every
    word, what is left outside the translated words is the store's own data
    (names, categories, areas, months as 2026-03, numbers), and the page's
    language is the translation's."""
    words = tmp_path / "words.json"
    words.write_text(json.dumps(_pseudo_translation()), encoding="utf-8")
    page = tmp_path / "report.html"
    run(db, "report", "--bank", ledger, "--rollup", "--by-area", "--format", "html",
        "--words", str(words), "-o", str(page))  # fmt: skip
    text = page.read_text()
    assert '<html lang="qaa">' in text
    assert 'id="table-by-area"' in text  # every table's words are on the page
    data = {"Riverside <Time> Bank", "gardening", "befriending", "north"}
    left = []
    for piece in _page_text(text):
        outside = piece
        while (inner := re.sub(r"\u27ea[^\u27ea\u27eb]*\u27eb", "", outside)) != outside:
            outside = inner  # the innermost marked words first: a date sits in a title
        outside = outside.strip()
        if (
            outside
            and outside not in data
            and not re.fullmatch(r"[\u2212-]?[\d,.]+|\d{4}-\d{2}", outside)
        ):
            left.append(piece)
    assert left == []
    # each kind of word is there, translated: headings, a chart's, a kind, a date
    pieces = _page_text(text)
    for english in ("Headline figures", "hours exchanged", "Individuals", "By area"):
        assert f"\u27ea{english}\u27eb" in pieces, english
    assert any("\u27ea1 \u27eaJanuary\u27eb 2026\u27eb" in p for p in pieces)


def test_the_english_words_from_report_words_make_the_same_page(
    db: str, ledger: str, tmp_path: Path
) -> None:
    words = tmp_path / "words-en.json"
    run(db, "report-words", "-o", str(words))
    assert json.loads(words.read_text(encoding="utf-8")) == dict(timebank.REPORT_WORDS)
    plain, worded = tmp_path / "plain.html", tmp_path / "worded.html"
    run(db, "report", "--bank", ledger, "--format", "html", "-o", str(plain))
    run(db, "report", "--bank", ledger, "--format", "html", "--words", str(words), "-o",
        str(worded))  # fmt: skip
    assert worded.read_text() == plain.read_text()
    with timebank.open(db) as tb:
        assert tb.report_html(ledger) + "\n" == plain.read_text()
    # saved again by an editor that begins UTF-8 with a byte-order mark (Notepad)
    words.write_text(words.read_text(encoding="utf-8"), encoding="utf-8-sig")
    assert words.read_bytes().startswith(b"\xef\xbb\xbf")
    run(db, "report", "--bank", ledger, "--format", "html", "--words", str(words), "-o",
        str(worded))  # fmt: skip
    assert worded.read_text() == plain.read_text()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda w: {k: v for k, v in w.items() if k != "by_area"}, "missing by_area"),
        (lambda w: {**w, "by_aera": "x"}, "not a word of the report: by_aera"),
        (
            lambda w: {**w, "title": "{bank}: {start}"},
            "title must hold {bank}, {end} and {start}, not {bank} and {start}",
        ),
        (
            lambda w: {**w, "made_by": "{version} {made_on} {when}"},
            "made_by must hold {made_on} and {version}, not {made_on}, {version} and {when}",
        ),
        (lambda w: {**w, "headline": "Prif ffigurau {"}, "headline: a brace with no partner"),
        (
            lambda w: {**w, "title": "{bank!r} {start} {end}"},
            "title: {bank!r} is no placeholder of the report's",
        ),
        (lambda w: {**w, "period": "{0} {start} {end}"}, "period: {0} is no placeholder"),
        (lambda w: {**w, "headline": " "}, "headline must be text that is not blank"),
        (lambda w: {**w, "headline": 3}, "headline must be text that is not blank, not 3"),
        (lambda w: {**w, "lang": "Cymraeg!"}, "lang must be a language tag"),
        (
            lambda w: {**w, "axis_members": "aelodau\x00"},
            "axis_members holds the control character U+0000",
        ),
        (
            lambda w: {**w, "footnote": "\x1b[31m{banks} {end}"},
            "footnote holds the control character U+001B",
        ),
        (
            lambda w: {**w, "headline": "Prif \ud800"},  # JSON's "\\ud800": no UTF-8 file holds it
            "headline holds half of a surrogate pair, U+D800",
        ),
        (lambda w: [w], "words must be a mapping"),
    ],
)
def test_a_translation_with_a_fault_is_refused_naming_it(
    db: str, ledger: str, tmp_path: Path, change: Any, said: str
) -> None:
    words = tmp_path / "words.json"
    words.write_text(json.dumps(change(dict(timebank.REPORT_WORDS))), encoding="utf-8")
    page = tmp_path / "report.html"
    out = run(db, "report", "--bank", ledger, "--format", "html", "--words", str(words), "-o",
              str(page), ok=False)  # fmt: skip
    assert "error: invalid_input: " in out
    assert said in out
    assert not page.exists()
    with timebank.open(db) as tb, pytest.raises(InvalidInput) as raised:
        tb.report_html(ledger, words=change(dict(timebank.REPORT_WORDS)))
    assert said in raised.value.message
    assert raised.value.field == "words"


def test_every_fault_of_a_translation_is_named_at_once(db: str, ledger: str) -> None:
    words = {k: v for k, v in timebank.REPORT_WORDS.items() if k not in ("lang", "by_area")}
    words |= {"title": "{bank}", "extra": "x", "headline": ""}
    with timebank.open(db) as tb, pytest.raises(InvalidInput) as raised:
        tb.report_html(ledger, words=words)
    assert raised.value.message == (
        "words: missing lang, by_area; not a word of the report: extra; title must hold {bank},"
        " {end} and {start}, not {bank}; headline must be text that is not blank, not ''"
    )


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b'{"lang": "cy",', "is not JSON: "),
        (b'{"lang": "Cymr\xe6g"}', "is not UTF-8 text"),
    ],
)
def test_a_words_file_that_is_not_json_is_refused(
    db: str, ledger: str, tmp_path: Path, content: bytes, said: str
) -> None:
    words = tmp_path / "words.json"
    words.write_bytes(content)
    page = tmp_path / "report.html"
    out = run(db, "report", "--bank", ledger, "--format", "html", "--words", str(words), "-o",
              str(page), ok=False)  # fmt: skip
    assert f"error: invalid_input: the words file {words} {said}" in out
    assert not page.exists()


def test_a_word_with_dollar_signs_is_drawn_as_written(db: str, ledger: str) -> None:
    """matplotlib reads text between two $ as TeX: a translation's word
    holding them stopped the page on matplotlib's own parse error, or drew
    it as mathematics."""
    words = {**timebank.REPORT_WORDS, "axis_hours_exchanged": "oriau $\\frac$",
             "legend_hours": "$5 a $6"}  # fmt: skip
    with timebank.open(db) as tb:
        page = tb.report_html(ledger, words=words)
    drawn = re.findall(r"<text[^>]*>([^<]*)</text>", page)
    assert "oriau $\\frac$" in drawn
    assert "$5 a $6" in drawn


def test_a_word_is_text_on_the_page_never_markup(db: str, ledger: str) -> None:
    """An app may take a translation from its users: a word holding markup
    is shown as written, in the page and in a chart, never run."""
    words = {**timebank.REPORT_WORDS, "headline": "<b>Prif</b>",
             "period": "<i>{start}</i> {end}", "axis_members": "<script>alert(1)</script>"}  # fmt: skip
    with timebank.open(db) as tb:
        page = tb.report_html(ledger, words=words)
    assert "<script" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert "<h2>&lt;b&gt;Prif&lt;/b&gt;</h2>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the chart's label


def test_words_are_for_the_html_page_only(db: str, ledger: str, tmp_path: Path) -> None:
    words = tmp_path / "words.json"
    words.write_text(json.dumps(dict(timebank.REPORT_WORDS)), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--db", db, "report", "--bank", ledger, "--format", "json", "--words", str(words)]
    )
    assert result.exit_code == 2
    assert "--words is for --format html" in result.output


def _contrast_with_white(colour: str) -> float:
    """WCAG's contrast ratio of ``#rrggbb`` against white."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(int(colour[i : i + 2], 16) / 255) for i in (1, 3, 5))
    return 1.05 / (0.2126 * r + 0.7152 * g + 0.0722 * b + 0.05)


def test_every_colour_the_charts_draw_has_three_to_one_contrast(
    db: str, ledger: str, tmp_path: Path
) -> None:
    """WCAG 2.1's 3:1 for the parts of a chart, against the white page; no
    transparency that would lighten a colour below it."""
    page = tmp_path / "report.html"
    run(db, "report", "--bank", ledger, "--rollup", "--format", "html", "-o", str(page))
    charts = re.findall(r"<svg role=\"img\".*?</svg>", page.read_text(), flags=re.S)
    assert len(charts) == 3
    colours = {c.lower() for svg in charts
               for c in re.findall(r"(?:fill|stroke): *(#[0-9a-fA-F]{6})", svg)}  # fmt: skip
    drawn = colours - {"#ffffff"}  # the charts' background
    assert {"#1d70b8", "#d4351c", "#6f777b"} <= drawn  # the series are in view
    low = {c: round(_contrast_with_white(c), 2) for c in drawn if _contrast_with_white(c) < 3}
    assert low == {}
    assert not any(re.search(r"opacity: *0", svg) for svg in charts)
