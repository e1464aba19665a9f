"""The second model of a two-checkpoint comparison (Figure 5(b), Figure 6; models/checkpoints.py):
one selector shared by the robustness curve and CAM pages, and a plain message when there is none."""

from __future__ import annotations

import streamlit as st

from ui import inputs
from ui.inputs import Context
from ui.i18n import _

NONE = "none"


def second_model(ctx: Context, key: str) -> Context | None:
    """The context of a second model the visitor picks, or None (and says why) when there is none."""
    options = inputs.second_models(ctx)
    if not options:
        st.info(_("Only one model is available here: {model}. Figure 5(b) and Figure 6 compare a model trained "
                  "without DropBlock with one trained with it. To compare two, the operator puts two state-dict "
                  "files of the same network (for example resnet50_baseline.pth and resnet50_dropblock.pth) in "
                  "DROPBLOCK_LAB_WEIGHTS_DIR, or caches two torchvision weights versions; pick one in the sidebar "
                  "and the other here.").format(model=ctx.loaded.summary), icon="ℹ️")
        return None
    choice = st.selectbox(_("Second model to compare (Figure 5(b), Figure 6)"), [NONE, *options],
                          format_func=lambda o: _("none: the sidebar's model only") if o == NONE
                          else inputs.weights_label(o), key=key)
    if choice == NONE:
        return None
    other = inputs.second_context(ctx, choice)
    if other is None:
        st.info(_("{name} gives the same model as the sidebar's here ({model}), so only one model is "
                  "available.").format(name=inputs.weights_label(choice), model=ctx.loaded.summary), icon="ℹ️")
    return other
