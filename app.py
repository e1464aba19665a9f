"""DropBlock Lab: see structured dropout on a pretrained CNN.

DropBlock: Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional networks",
NeurIPS 2018 (arXiv:1810.12890). CAM: Zhou et al., CVPR 2016.

    streamlit run app.py

Opens on a bundled sample image: this landing page shows what the network sees and predicts,
and leads to the seven pages in ``pages/``. Every page draws the same sidebar (ui/state.py).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from ui import export, render, state  # first: ui sets the OpenMP wait policy before torch loads
from ui.i18n import N_, _
from models.engine import topk  # noqa: I001

WHAT = [
    N_("seed mask → block mask → dropped feature maps, γ from Eq. (1)"),
    N_("Dropout, SpatialDropout, Cutout and DropBlock at one drop budget"),
    N_("class activation maps with and without DropBlock"),
    N_("the paper's Figure 5 on your image"),
    N_("Algorithm 1, γ calculator, keep_prob schedule, common mistakes"),
    N_("DropBlock in the conv groups plus Dropout before the classifier (Hu et al.)"),
    N_("Figure 5 over a set of images: bundled, uploaded or a zip"),
]


def page(ctx: state.Context) -> None:
    st.title("DropBlock Lab")
    st.markdown(_(
        "**DropBlock** (Ghiasi, Lin & Le, NeurIPS 2018) drops *contiguous blocks* of a convolutional feature map "
        "instead of independent units, so the network cannot recover the missing evidence from its neighbours. "
        "Pick an image and the settings in the sidebar; every page below uses them, and the URL keeps them so "
        "a link opens the same view."
    ))
    left, right = st.columns([1, 1.3])
    with left:
        render.show_image(ctx.image, "input-crop", caption=_("{image}: the 224×224 crop the network sees").format(image=ctx.image_label))
        export.maps(ctx, "input-crop", "crop (224, 224, 3) uint8 as shown; input (1, 3, 224, 224) float32 as the "
                    "network takes it (normalised)", crop=np.asarray(ctx.image), input=ctx.clean.x)
    with right:
        st.markdown(_("**What the network predicts (no regulariser)**"))
        st.table(render.top_table(topk(ctx.clean.probs[0], ctx.backbone.categories)), hide_index=True)
        export.top(ctx, "top5-clean", clean=topk(ctx.clean.probs[0], ctx.backbone.categories))
        for (path, title, icon), what in zip(state.NAV[1:], WHAT):
            st.page_link(path, label=_("**{title}**: {what}").format(title=_(title), what=_(what)), icon=icon)


state.run_page(page)
