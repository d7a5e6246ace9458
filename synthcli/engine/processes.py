"""The processes executor: modules run in pre-warmed worker processes over
shared memory, so a module that crashes or hangs cannot stop the music.

Per block the engine writes the block number down each busy worker's "go"
pipe, runs its own partition (the master and other built-ins), then waits
on each worker's "done" pipe. Pipes wake a process as fast as anything
measured here (docs/performance.md, Executors) and, unlike a semaphore, a dead worker
shows up as end-of-file at once. Audio never crosses a pipe: it stays in
the board. Rare messages (assignments, notes, state) use a
multiprocessing connection.

Waking a sleeping process costs 47-65 us here, which is all the DSP of a
light patch. Offline, with a core for each process, both sides therefore
first poll their pipe without sleeping (a read that returns at once when
nothing is there, then ``sched_yield``) for up to SPIN_SECONDS: a round
trip then takes 2 us (benchmarks/executors.py). Live play never spins:
there the other processes (the audio callback, JACK) need the cores, and
a wake-up is 1% of a block.

Workers are forked from the engine after every kernel has been compiled,
before any audio or network thread exists, plus one warm spare. A worker
that dies or misses its deadline is killed, its modules are silenced, and
the spare takes them over with their last saved state at the next block; a
new spare comes from a forkserver in the background, which has imported and
warmed every kernel (``prewarm``), so a spare costs a fork and no more. For
live play the forkserver is started, and the first spare taken from it,
before the audio starts: its second of start-up CPU caused xruns when it
ran beside the music on a 2-core machine.
"""
from __future__ import annotations

import atexit
import faulthandler
import itertools
import multiprocessing as mp
import queue
from multiprocessing import forkserver, resource_tracker
import os
import pickle
import select
import signal
import struct
import sys
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import exit_reason
from ..plugins import BUILTIN_PACKAGE, Registry, quiet_child
from .board import ABANDONED, Board, pauses, unlink
from .core import default_workers
from .partition import assign, builtin, cost_model, spins
from .schedule import Schedule
from .steps import Host, Step, measured_costs, run_step

_BLOCK = struct.Struct("q")
#: A worker late while runnable that ran for less than this share of the
#: time since its "go" was starved of CPU by other programs (ProcessExecutor._starved).
STARVED_RAN = 0.25
#: Seconds a starved worker may stay behind, finishing its late block,
#: before it is taken for hung after all and replaced.
BEHIND_LIMIT = 0.5
#: A "go" that means "read the control connection", not "run a block".
_CONTROL = -1
#: Seconds of audio between snapshots of module state (what a replacement
#: worker restores after a crash).
SNAPSHOT_EVERY = 1.0
#: A module whose state is larger than this (a long delay line, say) is left
#: out of snapshots and restarts empty after a crash: pickling and piping
#: 4.5 MB of a 6-voice delay took 22 ms here, an xrun every second.
SNAPSHOT_LIMIT = 256 * 1024
#: Bounded wait for replies to control messages (assign, snapshot).
CONTROL_TIMEOUT = 5.0
#: Longest a spinning side polls its pipe before it sleeps in poll().
SPIN_SECONDS = 0.001
#: Seconds after a recovery before a new spare is started: a forkserver
#: child re-imports the parent's main module, and that burst of CPU landing
#: on the recovery itself caused an xrun in 1 of 4 tries on 2 cores.
REFILL_DELAY = 2.0


def _forget_forkserver() -> None:
    """A forked child inherits its parent's record of a running forkserver,
    which is not the child's own child (waitpid on it fails): start afresh."""
    server = forkserver._forkserver
    server._forkserver_pid = server._forkserver_address = server._forkserver_alive_fd = None
    server._lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_forkserver)


# -- the worker side ------------------------------------------------------------

def poll_ms(seconds: float) -> int:
    """A poll() timeout that ends by ``seconds``: poll counts whole
    milliseconds and Python rounds a fraction up, which kept a worker past
    its deadline waited for up to a millisecond more."""
    return max(0, int(seconds * 1000))


def _read_soon(fd: int, size: int, timeout: float | None) -> bytes | None:
    """Read from a non-blocking pipe: poll it without sleeping for up to
    SPIN_SECONDS, then sleep until data comes or ``timeout`` (seconds, None
    for ever) runs out, which returns None. End of file returns b"". A
    ``timeout`` shorter than the spin ends it: a worker past its deadline
    was waited for a millisecond more, which the whole mix paid for."""
    spin = SPIN_SECONDS if timeout is None else min(SPIN_SECONDS, timeout)
    give_up = time.perf_counter() + spin
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            pass
        if time.perf_counter() > give_up:
            break
        os.sched_yield()
    waiter = select.poll()
    waiter.register(fd, select.POLLIN)
    if not waiter.poll(None if timeout is None else poll_ms(timeout - spin)):
        return None
    try:
        return os.read(fd, size)
    except BlockingIOError:   # a spurious wake-up
        return None


def _load_classes(pickled: dict[str, bytes]) -> tuple[dict[str, type], dict[str, str]]:
    classes, problems = {}, {}
    for name, data in pickled.items():
        try:
            classes[name] = pickle.loads(data)
        except Exception as error:
            problems[name] = f"cannot be loaded in a worker process: {type(error).__name__}: {error}"
    return classes, problems


def worker_main(control, go, done, samplerate: float, blocksize: int, inherited: tuple[int, ...],
                spin: bool = False) -> None:
    """A worker's life: obey control messages, run its steps per block."""
    for fd in inherited:  # other workers' pipes: holding them would hide their engine's death
        try:
            os.close(fd)
        except OSError:
            pass
    # Ctrl-C, a SIGTERM or a hangup sent to the whole process group (a
    # terminal, `timeout`, a service manager) are the engine's to handle: a
    # worker that died of one first was reported as a failing module. The
    # engine ends its workers itself, and a worker whose engine is gone
    # sees its pipe close.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    faulthandler.disable()  # a crashing module is reported by the engine, not dumped on the terminal
    host = Host(samplerate, blocksize)
    board: Board | None = None
    steps: list[Step] = []
    known: set[str] = set()
    go_fd, done_fd = go.fileno(), done.fileno()
    os.set_blocking(go_fd, not spin)
    orphaned = False

    def report(name: str, reason: str, quarantine: bool = False) -> None:
        control.send(("fault", name, reason, quarantine))

    try:
        while True:
            data = _read_soon(go_fd, _BLOCK.size, None) if spin else os.read(go_fd, _BLOCK.size)
            if data is None:
                continue
            if len(data) < _BLOCK.size:
                orphaned = True
                break
            (block,) = _BLOCK.unpack(data)
            if block != _CONTROL:
                for step in steps:
                    board.wait_for(step.waits, block)
                    run_step(step, block, board, report)
                os.write(done_fd, b"d")
                continue
            message = control.recv()   # one message per "go": see ProcessExecutor._send
            kind = message[0]
            if kind == "assign":
                _, serial, spec, schedule, pickled, states = message
                classes, problems = _load_classes(pickled)
                if board is None or board.name != spec[-1]:
                    if board is not None:
                        board.close()
                    board = Board.attach(*spec)
                    known.add(board.name)
                host.update({n.name: (n, classes[n.name]) for n in schedule.nodes if n.name in classes},
                            states, starting=lambda name: control.send(("setup", name)))
                steps = host.steps(schedule, board, set(classes))
                control.send(("assigned", serial, problems))
            elif kind == "events":
                for name, offset, event in message[1]:
                    if name in host.modules:
                        host.deliver(name, offset, event, report)
            elif kind == "snapshot":
                control.send(("states", host.states(report, SNAPSHOT_LIMIT)))
            elif kind == "forget":
                known.discard(message[1])
            elif kind == "stop":
                return
    except (EOFError, BrokenPipeError, ConnectionResetError):
        orphaned = True
    finally:
        if orphaned:  # the engine died without cleaning up
            unlink(known)
        os._exit(0)


# -- the engine side --------------------------------------------------------------

@dataclass
class Worker:
    """The engine's handle on one worker process.

    Its replies (faults, state snapshots of up to megabytes) are read by a
    thread of their own into ``inbox``: a worker writing a snapshot must
    never wait for the render thread to get round to reading it."""

    process: mp.process.BaseProcess
    control: object             # multiprocessing Connection, for rare messages
    pipes: tuple                # (go writer, done reader) Connections; we use their fds
    names: set[str] = field(default_factory=set)
    inbox: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    setting_up: str | None = None   # the module whose setup it said it began last
    #: Its /proc schedstat (None where there is none), and the CPU time it
    #: read at the last "go": see ProcessExecutor._starved.
    schedstat: int | None = None
    at_go: int = 0

    def listen(self) -> None:
        threading.Thread(target=self._read, name="synthcli-worker-replies", daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                self.inbox.put(self.control.recv())
        except (EOFError, OSError):
            self.inbox.put(("gone",))

    @property
    def go(self) -> int:
        return self.pipes[0].fileno()

    @property
    def done(self) -> int:
        return self.pipes[1].fileno()

    def fds(self) -> tuple[int, ...]:
        return (self.control.fileno(), self.go, self.done)

    def close(self) -> None:
        for conn in (*self.pipes, self.control):
            conn.close()
        if self.schedstat is not None:
            os.close(self.schedstat)
            self.schedstat = None

    def cpu_ns(self) -> int:
        """Nanoseconds it has run on a CPU."""
        if self.schedstat is None:
            return 0
        try:
            return int(os.pread(self.schedstat, 96, 0).split()[0])
        except (OSError, ValueError, IndexError):   # it is gone: nothing ran since
            return self.at_go

    def state(self) -> bytes | None:
        """Its scheduler state from ``/proc/PID/stat`` (R running or waiting
        for a CPU, S asleep, T stopped, Z gone...); None where there is none."""
        try:
            with open(f"/proc/{self.process.pid}/stat", "rb") as stat:
                return stat.read().rpartition(b")")[2].split()[0]
        except (OSError, IndexError):
            return None

    def usable(self) -> bool:
        """Whether it can take modules: alive and not stopped. A spare waits
        unwatched for seconds, where anything may befall it (a kill -9, a
        SIGSTOP); handed modules, a dead one broke the engine's pipe and a
        stopped one held the render thread for CONTROL_TIMEOUT."""
        return self.state() not in (b"T", b"t", b"Z", b"X") and self.process.is_alive()

    def runnable(self) -> bool:
        """Whether it is running or waiting for a CPU (state R), not
        sleeping, stopped or gone."""
        return self.state() == b"R"


def _spawn(ctx, samplerate: float, blocksize: int, inherited: tuple[int, ...] = (), spin: bool = False) -> Worker:
    engine_control, worker_control = ctx.Pipe(duplex=True)
    go_r, go_w = ctx.Pipe(duplex=False)
    done_r, done_w = ctx.Pipe(duplex=False)
    # A forked child also gets the engine's ends of its own pipes; it must
    # close them too, or it would never see the engine die.
    own_ends = (engine_control.fileno(), go_w.fileno(), done_r.fileno()) if ctx.get_start_method() == "fork" else ()
    process = ctx.Process(target=worker_main, daemon=True, name="synthcli-worker",
                          args=(worker_control, go_r, done_w, samplerate, blocksize, inherited + own_ends, spin))
    process.start()
    for conn in (worker_control, go_r, done_w):
        conn.close()
    os.set_blocking(done_r.fileno(), not spin)
    try:
        schedstat = os.open(f"/proc/{process.pid}/schedstat", os.O_RDONLY)
    except OSError:   # not Linux, or no scheduler statistics: every miss is held against the module
        schedstat = None
    return Worker(process, engine_control, (go_w, done_r), schedstat=schedstat)


def warm_up(registry: Registry, samplerate: float, blocksize: int, say: Say | None = None) -> None:
    """Call every module's kernels once, plugins' too, so workers forked
    afterwards never compile or load JIT code on the audio path: a plugin
    kernel compiling in a worker's first block missed the deadline and got
    the plugin quarantined. Plugins' modules are first tried in a fork
    (:func:`survivors`): one that crashes or hangs there stays cold rather
    than take this process (the engine, or the forkserver) with it. A
    module that fails here is left to fail (and be reported) where it runs;
    ``say`` hears of a trial that is slow or fails (see :func:`survivors`)."""
    from . import jit
    from .steps import all_finite
    jit.ready()
    all_finite(np.zeros((1, blocksize)))
    entries = list(registry.qualified.values())
    plugins = {entry.cls: f"{entry.package} {entry.version}" for entry in entries if entry.package != BUILTIN_PACKAGE}
    trusted = [entry.cls for entry in entries if entry.package == BUILTIN_PACKAGE]
    for cls in trusted + survivors(list(plugins), samplerate, blocksize, say, plugins):
        _warm(cls, samplerate, blocksize)


def _warm(cls: type, samplerate: float, blocksize: int) -> None:
    from ..testing import render_module
    try:
        render_module(cls, 1, channels=1, samplerate=samplerate, blocksize=blocksize)
    except Exception:
        pass


#: Seconds a plugin's module may take, in the warm-up's trial fork, to set
#: up and run its first block (compiling its kernels included) before it is
#: taken for hung.
TRIAL_SECONDS = 20.0
#: Seconds of a trial after which the wait is said: a hung setup() stalls
#: a start by TRIAL_SECONDS, which must not pass in silence.
TRIAL_NOTICE = 2.0
#: Where the warm-up's news goes: one line, without "warning: ".
Say = Callable[[str], None]


def survivors(classes: list[type], samplerate: float, blocksize: int, say: Say | None = None,
              packages: dict[type, str] | None = None) -> list[type]:
    """The module classes whose warm-up neither crashes nor hangs a process.

    They are warmed in order in a forked child that writes each one's index
    down a pipe when it is done; a child that dies or falls silent for
    TRIAL_SECONDS names the class it was on, and a new child goes on after
    it. A class that failed is not tried again until its package changes.
    ``say`` hears of a trial still running after TRIAL_NOTICE, and then of
    its end if it failed, naming the class's package as ``packages`` gives
    it. (One that crashes at once held nothing up: it is reported where a
    patch uses it, not at every start of a patch that does not.)"""
    failed = _failed_trials()
    classes = [cls for cls in classes if _trial_key(cls) not in failed]
    good: list[type] = []
    noticed: set[type] = set()
    verdicts: dict[type, str] = {}
    start = 0
    while start < len(classes):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:   # the child: quiet, killable, and never back in the caller's code
            try:
                quiet_child(read_end)
                for index in range(start, len(classes)):
                    _warm(classes[index], samplerate, blocksize)
                    os.write(write_end, _BLOCK.pack(index))
            finally:
                os._exit(0)
        os.close(write_end)
        done = start
        try:
            with os.fdopen(read_end, "rb", buffering=0) as pipe:
                while done < len(classes) and _answered(pipe, classes[done], noticed, say, packages):
                    reply = pipe.read(_BLOCK.size)
                    if len(reply) < _BLOCK.size:
                        break
                    good.append(classes[done])
                    done += 1
        finally:
            if done < len(classes):
                os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        if done < len(classes):
            code = os.waitstatus_to_exitcode(status)
            verdicts[classes[done]] = how = "hung" if code == -signal.SIGKILL else exit_reason(code)
            if classes[done] in noticed:
                say(f"{_trial_label(classes[done], packages)} {how} while warming up: it stays cold, and is tried "
                    f"again when its package changes")
        start = done + 1   # past the one that crashed or hung, if any
    _remember_failed(verdicts)
    return good


def _answered(pipe, cls: type, noticed: set[type], say: Say | None, packages: dict[type, str] | None) -> bool:
    """Whether the trial child said it was done with ``cls`` (or died)
    within TRIAL_SECONDS, saying so when it takes over TRIAL_NOTICE (and
    adding it to ``noticed``)."""
    if select.select([pipe], [], [], min(TRIAL_NOTICE, TRIAL_SECONDS))[0]:
        return True
    if say is not None:
        noticed.add(cls)
        say(f"{_trial_label(cls, packages)} is taking over {TRIAL_NOTICE:g} s to warm up (compiling, or hung in "
            f"setup() or a first block); it is given {TRIAL_SECONDS:g} s")
    return bool(select.select([pipe], [], [], max(0.0, TRIAL_SECONDS - TRIAL_NOTICE))[0])


def _trial_label(cls: type, packages: dict[type, str] | None) -> str:
    where = (packages or {}).get(cls) or cls.__module__
    return f"module type '{getattr(cls, 'type_name', cls.__name__)}' (from {where})"


def _trial_key(cls: type) -> str | None:
    """The class, its module's file and the newest modification time of
    its package's files: a verdict holds until the plugin is changed (an
    upgrade, an edit of an editable install, its DSP in another file)."""
    from ..cache import source_stamp
    path = getattr(sys.modules.get(cls.__module__), "__file__", None)
    package = getattr(sys.modules.get(cls.__module__.partition(".")[0]), "__file__", None)
    try:
        return f"{path}:{source_stamp(package)}:{cls.__qualname__}" if path else None
    except OSError:
        return None


def _verdicts_path():
    from ..cache import cache_folder
    return cache_folder() / "failed-warm-ups.json"


def _failed_trials() -> dict[str, str]:
    """Modules that crashed or hung in an earlier warm-up's trial, and how
    ("hung", "crashed (SIGSEGV)"): without this, a plugin whose setup()
    hangs cost TRIAL_SECONDS at every start."""
    from ..cache import read_json
    # A list is from before the verdicts said how: read as none, its modules
    # are tried again, once, so that one that hangs is known as hung (and
    # not given to a worker whose other modules would wait for it; see _assign).
    return read_json(_verdicts_path())


def _hung_in_trial() -> set[str]:
    return {key for key, how in _failed_trials().items() if how == "hung"}


def _remember_failed(verdicts: dict[type, str]) -> None:
    found = {key: how for key, how in ((_trial_key(cls), how) for cls, how in verdicts.items()) if key}
    if not found:
        return
    path = _verdicts_path()
    kept = {key: how for key, how in _failed_trials().items()
            if os.path.exists(key.rsplit(":", 2)[0])}   # uninstalled: forgotten
    from ..cache import write_json
    write_json(path, {**kept, **found})   # or, in a read-only home, the trial is made again next time


#: Executors not closed yet, whose workers an exit ends (see _end_left_workers).
_OPEN: weakref.WeakSet = weakref.WeakSet()


def _end_left_workers() -> None:
    """Kill the workers of an executor never closed (an exception that
    skipped Engine.close): they ignore the SIGTERM that multiprocessing's
    own exit sends its daemonic children (see worker_main), and its join
    of them then waited for ever (the review). Registered after
    multiprocessing's exit function, so it runs before it."""
    for executor in list(_OPEN):
        for worker in [*executor.workers, *([executor.spare] if executor.spare else [])]:
            if worker.process.is_alive():
                worker.process.kill()


atexit.register(_end_left_workers)


class ProcessExecutor:
    name = "processes"

    def __init__(self, registry: Registry, samplerate: float, blocksize: int, report,
                 workers: int | None = None, deadline: float = 1.0, live: bool = False,
                 say: Say | None = None, spin: bool | None = None) -> None:
        self.registry = registry
        self.samplerate = samplerate
        self.blocksize = blocksize
        self.report = report
        self.deadline = deadline
        self.partitions = (workers or default_workers()) + 1
        # Offline, with a core for every process, hand-offs spin (see above).
        self.live = live
        self.spin = spins(self.partitions, live) if spin is None else spin
        self.host = Host(samplerate, blocksize)
        self.board: Board | None = None
        self.schedule: Schedule | None = None
        self.where: dict[str, int] = {}
        # Per engine step: (worker, None to wait for its whole block, or the outputs to wait for).
        self.plan: list[tuple[Step, tuple[tuple[int, tuple[int, ...] | None], ...]]] = []
        self.posted = 0.0   # when this block's "go" went out
        self.busy: list[int] = []
        self.states: dict[str, tuple[tuple, dict]] = {}   # name: (identity, state), see Host.states
        self.events: dict[int, list] = {}
        self.next_snapshot = 0
        self.restarts: dict[str, int] = {}
        self.missed: dict[int, int] = {}
        self.replaced: dict[int, int] = {}
        self.recoveries: list[float] = []
        #: Partitions whose worker died with no spare ready, and the modules
        #: that wait there, silent, for the next one.
        self.vacant: dict[int, set[str]] = {}
        #: Live, partitions whose worker, starved of CPU, is still at a block
        #: it was late with: when that block's "go" went out. It gets no
        #: other "go" until it is done (see _fall_behind).
        self.behind: dict[int, float] = {}
        #: Partitions with a module that a module of another worker reads:
        #: that worker would wait for it, so these cannot fall behind.
        self.feeding: set[int] = set()
        self._boards: list[Board] = []
        self._serials = itertools.count()
        self._spare_lock = threading.Lock()
        self._spare_thread: threading.Thread | None = None
        self._closing = threading.Event()
        # Workers must share the engine's resource tracker: one of their own
        # would unlink the live boards when the worker exits.
        resource_tracker.ensure_running()
        mp.get_context("forkserver").set_forkserver_preload(["synthcli.engine.prewarm"])
        if live:  # let the forkserver import and warm up while this process does the same
            forkserver.ensure_running()
        warm_up(registry, samplerate, blocksize, say)
        self.hung = _hung_in_trial()   # modules not to hand to a worker (see _assign)
        fork = mp.get_context("fork")
        self.workers: list[Worker] = []
        for _ in range(self.partitions - 1 if live else self.partitions):
            inherited = tuple(fd for w in self.workers for fd in w.fds())
            self.workers.append(_spawn(fork, samplerate, blocksize, inherited, self.spin))
        self.spare: Worker | None = (_spawn(mp.get_context("forkserver"), samplerate, blocksize) if live
                                     else self.workers.pop())
        for worker in [*self.workers, self.spare]:   # threads only now: every fork is done
            worker.listen()
        _OPEN.add(self)

    def worker(self, partition: int) -> Worker:
        return self.workers[partition - 1]

    def health(self) -> dict[int, dict]:
        found = {0: {"pid": os.getpid(), "missed": 0, "restarts": 0}}
        for part, worker in enumerate(self.workers, start=1):
            found[part] = {"pid": worker.process.pid, "missed": self.missed.get(part, 0),
                           "restarts": self.replaced.get(part, 0), "vacant": part in self.vacant}
        return found

    # -- control -----------------------------------------------------------

    def _send(self, worker: Worker, message: tuple) -> None:
        """A message for a worker; one that has died meanwhile is found out
        at its next block, not here. The "go" comes first, so the worker is
        reading while a message larger than the pipe's buffer (an assignment
        with a delay line's state) is written: the other way round both
        sides waited for ever."""
        try:
            os.write(worker.go, _BLOCK.pack(_CONTROL))
            worker.control.send(message)
        except OSError:
            pass

    def _handle(self, worker: Worker, reply: tuple) -> None:
        if reply[0] == "setup":
            worker.setting_up = reply[1]
        elif reply[0] == "fault":
            self.report(reply[1], reply[2], quarantine=reply[3])
        elif reply[0] == "states":
            self.states.update(reply[1])

    def _await(self, worker: Worker, kind: str, serial: int | None = None) -> tuple | None:
        """The next reply of ``kind`` (answering message ``serial``, if
        given), handling faults and states on the way."""
        deadline = time.monotonic() + CONTROL_TIMEOUT
        while time.monotonic() < deadline:
            try:
                reply = worker.inbox.get(timeout=0.05)
            except queue.Empty:
                if not worker.process.is_alive():
                    return None
                continue
            if reply[0] == "gone":
                return None
            self._handle(worker, reply)
            if reply[0] == kind and (serial is None or reply[1] == serial):
                return reply
        return None

    def _drain(self, worker: Worker) -> None:
        while True:
            try:
                self._handle(worker, worker.inbox.get_nowait())
            except queue.Empty:
                return

    def _assign(self, worker: Worker, names: set[str], states: dict | None = None, wait: bool = True) -> None:
        """Hand ``names`` to a worker. A module that cannot be pickled or
        loaded there is reported, quarantined and left silent; the rest play.
        Unless ``wait``, the answer is not waited for: the spare's, which
        only learns the new board, cost an edit a round trip on the render
        thread; the answer to a later assignment is told from it by its
        serial number."""
        pickled, refused = {}, {}
        for name in names:
            entry = self.registry.get(self.schedule.by_name[name].type)
            cls = entry.cls
            # Its setup() would stall every module here for CONTROL_TIMEOUT. (Only a plugin
            # is tried, and its key walks its package's files: 47 built-ins' took 41 ms of an edit.)
            if self.hung and entry.package != BUILTIN_PACKAGE and _trial_key(cls) in self.hung:
                refused[name] = (f"hung while warming up (over {TRIAL_SECONDS:g} s in setup() and a first block); "
                                 "it is tried again when its package changes")
                continue
            try:
                pickled[name] = pickle.dumps(cls)
            except Exception as error:
                refused[name] = f"cannot be sent to a worker process: {type(error).__name__}: {error}"
        worker.setting_up = None
        serial = next(self._serials)
        self._send(worker, ("assign", serial, self.board.spec(), self.schedule, pickled, states or {}))
        if not wait:
            worker.names = set()
            return
        reply = self._await(worker, "assigned", serial)
        lost: set[str] = set()
        if reply is None:
            blamed, lost = self._setup_failed(worker, set(pickled))
            reply = ("assigned", serial, blamed)
        refused.update(reply[2])
        for name, reason in refused.items():
            self.report(name, reason, quarantine=True)
            self.board.progress[self.schedule.nodes.index(self.schedule.by_name[name])] = ABANDONED
        worker.names = set(names) - set(refused) - lost
        part = next((p for p in range(1, self.partitions) if self.worker(p) is worker), None)
        if lost and part is not None:   # to the spare, as after a crash while playing
            self.vacant[part] = self.vacant.get(part, set()) | lost
            for name in lost:
                self.board.progress[self.schedule.nodes.index(self.schedule.by_name[name])] = ABANDONED
                self.restarts[name] = self.restarts.get(name, 0) + 1

    def _setup_failed(self, worker: Worker, names: set[str]) -> tuple[dict[str, str], set[str]]:
        """A worker died or hung setting modules up: the module whose setup
        it had begun is to blame (quarantined), not the others it held,
        built-ins too, which go on in another worker."""
        worker.process.join(0.5)   # its replies end before the process does
        hung = worker.process.exitcode is None
        if hung:
            os.kill(worker.process.pid, signal.SIGKILL)
            worker.process.join(1.0)
        why = "hung" if hung else self._exit_reason(worker)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:   # the last "setup" it sent names the culprit
            try:
                reply = worker.inbox.get(timeout=0.05)
            except queue.Empty:
                continue
            if reply[0] == "gone":
                break
            self._handle(worker, reply)
        culprit = worker.setting_up
        if culprit not in names:   # it failed before any setup: nobody can be told apart
            return {name: f"its worker {why} while setting it up" for name in names}, set()
        return {culprit: f"its worker {why} in its setup()"}, names - {culprit}

    def rebuild(self, schedule: Schedule) -> Board:
        return self._rebuild(schedule, measured_costs(self.schedule, self.board))

    def take_over(self, schedule: Schedule, board: Board, states: dict[str, tuple[tuple, dict]],
                  costs: dict[str, float]) -> Board:
        """Carry on, from the next block, a schedule that another executor of
        the same engine has been running (a render starts inline and moves
        here once workers are seen to pay, see Engine): the costs measured
        there place the modules, and the modules' states and every buffer
        come along, so the output goes on bit for bit."""
        self.states.update(states)
        new = self._rebuild(schedule, costs)
        new.arena[...] = board.arena
        new.stats[...] = board.stats
        for index in range(len(schedule.nodes)):
            new.flags[index] = board.flags[index]
        return new

    def _rebuild(self, schedule: Schedule, measured: dict[str, float]) -> Board:
        old_board = self.board
        if self.schedule is not None:
            for part in range(1, self.partitions):
                if part not in self.vacant and not self.worker(part).process.is_alive():   # died (or was killed) while idle
                    # Replaced under the schedule it ran: the new one's modules of this
                    # process do not exist yet, and planning for them failed (KeyError).
                    self._recover(part, 0, self._exit_reason(self.worker(part)))
        for worker in self.workers:  # modules may move: have their latest state at hand
            if worker.names:
                self._send(worker, ("snapshot",))
                self._await(worker, "states")
        self.states.update(self.host.states(self.report, SNAPSHOT_LIMIT))   # the engine's own may move
        self.states = {name: saved for name, saved in self.states.items() if name in schedule.by_name}
        self.schedule = schedule
        self.board = Board(len(schedule.nodes), schedule.rows, self.blocksize, shared=True)
        self._boards.append(self.board)
        # A module an edit replaces fades out on the instance it was, where it was.
        placed = {**self.where, **{n.name: self.where[n.continues] for n in schedule.nodes
                                   if n.continues in self.where}}
        self.where = assign(schedule, self.partitions, placed, builtin(self.registry, schedule),
                            cost_model(schedule, measured))
        for part in range(1, self.partitions):
            worker = self.worker(part)
            names = {n for n, p in self.where.items() if p == part}
            if part in self.vacant:   # its worker died: they wait, silent, for the spare
                self.vacant[part] = names
                for name in names:
                    self.board.progress[schedule.nodes.index(schedule.by_name[name])] = ABANDONED
                continue
            arriving = names - worker.names
            self._assign(worker, names, {n: self.states[n] for n in arriving if n in self.states})
        spare = self._take_spare()
        if spare is not None:   # it learns the new board, to be ready to take modules on it
            # Waited for only before the music starts: its first answer shows it ready, and
            # the work it does meanwhile took the CPU from the first blocks (an underflow).
            self._assign(spare, set(), wait=old_board is None)
            with self._spare_lock:
                self.spare = spare
        own = {n for n, p in self.where.items() if p == 0}
        self.host.update({n.name: (n, self.registry.get(n.type).cls) for n in schedule.nodes if n.name in own},
                         self.states)
        self._plan(own)
        if old_board is not None:
            self._retire(old_board)
        return self.board

    def _plan(self, own: set[str]) -> None:
        """Per block: which workers run, and before each of the engine's own
        steps, what of which workers it must wait for.

        The engine waits for a worker's whole block, which wakes it once,
        where it can: not where that worker, somewhere in its block, waits
        for an output of this step or of a later one of the engine's (a
        chain patched a cable at a time can run engine -> worker -> engine
        -> worker): there it waits for just the worker's modules that the
        step reads, as workers wait for each other. Each process then runs
        its modules in schedule order, so the first module not yet run
        anywhere always has its inputs, and no placement can deadlock."""
        schedule = self.schedule
        index = {node.name: i for i, node in enumerate(schedule.nodes)}
        owner = {index[name]: part for part in range(1, self.partitions) for name in self.worker(part).names}
        self.busy = [part for part in range(1, self.partitions) if self.worker(part).names]
        steps = self.host.steps(schedule, self.board, own)
        position = {step.index: k for k, step in enumerate(steps)}
        producers: dict[int, set[int]] = {}
        for cable in schedule.cables:
            if cable not in schedule.delayed:
                producers.setdefault(index[cable.dst], set()).add(index[cable.src])
        self.feeding = {owner[source] for reader, sources in producers.items() if reader in owner
                        for source in sources if owner.get(source, owner[reader]) != owner[reader]}
        last_fed: dict[int, int] = {}   # worker -> the engine's last step its block needs, directly or not
        for part in self.busy:
            upstream, todo = set(), [i for i, p in owner.items() if p == part]
            while todo:
                for source in producers.get(todo.pop(), ()):
                    if source not in upstream:
                        upstream.add(source)
                        todo.append(source)
            last_fed[part] = max((position[i] for i in upstream if i in position), default=-1)
        self.plan = []
        for k, step in enumerate(steps):
            reads: dict[int, list[int]] = {}
            for i in step.waits:
                if i in owner:
                    reads.setdefault(owner[i], []).append(i)
            self.plan.append((step, tuple((part, tuple(outputs) if last_fed[part] >= k else None)
                                          for part, outputs in sorted(reads.items()))))

    def _retire(self, board: Board) -> None:
        self._boards.remove(board)
        name = board.name
        board.close(unlink=True)
        for worker in [*self.workers, *([self.spare] if self.spare else [])]:
            self._send(worker, ("forget", name))

    def deliver(self, name: str, offset: int, event: tuple) -> None:
        part = self.where.get(name, 0)
        if part == 0:
            self.host.deliver(name, offset, event, self.report)
        else:
            self.events.setdefault(part, []).append((name, offset, event))

    # -- per block ---------------------------------------------------------

    def run_block(self, block: int) -> None:
        if self.vacant and (self.spare is not None or not self.live):   # offline, the block waits for one
            self._fill_vacancies(block - 1)   # they play this block: it is awaited, and they answer for it
        if self.behind:
            self._catch_up(block)
        board, report = self.board, self.report
        for part, events in self.events.items():
            self._send(self.worker(part), ("events", events))
        self.events.clear()
        playing = [part for part in self.busy if part not in self.behind]
        if self.live:   # 1.6 us a worker: what a missed deadline is judged by (see _starved)
            for part in playing:
                worker = self.worker(part)
                worker.at_go = worker.cpu_ns()
        self.posted = time.perf_counter()
        for part in playing:
            self._post(part, block)
        waiting = set(playing) - self.vacant.keys()   # one found dead with no spare to take its place
        for step, needs in self.plan:
            for part, outputs in needs:
                if part not in waiting:
                    continue
                if outputs is None:
                    self._finish(part, block)
                    waiting.discard(part)
                elif self._await_outputs(part, outputs, block):
                    waiting.discard(part)
            run_step(step, block, board, report)
        for part in sorted(waiting):
            self._finish(part, block)
        for part in self.busy:
            self._drain(self.worker(part))
        if block >= self.next_snapshot:
            self.next_snapshot = block + max(1, int(SNAPSHOT_EVERY * self.samplerate / self.blocksize))
            for part in self.busy:
                self._send(self.worker(part), ("snapshot",))

    def _post(self, part: int, block: int) -> None:
        """Send "go"; a worker that died while idle is replaced first (and
        its replacement too, should it have died as well)."""
        while part not in self.vacant:
            try:
                os.write(self.worker(part).go, _BLOCK.pack(block))
                return
            except BrokenPipeError:   # it died between blocks
                self._recover(part, block, self._exit_reason(self.worker(part)), blame=False)

    def _exit_reason(self, worker: Worker) -> str:
        worker.process.join(0.5)
        return exit_reason(worker.process.exitcode)

    def _await_outputs(self, part: int, outputs: tuple[int, ...], block: int) -> bool:
        """Wait for these outputs of a worker whose block may itself wait for
        the engine (see _plan), within the deadline counted from the "go".
        True when its block turned out to be over meanwhile: its "done" was
        read, or it died or hung and was replaced."""
        board = self.board
        done = select.poll()
        done.register(self.worker(part).done, select.POLLIN)
        pause = pauses()
        while any(board.progress[i] < block for i in outputs):
            if done.poll(0):   # done, or dead: _finish tells which
                self._finish(part, block)
                return True
            if time.perf_counter() - self.posted > self.deadline:
                self._finish(part, block, 0.0)
                return True
            next(pause)
        return False

    def _finish(self, part: int, block: int, timeout: float | None = None) -> None:
        """Wait for a worker's "done" within ``timeout`` (the deadline by
        default), or replace it."""
        worker = self.worker(part)
        timeout = self.deadline if timeout is None else timeout
        if self.spin:
            data = _read_soon(worker.done, 64, timeout)
        else:
            poller = select.poll()
            poller.register(worker.done, select.POLLIN)
            data = os.read(worker.done, 64) if poller.poll(poll_ms(timeout)) else None
        if data is None and select.select([worker.done], [], [], 0)[0]:
            # Done just as the wait ended: asleep again by the time it would
            # be judged, it would be taken for hung.
            data = os.read(worker.done, 64)
        if data:
            return
        held = True
        if data is None:
            self.missed[part] = self.missed.get(part, 0) + 1
            waited = self._starved(worker, self.posted)
            if waited is not None and part not in self.feeding:
                self._fall_behind(part, block, waited)
                return
            held = waited is None
            reason = (f"hung or too slow: missed its deadline ({self.deadline * 1e3:.0f} ms)" if held else
                      self._starved_reason(waited))
        else:
            reason = self._exit_reason(worker)
        self._recover(part, block, reason, held)

    def _fall_behind(self, part: int, block: int, waited: float) -> None:
        """A worker starved of CPU is left to finish its block, not killed:
        a new one would be starved as well, and until a spare is ready (two
        seconds) its modules would be silent, their state (a delay's
        echoes, a reverb's tail) lost. This block they are silent; they
        play again from the first block that finds the late one done.
        Not where another worker reads them: it would wait for blocks they
        never run."""
        worker = self.worker(part)
        self.behind[part] = self.posted
        self._silence(worker)
        culprit = self._culprit(worker, block)
        if culprit is not None:
            self.report(culprit, self._starved_reason(waited), held=False)

    def _starved_reason(self, waited: float) -> str:
        """Why a module whose worker got no CPU in time was silent a block:
        not its own fault, which is not counted against it (see Engine.fault)."""
        return (f"its worker waited {waited * 1e3:.0f} ms for a CPU, which other programs held, past the "
                f"{self.deadline * 1e3:.0f} ms deadline: no fault of the module's")

    def _catch_up(self, block: int) -> None:
        """Workers that fell behind: one whose late block is done plays this
        block; one still at it stays silent, or after BEHIND_LIMIT is judged
        again as though it missed its deadline now, and replaced."""
        for part, posted in list(self.behind.items()):
            worker = self.worker(part)
            poller = select.poll()
            poller.register(worker.done, select.POLLIN)
            if poller.poll(0):
                del self.behind[part]
                if not os.read(worker.done, 64):
                    self._recover(part, block, self._exit_reason(worker))
            elif time.perf_counter() - posted > BEHIND_LIMIT:
                del self.behind[part]
                waited = self._starved(worker, posted)
                self._recover(part, block, f"hung or too slow: over {BEHIND_LIMIT * 1e3:.0f} ms at one block"
                              + ("" if waited is None else ", most of it waiting for a CPU"), waited is None)
            else:
                self._silence(worker)

    def _silence(self, worker: Worker) -> None:
        for name in worker.names:
            rows = self.schedule.by_name[name].output_span
            self.board.arena[rows.start:rows.stop] = 0.0

    def _culprit(self, worker: Worker, block: int) -> str | None:
        """The module a worker late with ``block`` was running: its first not done."""
        index = {node.name: i for i, node in enumerate(self.schedule.nodes)}
        return next((node.name for node in self.schedule.nodes
                     if node.name in worker.names and self.board.progress[index[node.name]] < block), None)

    def _starved(self, worker: Worker, posted: float) -> float | None:
        """Seconds a worker that missed its deadline spent not running since
        its "go" (sent at ``posted``), if it is still runnable (waiting for a CPU) and ran for
        less than STARVED_RAN of that time: a busy machine, not its modules,
        made it late. None if not: it used the time (a loop that never
        ends) or slept (a module waiting on something that never comes).
        Live only: on a machine loaded by something else (a build, a
        browser) a healthy module missed three deadlines in ten seconds and
        was silenced for good. (The kernel's count of time spent waiting
        for a CPU grows only once the wait is over, so it cannot tell.)"""
        if not self.live:
            return None
        ran = (worker.cpu_ns() - worker.at_go) / 1e9
        waited = time.perf_counter() - posted - ran
        return waited if worker.runnable() and ran < STARVED_RAN * (ran + waited) else None

    def _recover(self, part: int, block: int, reason: str, held: bool = True, blame: bool = True) -> None:
        """Kill the worker, silence its modules for this block, blame the
        module it was running (unless it died between blocks, running none:
        a kill -9, the OOM killer), and hand its modules to the spare. Live,
        the spare takes them at the next block (see run_block): handing them
        over took 2.5-5 ms, which this block, late already, spent from the
        whole mix's time (a gap of a block or two at every failure). Without
        a spare ready (crashes in quick succession) they stay silent until
        one is: starting a process there and then took 20-40 ms. Offline a
        block can wait for either."""
        started = time.perf_counter()
        worker = self.worker(part)
        board, schedule = self.board, self.schedule
        self.behind.pop(part, None)
        if worker.process.is_alive():
            # Not waited for: the kernel frees its memory before it is gone,
            # 3-7 ms that a join here added to a gap in the whole mix (as did
            # a thread to wait instead, started under the GIL). No code of
            # its runs after the signal; the next spare's start reaps it.
            os.kill(worker.process.pid, signal.SIGKILL)
        else:
            worker.process.join(1.0)
        self._drain(worker)
        index = {node.name: i for i, node in enumerate(schedule.nodes)}
        mine = [node.name for node in schedule.nodes if node.name in worker.names]
        culprit = self._culprit(worker, block) if blame else None
        for name in mine:
            rows = schedule.by_name[name].output_span
            board.arena[rows.start:rows.stop] = 0.0
            board.progress[index[name]] = ABANDONED
            self.restarts[name] = self.restarts.get(name, 0) + 1
        if culprit is not None:
            self.report(culprit, reason, held=held)
        worker.close()
        worker.names = set()
        self.replaced[part] = self.replaced.get(part, 0) + 1
        self.vacant[part] = set(mine)
        if not self.live:
            self._fill_vacancies(block)
        if part in self.vacant:
            self._plan({n for n, p in self.where.items() if p == 0})
        self.recoveries.append(time.perf_counter() - started)

    def _fill_vacancies(self, done: int) -> None:
        """Give the spare, if one is ready, to a partition whose worker
        died, with its modules and their last saved state; they count as
        finished with block ``done`` and play from the next. (They once
        counted as finished with the block they were about to play: it was
        not awaited, and a module that missed its deadline there again was
        not blamed, so a module slower than the block was never quarantined
        and cost a worker every 2 s.)"""
        while self.vacant:
            spare = self._take_spare()
            self._refill()   # the next one is made while this one works
            if spare is None and not self.live:   # offline, waiting costs no sound: the block waits
                spare = _spawn(mp.get_context("forkserver"), self.samplerate, self.blocksize, spin=self.spin)
                spare.listen()
            if spare is None:
                return
            part, names = self.vacant.popitem()
            self.workers[part - 1] = spare
            index = {node.name: i for i, node in enumerate(self.schedule.nodes)}
            for name in names:
                self.board.progress[index[name]] = done
            self._assign(spare, names, {n: self.states[n] for n in names if n in self.states})
            self._plan({n for n, p in self.where.items() if p == 0})

    def _take_spare(self) -> Worker | None:
        """The spare, if one is ready and usable. One killed or stopped
        while it waited is let go, and the next one begun."""
        with self._spare_lock:
            spare, self.spare = self.spare, None
        if spare is not None and not spare.usable():
            self._discard(spare)
            self._refill()
            return None
        return spare

    def _refill(self) -> None:
        """Begin making the next spare, unless one is being made: a second
        would make a spare nobody holds."""
        if self._spare_thread is None or not self._spare_thread.is_alive():
            self._spare_thread = threading.Thread(target=self._refill_spare, daemon=True)
            self._spare_thread.start()

    @staticmethod
    def _discard(worker: Worker) -> None:
        if worker.process.is_alive():
            os.kill(worker.process.pid, signal.SIGKILL)
        worker.close()

    def _refill_spare(self) -> None:
        """A new spare from the forkserver (forking the engine itself could
        copy a lock that an audio or network thread holds), once the
        recovery is over. Handed over only once it answers: its start-up
        (tens of ms) must not be waited for by the block that takes it, and
        one that never answers (the forkserver killed meanwhile) is no
        spare: another is made."""
        while not self._closing.wait(REFILL_DELAY):
            spare = _spawn(mp.get_context("forkserver"), self.samplerate, self.blocksize, spin=self.spin)
            spare.listen()
            self._send(spare, ("snapshot",))
            if self._await(spare, "states") is not None:
                with self._spare_lock:
                    self.spare = spare
                return
            self._discard(spare)

    def close(self) -> None:
        _OPEN.discard(self)
        self._closing.set()
        if self._spare_thread is not None:
            self._spare_thread.join(10.0)
        everyone = [*self.workers, *([self.spare] if self.spare else [])]
        for worker in everyone:
            self._send(worker, ("stop",))
        for worker in everyone:
            worker.process.join(1.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
            worker.close()
        self.workers, self.spare = [], None
        for board in self._boards:
            board.close(unlink=True)
        self._boards = []
        self.host.update({})
