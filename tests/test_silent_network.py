"""A PostgreSQL connection that the network drops without a word (docs/storage.md).

A firewall that forgets a connection, a failover that moves the server's
address, or the server's machine switched off sends the client nothing: a
call on that connection hung (measured: still waiting after 400 s).
timebank sets libpq's keepalives and ``tcp_user_timeout`` on every
connection, so such a call fails with ``storage_error`` and changes nothing.

The test cuts a real link. The store is reached through a forwarder on one
end of a virtual Ethernet pair, and the client runs in a network namespace
on its other end. Taking the link down drops every packet without a reset,
as a dead network does; a reset would end the calls at once and test
nothing. Making the namespace needs root, as CI runs.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

import timebank

from .conftest import ACTOR, POSTGRES_URL, new_postgres_schema

#: What the child does in the namespace: it opens the store through the
#: link, says "ready", and after each line from the test runs the next
#: step, printing what happened and how long it took.
CHILD = r"""
import json, sys, time
import timebank
from timebank import errors

tb = timebank.open(sys.argv[1], create=False)
tb.balance("b", "x")  # the pool's and the write lock's connections are made
tb.record_exchange("b", "x", "y", "1", actor="coord-1", occurred_on="2026-01-02")
print("ready", flush=True)

def step(name, call):
    sys.stdin.readline()
    started = time.monotonic()
    try:
        call()
        said = "done"
    except errors.StorageError as e:
        said = f"storage_error: {e}"
    except Exception as e:
        said = f"{type(e).__name__}: {e}"
    print(json.dumps([name, said, time.monotonic() - started]), flush=True)

step("read", lambda: tb.balance("b", "x"))
step("write", lambda: tb.record_exchange("b", "x", "y", "1", actor="coord-1",
                                         occurred_on="2026-01-03", entry_id="lost"))
step("healed", lambda: tb.record_exchange("b", "x", "y", "1", actor="coord-1",
                                          occurred_on="2026-01-04", entry_id="after"))
tb.close()
"""

#: The URL options the child gives, to fail in seconds rather than the
#: defaults' 30 s (the defaults are checked on every connection in
#: test_storage.py, and measured on a cut link in docs/storage.md).
QUICK = "&tcp_user_timeout=2000&keepalives_idle=1&keepalives_interval=1&keepalives_count=2"
#: How long the test waits for a step before calling it a hang.
HANG_S = 60


class Link:
    """A virtual Ethernet pair: ``outer`` (address ``host``) in this
    network namespace, ``inner`` (address ``inside``) in the namespace
    ``namespace``, where the test's client runs."""

    def __init__(self) -> None:
        pid = os.getpid()
        self.namespace = f"timebank-cut-{pid}"
        self.outer, self.inner = f"tbc{pid}h", f"tbc{pid}n"
        # an address pair of its own in the range set aside for tests of
        # networks (RFC 2544), so that two test runs side by side differ
        base = ipaddress.IPv4Address("198.18.0.0") + (pid % 32768) * 4
        self.host, self.inside = str(base + 1), str(base + 2)

    def ip(self, *args: str, inside: bool = False) -> subprocess.CompletedProcess[str]:
        where = ["-n", self.namespace] if inside else []
        return subprocess.run(["ip", *where, *args], capture_output=True, text=True, check=False)

    def make(self) -> str | None:
        """Make the pair; what failed, or None."""
        steps = [
            (["netns", "add", self.namespace], False),
            (["link", "add", self.outer, "type", "veth", "peer", "name", self.inner,
              "netns", self.namespace], False),
            (["addr", "add", f"{self.host}/30", "dev", self.outer], False),
            (["link", "set", self.outer, "up"], False),
            (["addr", "add", f"{self.inside}/30", "dev", self.inner], True),
            (["link", "set", self.inner, "up"], True),
            (["link", "set", "lo", "up"], True),
        ]  # fmt: skip
        for args, inside in steps:
            done = self.ip(*args, inside=inside)
            if done.returncode != 0:
                return f"ip {' '.join(args)}: {done.stderr.strip()}"
        return None

    def cut(self) -> None:
        assert self.ip("link", "set", self.outer, "down").returncode == 0

    def heal(self) -> None:
        assert self.ip("link", "set", self.outer, "up").returncode == 0

    def remove(self) -> None:
        self.ip("netns", "delete", self.namespace)  # its end of the pair, and so the pair
        self.ip("link", "delete", self.outer)  # if the namespace was never made


class Forwarder:
    """Passes every connection made to ``(host, any free port)`` on to
    ``to``, both ways, on an event loop of its own thread, until closed."""

    def __init__(self, host: str, to: tuple[str, int]) -> None:
        self._to = to
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            server = await asyncio.open_connection(*self._to)
        except OSError:
            writer.close()
            return
        self._writers.add(server[1])
        await asyncio.gather(self._pump(reader, server[1]), self._pump(server[0], writer))

    @staticmethod
    async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    def close(self) -> None:
        async def shut() -> None:
            self._server.close()
            pumps = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in self._writers:
                writer.close()
            await asyncio.sleep(0)  # the transports close on the next turn

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


@pytest.fixture
def link() -> Iterator[tuple[Link, int]]:
    """The link, and the port of the forwarder on its outer end."""
    made = Link()
    failed = made.make()
    if failed is not None:
        made.remove()
        if os.environ.get("CI"):
            pytest.fail(f"CI cuts a real link and could not make one: {failed}")
        pytest.skip(f"cannot make a network namespace here (CI runs as root): {failed}")
    assert POSTGRES_URL is not None
    server = urlsplit(POSTGRES_URL)
    forwarder = Forwarder(made.host, (server.hostname or "", server.port or 5432))
    try:
        yield made, forwarder.port
    finally:
        forwarder.close()
        made.remove()


def _lines(stream: Any) -> queue.Queue[str]:
    """The lines of ``stream`` as they come, read by a thread of their own."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.strip())

    threading.Thread(target=read, daemon=True).start()
    return lines


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs scripts/postgres (always there in CI)")
def test_calls_on_a_connection_the_network_dropped_fail_and_change_nothing(
    link: tuple[Link, int],
) -> None:
    """A read and a write on a cut link each fail with ``storage_error``
    within seconds, where both hung; once the link is back the next write
    works, and the failed ones changed nothing."""
    import json

    made, port = link
    url = new_postgres_schema()
    with timebank.open(url) as tb:
        tb.create_bank("b", name="B", actor=ACTOR, opened_on="2026-01-01")
        for member in ("x", "y"):
            tb.join("b", member, kind="individual", actor=ACTOR, joined_on="2026-01-01")
    server = urlsplit(url)
    through = url.replace(server.netloc, f"{server.username}@{made.host}:{port}", 1) + QUICK
    with subprocess.Popen(
        ["ip", "netns", "exec", made.namespace, sys.executable, "-c", CHILD, through],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as child:  # fmt: skip
        lines = _lines(child.stdout)

        def go() -> None:
            """The child's next step."""
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()

        def said(name: str) -> tuple[str, float]:
            """What the step ``name`` did, and in how many seconds."""
            try:
                step, what, seconds = json.loads(lines.get(timeout=HANG_S))
            except queue.Empty:
                child.kill()
                pytest.fail(f"the {name} still waited after {HANG_S} s on a cut link")
            assert step == name
            return what, seconds

        try:
            assert lines.get(timeout=HANG_S) == "ready"
            made.cut()
            for name in ("read", "write"):
                go()
                what, seconds = said(name)
                assert what.startswith("storage_error: "), what
                assert seconds < HANG_S / 3, (name, seconds)  # the options give 2 s
            made.heal()
            # the connections the cut ended (the keepalives found them dead)
            # are replaced before they are used: the next write works
            go()
            assert said("healed")[0] == "done"
            assert child.wait(timeout=HANG_S) == 0
        finally:
            child.kill()
    with timebank.open(url, create=False) as tb:
        # the exchange before the cut and the one after it; the lost write is not there
        assert [e.entry_id for e in tb.entries("b")][1:] == ["after"]
        assert tb.balance("b", "x") == 120
        assert tb.audit().ok
