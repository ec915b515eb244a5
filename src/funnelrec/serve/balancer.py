"""``funnelrec serve --workers N``: one process accepts, ``N`` worker processes serve, and the
connections are dealt to the workers in turn (round robin), as Node's cluster module does.

Why not the usual shared listening socket (uvicorn's and gunicorn's ``--workers``)? There the
kernel wakes whichever worker is waiting, and an event loop accepts every pending connection
it finds at once. Clients that open a pool of keep-alive connections together (a load
generator, an API gateway's upstream pool) then land unevenly and stay so (six opened at once
all went to one of two workers: ``tests/serve/test_multiworker.py``), and the worker holding
the larger share sets the tail latency. Dealing the connections in turn gives each worker its
share (3/3; wrk's 50: 25/25, ``benchmarks/serve.py`` prints the split of every run).

The balancer binds the port and passes each accepted socket to the next live worker over a
Unix socket pair (``SCM_RIGHTS``); the worker (``run_worker``) hands it to uvicorn's HTTP
protocol as if it had accepted it itself. A worker that dies is started again; SIGTERM or
SIGINT stops the workers (each finishes its requests, as uvicorn does) and then the balancer.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn

from funnelrec.errors import FunnelError

log = logging.getLogger(__name__)

READY = b"R"  # a worker's first byte on its channel: started, ready for connections


def supported() -> bool:
    """Whether sockets can be passed between processes here (``SCM_RIGHTS``: not Windows)."""
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


@dataclass
class Worker:
    """One worker process, the balancer's end of its channel, and whether it said it is
    ready (only ready workers are dealt connections)."""

    proc: subprocess.Popen[bytes]
    channel: socket.socket
    started: float
    ready: bool = False

    def poll_ready(self, block: bool = False) -> bool:
        """Whether the worker is ready (reads its ``READY`` byte once it comes); with
        ``block``, wait for it and raise if the worker exits first."""
        if not self.ready:
            self.channel.setblocking(block)
            try:
                data = self.channel.recv(1)
            except BlockingIOError:
                return False
            finally:
                self.channel.setblocking(True)
            if data != READY:  # b"": it exited during start-up
                if block:
                    raise FunnelError(
                        f"a serve worker exited during start-up (exit code {self.proc.wait()}; "
                        "its error is above)"
                    )
                return False
            self.ready = True
        return True


def spawn_worker() -> Worker:
    """A worker process (``python -m funnelrec.serve.workers --channel FD``), its settings
    from the environment; ready once ``Worker.poll_ready``."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    cmd = [sys.executable, "-m", "funnelrec.serve.workers", "--channel", str(theirs.fileno())]
    proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(),))
    theirs.close()
    return Worker(proc, ours, time.monotonic())


class Balancer:
    """The worker pool and whose turn it is."""

    RESTART_EVERY_S = 1.0  # at most one restart of a slot per second (a worker that cannot start)

    def __init__(self, workers: int) -> None:
        self.pool = [spawn_worker() for _ in range(workers)]  # they load in parallel
        self.turn = 0
        try:
            for worker in self.pool:
                worker.poll_ready(block=True)
        except BaseException:
            self.stop()
            raise

    def deal(self, conn: socket.socket) -> bool:
        """Pass ``conn`` to the next ready worker that takes it; ``False`` if none did."""
        n = len(self.pool)
        for step in range(n):
            i = (self.turn + step) % n
            worker = self.pool[i]
            if not worker.poll_ready():
                continue
            try:
                socket.send_fds(worker.channel, [b"c"], [conn.fileno()])
            except OSError:  # that worker is gone; replace_dead starts another
                continue
            self.turn = (i + 1) % n
            return True
        return False

    def replace_dead(self) -> None:
        """Start a new worker in the slot of each one that exited (it loads in the background,
        the others keep serving)."""
        for i, worker in enumerate(self.pool):
            if worker.proc.poll() is None:
                continue
            if time.monotonic() - worker.started < self.RESTART_EVERY_S:
                continue
            code = worker.proc.returncode
            log.error("funnelrec: worker %d exited (%s); starting another", i, code)
            worker.channel.close()
            self.pool[i] = spawn_worker()

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM every worker (each finishes its requests), SIGKILL after ``grace_s``."""
        for worker in self.pool:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for worker in self.pool:
            try:
                worker.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            worker.channel.close()


def serve_balanced(
    host: str, port: int, workers: int, log_level: str = "info", backlog: int = 2048
) -> None:
    """Bind ``host:port``, start ``workers`` workers and deal them the connections in turn
    until SIGTERM/SIGINT."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(message)s")
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family, backlog=backlog) as listener:
            listener.settimeout(0.5)  # wake up to notice dead workers and signals
            balancer = Balancer(workers)
            log.info("funnelrec: %d workers on http://%s:%d", workers, host, port)
            try:
                while not stopping:
                    balancer.replace_dead()
                    try:
                        conn, _ = listener.accept()
                    except TimeoutError:
                        continue
                    with conn:  # our copy closes; the worker's stays open
                        while not balancer.deal(conn) and not stopping:
                            time.sleep(0.05)  # every worker restarting: wait for one
                            balancer.replace_dead()
            finally:
                balancer.stop()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_worker(channel_fd: int) -> None:
    """A worker: the app from the ``FUNNELREC_*`` environment behind uvicorn, serving the
    connections the balancer passes over ``channel_fd`` (no listening socket of its own)."""
    from funnelrec.serve.app import create_app
    from funnelrec.serve.settings import load_settings

    channel = socket.socket(fileno=channel_fd)
    try:
        settings = load_settings()
        api = create_app(settings)
    except (FunnelError, FileNotFoundError) as exc:  # one line, as the CLI prints it
        sys.exit(f"error: {exc}")
    config = uvicorn.Config(
        api, log_level=settings.log_level, access_log=settings.log_level == "debug"
    )
    ChannelServer(config, channel).run()


class ChannelServer(uvicorn.Server):
    """uvicorn's server with no listener: after start-up (lifespan) it reads passed sockets
    from ``channel`` and opens uvicorn's HTTP protocol on each, as its own listener would
    (``loop.connect_accepted_socket``); shutdown, keep-alive and limits work as usual."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self._opening: set[asyncio.Task[Any]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])
        if not self.should_exit:
            loop = asyncio.get_running_loop()
            self.channel.setblocking(False)
            loop.add_reader(self.channel.fileno(), self._take_sockets, loop)
            self.channel.send(READY)

    def _protocol(self, loop: asyncio.AbstractEventLoop) -> asyncio.Protocol:
        """What uvicorn's own listener builds for each connection."""
        config = self.config
        return config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
        )

    def _take_sockets(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:  # one message per passed socket
            try:
                data, fds, _, _ = socket.recv_fds(self.channel, 16, 1)
            except (BlockingIOError, InterruptedError):
                return
            if not data:  # the balancer is gone: stop as on SIGTERM
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            for fd in fds:
                sock = socket.socket(fileno=fd)
                sock.setblocking(False)
                opening = loop.create_task(
                    loop.connect_accepted_socket(lambda: self._protocol(loop), sock)
                )
                self._opening.add(opening)
                opening.add_done_callback(self._opening.discard)


def worker_main(argv: list[str] | None = None) -> None:
    """``python -m funnelrec.serve.workers --channel FD``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--channel":
        sys.exit("usage: python -m funnelrec.serve.workers --channel FD")
    run_worker(int(args[1]))
