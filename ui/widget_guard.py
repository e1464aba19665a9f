"""Widget values no browser could send are dropped at the door, before Streamlit reads them.

A classroom server is public to its room, and its websocket takes any ``BackMsg`` a hand-written
client sends. Streamlit 1.67 turns each widget's incoming value into a Python value with the
widget's own deserializer *before any app code runs* (``SessionState.on_script_will_rerun``), and
some of those raise on values the frontend never sends: ``int(inf)`` for an integer
``number_input``, ``len()`` of an int for a slider. The exception then stays in the session's widget
state and fails every later run of that session. Choice widgets (selectbox, radio, multiselect)
do not raise: they hand a string that is none of their options to the script as it came, a path
for example.

:func:`install` wraps ``SessionState.set_widgets_from_proto`` (where incoming values enter the
session, once per rerun message) so that each value is first checked against the widget's own
description from its last run. The value must come in the field the widget declared (Streamlit
writes it back there: a list of strings into a float array raises), the deserializer must accept
it, and a choice widget's strings must be among its (formatted) options. A value that fails is
left out, as if the client had not sent it: the widget keeps its last value, the run goes on,
and the server log gets one line (no traceback, no value). The app's own checks (``ui/settings.py`` validates every setting against
the table that draws its widget) stay behind this one.

Streamlit is pinned (requirements.txt); :func:`install` checks that the parts it relies on exist
and refuses to start otherwise, and ``tests/app/test_forged.py`` drives the real server with
forged values for every widget.
"""

from __future__ import annotations

import logging
import threading

from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.runtime.state.common import unpack_widget_state_value
from streamlit.runtime.state.session_state import SessionState

_log = logging.getLogger("dropblock_lab")
_lock = threading.Lock()
_GUARDED = "_dropblock_lab_guarded"


_NUMBERS = {"int_value", "double_value"}  # a number_input's value comes in either field


def acceptable(metadata, state) -> bool:
    """Whether the widget described by ``metadata`` (its last run's) could have sent ``state``."""
    field = state.WhichOneof("value")
    allowed = _NUMBERS if metadata.value_type in _NUMBERS else {metadata.value_type}
    if field is not None and field not in allowed:  # Streamlit would write it back in the widget's own field
        return False
    try:
        value = unpack_widget_state_value(state)
        metadata.deserializer(value)
    except Exception:  # noqa: BLE001 - any failure of Streamlit's own conversion: the value is refused
        return False
    serde = getattr(metadata.deserializer, "__self__", None)
    known = getattr(serde, "formatted_option_to_option_index", None)
    if known is None or getattr(serde, "accept_new_options", False):
        return True
    if isinstance(value, str):  # selectbox, radio
        return value in known
    if value is not None and not isinstance(value, (bytes, dict)):  # multiselect: every chosen string
        try:
            return all(isinstance(v, str) and v in known for v in value)
        except TypeError:
            return False
    return True


def _checked(original):
    def set_widgets_from_proto(self: SessionState, widget_states: WidgetStates) -> None:
        metadata = self._new_widget_state.widget_metadata
        keep = [s for s in widget_states.widgets if s.id not in metadata or acceptable(metadata[s.id], s)]
        if len(keep) != len(widget_states.widgets):
            _log.warning("dropped %d widget value(s) no browser could have sent",
                         len(widget_states.widgets) - len(keep))
            widget_states = WidgetStates(widgets=keep)
        return original(self, widget_states)

    setattr(set_widgets_from_proto, _GUARDED, True)
    return set_widgets_from_proto


def install() -> None:
    """Guard every session of this process (idempotent; the entrypoint calls it on every run)."""
    if getattr(SessionState.set_widgets_from_proto, _GUARDED, False):
        return
    with _lock:
        original = SessionState.set_widgets_from_proto
        if getattr(original, _GUARDED, False):
            return
        probe = SessionState()
        if not hasattr(probe, "_new_widget_state") or not hasattr(probe._new_widget_state, "widget_metadata"):
            raise RuntimeError("ui/widget_guard.py does not know this Streamlit version's session state")
        SessionState.set_widgets_from_proto = _checked(original)
