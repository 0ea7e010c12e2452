"""A Chinese font the PDF embeds: Debian's Noto Sans CJK SC, cut down to the characters one report uses.

reportlab embeds TrueType outlines only, and the installed Noto CJK collections (fonts-noto-cjk) hold
CFF outlines. So, per set of characters: subset the collection's SC face to those characters
(fontTools.subset, a few hundred glyphs instead of 65,000), redraw the subset's cubic CFF outlines as
quadratic TrueType ones (fontTools' cu2qu pen, as fontTools' otf2ttf snippet does) and register the
result, held in memory, with reportlab. Without the font installed, reports fall back to reportlab's
built-in STSong-Light (not embedded; the reader substitutes a font) and a warning is logged.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import subprocess
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont as ReportlabTTFont

log = logging.getLogger(__name__)

FALLBACK_FONT = "STSong-Light"
FAMILY = "Noto Sans CJK SC"
DEBIAN_PATHS = (
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
)
# Always present: digits, Latin letters and punctuation a Chinese report mixes in (page numbers, values).
ALWAYS = frozenset(chr(c) for c in range(0x20, 0x7F)) | frozenset("，。：；（）、“”—–·≥≤")
MAX_ERR = 1.0  # font units: the quadratic outline stays within 1/1000 em of the cubic one
KEEP_REGISTERED = 16  # distinct character sets kept registered; older ones are dropped from reportlab's registry

_registered: OrderedDict[str, str] = OrderedDict()  # character-set digest -> registered font name
# The API's worker threads and every dashboard session write reports in one process: the registry above
# and reportlab's are shared, so one report at a time looks up, subsets and registers its font.
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def font_file() -> Path | None:
    """The installed Noto Sans CJK file (fontconfig first, then Debian's paths), or None."""
    if shutil.which("fc-match"):
        try:
            found = subprocess.run(
                ["fc-match", "-f", "%{file}", f"{FAMILY}:style=Regular"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found = ""
        if found and "NotoSansCJK" in Path(found).name and Path(found).is_file():
            return Path(found)
    return next((path for path in DEBIAN_PATHS if path.is_file()), None)


def _sc_face(path: Path):
    """The Simplified Chinese face of a collection (or the file's only face), loaded lazily."""
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() != ".ttc":
        return TTFont(str(path), lazy=True)
    collection = TTCollection(str(path), lazy=True)
    for face in collection.fonts:
        if face["name"].getDebugName(1) == FAMILY:
            return face
    raise MissingFaceError(path)


class MissingFaceError(LookupError):
    """A font collection without the Simplified Chinese face (logged; the report falls back)."""


def _fallback(reason: str) -> str:
    log.warning("Chinese PDF text falls back to the non-embedded %s font: %s", FALLBACK_FONT, reason)
    if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT


def _subset(font, characters: frozenset[str]) -> None:
    """Keep only the glyphs of ``characters`` (plus .notdef); drop layout and vertical tables reportlab ignores."""
    from fontTools import subset

    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.desubroutinize = True
    options.notdef_outline = True
    options.name_IDs = ["*"]
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "BASE", "VORG", "vhea", "vmtx", "DSIG"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in characters])
    subsetter.subset(font)


def _to_truetype(font) -> None:
    """Replace the CFF outlines with quadratic 'glyf' ones (fontTools' otf2ttf snippet, abridged)."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import newTable

    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, MAX_ERR, reverse_direction=True))
        glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, glyphs
    del font["CFF "]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyphs.items():
        if hasattr(glyph, "xMin"):
            hmtx[name] = (hmtx[name][0], glyph.xMin)
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion, maxp.maxZones = 0x00010000, 1
    for field in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
    ):
        setattr(maxp, field, 0)
    font["post"].formatType = 3.0  # no glyph names: reportlab maps by code point
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\000\001\000\000"


def truetype_subset(path: Path, characters: frozenset[str], postscript_name: str) -> bytes:
    """A TrueType font (bytes) holding the SC face's glyphs for ``characters``, named ``postscript_name``
    (reportlab knows a font by that name: two subsets sharing one would draw with the first's glyphs)."""
    font = _sc_face(path)
    _subset(font, characters)
    _to_truetype(font)
    names = font["name"]
    names.removeNames(nameID=6)
    names.setName(postscript_name, 6, 3, 1, 0x409)
    names.setName(postscript_name, 6, 1, 0, 0)
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def _remember(digest: str, name: str) -> None:
    _registered[digest] = name
    while len(_registered) > KEEP_REGISTERED:
        _old, dropped = _registered.popitem(last=False)
        # reportlab has no unregister: a server writing many reports would otherwise keep every subset.
        getattr(pdfmetrics, "_fonts", {}).pop(dropped, None)
        getattr(pdfmetrics, "_dynFaceNames", {}).pop(dropped, None)


def register_for(text: str) -> str:
    """The name of a registered font that draws every character of ``text`` in Chinese.

    Noto Sans CJK SC subset to ``text``'s characters and embedded; STSong-Light (not embedded) when no
    Noto CJK font is installed or it cannot be converted. Never raises for a missing font.
    """
    characters = frozenset(text) | ALWAYS
    digest = hashlib.sha1("".join(sorted(characters)).encode("utf-8", "surrogatepass")).hexdigest()[:12]
    with _LOCK:
        return _registered_font(digest, characters)


def _registered_font(digest: str, characters: frozenset[str]) -> str:
    if digest in _registered:
        _registered.move_to_end(digest)
        return _registered[digest]
    path = font_file()
    if path is None:
        return _fallback(f"no '{FAMILY}' font installed (Debian: fonts-noto-cjk)")
    name = f"NotoSansCJKsc-{digest}"
    try:
        pdfmetrics.registerFont(ReportlabTTFont(name, io.BytesIO(truetype_subset(path, characters, name))))
    except Exception as exc:  # noqa: BLE001 - any font trouble must leave a readable report, never a failure
        return _fallback(str(exc) or type(exc).__name__)
    _remember(digest, name)
    return name
