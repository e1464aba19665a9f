"""A Streamlit client without a browser: the frontend's websocket protocol, spoken by asyncio.

The app server (Streamlit 1.67 on Starlette/uvicorn) talks to its frontend over ``/_stcore/stream``:
the client sends ``BackMsg`` protobufs (``rerun_script`` carries a ``ClientState``: query string,
page hash and every widget value it knows), the server answers with ``ForwardMsg``s (``new_session``,
``navigation``, deltas, ``page_info_changed``, ``script_finished``). This client does what the
frontend does for the actions a student takes here, and nothing a browser does beyond that:

* connect with the ``streamlit`` subprotocol and an ``Origin`` header (the server checks it);
* open a page by name, as the frontend does for ``/Mask_explorer?seed=3``;
* move a widget: remember its new value by label, send the values of all widgets moved so far
  under the ids the last run reported (a keyed widget's id is stable; unmoved keyed widgets keep
  their values in the server's session state, as with the frontend);
* switch page: ``rerun_script`` with the target's ``page_script_hash`` (from the ``navigation`` message
  that app.py's ``st.navigation`` sends), as the sidebar's page links do;
* fetch every new ``/media/...`` picture over HTTP, as the browser's ``<img>`` does, so the server
  pays for media serving too; pictures inlined as ``data:`` URIs (the tiles of a tile grid in an
  ``st.html`` element, ui/render.py) travel in the delta itself and need no fetch;
* keep the frontend's message cache: elements of 10 KB or more (``metadata.cacheable``, e.g. a
  tile grid's HTML) are remembered by hash for ``max_cached_message_age`` script runs and their
  hashes sent with every rerun, so the server sends a reference instead of an unchanged element.

A run counts as done when ``script_finished`` has arrived and its pictures have been fetched.
Error boxes (``st.error``) and exception elements are reported as errors.

Heavy views' markers (the app's convention for views that compute in rounds, issue 19): each round
shows a text containing ``{done} of {total} samples`` ("2 of 32 samples per point"); a view whose
refinement stopped because the server is busy says "the server is busy"; a view waiting for its
first round shows a progress bar (``st.progress``), whose text contains "waiting for the server"
while queued, or the job's own progress. The client records when each delta carrying a marker
arrived (:class:`Mark`, seconds since the action was sent), so the bench can tell light actions
(no marker) from heavy ones, and time a heavy view's first round and its final (or load-limited)
result. Texts are read from markdown and captions, alerts (not error boxes), plain text,
metrics, progress bars, toasts and expander/status labels.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg


# elements that are widgets (their label and id are remembered, so a move or a forged value can name them)
WIDGETS = {"slider", "number_input", "selectbox", "radio", "checkbox", "multiselect", "text_input", "text_area",
           "date_input", "time_input", "color_picker", "button_group", "file_uploader", "button", "download_button"}


SAMPLES = re.compile(r"(?<![\w.,])(\d[\d,]*) of (\d[\d,]*) samples\b")
BUSY = "the server is busy"
WAITING = "waiting for the server"


@dataclass(frozen=True)
class Mark:
    """A heavy view's marker in one delta: ``kind`` is "samples" (``done`` of ``total``), "busy"
    (refinement stopped, the server is busy), or "progress" (a progress bar: queued or computing)."""

    seconds: float  # since the action was sent
    kind: str
    done: int = 0
    total: int = 0
    path: tuple[int, ...] = ()  # the delta's place on the page (a view's caption keeps its place)
    text: str = ""

    @property
    def final(self) -> bool:
        return self.kind == "samples" and self.done >= self.total


def markers(text: str, *, progress: bool = False) -> list[tuple[str, int, int]]:
    """The markers in one element's text: ("samples", done, total) for each ``N of M samples``,
    ("busy", 0, 0) for "the server is busy", and ("progress", 0, 0) for a progress bar's text."""
    plain = re.sub(r"[*_`]", "", text).replace("\u00a0", " ")  # markdown emphasis, no-break spaces
    found: list[tuple[str, int, int]] = [("progress", 0, 0)] if progress else []
    found += [("samples", int(n.replace(",", "")), int(m.replace(",", ""))) for n, m in SAMPLES.findall(plain)]
    if BUSY in plain.lower():
        found.append(("busy", 0, 0))
    return found


def element_text(delta) -> tuple[str, bool]:
    """(text shown, whether it is a progress bar) of a delta's new element or block; ("", False)
    for elements without text (pictures, charts, widgets) and for error boxes."""
    kind = delta.WhichOneof("type")
    if kind == "add_block":
        block = delta.add_block
        return (block.expandable.label, False) if block.WhichOneof("type") == "expandable" else ("", False)
    if kind != "new_element":
        return "", False
    el = delta.new_element
    el_kind = el.WhichOneof("type")
    body = getattr(el, el_kind) if el_kind else None
    if el_kind == "progress":
        return body.text, True
    if el_kind == "alert":
        return ("", False) if body.format == Alert.ERROR else (body.body, False)
    if el_kind in ("markdown", "text", "toast"):
        return body.body, False
    if el_kind == "metric":
        return f"{body.label}: {body.body}", False
    return "", False


@dataclass
class RunResult:
    seconds: float  # action sent -> script_finished and its pictures fetched
    deltas: int
    pictures: int
    errors: list[str] = field(default_factory=list)
    url_writes: int = 0  # page_info_changed messages: the query string the browser is told to show
    texts: list[str] = field(default_factory=list)  # markdown/caption bodies and "label: value" of metrics
    status: int = 0  # ForwardMsg.script_finished value; 0 = finished successfully
    marks: list[Mark] = field(default_factory=list)  # heavy views' markers, in order of arrival
    ticking: dict[str, float] = field(default_factory=dict)  # fragment id -> run_every interval (auto_rerun)
    stopped: set[str] = field(default_factory=set)  # fragment ids whose timer the server stopped
    followed_s: float = 0.0  # action -> the end of the refining fragment's last tick followed (0: none)

    @property
    def heavy(self) -> bool:
        """Whether a heavy view's marker appeared (a light action shows none)."""
        return bool(self.marks)

    @property
    def first_round_s(self) -> float | None:
        """Action -> the first ``N of M samples`` marker; a heavy run without one (a one-shot heavy
        job) shows its result when the run ends. None for a light action."""
        if not self.marks:
            return None
        return next((m.seconds for m in self.marks if m.kind == "samples"), self.seconds)

    @property
    def final_s(self) -> float | None:
        """Action -> the full result (a view's marker with N == M) or the load-limited one (a "the
        server is busy" marker), or the run's end, whichever first. With several views, the first
        moment each view (a place on the page that showed a samples marker) has its final or busy
        marker. None for a light action."""
        if not self.marks:
            return None
        latest: dict[tuple[int, ...], Mark] = {}
        for m in self.marks:
            if m.kind == "busy":
                return m.seconds
            if m.kind == "samples":
                latest[m.path] = m
                if all(v.final for v in latest.values()):
                    return m.seconds if self.followed_s else min(m.seconds, self.seconds)
        return max(self.seconds, self.followed_s)


async def http_get(host: str, port: int, path: str, cookie: str = "") -> tuple[int, list[str]]:
    """GET ``path`` with HTTP/1.1 and Connection: close; returns (status, Set-Cookie values), body discarded."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
        writer.write((head + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n").encode())
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        cookies = []
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "set-cookie" and value.strip():
                cookies.append(value.strip().split(";", 1)[0])
        while await reader.read(65536):
            pass
        return status, cookies
    finally:
        writer.close()



class Session:
    """One protocol session. ``await open(page, query)``, then ``move``/``goto``, then ``close``."""

    def __init__(self, base_url: str, timeout: float = 300.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.base = base_url.rstrip("/")
        self.timeout = timeout
        self.ws = None
        self.pages: dict[str, str] = {}  # page name ("Mask explorer") and url path -> page_script_hash
        self.nav: list[tuple[str, str]] = []  # (title, url path) of each page, in the order the menu lists them
        self.page_hash = ""
        self.query = ""
        self.widget_ids: dict[str, str] = {}  # label -> id, from the last run
        self.widget_kinds: dict[str, str] = {}
        self.widget_fragments: dict[str, str] = {}  # label -> the fragment that draws it ("" if none)
        self.moved: dict[str, object] = {}  # label -> value the student set
        self.forged: dict[str, tuple[str, object]] = {}  # label -> (WidgetState field, raw value): a hostile client
        self.widget_options: dict[str, list[str]] = {}  # label -> the options a choice widget showed
        self.cookies = ""
        self.cached: dict[str, int] = {}  # hash of a cacheable message -> script runs since last seen
        self.max_cached_age = 2  # the server's global.maxCachedMessageAge, from new_session
        self.open_run = False  # the last run was left when its page said the server is busy

    async def connect(self) -> None:
        # The browser loads the page first (XSRF cookie; behind deploy/'s nginx, the routing cookie
        # that keeps this session's socket and pictures on one app process), then opens the socket.
        _, cookies = await http_get(self.host, self.port, "/", "")
        self.cookies = "; ".join(cookies)
        self.ws = await websockets.connect(
            f"ws://{self.host}:{self.port}/_stcore/stream", subprotocols=["streamlit"],
            origin=f"http://{self.host}:{self.port}", max_size=None, open_timeout=self.timeout,
            ping_interval=None, additional_headers={"Cookie": self.cookies} if self.cookies else None,
        )

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None

    async def open(self, page: str = "", query: str = "") -> RunResult:
        """Connect (if needed) and run ``page`` (its url path, "" for Home) with ``query``."""
        start = time.perf_counter()
        if self.ws is None:
            await self.connect()
        self.query = query
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        msg.rerun_script.page_script_hash = self.pages.get(page, "")
        return await self._run(msg, start)

    async def move(self, label: str, value: object) -> RunResult:
        """Set the widget labelled ``label`` to ``value``, as the frontend does on a change."""
        if label not in self.widget_ids:
            raise KeyError(f"no widget labelled {label!r} on this page")
        self.moved[label] = value
        # a widget a fragment draws reruns only that fragment, as in the browser
        return await self._rerun(self.page_hash, self.widget_fragments.get(label, ""))

    async def forge(self, label: str, field: str, value: object) -> RunResult:
        """Send ``value`` in the ``WidgetState`` field ``field`` (``string_value``, ``int_value``,
        ``double_array_value``, …) for the widget labelled ``label``, whatever its kind: what a
        hand-written websocket client can send and a browser never would. The forged value is sent
        once; later reruns send what the frontend would (the moved values)."""
        if label not in self.widget_ids:
            raise KeyError(f"no widget labelled {label!r} on this page")
        self.forged[label] = (field, value)
        try:
            return await self._rerun(self.page_hash, self.widget_fragments.get(label, ""))
        finally:
            self.forged.pop(label, None)

    async def goto(self, page: str) -> RunResult:
        """Follow a page link: ``page`` is its url path ("Mask_explorer") or "" for Home. The last
        page's fragments are gone with it: a widget a fragment drew there (the mask explorer draws
        the sidebar's live controls in its own) is the new page's until its run says otherwise, as a
        browser knows (a fragment rerun for a fragment the page does not have is never answered)."""
        self.widget_fragments = dict.fromkeys(self.widget_fragments, "")
        return await self._rerun(self.pages[page])

    async def _rerun(self, page_hash: str, fragment_id: str = "", follow: bool = True) -> RunResult:
        start = time.perf_counter()
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = page_hash
        state.fragment_id = fragment_id
        state.cached_message_hashes.extend(self.cached)
        for label, value in self.moved.items():
            wid = self.widget_ids.get(label)
            if wid is None:
                continue
            w = state.widget_states.widgets.add()
            w.id = wid
            kind = self.widget_kinds[label]
            if kind == "slider":
                w.double_array_value.data.append(float(value))
            elif kind == "number_input" and isinstance(value, int):
                w.int_value = value
            elif kind == "number_input":
                w.double_value = float(value)
            elif kind == "selectbox":  # the option as shown (format_func's text), as the frontend sends it
                w.string_value = str(value)
            elif kind == "expander":  # a stateful expander (on_change): open or closed
                w.bool_value = bool(value)
            else:
                raise ValueError(f"widget kind {kind} is not supported by this client")
        if not follow:
            state.is_auto_rerun = True
        for label, (name, value) in self.forged.items():
            w = state.widget_states.widgets.add()
            w.id = self.widget_ids[label]
            target = getattr(w, name)
            if name.endswith("_array_value"):
                target.data.extend(value)
            elif name == "file_uploader_state_value":
                target.CopyFrom(value)
            else:
                setattr(w, name, value)
        return await self._run(msg, start, follow)

    async def _run(self, msg: BackMsg, start: float, follow: bool = True) -> RunResult:
        await self.ws.send(msg.SerializeToString())
        result = RunResult(0.0, 0, 0)
        fetches = []
        seen: dict[str, str] = {}
        kinds: dict[str, str] = {}
        fragments: dict[str, str] = {}
        async with asyncio.timeout(self.timeout):
            first = None
            while self.open_run:  # the last action's run, left open: skip its messages until this run starts
                fwd = ForwardMsg()
                fwd.ParseFromString(await self.ws.recv())
                kind = fwd.WhichOneof("type")
                if kind == "new_session":  # every script run starts with one
                    self.open_run, first = False, fwd
                elif kind == "script_finished":  # the left run ended first: this run's messages follow
                    self.open_run = False
            while True:
                if first is not None:
                    fwd, first = first, None
                else:
                    fwd = ForwardMsg()
                    fwd.ParseFromString(await self.ws.recv())
                arrived = time.perf_counter() - start
                kind = fwd.WhichOneof("type")
                if fwd.metadata.cacheable:
                    self.cached[fwd.hash] = 0
                if kind == "ref_hash":  # an element we have: the frontend takes it from its cache
                    self.cached[fwd.ref_hash] = 0
                    result.deltas += 1
                elif kind == "new_session":
                    self.page_hash = fwd.new_session.page_script_hash or self.page_hash
                    self.max_cached_age = fwd.new_session.config.max_cached_message_age or self.max_cached_age
                elif kind == "navigation":
                    self.nav = [(p.page_name, p.url_pathname) for p in fwd.navigation.app_pages]
                    for p in fwd.navigation.app_pages:
                        self.pages[p.page_name] = p.page_script_hash
                        self.pages[p.url_pathname] = p.page_script_hash
                    self.page_hash = fwd.navigation.page_script_hash or self.page_hash
                elif kind == "auto_rerun":  # a refining view's fragment: the browser reruns it on a timer
                    result.ticking[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
                elif kind == "stop_auto_rerun":
                    for fid in fwd.stop_auto_rerun.fragment_ids:
                        result.ticking.pop(fid, None)
                        result.stopped.add(fid)
                elif kind == "page_info_changed":
                    self.query = fwd.page_info_changed.query_string
                    result.url_writes += 1
                elif kind == "delta":
                    result.deltas += 1
                    delta = fwd.delta
                    text, is_progress = element_text(delta)
                    path = tuple(fwd.metadata.delta_path)
                    result.marks += [Mark(arrived, what, done, total, path, text)
                                     for what, done, total in markers(text, progress=is_progress)]
                    if any(m.kind == "busy" for m in result.marks):
                        # the page answered with what it had and says it refines when the server is
                        # free: the student sees that and acts on; the run goes on (the next action
                        # preempts it, as a browser's would)
                        self.open_run = True
                        break
                    if delta.WhichOneof("type") == "add_block" and delta.add_block.WhichOneof("type") == "expandable":
                        box = delta.add_block.expandable
                        if box.id:  # a stateful expander: opened like a widget
                            seen[box.label], kinds[box.label] = box.id, "expander"
                            fragments[box.label] = delta.fragment_id
                    if delta.WhichOneof("type") != "new_element":
                        continue
                    el = delta.new_element
                    el_kind = el.WhichOneof("type")
                    body = getattr(el, el_kind)
                    if el_kind in WIDGETS and body.id:
                        seen[body.label], kinds[body.label] = body.id, el_kind
                        fragments[body.label] = delta.fragment_id
                        if el_kind in ("selectbox", "radio", "multiselect") or getattr(body, "options", None):
                            self.widget_options[body.label] = list(body.options)
                    elif el_kind == "imgs":
                        for img in body.imgs:
                            if img.url.startswith("/"):
                                result.pictures += 1
                                fetches.append(asyncio.create_task(http_get(self.host, self.port, img.url, self.cookies)))
                    elif el_kind == "exception":
                        result.errors.append(f"exception: {body.type}")
                    elif el_kind == "alert":
                        result.texts.append(body.body)
                        if body.format == Alert.ERROR:
                            result.errors.append(f"error box: {body.body[:80]}")
                    elif el_kind == "markdown":
                        result.texts.append(body.body)
                    elif el_kind == "metric":
                        result.texts.append(f"{body.label}: {body.body}")
                elif kind == "script_finished":
                    result.status = int(fwd.script_finished)
                    # 0 finished, 1 compile error, 2 stopped early for a rerun (more follows), 3 fragment run
                    if result.status == 1:
                        result.errors.append("script did not compile")
                    if result.status != 2:
                        self.cached = {h: age + 1 for h, age in self.cached.items() if age + 1 <= self.max_cached_age}
                        break
        for status, _ in await asyncio.gather(*fetches):
            if status != 200:
                result.errors.append(f"picture: HTTP {status}")
        if result.status == 3:  # a fragment's run: only its widgets were sent again
            self.widget_ids.update(seen)
            self.widget_kinds.update(kinds)
            self.widget_fragments.update(fragments)
        elif seen and self.open_run:  # left early: the widgets drawn after the view were not seen yet
            for label in seen:  # the sidebar's (drawn last) keep their label over a page fragment's namesake
                if label not in self.widget_ids or not fragments[label] or self.widget_fragments.get(label):
                    self.widget_ids[label], self.widget_kinds[label] = seen[label], kinds[label]
                    self.widget_fragments[label] = fragments[label]
        elif seen:
            self.widget_ids, self.widget_kinds, self.widget_fragments = seen, kinds, fragments
        result.seconds = time.perf_counter() - start
        if follow and result.status != 2:
            await self._follow(result, start)
        return result

    def _settled(self, result: RunResult) -> bool:
        latest: dict[tuple[int, ...], Mark] = {}
        for m in result.marks:
            if m.kind == "busy":
                return True
            if m.kind == "samples":
                latest[m.path] = m
        return not latest or all(m.final for m in latest.values())

    async def _follow(self, result: RunResult, start: float) -> None:
        """Rerun the ticking fragments as the browser's timers would, until the view's final round
        or "the server is busy" (the run itself ended at its first answer). The student watches
        meanwhile; the ticks' markers join the action's, timed from it; ``result.seconds`` stays
        the run's end."""
        deadline = start + self.timeout
        while result.ticking and not self._settled(result) and time.perf_counter() < deadline:
            fid, interval = next(iter(result.ticking.items()))
            await asyncio.sleep(interval)
            tick_start = time.perf_counter()
            tick = await self._rerun(self.page_hash, fid, follow=False)
            offset = tick_start - start
            result.marks += [dataclasses.replace(m, seconds=m.seconds + offset) for m in tick.marks]
            result.errors += tick.errors
            result.texts += tick.texts  # what the student sees as the view refines
            for f in tick.stopped:
                result.ticking.pop(f, None)
            if tick.status not in (0, 3):  # preempted or failed: stop following
                result.ticking.clear()
            result.followed_s = time.perf_counter() - start
