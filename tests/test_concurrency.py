"""Several writers at once: nothing lost, nothing doubled, zero sum kept,
and no limit passed however their commands interleave (the double-spend
race). Killed writers are in test_crash.py.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import timebank
from timebank import errors

from .conftest import ACTOR, BACKENDS, fixed_clock, new_postgres_schema

MEMBERS = ["a", "b", "c", "d"]


def setup_bank(tb: timebank.Timebank, bank: str = "busy") -> None:
    tb.create_bank(bank, name="Busy", actor=ACTOR, opened_on="2026-01-01")
    for member in MEMBERS:
        tb.join(bank, member, kind="individual", actor=ACTOR, joined_on="2026-01-01")


def record_many(tb: timebank.Timebank, writer: int, count: int, bank: str = "busy") -> None:
    for n in range(count):
        provider, receiver = MEMBERS[n % 4], MEMBERS[(n + 1 + writer) % 4]
        if provider == receiver:
            receiver = MEMBERS[(n + 2) % 4]
        tb.record_exchange(bank, provider, receiver, minutes=writer + 1, actor=ACTOR,
                           entry_id=f"w{writer}-{n}")  # fmt: skip


def expected_balances(writers: int, count: int) -> dict[str, int]:
    balances = dict.fromkeys(MEMBERS, 0)
    for writer in range(writers):
        for n in range(count):
            provider, receiver = MEMBERS[n % 4], MEMBERS[(n + 1 + writer) % 4]
            if provider == receiver:
                receiver = MEMBERS[(n + 2) % 4]
            balances[provider] += writer + 1
            balances[receiver] -= writer + 1
    return balances


def test_threads_sharing_one_store_lose_nothing(tb: timebank.Timebank) -> None:
    setup_bank(tb)
    threads = [threading.Thread(target=record_many, args=(tb, w, 50)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = {b.account: b.balance_minutes for b in tb.balances("busy") if b.kind == "individual"}
    assert got == expected_balances(4, 50)
    assert tb._app.index.count_entries() == 200


def test_a_store_closed_while_a_thread_uses_it_lets_that_call_finish(
    reopen: Callable[[], timebank.Timebank], tmp_path: Path
) -> None:
    """``close()`` waits for the call another thread is running (an import,
    held here at its first progress call): closing under it failed that
    import with a raw ``OSError`` (its write lock's file closed). Every
    call after is ``StoreClosed``; closing again does nothing."""
    tb = reopen()
    setup_bank(tb)
    rows = [
        {"entry_id": f"c{n}", "occurred_on": "2026-02-01", "kind": "exchange",
         "provider": "a", "receiver": "b", "hours": "0:01", "bank": "busy"}
        for n in range(2000)
    ]  # fmt: skip
    inside, closing = threading.Event(), threading.Event()

    def progress(done: int) -> None:
        inside.set()
        closing.wait(10)

    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(tb.import_entries(rows, actor=ACTOR, progress=progress))
        except Exception as e:  # what the import met is the finding
            outcome.append(e)

    importer = threading.Thread(target=run)
    importer.start()
    assert inside.wait(10)
    closer = threading.Thread(target=tb.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # it waits for the import
    closing.set()
    importer.join(20)
    closer.join(20)
    (result,) = outcome
    assert isinstance(result, timebank.ImportResult), result
    assert result.recorded == 2000
    for call in (lambda: tb.balance("busy", "a"), lambda: tb.read_model,
                 lambda: tb.backup(tmp_path / "unwritten.db"), tb.banks):  # fmt: skip
        with pytest.raises(errors.StoreClosed, match="was closed: open it again"):
            call()
    assert not (tmp_path / "unwritten.db").exists()
    tb.close()
    with reopen() as again:
        assert again.balance("busy", "a") == 2000


def _process(url: str, writer: int, count: int, banks: int) -> None:
    with timebank.open(url, clock=fixed_clock) as tb:
        record_many(tb, writer, count, f"busy{writer % banks}")
        # Every entry id again: idempotent, even while other processes write.
        record_many(tb, writer, count, f"busy{writer % banks}")


@pytest.mark.parametrize("banks", [1, 4], ids=["one bank", "four banks"])
@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_processes_writing_at_once_lose_nothing_and_double_nothing(
    kind: str, banks: int, tmp_path: Path
) -> None:
    """4 processes record 40 entries each (and send each again), into one
    bank or four; every entry is there exactly once and every bank balances."""
    url = f"sqlite:///{tmp_path / 'busy.db'}" if kind == "sqlite" else new_postgres_schema()
    with timebank.open(url, clock=fixed_clock) as tb:
        for bank in range(banks):
            setup_bank(tb, f"busy{bank}")
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process, args=(url, w, 40, banks)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    with timebank.open(url, clock=fixed_clock) as tb:
        got: dict[str, int] = dict.fromkeys(MEMBERS, 0)
        for row in tb.balances():
            if row.kind == "individual":
                got[row.account] += row.balance_minutes
        assert got == expected_balances(4, 40)
        assert tb._app.index.count_entries() == 160
        tb.check_invariants()
        for writer in range(4):
            for n in range(40):
                entry = tb.entry(f"w{writer}-{n}")
                assert (entry.minutes, entry.bank) == (writer + 1, f"busy{writer % banks}")


def test_a_cached_bank_sees_what_another_process_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'two.db'}"
    first: Callable[[], timebank.Timebank] = lambda: timebank.open(url, clock=fixed_clock)  # noqa: E731
    with first() as one, first() as two:
        setup_bank(one)
        assert two.balance("busy", "a") == 0  # now cached in `two`
        one.record_exchange("busy", "a", "b", "1", actor=ACTOR)
        assert two.balance("busy", "a") == 60
        two.record_exchange("busy", "b", "a", "2", actor=ACTOR)
        assert one.balance("busy", "a") == -60


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_report_and_an_export_read_one_moment_while_another_process_catches_up(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two handles on one store share its read model. While one builds a
    report (many queries) or an export (three tables), the other records an
    exchange and catches the shared read model up between the first's
    queries: what the first returns is still the read model as of one
    moment, equal to what it returned just before."""
    from .conftest import POSTGRES_URL, open_store

    if kind == "postgres" and POSTGRES_URL is None:
        pytest.skip("no PostgreSQL server (CI always has one)")
    opener = open_store(kind, tmp_path)
    with opener() as reader, opener() as writer:
        setup_bank(reader)
        record_many(reader, 0, 6)
        before = reader.report("busy", end="2026-12-31")
        model = reader.read_model
        db, real_execute, real_catch_up = model.db, model.db.execute, model.catch_up
        pending: list[str] = []  # an exchange for the other handle to make
        caught_up = []  # the reader caught up: its next query is the read's first

        def catch_up(*args, **kwargs):  # type: ignore[no-untyped-def]
            position = real_catch_up(*args, **kwargs)
            caught_up.append(True)
            return position

        def execute(sql: str, params=()):  # type: ignore[no-untyped-def]
            rows = real_execute(sql, params)
            if caught_up and pending:  # after the read's first query
                writer.record_exchange("busy", "a", "b", "1", actor=ACTOR, entry_id=pending.pop())
                writer.read_model.catch_up()
            return rows

        def meanwhile(entry_id: str) -> None:
            pending.append(entry_id)
            caught_up.clear()
            monkeypatch.setattr(db, "execute", execute)
            monkeypatch.setattr(model, "catch_up", catch_up)

        meanwhile("meanwhile-1")
        assert reader.report("busy", end="2026-12-31") == before
        assert not pending  # the other handle did write in the middle
        monkeypatch.undo()
        exported = _export(reader)
        assert "meanwhile-1" in exported[1]
        meanwhile("meanwhile-2")
        assert _export(reader) == exported
        assert not pending
        monkeypatch.undo()
        # and the next read sees both exchanges made meanwhile
        after = reader.report("busy", end="2026-12-31")
        assert after.exchanges == before.exchanges + 2


def _export(tb: timebank.Timebank) -> tuple[str, str]:
    import io

    members, entries = io.StringIO(), io.StringIO()
    tb.export_csv(members, entries)
    return members.getvalue(), entries.getvalue()


RACERS = 4
ROUNDS = 15


def _race(url: str, racer: int, barrier: Any, results: Any) -> None:
    """Each round, at once with the other racers: spend all of one member's
    credit down to their floor, and pay for help with the whole pot."""
    with timebank.open(url, clock=fixed_clock) as tb:
        for round_ in range(ROUNDS):
            barrier.wait()
            outcomes = [
                _outcome(tb.record_exchange, "race", "giver", f"r{round_}", minutes=120,
                         actor=ACTOR, entry_id=f"x{round_}-{racer}"),
                _outcome(tb.record_pot_exchange, "race", "giver", "helped", minutes=60,
                         actor=ACTOR, entry_id=f"p{round_}-{racer}"),
            ]  # fmt: skip
            results.put((round_, racer, tuple(outcomes)))


def _outcome(command: Callable[..., object], *args: object, **kwargs: object) -> str:
    try:
        command(*args, **kwargs)
    except errors.RuleViolation as e:
        return e.code
    return "recorded"


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_racing_writers_never_spend_past_a_floor_nor_overdraw_the_pot(
    kind: str, tmp_path: Path
) -> None:
    """The double-spend race: four processes at a barrier each try, at
    once, to take a member from 0 to their floor of -2 hours, and to pay 1
    hour of help from a pot that holds 1 hour. Every round, exactly one of
    each succeeds and the others are refused by the rule, whatever the
    interleaving; the balances and the pot end where one success puts them."""
    url = f"sqlite:///{tmp_path / 'race.db'}" if kind == "sqlite" else new_postgres_schema()
    limits = timebank.BalanceLimits(lowest_minutes=-120, highest_minutes=None)
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("race", name="Race", actor=ACTOR, opened_on="2026-01-01",
                       policy=timebank.Policy(individual=limits))  # fmt: skip
        for member in ["giver", "helped", *(f"r{n}" for n in range(ROUNDS))]:
            tb.join("race", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(RACERS + 1), context.Queue()
    racers = [context.Process(target=_race, args=(url, n, barrier, results)) for n in range(RACERS)]
    for racer in racers:
        racer.start()
    with timebank.open(url, clock=fixed_clock) as tb:
        outcomes: dict[int, list[tuple[str, ...]]] = {}
        for round_ in range(ROUNDS):
            # a pot of exactly 1 hour for this round (the giver's donation)
            tb.donate("race", "giver", minutes=60, actor=ACTOR, entry_id=f"d{round_}")
            barrier.wait(timeout=60)
            outcomes[round_] = [results.get(timeout=60)[2] for _ in range(RACERS)]
            assert tb.balance("race", f"r{round_}") == -120
            assert tb.balance("race", "@pot") == 0
        for racer in racers:
            racer.join(timeout=60)
        assert [r.exitcode for r in racers] == [0] * RACERS
        for round_, got in outcomes.items():
            spends = sorted(o[0] for o in got)
            pays = sorted(o[1] for o in got)
            assert spends == ["balance_limit_exceeded"] * (RACERS - 1) + ["recorded"], round_
            assert pays == ["pot_overdrawn"] * (RACERS - 1) + ["recorded"], round_
        tb.check_invariants()
        assert tb.audit().ok


def _same_id(url: str, scenario: str, racer: int, barrier: Any, results: Any) -> None:
    """Each round, at once with the other racers, this racer's call on the
    round's entry id (``_USES``), and its outcome: "took it", or the code of
    its refusal."""
    with timebank.open(url, clock=fixed_clock) as tb:
        for round_ in range(ROUNDS):
            barrier.wait(timeout=60)
            try:
                _USES[scenario](tb, racer, f"id{round_}", round_)
                outcome = "took it"
            except errors.TimebankError as e:  # any refusal; the test says which may come
                outcome = e.code
            results.put((round_, racer, outcome))


def _use(tb: timebank.Timebank, racer: int, entry_id: str, round_: int) -> None:
    """Four uses of one id: an exchange, a proposal, a leaving that donates
    under it, a donation."""
    if racer == 0:
        tb.record_exchange("ids", "a", "b", minutes=30, actor=ACTOR, entry_id=entry_id)
    elif racer == 1:
        tb.propose("ids", "exchange", "c", "d", minutes=30, actor="c", entry_id=entry_id)
    elif racer == 2:
        tb.leave("ids", f"l{round_}", actor=ACTOR, donation_id=entry_id)
    else:
        tb.donate("ids", "a", minutes=1, actor=ACTOR, entry_id=entry_id)


def _settle(tb: timebank.Timebank, racer: int, entry_id: str, round_: int) -> None:
    """Four ends of c's pending proposal to d: d confirms it, c withdraws it,
    d declines it, a coordinator records an exchange under its id."""
    if racer == 0:
        tb.confirm(entry_id, actor="d")
    elif racer == 1:
        tb.decline(entry_id, actor="c")
    elif racer == 2:
        tb.decline(entry_id, actor="d")
    else:
        tb.record_exchange("ids", "a", "b", minutes=30, actor=ACTOR, entry_id=entry_id)


def _reverse(tb: timebank.Timebank, racer: int, entry_id: str, round_: int) -> None:
    """Each racer reverses the entry, with a reversal id of its own."""
    tb.reverse(entry_id, actor=ACTOR, reversal_id=f"{entry_id}-undo-{racer}")


_USES: dict[str, Callable[[timebank.Timebank, int, str, int], None]] = {
    "use": _use,
    "settle": _settle,
    "reverse": _reverse,
}


def _race_for_ids(url: str, scenario: str) -> dict[int, dict[int, str]]:
    """Round -> racer -> outcome, of ``RACERS`` processes racing ``ROUNDS``
    rounds of ``scenario``."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(RACERS), context.Queue()
    racers = [
        context.Process(target=_same_id, args=(url, scenario, n, barrier, results))
        for n in range(RACERS)
    ]
    for racer in racers:
        racer.start()
    got: dict[int, dict[int, str]] = {}
    try:
        for _ in range(ROUNDS * RACERS):
            round_, who, outcome = results.get(timeout=60)
            got.setdefault(round_, {})[who] = outcome
    finally:
        for racer in racers:
            racer.join(timeout=60)
            racer.kill()  # one that is stuck (a failed run) must not hold the suite up
    assert [r.exitcode for r in racers] == [0] * RACERS
    return got


def _ids_bank(url: str) -> None:
    """Bank "ids", donating a leaver's balance, with a, b, c, d and the
    leavers l0, l1, ..., each with an hour to donate."""
    with timebank.open(url, clock=fixed_clock) as tb:
        tb.create_bank("ids", name="Ids", actor=ACTOR, opened_on="2026-01-01",
                       policy=timebank.Policy(on_leave="donate"))  # fmt: skip
        leavers = [f"l{n}" for n in range(ROUNDS)]
        for member in ["a", "b", "c", "d", *leavers]:
            tb.join("ids", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
        for member in leavers:
            tb.record_exchange("ids", member, "b", minutes=60, actor=ACTOR,
                               occurred_on="2026-02-01")  # fmt: skip


def _one_winner(got: dict[int, dict[int, str]], refusals: set[str]) -> dict[int, int]:
    """Round -> the one racer that took the id, the others refused only with
    ``refusals``."""
    winners = {round_: [r for r, o in sorted(outcomes.items()) if o == "took it"]
               for round_, outcomes in got.items()}  # fmt: skip
    assert all(len(w) == 1 for w in winners.values()), winners
    refused = {o for outcomes in got.values() for o in outcomes.values()} - {"took it"}
    assert refused <= refusals, got
    return {round_: w[0] for round_, w in winners.items()}


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_racing_writers_never_use_one_entry_id_twice(kind: str, tmp_path: Path) -> None:
    """Four processes at a barrier each use the same entry id at once, each
    in another way: an exchange, a proposal, a leaving whose balance is
    donated to the pot under that id, a donation. Every round exactly one
    takes the id and the others are refused with ``EntryConflict``; the
    audit, which names an id that names two things, is clean."""
    url = f"sqlite:///{tmp_path / 'ids.db'}" if kind == "sqlite" else new_postgres_schema()
    _ids_bank(url)
    winners = _one_winner(_race_for_ids(url, "use"), {"entry_conflict"})
    with timebank.open(url, clock=fixed_clock) as tb:
        pending = [p.entry_id for p in tb.pending("ids")]
        for round_, winner in winners.items():
            left = tb.member("ids", f"l{round_}").status == "left"
            assert left == (winner == 2), round_
            assert (f"id{round_}" in pending) == (winner == 1), round_
            if winner != 1:
                entry = tb.entry(f"id{round_}")
                assert entry.provider == ["a", "c", f"l{round_}", "a"][winner], round_
        tb.check_invariants()
        report = tb.audit()
        assert report.ok, report.summary()


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_racing_writers_settle_a_proposal_once(kind: str, tmp_path: Path) -> None:
    """Four processes at a barrier each end the same pending proposal at
    once: its confirmer confirms it, its proposer withdraws it, its
    confirmer declines it, a coordinator records an exchange under its id.
    Every round exactly one of the first three takes effect, the others are
    refused (``PendingEntryNotFound``, ``EntryConflict``), and the store
    holds what that one did; the audit is clean."""
    url = f"sqlite:///{tmp_path / 'ids.db'}" if kind == "sqlite" else new_postgres_schema()
    _ids_bank(url)
    with timebank.open(url, clock=fixed_clock) as tb:
        for round_ in range(ROUNDS):
            tb.propose("ids", "exchange", "c", "d", minutes=1, actor="c", entry_id=f"id{round_}")
    got = _race_for_ids(url, "settle")
    winners = _one_winner(got, {"pending_entry_not_found", "entry_conflict"})
    assert 3 not in winners.values()
    with timebank.open(url, clock=fixed_clock) as tb:
        assert tb.pending("ids") == []
        confirmed = [r for r, w in winners.items() if w == 0]
        assert tb.balance("ids", "c") == len(confirmed)  # a minute a confirmed round
        for round_, winner in winners.items():
            if winner == 0:
                assert tb.entry(f"id{round_}").provider == "c"
            else:
                with pytest.raises(errors.EntryNotFound) as declined:
                    tb.entry(f"id{round_}")
                assert f"declined by {['c', 'd'][winner - 1]!r}" in str(declined.value)
        tb.check_invariants()
        report = tb.audit()
        assert report.ok, report.summary()


@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_racing_writers_reverse_an_entry_once(kind: str, tmp_path: Path) -> None:
    """Four processes at a barrier each reverse the same entry at once,
    each with a reversal id of its own: every round exactly one reverses
    it, the others are refused with ``AlreadyReversed``, and the balances
    are as one reversal leaves them."""
    url = f"sqlite:///{tmp_path / 'ids.db'}" if kind == "sqlite" else new_postgres_schema()
    _ids_bank(url)
    with timebank.open(url, clock=fixed_clock) as tb:
        for round_ in range(ROUNDS):
            tb.record_exchange("ids", "c", "d", minutes=1, actor=ACTOR, entry_id=f"id{round_}")
        assert tb.balance("ids", "c") == ROUNDS
    winners = _one_winner(_race_for_ids(url, "reverse"), {"already_reversed"})
    with timebank.open(url, clock=fixed_clock) as tb:
        assert tb.balance("ids", "c") == 0
        for round_, winner in winners.items():
            assert tb.entry(f"id{round_}").reversed_by == f"id{round_}-undo-{winner}"
        tb.check_invariants()
        report = tb.audit()
        assert report.ok, report.summary()


def _keep_recording(url: str, started: Any, stop: Any) -> None:
    """Exchanges in two banks, and between them, and donations to the
    first bank's pot, until told to stop."""
    with timebank.open(url, clock=fixed_clock) as tb:
        n = 0
        while not stop.is_set():
            bank = f"busy{n % 2}"
            tb.record_exchange(bank, MEMBERS[n % 4], MEMBERS[(n + 1) % 4], minutes=1,
                               actor=ACTOR)  # fmt: skip
            if n % 5 == 0:  # an inter-bank entry: both banks' clearing accounts move
                tb.record_exchange("busy0", "a", "b", minutes=2, actor=ACTOR,
                                   receiver_bank="busy0/hub")  # fmt: skip
                tb.donate("busy0", "a", minutes=1, actor=ACTOR)  # a gains 3 minutes a round
            n += 1
            if n == 20:
                started.set()


def _busy_store(kind: str, tmp_path: Path) -> str:
    """A store of two banks and a mini bank of the first, for
    ``_keep_recording``; its URL."""
    url = f"sqlite:///{tmp_path / 'busy.db'}" if kind == "sqlite" else new_postgres_schema()
    with timebank.open(url, clock=fixed_clock) as tb:
        setup_bank(tb, "busy0")
        setup_bank(tb, "busy1")
        tb.create_bank("busy0/hub", name="Hub", actor=ACTOR, opened_on="2026-01-01")
        tb.join("busy0/hub", "b", kind="individual", actor=ACTOR, joined_on="2026-01-01")
        record_many(tb, 0, 1500, "busy1")  # an audit long enough to be written through
    return url


def _beside_a_writer(
    url: str, check: Callable[[timebank.Timebank], None], overlaps: int, calls: int
) -> None:
    """``check`` the store at ``url`` again and again while another process
    keeps recording (``_keep_recording``), until ``overlaps`` of the checks
    had entries recorded while they ran (in at most ``calls`` checks)."""
    context = multiprocessing.get_context("spawn")
    started, stop = context.Event(), context.Event()
    writer = context.Process(target=_keep_recording, args=(url, started, stop))
    writer.start()
    try:
        assert started.wait(timeout=60)
        with timebank.open(url, clock=fixed_clock) as tb:
            overlapped = 0
            for _ in range(calls):
                before = tb._app.recorder.max_notification_id()
                check(tb)
                overlapped += before < tb._app.recorder.max_notification_id()
                if overlapped == overlaps:
                    break
            assert overlapped == overlaps
    finally:
        stop.set()
        writer.join(timeout=60)
    assert writer.exitcode == 0


@pytest.mark.slow
@pytest.mark.parametrize("tries", [3, 0], ids=["between commits", "under the write lock"])
@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_an_audit_while_another_process_records_is_of_one_moment(
    kind: str, tries: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The banks as the store loads them and the replay of the log are of
    the same moment, however many entries another process records while
    the audit runs: the audit is clean every time (it found the banks
    'differing from a replay of the log' when the replay read on to
    entries recorded after the banks were loaded). So are the banks that
    ``check_invariants`` compares and every bank's ``balances``. ``tries``
    0 loads the banks under the store's write lock at once."""
    monkeypatch.setattr(timebank.api, "MOMENT_TRIES", tries)

    def check(tb: timebank.Timebank) -> None:
        report = tb.audit(read_model=False)
        assert report.ok, report.summary()
        assert report.events <= tb._app.recorder.max_notification_id()
        tb.check_invariants()  # the clearing accounts of one moment cancel
        clearing = [b.balance_minutes for b in tb.balances() if b.kind == "clearing"]
        assert len(clearing) == 2
        assert sum(clearing) == 0

    _beside_a_writer(_busy_store(kind, tmp_path), check, overlaps=5, calls=40)


@pytest.mark.slow
@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_figures_rolled_up_while_another_process_records_are_of_one_moment(
    kind: str, tmp_path: Path
) -> None:
    """A bank's figures rolled up over its mini bank count the entries of
    the banks as loaded, however many another process records meanwhile:
    the pot's balance (from the loaded banks) equals the donations (counted
    from their entries). Before, the entries were read on past the loaded
    banks."""

    def check(tb: timebank.Timebank) -> None:
        figures = tb.figures("busy0", rollup=True)
        assert figures.banks == ("busy0", "busy0/hub")
        assert figures.pot_balance_minutes == figures.donated_to_pot_minutes > 0

    _beside_a_writer(_busy_store(kind, tmp_path), check, overlaps=50, calls=2000)


@pytest.mark.slow
@pytest.mark.parametrize("tries", [3, 0], ids=["between commits", "under the write lock"])
@pytest.mark.parametrize("kind", [k for k in BACKENDS if k != "memory"])
def test_a_subject_access_while_another_process_records_is_of_one_moment(
    kind: str, tries: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a subject access finds about a member who keeps taking part in
    entries is of one moment: each bank's statement (from the read model)
    ends at the balance of the membership (from the bank as loaded), and
    holds exactly the entries of the events naming the member there (from
    the log). Before, the read model was caught up and the log read on
    after the banks were loaded."""
    monkeypatch.setattr(timebank.api, "MOMENT_TRIES", tries)

    def check(tb: timebank.Timebank) -> None:
        found = tb.subject_access("a")
        balances = {m.bank: m.balance_minutes for m in found.memberships}
        assert set(balances) == {"busy0", "busy1"}
        for bank, balance in balances.items():
            lines = found.statements[bank]
            assert lines[-1].balance_minutes == balance
            named = {e.entry_id for e in found.events if e.bank == bank and e.entry_id}
            assert {line.entry_id for line in lines} == named

    _beside_a_writer(_busy_store(kind, tmp_path), check, overlaps=10, calls=500)
