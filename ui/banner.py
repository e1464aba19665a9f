"""What every page says at its top: which network, weights and device run, and notes on the settings."""

from __future__ import annotations

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

import models as M
from ui import layout
from ui.i18n import _, shown_text, tr
from ui.inputs import Context
from ui.text import escaped

def device_name() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"

def model_banner(ctx: Context) -> None:
    """Say plainly which network, weights and device are live (never a server path)."""
    loaded = ctx.loaded
    device = f"GPU ({device_name()})" if loaded.device.type == "cuda" else "CPU"
    weights = escaped(loaded.weights) if loaded.weights.startswith("file ") else shown_text(loaded.weights)  # an operator's name
    if layout.presenting():  # a projector: one line, model, image and parameters
        layout.presenter_bar(lambda params: presenter_line(ctx, device, params))
        return
    wanted = M.ARCHITECTURES.get(st.session_state.get("arch", M.DEFAULT_ARCH), "ResNet")
    # under the sidebar's Network and Weights (its last part; run_page reserved the parts before): what runs
    st.sidebar.caption((_("Running now: **{network}**, because no {wanted} weights could be loaded.")
                        if loaded.is_fallback else _("Running now: **{network}** · {weights}")).format(
        network=loaded.network, wanted=wanted, weights=weights))
    st.caption(_("Model: **{network}** · weights: **{weights}** · device: **{device}** · image: {image}").format(
        network=loaded.network + (_(" (instead of {wanted})").format(wanted=wanted) if loaded.is_fallback else ""),
        weights=weights, device=device, image=ctx.image_label))
    if loaded.notice and not loaded.is_fallback:
        st.warning(f"{escaped(tr(loaded.notice), 300)}.", icon="⚠️")
    if loaded.is_fallback:
        _fallback_notice(loaded, wanted)
    elif "untrained" in loaded.weights:
        st.warning(_("Untrained {network} (random weights), as chosen: predictions and CAMs are meaningless.").format(
            network=loaded.network))

def _fallback_notice(loaded: M.LoadedModel, wanted: str) -> None:
    """Said once: on the first page a session opens with this model (and while it stays there), again
    only when another network is asked for; the model line names the network on every page."""
    asked, run = (wanted, loaded.summary), get_script_run_ctx()
    page = run.page_script_hash if run is not None else ""
    told = st.session_state.get("_fallback_told")
    if told is not None and told[0] == asked and told[1] != page:
        return
    st.session_state["_fallback_told"] = (asked, page)
    st.warning(_("No {wanted} weights could be loaded on this server, so this runs **EfficientNet-Lite0 with "
                 "real ImageNet weights**, a smaller network: everything works the same way.").format(
        wanted=wanted), icon="ℹ️")
    with st.expander(_("Why, and how to get {wanted}").format(wanted=wanted)):
        st.markdown(_("Reason: {reason}. Its groups are EfficientNet-Lite0's 56/28/14/7 resolution stages. "
                      "To run {wanted}, put the torchvision checkpoint in the torch hub cache, or ask whoever "
                      "runs the server for a weights file.").format(
            reason=escaped(tr(loaded.fallback_reason), 400), wanted=wanted))

def presenter_line(ctx: Context, device: str, params: str | None = None) -> str:
    """Model, image and parameters in one line (Markdown-safe): ``params``, the parameters the page's
    main figure uses where they are not the sidebar's (a lesson step's own), else the sidebar's."""
    loaded, spec = ctx.loaded, ctx.spec
    network = loaded.network + (_(" (fallback)") if loaded.is_fallback else "")
    if params is None:
        where = (_("after group {group}").format(group=spec.group) if spec.placement == "after_group"
                 else _("in the blocks of groups 3 & 4"))
        params = _("keep_prob **{kp:g}** · block_size **{b}** · seed **{seed}** · {where}").format(
            kp=spec.keep_prob, b=spec.block_size, seed=ctx.seed, where=where)
    return _("**{network}** · {device} · {image} · {params}").format(network=network, device=device,
                                                                     image=ctx.image_label, params=params)

def spec_notes(ctx: Context) -> None:
    """Friendly notes on parameters at their limits."""
    spec = ctx.spec
    if spec.keep_prob >= 1.0:
        st.info(_("keep_prob = 1: nothing is dropped, DropBlock is the identity (as at inference)."))
    if spec.placement == "after_group":
        size = ctx.clean.acts[spec.group].shape[-1]
        if spec.block_size >= size:
            st.info(_("block_size {b} covers the whole {size}×{size} map of group {group}: it is clipped to the map "
                      "and drops whole channels, like SpatialDropout.").format(b=spec.block_size, size=size,
                                                                             group=spec.group))
