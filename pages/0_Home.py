"""Home: what the network sees and predicts on the chosen image, and where each page leads.

DropBlock: Ghiasi, Lin & Le, NeurIPS 2018 (arXiv:1810.12890).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from models.engine import topk
from ui import export, layout, paper, render, state
from ui.i18n import N_, _

WHAT = {  # page file -> what it shows (translated when shown)
    "pages/0_Lesson.py": N_("a guided lesson in eight steps: predict, then reveal"),
    "pages/1_Mask_explorer.py": N_("seed mask → block mask → dropped feature maps, γ from Eq. (1)"),
    "pages/2_Compare_methods.py": N_("Dropout, SpatialDropout, Cutout and DropBlock at one drop budget"),
    "pages/3_CAM_shift.py": N_("class activation maps with and without DropBlock"),
    "pages/4_Robustness_curve.py": N_("the paper's Figure 5 on your image"),
    "pages/5_Theory_and_schedule.py": N_("Algorithm 1, γ calculator, keep_prob schedule, common mistakes"),
    "pages/6_DropBlock_and_Dropout.py": N_("DropBlock in the conv groups plus Dropout before the classifier (Hu et al.)"),
    "pages/7_Image_set.py": N_("Figure 5 over a set of images: bundled, uploaded or a zip"),
}


def page(ctx: state.Context) -> None:
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
            for path, _url, title, icon in state.NAV[1:]:
                st.page_link(path, label=_("**{title}**: {what}").format(title=_(title), what=_(WHAT[path])),
                             icon=icon)
    st.caption(paper.headline())
    st.caption(_("The paper's tables and findings are on the Theory & schedule page, beside the app's own "
                 "measurements."))


state.run_page(page)
