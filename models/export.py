"""Raw data out: every picture's numbers as NPZ (arrays) or CSV (tables), with what made them.

Each file records the model, weights, image hash, parameters and seed, so the result can be
reproduced from it:

* NPZ: the arrays as computed (masks stay bool, maps stay float32), plus ``meta``, a
  one-element string array holding JSON. ``np.load(f)`` reads it, no pickle needed.
* CSV: ``# key: <JSON value>`` comment lines, then a header row and one row per record.
  Floats are written with ``repr``, so they read back exactly.

CSV injection (OWASP, "CSV Injection"): every line, comment lines included, is written by the
``csv`` module, so a value holding commas, quotes or line breaks stays inside one quoted cell
(a comment line is one cell that starts with ``#``), and any cell that would start with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``, so no cell a spreadsheet
parses starts a formula. The numbers these files hold are never negative (probabilities,
shares, spreads, keep_probs, counts, ranks); a negative number, should one ever be exported,
is escaped like text (``'-1.5``) rather than written as a cell that starts with ``-``.

Builders for each result dataclass live here too, so pages only name what to export.
Imports torch and numpy only (never streamlit).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass

import numpy as np
import torch

__all__ = [
    "csv_bytes",
    "curve_rows",
    "mask_view_arrays",
    "npz_bytes",
    "read_csv",
    "read_npz",
    "set_curve_arrays",
    "set_curve_rows",
    "set_meta",
    "spec_meta",
    "top_rows",
]

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
CAM_SCALE = {
    "colormap": "jet",
    "vmin": 0.0,
    "below_vmin": "clipped (negative evidence shown as none)",
    "blend_alpha": 0.5,
    "resolution": "bilinear upsampling of the last conv grid to 224x224 (align_corners=False)",
}


def _json_default(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    raise TypeError(f"expected JSON-serialisable metadata, but got {type(value).__name__}")


def _meta_json(meta: Mapping[str, object]) -> str:
    return json.dumps(dict(meta), sort_keys=True, ensure_ascii=True, default=_json_default)


def spec_meta(spec: object) -> dict[str, object]:
    """A ``RegularizerSpec`` (any dataclass) as plain JSON-ready values."""
    return json.loads(json.dumps(asdict(spec), default=_json_default))  # type: ignore[arg-type]


def _array(value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return t.numpy()
    return np.asarray(value)


def npz_bytes(arrays: Mapping[str, object], meta: Mapping[str, object]) -> bytes:
    """Compressed NPZ of ``arrays`` (tensors or array-likes) plus ``meta`` as a JSON string array.

    Raises:
        ValueError: a name that is not an identifier, or ``meta`` among the array names.
    """
    out = {}
    for name, value in arrays.items():
        if not _KEY.match(name) or name == "meta":
            raise ValueError(f"expected array names to be identifiers other than 'meta', but got {name!r}")
        array = _array(value)
        if array.dtype == object:
            raise ValueError(f"expected numeric or bool arrays, but {name!r} holds objects")
        out[name] = array
    buf = io.BytesIO()
    np.savez_compressed(buf, **out, meta=np.array([_meta_json(meta)]))
    return buf.getvalue()


def read_npz(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Inverse of :func:`npz_bytes`: (arrays, meta). Never unpickles."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(str(arrays.pop("meta")[0]))
    return arrays, meta


def _escaped(text: str) -> str:
    """OWASP's CSV-injection defence: a cell that would start a formula gets a leading ``'``."""
    return "'" + text if text.startswith(_FORMULA) else text


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, torch.Tensor):
        return _cell(value.item())
    if isinstance(value, (float, np.floating)):
        return _escaped(repr(float(value)))  # never negative here; escaped like text if it is
    if isinstance(value, (int, np.integer)):
        return _escaped(str(int(value)))
    return _escaped(str(value))


def csv_bytes(rows: Sequence[Mapping[str, object]], meta: Mapping[str, object]) -> bytes:
    """UTF-8 CSV: ``# key: <JSON>`` lines, a header (the first row's keys), then the rows.

    Every line goes through the ``csv`` module: a comment line is one cell (quoted when its JSON
    holds a comma or a quote), and no cell starts with a formula character (see the module doc).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for key, value in sorted(meta.items()):
        if not _KEY.match(key):
            raise ValueError(f"expected metadata keys to be identifiers, but got {key!r}")
        # ensure_ascii: no line break, tab or CR survives json.dumps, so the cell stays on one line
        writer.writerow([f"# {key}: {json.dumps(value, sort_keys=True, ensure_ascii=True, default=_json_default)}"])
    columns = list(rows[0]) if rows else []
    writer.writerow([_escaped(str(c)) for c in columns])
    for row in rows:
        if list(row) != columns:
            raise ValueError(f"expected every row to have the columns {columns}, but got {list(row)}")
        writer.writerow([_cell(row[c]) for c in columns])
    return buf.getvalue().encode("utf-8")


def read_csv(data: bytes) -> tuple[list[dict[str, str]], dict[str, object]]:
    """Inverse of :func:`csv_bytes`: (rows as strings, meta). Escaped cells keep their ``'``."""
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    meta: dict[str, object] = {}
    while records and len(records[0]) == 1 and records[0][0].startswith("# "):
        key, _, value = records.pop(0)[0][2:].partition(": ")
        meta[key] = json.loads(value)
    if not records:
        return [], meta
    header, *body = records
    return [dict(zip(header, record)) for record in body], meta


# ------------------------------------------------------------------ builders per result


def mask_view_arrays(view) -> dict[str, object]:
    """A ``MaskSample``: seed and block masks (bool), features before/after (float32)."""
    return {
        "channels": torch.tensor(view.channels, dtype=torch.int64),
        "seed_mask": view.seed_mask, "block_mask": view.block_mask,
        "before": view.before, "after": view.after,
    }


def top_rows(columns: Mapping[str, Sequence[tuple[str, float]]]) -> list[dict[str, object]]:
    """Top-k tables side by side: one row per rank, (class, probability) per column."""
    n = max(len(v) for v in columns.values())
    rows = []
    for rank in range(n):
        row: dict[str, object] = {"rank": rank + 1}
        for title, top in columns.items():
            name, prob = top[rank] if rank < len(top) else ("", float("nan"))
            row[f"{title}_class"] = name
            row[f"{title}_probability"] = prob
        rows.append(row)
    return rows


def curve_rows(curve) -> list[dict[str, object]]:
    """A ``RobustnessCurve``: one row per (method, keep_prob)."""
    return [
        {"method": label, "keep_prob": kp, "class": curve.class_name,
         "prob_mean": float(curve.mean_prob[m, k]), "prob_std": float(curve.std_prob[m, k]),
         "top1_unchanged_share": float(curve.top1_agreement[m, k])}
        for m, label in enumerate(curve.labels) for k, kp in enumerate(curve.keep_probs)
    ]


def set_curve_rows(curve) -> list[dict[str, object]]:
    """A ``SetCurve``: one row per (method, keep_prob), means and Monte Carlo spreads."""
    s = curve.summary()
    return [
        {"method": label, "keep_prob": kp, "n_images": curve.n_images, "n_samples": curve.n_samples,
         "unchanged_share_mean": float(s["unchanged_mean"][m, k]), "unchanged_share_std": float(s["unchanged_std"][m, k]),
         "clean_top1_prob_mean": float(s["prob_mean"][m, k]), "clean_top1_prob_std": float(s["prob_std"][m, k])}
        for m, label in enumerate(curve.labels) for k, kp in enumerate(curve.keep_probs)
    ]


def set_meta(imageset, curve) -> dict[str, object]:
    """What a set's downloads record about the set: its name, hash, each image's hash and name (as
    shown), and how the curve was sampled. Names come from uploads and zips: any text at all."""
    return {"set": str(imageset.source), "set_key": imageset.key, "image_sha256": list(imageset.digests),
            "image_names": [image.name for image in imageset.images], "n_samples": curve.n_samples,
            "keep_probs": list(curve.keep_probs),
            "methods": {str(label): spec_meta(spec) for label, spec in zip(curve.labels, curve.specs)},
            "image_seed": "seed * 65536 + image index"}


def set_curve_arrays(curve) -> dict[str, object]:
    """A ``SetCurve``'s raw samples: (methods, keep_probs, images, samples)."""
    return {
        "keep_probs": torch.tensor(curve.keep_probs, dtype=torch.float64),
        "clean_top1": torch.tensor(curve.clean_top1, dtype=torch.int64),
        "clean_prob": curve.clean_prob,
        "top1_kept": curve.top1_kept,
        "class_prob": curve.class_prob,
    }
