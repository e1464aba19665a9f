"""The catalogs' tool: extract every marked string, check the ``.po`` against it, compile the ``.mo``.

    python -m ui.i18n                  # report, then compile locale/*/LC_MESSAGES/dropblock_lab.mo
    python -m ui.i18n --check          # report only; exit 1 if anything is missing, duplicated or stale
    python -m ui.i18n --print-missing  # the missing entries as PO text, ready to append and translate

Strings are found with Babel's Python extractor in ``app.py``, ``pages/``, ``ui/`` and ``models/``,
through the keywords ``_``, ``N_`` and ``ngettext`` (singular, plural). A ``.po`` may hold an
entry only once: several engineers append to it and git merges it as a union, so a duplicate is
an error here (gettext would silently keep one of them).
"""

from __future__ import annotations

import argparse
import ast
import gettext
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "locale"
DOMAIN = "dropblock_lab"
SOURCES = ("app.py", "pages", "ui", "models")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
LANGS = ("zh_CN",)


@dataclass(frozen=True)
class Extracted:
    msgid: str
    plural: str | None
    where: str  # "path:line" of its first use


def source_files(root: Path = ROOT) -> list[Path]:
    files = []
    for name in SOURCES:
        path = root / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return [f for f in files if "__pycache__" not in f.parts]


def extract(root: Path = ROOT) -> dict[str, Extracted]:
    """Every marked msgid in the code (by singular), with where it is first used."""
    found: dict[str, Extracted] = {}
    for path in source_files(root):
        for line, message, _comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            singular, plural = (message[0], message[1]) if isinstance(message, tuple) else (message, None)
            if singular and singular not in found:
                found[singular] = Extracted(singular, plural, f"{path.relative_to(root)}:{line}")
    return found


def po_path(lang: str, root: Path = ROOT) -> Path:
    return root / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(lang: str, root: Path = ROOT) -> Path:
    return po_path(lang, root).with_suffix(".mo")


def po_msgids(text: str) -> list[str]:
    """Every msgid in a PO text, in order and with repeats (Babel's reader keeps only the last of a
    repeated one, so duplicates are counted here). Context-qualified ids count as ``ctx\\x04id``."""
    ids: list[str] = []
    lines = text.splitlines()
    context = None
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith(("msgctxt ", "msgid ")):
            keyword, _, first = line.partition(" ")
            parts = [ast.literal_eval(first)]
            i += 1
            while i < len(lines) and lines[i].strip().startswith('"'):
                parts.append(ast.literal_eval(lines[i].strip()))
                i += 1
            value = "".join(parts)
            if keyword == "msgctxt":
                context = value
            else:
                if value:  # the header's empty msgid is not an entry
                    ids.append(value if context is None else f"{context}\x04{value}")
                context = None
            continue
        i += 1
    return ids


def duplicates(text: str) -> list[str]:
    return sorted(m for m, n in Counter(po_msgids(text)).items() if n > 1)


def read_catalog(lang: str, root: Path = ROOT):
    with open(po_path(lang, root), "rb") as f:
        return read_po(f, locale=lang, domain=DOMAIN)


def translated(catalog) -> dict[str, bool]:
    """msgid -> whether it has a usable (non-empty, not fuzzy) translation."""
    out = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        out[key] = bool(strings) and all(s for s in strings) and not message.fuzzy
    return out


def missing(lang: str, found: dict[str, Extracted], root: Path = ROOT) -> list[Extracted]:
    done = translated(read_catalog(lang, root))
    return [e for msgid, e in found.items() if not done.get(msgid)]


def compile_mo(lang: str, root: Path = ROOT) -> bytes:
    buf = io.BytesIO()
    write_mo(buf, read_catalog(lang, root))
    return buf.getvalue()


def mo_catalog(data: bytes) -> dict:
    """What gettext reads from a .mo: (msgid or (msgid, n)) -> translation, and the plural rule for
    1..3 (the header's other fields hold Babel's creation dates, which differ per compile)."""
    translations = gettext.GNUTranslations(io.BytesIO(data))
    entries = {k: v for k, v in translations._catalog.items() if k != ""}
    return {"entries": entries, "plural": [translations.plural(n) for n in (1, 2, 3)],
            "charset": translations.charset()}


def mo_in_sync(lang: str, root: Path = ROOT) -> bool:
    """The checked-in .mo holds exactly what the .po compiles to (catalogs compared, not bytes)."""
    path = mo_path(lang, root)
    return path.exists() and mo_catalog(path.read_bytes()) == mo_catalog(compile_mo(lang, root))


def as_po(entries: list[Extracted]) -> str:
    """Missing entries as PO text with empty translations, to append to the catalog."""

    def quoted(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'

    out = []
    for e in entries:
        out.append(f"#: {e.where}")
        out.append(f"msgid {quoted(e.msgid)}")
        if e.plural is None:
            out.append('msgstr ""')
        else:
            out += [f"msgid_plural {quoted(e.plural)}", 'msgstr[0] ""']
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.i18n", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report only, write nothing; exit 1 on any problem")
    parser.add_argument("--print-missing", action="store_true", help="print the missing entries as PO text")
    args = parser.parse_args(argv)

    found = extract()
    bad = False
    for lang in LANGS:
        text = po_path(lang).read_text(encoding="utf-8")
        gaps, twice = missing(lang, found), duplicates(text)
        known = set(translated(read_catalog(lang)))
        unused = sorted(known - set(found))
        print(f"{lang}: {len(found)} strings in the code, {len(known)} in the catalog; "
              f"{len(gaps)} missing or untranslated, {len(twice)} duplicated, {len(unused)} not used in the code")
        if args.print_missing:
            print(as_po(gaps))
        else:
            for e in gaps:
                print(f"  missing: {e.where}: {e.msgid!r}")
        for msgid in twice:
            print(f"  duplicate entry: {msgid!r}")
        for msgid in unused:
            print(f"  not used in the code: {msgid!r}")
        bad |= bool(gaps or twice)
        if args.check:
            if not mo_in_sync(lang):
                print(f"  {mo_path(lang).relative_to(ROOT)} is missing or out of date: run python -m ui.i18n")
                bad = True
        elif not twice:
            mo_path(lang).write_bytes(compile_mo(lang))
            print(f"  compiled {mo_path(lang).relative_to(ROOT)}")
    return 1 if bad else 0
