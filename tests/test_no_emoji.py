"""Icons draw everywhere: Streamlit Material icons (``:material/...:``), never emoji.

Emoji need a colour-emoji font that hospital workstations often lack (they show as empty boxes), and
their look changes from one system to the next. This test reads every front-end file and names the
file and line of any emoji code point.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONT_END = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]
EMOJI_RANGES = [
    (0x1F000, 0x1FAFF),  # mahjong .. symbols and pictographs extended-A (incl. U+1F300-U+1FAFF)
    (0x2600, 0x27BF),  # miscellaneous symbols, dingbats
    (0x2B00, 0x2BFF),  # arrows and stars drawn as emoji (e.g. U+2B50)
    (0xFE0F, 0xFE0F),  # variation selector-16: "draw the previous character as emoji"
    (0x1F1E6, 0x1F1FF),  # regional indicators (flags)
]


def emoji_in(text: str) -> list[tuple[int, str]]:
    """(line number, character) of every emoji code point in ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        found += [(number, ch) for ch in line if any(low <= ord(ch) <= high for low, high in EMOJI_RANGES)]
    return found


def test_front_end_files_use_material_icons_not_emoji() -> None:
    offenders = [f"{path.relative_to(ROOT)}:{number}: U+{ord(ch):04X}"
                 for path in FRONT_END for number, ch in emoji_in(path.read_text(encoding="utf-8"))]
    assert not offenders, "emoji found (use :material/...: icons instead):\n" + "\n".join(offenders)


def test_the_scan_catches_an_emoji_and_passes_material_icons() -> None:
    assert emoji_in('st.error("x", icon="\U0001F6AB")\nok') == [(1, "\U0001F6AB")]
    assert emoji_in("st.title(':warning:\u26a0\ufe0f')") == [(1, "\u26a0"), (1, "\ufe0f")]
    assert emoji_in('st.error("x", icon=":material/block:") · × → …') == []
