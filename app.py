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

import ui  # noqa: F401 -- first: it sets the OpenMP wait policy before torch loads

starting = None
if "torch" not in sys.modules:  # a fresh server process: loading PyTorch and the model takes seconds
    starting = st.empty()
    starting.info("Starting DropBlock Lab: loading PyTorch and the model… · 正在启动：加载 PyTorch 和模型…", icon="⏳")

from ui import frame  # noqa: E402

frame.main(starting)
