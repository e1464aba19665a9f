"""Issue 22 §5 on the real server: closing the tab while a zip of big images is read frees the CPU.

Reading used to run in the session's own thread and decode every image before anything could stop
it (a closed tab left a core busy for 45 s). Now it runs on the heavy pool and checks before each
image, and the waiting page notices the closed tab within 0.1 s. The zip is uploaded through
Streamlit's own protocol (file URL request, HTTP PUT, the uploader's widget state), the tab is
closed while the images are read, and the server process's CPU time is sampled from /proc.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import urllib.request
import uuid
import zipfile

import pytest
from PIL import Image

from .conftest import ROOT
from .appserver import app_server

sys.path.insert(0, str(ROOT / "bench"))

from stclient import Session  # noqa: E402
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: E402
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads the server's CPU from /proc")


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app with XSRF checks off (this client uploads without a browser's token); yields (url, pid)."""
    with app_server(tmp_path_factory, "--server.enableXsrfProtection", "false") as app:
        yield app.url, app.pid
    assert "Traceback" not in app.log.read_text()


async def _run(s: Session, msg: BackMsg, info: dict, until, timeout: float = 300.0) -> None:
    """Send ``msg`` and read until ``until(info)``; ``info`` collects the session id, the widgets by
    label (id, fragment), file URLs and whether a progress bar was drawn."""
    await s.ws.send(msg.SerializeToString())
    async with asyncio.timeout(timeout):
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await s.ws.recv())
            kind = fwd.WhichOneof("type")
            if kind == "new_session":
                info["session_id"] = fwd.new_session.initialize.session_id or info.get("session_id")
                s.page_hash = fwd.new_session.page_script_hash or s.page_hash
            elif kind == "navigation":
                s.page_hash = fwd.navigation.page_script_hash or s.page_hash
            elif kind == "file_urls_response":
                info["file_urls"] = fwd.file_urls_response.file_urls[0]
            elif kind == "script_finished":
                info["finished"] = int(fwd.script_finished)
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                which = element.WhichOneof("type")
                if which in ("progress", "spinner"):  # the heavy pool's progress bar (a spinner before)
                    info["progress"] = info.get("progress", 0) + 1
                elif which in ("radio", "file_uploader"):
                    body = getattr(element, which)
                    info.setdefault("widgets", {})[body.label] = (body.id, fwd.delta.fragment_id)
            if until(info):
                return


def _rerun(s: Session, widget: tuple[str, str], set_value) -> BackMsg:
    msg = BackMsg()
    state = msg.rerun_script
    state.page_script_hash, state.fragment_id = s.page_hash, widget[1]
    w = state.widget_states.widgets.add()
    w.id = widget[0]
    set_value(w)
    return msg


def _zip(n: int, side: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(n):
            png = io.BytesIO()
            Image.new("RGB", (side, side), (i * 9 % 256, 120, 200)).save(png, "PNG")
            z.writestr(f"solid{i:02d}.png", png.getvalue())
    return buf.getvalue()


def _put(url: str, path: str, name: str, data: bytes) -> int:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/zip\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + path, data=body, method="PUT",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def test_closing_the_tab_while_a_zip_is_read_frees_the_cpu(server):
    url, pid = server
    data = _zip(24, 3000)  # 24 x 9 MP within the 256 MP budget: seconds of decoding, ~20 kB zipped
    assert len(data) < 100_000

    async def scenario() -> tuple[float, float]:
        s = Session(url, timeout=300)
        await s.connect()
        info: dict = {}
        msg = BackMsg()
        msg.rerun_script.page_name = "Image_set"
        await _run(s, msg, info, lambda i: "finished" in i)
        source = info["widgets"]["Images"]
        info.pop("finished")
        await _run(s, _rerun(s, source, lambda w: setattr(w, "string_value", "Upload a zip of images")), info,
                   lambda i: "finished" in i)
        uploader = next(v for k, v in info["widgets"].items() if k.startswith("A zip of images"))
        request = BackMsg()
        request.file_urls_request.request_id = "r1"
        request.file_urls_request.file_names.append("big.zip")
        request.file_urls_request.session_id = info["session_id"]
        await _run(s, request, info, lambda i: "file_urls" in i)
        urls = info["file_urls"]
        assert _put(url, urls.upload_url, "big.zip", data) in (200, 204)

        def uploaded(w) -> None:
            f = w.file_uploader_state_value.uploaded_file_info.add()
            f.file_id, f.name, f.size = urls.file_id, "big.zip", len(data)
            f.file_urls.CopyFrom(urls)

        info.pop("finished")
        info["progress"] = 0
        before = _cpu_seconds(pid)
        try:  # the progress bar shows at once; without one (the old spinner), reading has begun anyway
            await _run(s, _rerun(s, uploader, uploaded), info, lambda i: i.get("progress", 0) >= 1, timeout=1.5)
        except TimeoutError:
            pass
        await asyncio.sleep(0.8)  # reading
        reading = _cpu_seconds(pid) - before
        await s.close()  # the tab closes
        closed = _cpu_seconds(pid)
        await asyncio.sleep(1.0)
        first = _cpu_seconds(pid) - closed
        await asyncio.sleep(2.0)
        later = _cpu_seconds(pid) - closed - first
        print(f"CPU while reading: {reading:.2f} s; after the close: {first:.2f} s in the first second, "
              f"{later:.2f} s in the next two")
        return reading, later

    reading, later = asyncio.run(scenario())
    assert reading > 0.05  # the images were being decoded when the tab closed
    assert later < 0.3, later  # from 1 s after the close the server is idle (reading them all takes seconds)
