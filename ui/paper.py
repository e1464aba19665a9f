"""The DropBlock paper's own results on a page (models/paper.py), kept apart from what the app measures:
under a heading that says they are the paper's numbers, with the table or section each comes from."""

from __future__ import annotations

import streamlit as st

from models import paper as P
from ui.i18n import _

TABLES = {  # key -> (title, rows, columns)
    "imagenet": (lambda: _("Table 1 · ResNet-50 on ImageNet, validation accuracy, mean ± std of 3 runs"),
                 P.IMAGENET, P.IMAGENET_COLUMNS),
    "detection": (lambda: _("Table 3 · RetinaNet (ResNet-50 FPN) on COCO, trained from random initialisation"),
                  P.DETECTION, P.DETECTION_COLUMNS),
    "segmentation": (lambda: _("Table 4 · segmentation on PASCAL VOC 2012 from random initialisation "
                               "(ResNet-101 FPN)"), P.SEGMENTATION, P.SEGMENTATION_COLUMNS),
    "amoebanet": (lambda: _("Table 2 · AmoebaNet-B on ImageNet"), P.OTHER, P.OTHER_COLUMNS),
}


def headline() -> str:
    """One sentence with the paper's headline numbers, cited."""
    return _("The paper reports (Ghiasi, Lin & Le 2018; their numbers, not measured here): ResNet-50 on ImageNet "
             "76.51% → 78.13% top-1 with DropBlock (Table 1); RetinaNet on COCO 36.8 → 38.4 AP (Table 3); "
             "segmentation on PASCAL VOC from scratch 47.2 → 53.4 mIOU (Table 4).")


def results(tables: tuple[str, ...] = ("imagenet",), findings: tuple[str, ...] = (), *, expanded: bool = False) -> None:
    """An expander with the paper's ``tables`` and ``findings``; nothing in it is measured here."""
    with st.expander(_("The DropBlock paper's reported results (their numbers, not measured here)"), expanded=expanded):
        for key in tables:
            title, rows, columns = TABLES[key]
            st.markdown(f"**{title()}**")
            st.table([{_("setting"): ("▶ " if r.highlight else "") + _(r.setting),
                       **{c: v for c, v in zip(columns, r.values)}} for r in rows], hide_index=True)
        for key in findings:
            f = P.FINDINGS[key]
            st.markdown(_("- {claim} ({where}: “{quote}”)").format(claim=_(f.claim), where=_(f.where), quote=f.quote))
        st.caption(_("Ghiasi, Lin & Le, DropBlock: A regularization method for convolutional networks, NeurIPS 2018 "
                     "(arXiv:1810.12890). Trained models on ImageNet, COCO and VOC; this app runs one pretrained model "
                     "on one image and measures nothing of the kind."))
