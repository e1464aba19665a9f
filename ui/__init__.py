"""Streamlit-side helpers shared by app.py and the pages: state, caches, rendering.

Importing ``ui`` first thing (app.py and every page do, before torch is loaded) sets the OpenMP
wait policy: idle intra-op threads sleep instead of spinning between requests. A visitor may open
any page first, so this lives here rather than in app.py; deploy/launch.py sets these too, and an
operator's own values win.
"""

import os

for _var, _value in (("OMP_WAIT_POLICY", "PASSIVE"), ("KMP_BLOCKTIME", "0"), ("GOMP_SPINCOUNT", "0")):
    os.environ.setdefault(_var, _value)
