"""The DropBlock paper's own numbers (models/paper.py) against the paper's text, column by column:
each value printed there, in the paper's row order, so no number is moved to another row."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from models import paper as P

PAPER = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "dropblock-paper-neurips2018.txt"


@pytest.fixture(scope="module")
def text() -> str:
    if not PAPER.exists():
        pytest.skip(f"the paper's text is not at {PAPER}")
    raw = unicodedata.normalize("NFKC", PAPER.read_text(encoding="utf-8"))  # "ﬁ" -> "fi"
    return re.sub(r"\s+", " ", raw.replace("±", " ± ")).replace(" ± ", " ± ")


def in_order(text: str, values: list[str]) -> bool:
    """``values`` occur in ``text`` in this order (each after the previous one)."""
    at = 0
    for v in values:
        found = text.find(v, at)
        if found < 0:
            return False
        at = found + len(v)
    return True


def norm(v: str) -> str:
    return re.sub(r"\s+", " ", v.replace("±", " ± "))


@pytest.mark.parametrize("table,column", [(P.IMAGENET, 0), (P.IMAGENET, 1), (P.DETECTION, 0), (P.DETECTION, 1),
                                          (P.DETECTION, 2), (P.SEGMENTATION, 0), (P.OTHER, 0), (P.OTHER, 1)])
def test_every_column_is_the_papers_in_its_row_order(text, table, column):
    values = [norm(r.values[column]) for r in table]
    if table is P.IMAGENET:  # AutoAugment (no ±, quoted from [27]) is printed after the ± column
        auto = next(i for i, r in enumerate(table) if r.setting == "+ AutoAugment")
        values = values[:auto] + values[auto + 1:] + [values[auto]]
    assert in_order(text, values), values


def test_the_headline_numbers(text):
    top1 = {r.setting: float(r.values[0].split(" ± ")[0]) for r in P.IMAGENET}
    assert (top1["ResNet-50"], top1["+ DropBlock (kp=0.9)"]) == (76.51, 78.13)
    assert top1["+ DropBlock (kp=0.9)"] - top1["ResNet-50"] > 1.6  # "more than 1.6% improvement"
    assert "ResNet-50 architecture with DropBlock achieves 78.13% accuracy" in text
    assert top1["+ SpatialDropout (kp=0.9)"] == 77.41 and top1["+ Cutout"] == 76.52
    assert abs(top1["+ Cutout"] - top1["ResNet-50"]) < 0.07  # no gain: within one std
    ap = {r.setting: float(r.values[0]) for r in P.DETECTION}
    assert (ap["RetinaNet, no DropBlock"], max(ap.values())) == (36.8, 38.4)
    assert "improves Average Precision of RetinaNet from 36.8% to 38.4%" in text
    miou = [float(r.values[0]) for r in P.SEGMENTATION]
    assert miou[1:] == [47.2, 51.0, 53.2, 53.4] and miou[0] == 74.6


def test_findings_quote_the_paper(text):
    for key, finding in P.FINDINGS.items():
        assert finding.quote in text, key
        assert finding.where and finding.claim
