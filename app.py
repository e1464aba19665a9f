"""DropBlock Lab: see structured dropout on a pretrained CNN.

DropBlock: Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional networks",
NeurIPS 2018 (arXiv:1810.12890). CAM: Zhou et al., CVPR 2016.

    streamlit run app.py

The entrypoint: ``ui/frame.py`` holds the page table and routes to the page asked for. On a fresh
server the first visitor would wait a few seconds for PyTorch to load with nothing on screen, so a
line says so first.
"""

from __future__ import annotations

import sys

import streamlit as st

from ui.i18n import N_, _, use_language  # first: ui sets the OpenMP wait policy before torch loads (no torch here)

STARTING = N_("Starting DropBlock Lab: loading PyTorch and the model…")
starting = None
if "torch" not in sys.modules:  # a fresh server process: loading PyTorch and the model takes seconds
    starting = st.empty()  # the session's language is not known yet: both
    with use_language("en"):
        english = _(STARTING)
    with use_language("zh"):
        chinese = _(STARTING)
    starting.info(f"{english} · {chinese}", icon="⏳")

from ui import frame  # noqa: E402

frame.main(starting)
