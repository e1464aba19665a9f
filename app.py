"""DropBlock Lab: see structured dropout on a pretrained CNN.

DropBlock: Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional networks",
NeurIPS 2018 (arXiv:1810.12890). CAM: Zhou et al., CVPR 2016.

    streamlit run app.py

The entrypoint and router: it sets the page up once, builds the navigation from the page files in
``pages/`` (``st.navigation``/``st.Page``, titles in the session's language, rebuilt every run) and
runs the page the visitor asked for. Every page draws the same sidebar through ``state.run_page``.
"""

from __future__ import annotations

import streamlit as st

from ui import layout, state, widget_guard  # first: ui sets the OpenMP wait policy before torch loads

widget_guard.install()  # values no browser could send never reach a session (once per process)
state.init_session()  # the URL's settings (language, presenter mode) before the titles are made
st.set_page_config(page_title="DropBlock Lab", page_icon="🧱", layout="wide",
                   initial_sidebar_state="collapsed" if layout.presenting() else "auto")
page = st.navigation(state.pages())
with state.entrypoint():
    page.run()
