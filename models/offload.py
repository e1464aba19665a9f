"""Heavy rounds in helper processes, so that they use the cores the server's own process cannot.

One app process serves every session from Python threads, and a heavy round on EfficientNet-Lite0
is thousands of small tensor ops that hold the GIL between kernels: two pool workers in the app's
process ran first rounds only 0.89-1.56x as fast as one (``bench/threads.py``), and under the own
load the server used 0.9-0.95 of its 2 cores while first rounds waited. A :class:`Helpers` keeps
``n`` helper processes (``python -m models.offload``, one torch thread, niceness 19 like the pool's
workers) and runs a generator function there round by round: :meth:`Helpers.rounds` returns an
iterator in the app's process whose each ``next()`` asks the helper for one more round, so the heavy
pool (``models/jobs.py``) schedules, shares, cancels and caches exactly as before; only the work moves.

* **Same numbers.** The helper runs the same function on the same inputs: the arguments are
  pickled whole (the clean pass's tensors included), the model once per helper (its ``nn.Module``
  and classes; :class:`models.backbone.Backbone` pickles as the module it describes), one torch
  thread as in the app. A round's result comes back pickled.
* **Cancelled at once.** A progress report in the helper is forwarded to the app, where the job's
  own ``progress`` raises ``Cancelled`` once nobody waits; the helper is then told to close the
  generator, and stops it at its next progress report.
* **Never worse than in-process.** A helper that is still starting, that died, or a model, an
  argument or a round that cannot be pickled: the function runs in the app's process (a dead helper's job is
  run again there from its start, the rounds it already published recomputed and skipped, so the
  sequence of partials is the same). The helper's errors come back as the same exception.
* **Nothing at import.** :func:`helpers` makes the process's helpers on first use and
  :meth:`Helpers.start` starts them in the background (the app does when it loads a model on the
  CPU: ``ui/inputs.py``); until one says it is ready, rounds run in-process. ``DROPBLOCK_LAB_HELPERS``
  sets how many (default: one per core; ``0``: none, every round in-process). A model on a GPU keeps
  its rounds in the app's process: there they are large kernels, not thousands of small ops.

Imports only torch and the standard library.
"""

from __future__ import annotations

import atexit
import importlib
import io
import itertools
import logging
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from .jobs import usable_cores

__all__ = ["Helpers", "helpers", "ENV_HELPERS"]

ENV_HELPERS = "DROPBLOCK_LAB_HELPERS"
MAX_RESTARTS = 4  # helpers started again after one died, in all: past that, a dead one's rounds run in the app
STALL_S = 10.0  # a helper that owes an answer and neither sent a message nor used CPU for this long is hung
_LOG = logging.getLogger(__name__)
_CPU = torch.device("cpu")
_BIG_BYTES = 16 << 10
_ROOT = Path(__file__).resolve().parents[1]


_SHARED: list[tuple[type, ...]] = []  # (LoadedModel, CleanPass), imported on first use


def _is_shared(obj: object) -> bool:
    """A loaded model or a clean pass: sent to a helper once, then named by a token."""
    if not _SHARED:
        from .engine import CleanPass  # noqa: PLC0415 -- leaf imports: loading pulls in torchvision
        from .loading import LoadedModel  # noqa: PLC0415

        _SHARED.append((LoadedModel, CleanPass))
    return isinstance(obj, _SHARED[0])


def _is_big(obj: object) -> bool:
    """A tensor or an array worth sending once per job (a round's result repeats most of them)."""
    if isinstance(obj, torch.Tensor):
        return obj.layout == torch.strided and obj.numel() * obj.element_size() >= _BIG_BYTES
    return type(obj).__name__ == "ndarray" and getattr(obj, "nbytes", 0) >= _BIG_BYTES


class _Pickler(pickle.Pickler):
    """Pickles the objects ``persistent(obj)`` names (returns a key, or None) as that key."""

    def __init__(self, file, persistent: Callable[[object], object] | None) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._persistent = persistent

    def persistent_id(self, obj):
        return None if self._persistent is None else self._persistent(obj)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, held: dict) -> None:
        super().__init__(file)
        self._held = held

    def persistent_load(self, pid):
        if pid not in self._held:
            raise pickle.UnpicklingError(f"expected an object the other end sent, but got {pid!r}")
        return self._held[pid]


def _dumps(obj: object, persistent: Callable[[object], object] | None = None) -> bytes:
    """``obj`` pickled; the objects ``persistent`` names as their keys instead."""
    buf = io.BytesIO()
    _Pickler(buf, persistent).dump(obj)
    return buf.getvalue()


def _loads(data: bytes, held: dict | None = None) -> object:
    return _Unpickler(io.BytesIO(data), held if held is not None else {}).load()


class _Memo:
    """A job's results, sent round after round: each big tensor once (a round repeats the pictures
    of the last), then by key. The sender holds what it sent, so no key is reused while the job lives.
    An array changed in place between rounds is not seen (a tensor is: its version counter)."""

    def __init__(self) -> None:
        self.sent: dict[tuple, object] = {}

    def dumps(self, obj: object) -> tuple[bytes, bytes]:
        """(the new big objects, ``obj`` with every big object as its key)."""
        new: dict[tuple, object] = {}

        def key(o: object):
            if not _is_big(o):
                return None
            # A tensor changed in place since it was sent (a running sum) is sent again: its version.
            versioned = isinstance(o, torch.Tensor) and not o.is_inference()  # inference tensors have none
            k = ("m", id(o), o._version if versioned else 0)
            if k not in self.sent:
                self.sent[k] = new[k] = o
            return k

        body = _dumps(obj, key)
        return _dumps(new), body


class _Dead(Exception):
    """The helper process ended (or its connection broke)."""


class _Helper:
    """One helper process and the app-side ends of its connection."""

    def __init__(self, index: int, preload: tuple[str, ...] = ()) -> None:
        self.index = index
        self.ready = threading.Event()
        self.dead = False
        self.active = 0  # jobs living here (their generators are in this helper)
        self.busy = 0  # rounds asked of it and not answered yet
        self.held: set[int] = set()  # tokens of the shared objects sent (models, clean passes)
        self.forgotten: list[int] = []  # tokens whose objects the app let go: told before the next message
        self._send_lock = threading.Lock()
        self._inbox: dict[int, queue.SimpleQueue] = {}
        self._lock = threading.Lock()
        ours, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen([sys.executable, "-m", "models.offload", str(theirs.fileno()), *preload],
                                     cwd=_ROOT, pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        threading.Thread(target=self._read, name=f"helper-{index}-reader", daemon=True).start()

    def send(self, message: tuple) -> None:
        if self.dead:
            raise _Dead
        try:
            with self._send_lock:
                while self.forgotten:
                    self.conn.send_bytes(pickle.dumps(("forget", self.forgotten.pop())))
                self.conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (OSError, ValueError) as err:
            self._die()
            raise _Dead from err

    def inbox(self, jid: int) -> queue.SimpleQueue:
        box: queue.SimpleQueue = queue.SimpleQueue()
        with self._lock:
            self._inbox[jid] = box
            if self.dead:
                box.put(("dead",))
        return box

    def forget(self, jid: int) -> None:
        with self._lock:
            self._inbox.pop(jid, None)

    def _read(self) -> None:
        while True:
            try:
                message = pickle.loads(self.conn.recv_bytes())
            except (EOFError, OSError, pickle.UnpicklingError):
                self._die()
                return
            if message[0] == "ready":
                self.ready.set()
                continue
            with self._lock:
                box = self._inbox.get(message[1])
            if box is not None:  # else: a job let go, whose last words nobody waits for
                box.put(message)

    def _die(self) -> None:
        with self._lock:
            if self.dead:
                return
            self.dead = True
            boxes = list(self._inbox.values())
        for box in boxes:
            box.put(("dead",))
        try:
            self.conn.close()
        except OSError:
            pass

    def ticks(self) -> tuple[str, int] | None:
        """(its state, its CPU ticks so far) from /proc; None where there is none (not Linux, gone)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return fields[0], int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            return None

    def hung(self, before: tuple[str, int] | None) -> bool:
        """Whether it is stopped (SIGSTOP), ended, or used no CPU since ``before`` (:meth:`ticks`),
        while it owed an answer: then it is killed, and its jobs run in the app."""
        now = self.ticks()
        alive = self.proc.poll() is None
        if alive and now is None:  # no /proc: only its end is seen
            return False
        if alive and now[0] not in "TtZX" and (before is None or now[1] != before[1]):
            return False
        self._die()
        self.proc.kill()
        return True

    def stop(self) -> None:
        self._die()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Helpers:
    """``n`` helper processes that run generator functions round by round (see the module's
    docstring). Making one starts nothing; :meth:`start` starts the processes (in the background:
    rounds run in-process until a helper is ready)."""

    def __init__(self, n: int) -> None:
        if n < 0:
            raise ValueError(f"expected n >= 0 helpers, but got {n}")
        self.n = n
        self._helpers: list[_Helper] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._tokens: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._next_token = itertools.count(1)
        self._preload: tuple[str, ...] = ()
        self.in_process = 0  # jobs run in the app's process instead (not ready, dead, not picklable)
        self.restarts = 0

    def start(self, preload: tuple[str, ...] = ()) -> None:
        """Start the helpers (once; in the background). ``preload``: modules each imports before it
        says it is ready (those of the functions it will run)."""
        with self._lock:
            if self._helpers or not self.n:
                return
            self._preload = tuple(preload)
            try:
                self._helpers = [_Helper(i, self._preload) for i in range(self.n)]
            except OSError as err:  # no process to be had: every round in the app's process
                _LOG.warning("no heavy-round helper processes: %s", err)
                for helper in self._helpers:
                    helper.stop()
                self._helpers, self.n = [], 0
                return
            atexit.register(self.stop)

    def stop(self) -> None:
        with self._lock:
            helpers, self._helpers = self._helpers, []
        for helper in helpers:
            helper.stop()

    def wait_ready(self, timeout: float) -> bool:
        """Whether every helper said it is ready within ``timeout`` seconds (for tests and benches)."""
        self.start()
        return all(h.ready.wait(timeout) for h in list(self._helpers))

    def ready(self) -> int:
        """Helpers ready now (a dead one is replaced by the next job, then counts once it is ready)."""
        return sum(h.ready.is_set() and not h.dead for h in list(self._helpers))

    def pids(self) -> list[int]:
        return [h.proc.pid for h in self._helpers if not h.dead]

    def _token(self, obj: object) -> int:
        """The token that names ``obj`` (a model or a clean pass, hashed by identity) to the helpers,
        for as long as it lives here."""
        with self._lock:
            token = self._tokens.get(obj)
            if token is None:
                token = self._tokens[obj] = next(self._next_token)
                weakref.finalize(obj, self._forget, token)
            return token

    def _forget(self, token: int) -> None:
        """``token``'s object is gone here: each helper that holds it is told with its next message
        (a finalizer runs wherever the collector does: it sends nothing itself)."""
        for helper in list(self._helpers):
            if token in helper.held:
                helper.held.discard(token)
                helper.forgotten.append(token)

    def _pick(self) -> _Helper | None:
        """The ready helper with the fewest jobs living in it; a dead one is replaced (once it is
        ready, the next job goes there). None before :meth:`start`."""
        with self._lock:
            for i, helper in enumerate(self._helpers):
                if helper.dead:
                    helper.proc.poll()  # reaped once it ended (past the restart limit it stays in the list)
                if helper.dead and self.restarts < MAX_RESTARTS:
                    helper.stop()
                    try:
                        self._helpers[i] = _Helper(helper.index, self._preload)
                    except OSError as err:
                        _LOG.warning("a heavy-round helper could not be restarted: %s", err)
                    self.restarts += 1
            ready = [h for h in self._helpers if h.ready.is_set() and not h.dead]
            if not ready:
                return None
            helper = min(ready, key=lambda h: (h.busy, h.active))  # a new job's first round: an idle helper first
            helper.active += 1
            return helper

    def rounds(self, name: str, args: tuple, kwargs: dict, progress: Callable[[float, str], None] | None = None
               ) -> Iterator:
        """``fn(*args, **kwargs, progress=…)`` in a helper, one round per ``next()``, where ``fn`` is
        ``name`` ("module:qualname"; a view's ``.fn``), a function that returns an iterator of rounds:
        the partials are what it gives in-process."""
        helper = self._pick()
        if helper is None:
            return self._local(name, args, kwargs, progress, skip=0)
        seen: dict[int, object] = {}

        def shared(obj: object):
            if not _is_shared(obj):
                return None
            seen[id(obj)] = obj
            return ("s", self._token(obj))

        try:
            payload = _dumps((args, kwargs), shared)
            if any(_device_of(o).type != "cpu" for o in seen.values()):
                raise TypeError("a model on an accelerator runs in the app's process")  # its rounds are large kernels
            sent = [(token, _dumps(o)) for o in seen.values() if (token := self._token(o)) not in helper.held]
        except (pickle.PicklingError, TypeError, AttributeError):
            self._release(helper)
            return self._local(name, args, kwargs, progress, skip=0)
        return self._remote(helper, name, args, kwargs, progress, sent, payload)

    def _busy(self, helper: _Helper, delta: int) -> None:
        with self._lock:
            helper.busy += delta

    def _release(self, helper: _Helper) -> None:
        with self._lock:
            helper.active -= 1

    def _local(self, name: str, args: tuple, kwargs: dict, progress, skip: int) -> Iterator:
        self.in_process += 1
        out = _resolve(name)(*args, **kwargs, **({"progress": progress} if progress is not None else {}))
        if not isinstance(out, Iterator):
            raise TypeError(f"expected {name} to return an iterator of rounds, but got {type(out).__name__}")
        return itertools.islice(out, skip, None)

    def _remote(self, helper: _Helper, name, args, kwargs, progress, sent, payload) -> Iterator:
        jid = next(self._ids)
        box = helper.inbox(jid)
        memo: dict = {}  # the job's big tensors, each sent once (_Memo)
        published = 0
        started = False
        try:
            try:
                while sent:  # each pickled model or clean pass let go once sent: the job may refine for minutes
                    token = sent[0][0]
                    helper.send(("obj", token, sent.pop(0)[1]))
                    helper.held.add(token)
                helper.send(("start", jid, name, payload, progress is not None))
                started = True
                while True:
                    self._busy(helper, +1)
                    try:
                        helper.send(("next", jid))
                        message = self._answer(helper, jid, box, progress)
                    finally:
                        self._busy(helper, -1)
                    if message[0] == "stop":
                        return
                    memo.update(_loads(message[2]))
                    published += 1
                    yield _loads(message[3], memo)
            except _Dead:
                started = False
            # Dead: run it here from its start, the partials already published skipped (outside the
            # except block, whose exception would hold what the failed send held meanwhile).
            sent.clear()
            memo.clear()
            yield from self._local(name, args, kwargs, progress, skip=published)
        finally:
            helper.forget(jid)
            self._release(helper)
            if started:
                try:
                    helper.send(("close", jid))
                except _Dead:
                    pass

    @staticmethod
    def _answer(helper: _Helper, jid: int, box: queue.SimpleQueue, progress) -> tuple:
        before = helper.ticks()
        while True:
            try:
                message = box.get(timeout=STALL_S)
            except queue.Empty:  # a stopped or hung helper would hold this job, its worker and its cancel
                if helper.hung(before):
                    raise _Dead from None
                before = helper.ticks()
                continue
            kind = message[0]
            if kind in ("dead", "unavailable"):
                raise _Dead
            if kind == "progress":
                if progress is not None:
                    try:
                        progress(message[2], message[3])
                    except BaseException:  # Cancelled: the helper stops the round at its next report
                        helper.send(("cancel", jid))
                        raise
                continue
            if kind == "error":
                raise _raised(message[2])
            return message


def _device_of(obj: object) -> torch.device:
    device = getattr(obj, "device", None)
    return device if isinstance(device, torch.device) else obj.x.device  # a clean pass: its input's


def _resolve(name: str) -> Callable:
    module, _, qualname = name.partition(":")
    obj: object = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)  # a view: its function


_HELPERS: list[Helpers] = []
_HELPERS_LOCK = threading.Lock()


def helpers() -> Helpers:
    """The process's helpers (made on first use; ``DROPBLOCK_LAB_HELPERS``, default one per usable core,
    :func:`models.jobs.usable_cores`: one per heavy pool worker, ``ui/waiting.py``, so that each round in
    flight has a process)."""
    with _HELPERS_LOCK:
        if not _HELPERS:
            raw = os.environ.get(ENV_HELPERS, "")
            n = int(raw) if raw.strip().isdigit() else usable_cores()
            _HELPERS.append(Helpers(n))
        return _HELPERS[0]


# ------------------------------------------------------------------ the helper process


class _Stop(Exception):
    """The app asked to stop the running round (``cancel``)."""


def _serve(conn: Connection, preload: tuple[str, ...] = ()) -> None:
    """The helper's loop: shared objects by token, one generator per job, one round per ``next``."""
    try:
        os.nice(19)
    except OSError:
        pass
    from .jobs import configure_process  # noqa: PLC0415

    for module in preload:
        importlib.import_module(module)
    configure_process()  # the app's own torch threads (DROPBLOCK_LAB_TORCH_THREADS, default 1): the same sums
    held: dict[tuple, object] = {}  # ("s", token) -> a model or a clean pass the app sent
    running: dict[int, Iterator] = {}
    memos: dict[int, _Memo] = {}
    later: list[tuple] = []  # messages read while a round ran
    cancelled: set[int] = set()

    def send(message: tuple) -> None:
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def reporter(jid: int):
        def report(fraction: float, text: str) -> None:
            while conn.poll(0):  # a cancel for this round stops it here; anything else waits its turn
                message = pickle.loads(conn.recv_bytes())
                if message[0] == "cancel":
                    cancelled.add(message[1])
                else:
                    later.append(message)
            if jid in cancelled:
                raise _Stop
            try:  # the text as reported (a Text keeps its template: the session's language translates it)
                data = pickle.dumps(("progress", jid, float(fraction), text), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 -- a text with no pickle: its words
                data = pickle.dumps(("progress", jid, float(fraction), str(text)), protocol=pickle.HIGHEST_PROTOCOL)
            conn.send_bytes(data)
        return report

    send(("ready",))
    while True:
        message = later.pop(0) if later else pickle.loads(conn.recv_bytes())
        kind = message[0]
        if kind == "obj":
            try:
                held[("s", message[1])] = _loads(message[2])
            except Exception:  # noqa: BLE001 -- the jobs that need it run in the app's process
                held.pop(("s", message[1]), None)
        elif kind == "forget":
            held.pop(("s", message[1]), None)
        elif kind == "cancel":
            cancelled.add(message[1])
        elif kind == "close":
            gen = running.pop(message[1], None)
            memos.pop(message[1], None)
            cancelled.discard(message[1])
            if gen is not None and hasattr(gen, "close"):
                try:
                    gen.close()
                except Exception:  # noqa: BLE001 -- a generator failing while it is dropped changes nothing
                    pass
        elif kind == "start":
            _, jid, name, payload, wants_progress = message
            try:
                args, kwargs = _loads(payload, held)
                fn = _resolve(name)
            except Exception:  # noqa: BLE001 -- cannot be run here (a model not held, a class not importable)
                running[jid] = _unavailable()
                continue
            try:
                extra = {"progress": reporter(jid)} if wants_progress else {}
                out = fn(*args, **kwargs, **extra)
                if not isinstance(out, Iterator):
                    raise TypeError(f"expected {name} to return an iterator of rounds, but got {type(out).__name__}")
                running[jid] = out
            except BaseException as err:  # noqa: BLE001 -- handed to the app, which raises it
                running[jid] = _raising(err)
        elif kind == "next":
            jid = message[1]
            gen = running.get(jid)
            try:
                if gen is None:
                    raise RuntimeError("the helper holds no such job")
                part = next(gen)
            except StopIteration:
                send(("stop", jid))
            except _Unavailable:
                running.pop(jid, None)
                memos.pop(jid, None)  # the app sends no close after this
                send(("unavailable", jid))
            except _Stop:
                running.pop(jid, None)
            except BaseException as err:  # noqa: BLE001
                running.pop(jid, None)
                send(("error", jid, _error_bytes(err)))
            else:
                try:
                    data = memos.setdefault(jid, _Memo()).dumps(part)
                except Exception:  # noqa: BLE001 -- a round with no pickle: the app runs the job itself
                    running.pop(jid, None)
                    memos.pop(jid, None)  # the app sends no close after this
                    send(("unavailable", jid))
                else:
                    send(("part", jid, *data))


class _Unavailable(Exception):
    """The helper cannot run this job: the app runs it itself."""


def _unavailable() -> Iterator:
    raise _Unavailable
    yield  # pragma: no cover -- makes this a generator


def _raising(err: BaseException) -> Iterator:
    raise err
    yield  # pragma: no cover -- makes this a generator


class _RemoteTrace(Exception):
    """Where an error raised in a helper came from: its trace there, as the error's cause here (for
    the server log; the page shows its own message, ``ui/frame.py``)."""

    def __str__(self) -> str:
        return "\n" + self.args[0]


def _error_bytes(err: BaseException) -> bytes:
    """``(err, its trace in the helper)`` pickled (:func:`_raised` makes it the error again)."""
    trace = "".join(traceback.format_exception(err))
    try:
        data = _dumps((err, trace))
        pickle.loads(data)
        return data
    except Exception:  # noqa: BLE001 -- an exception that does not round-trip: its type and message
        return _dumps((RuntimeError(f"{type(err).__name__}: {err}"), trace))


def _raised(data: bytes) -> BaseException:
    err, trace = _loads(data)
    err.__cause__ = _RemoteTrace(trace)
    return err


def _main() -> None:
    fd = int(sys.argv[1])
    conn = Connection(fd)
    try:
        _serve(conn, tuple(sys.argv[2:]))
    except (EOFError, OSError, KeyboardInterrupt):
        pass


if __name__ == "__main__":
    _main()
