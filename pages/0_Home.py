"""Home: what the network sees and predicts on the chosen image, and where each page leads.

DropBlock: Ghiasi, Lin & Le, NeurIPS 2018 (arXiv:1810.12890).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from models.engine import topk
from ui import export, frame, layout, paper, render
from ui.i18n import _
from ui.inputs import Context


def page(ctx: Context) -> None:
    st.title("DropBlock Lab")
    with layout.details("home-intro"):
        st.markdown(_(
            "**DropBlock** (Ghiasi, Lin & Le, NeurIPS 2018) drops *contiguous blocks* of a convolutional feature map "
            "instead of independent units, so the network cannot recover the missing evidence from its neighbours. "
            "Pick an image and the settings in the sidebar; every page below uses them, and the URL keeps them so "
            "a link opens the same view."
        ))
    left, right = st.columns([1, 1.3])
    with left, layout.main_figure():
        render.show_image(ctx.image, "input-crop",
                          caption=_("{image}: the 224×224 crop the network sees").format(image=ctx.image_label))
        export.maps(ctx, "input-crop", "crop (224, 224, 3) uint8 as shown; input (1, 3, 224, 224) float32 as the "
                    "network takes it (normalised)", crop=np.asarray(ctx.image), input=ctx.clean.x)
    with right:
        st.markdown(_("**What the network predicts (no regulariser)**"))
        st.table(render.top_table(topk(ctx.clean.probs[0], ctx.backbone.categories)), hide_index=True)
        export.top(ctx, "top5-clean", clean=topk(ctx.clean.probs[0], ctx.backbone.categories))
        with layout.details("home-pages"):
            frame.page_links()
    st.caption(paper.headline())
    st.caption(_("The paper's tables and findings are on the Theory & schedule page, beside the app's own "
                 "measurements."))


frame.page(page)
