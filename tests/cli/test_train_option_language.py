"""``train --members 0`` is refused while the command line is parsed, before any command runs: the refusal must
still be in the language asked for (``--lang zh_CN``, ``--lang=zh_CN`` or ``LUCIDDX_LANG``), as every other error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_cli import ROOT

ENGLISH = "The number of ensemble members must be a whole number"
CHINESE = "集成成员数必须是不小于 1 的整数"


def refuse(tmp_path: Path, *lang: str, env_lang: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LUCIDDX_LANG"} | {"LUCIDDX_HOME": str(tmp_path / "home")}
    if env_lang:
        env["LUCIDDX_LANG"] = env_lang
    args = [*lang, "train", "--data", str(tmp_path / "never_read"), "--name", "x", "--members", "0"]
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("lang", [("--lang", "zh_CN"), ("--lang=zh_CN",)], ids=["separate", "joined"])
def test_the_members_refusal_is_in_the_language_the_command_line_asks_for(
    tmp_path: Path, lang: tuple[str, ...]
) -> None:
    done = refuse(tmp_path, *lang)
    assert done.returncode == 2 and done.stdout == ""
    assert CHINESE in done.stderr and "got 0" not in done.stderr and ENGLISH not in done.stderr
    assert "Traceback" not in done.stderr


def test_the_members_refusal_follows_luciddx_lang_and_a_flag_wins_over_it(tmp_path: Path) -> None:
    assert CHINESE in refuse(tmp_path, env_lang="zh_CN").stderr
    english = refuse(tmp_path, "--lang", "en", env_lang="zh_CN")
    assert english.returncode == 2 and ENGLISH in english.stderr and CHINESE not in english.stderr


def test_an_unknown_language_leaves_the_refusal_in_english(tmp_path: Path) -> None:
    """``--lang xx`` is itself misuse; the parser says so, and nothing is half-translated."""
    done = refuse(tmp_path, "--lang", "xx")
    assert done.returncode == 2 and "Traceback" not in done.stderr and CHINESE not in done.stderr
