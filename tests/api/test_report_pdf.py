"""The PDF case report, from the command line and from POST /v1/report: rendered by poppler, not blank,
and its text states the label and the threshold; a Chinese report renders too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.access import audit
from core.models import registry
from core.cli import main as cli_main
from core.reports import FilmPage, cjk_font, render
from core.reports.pdf import result_lines
from tests.api.conftest import SAMPLES, upload

FILM = SAMPLES / "pneumonia_bacteria_1.jpeg"
needs_poppler = pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils (pdftoppm) is not installed")


def rendered_pages(pdf: Path) -> list[np.ndarray]:
    """Each page as greyscale pixels at 50 dpi (pdftoppm)."""
    subprocess.run(["pdftoppm", "-png", "-r", "50", str(pdf), str(pdf.with_suffix(""))], check=True, timeout=60)
    return [np.asarray(Image.open(p).convert("L")) for p in sorted(pdf.parent.glob(pdf.stem + "-*.png"))]


def pdf_text(pdf: Path) -> str:
    if shutil.which("pdftotext"):
        return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                              timeout=60).stdout
    return pdf.read_bytes().decode("latin-1")  # reportlab writes Latin text uncompressed enough to search


def assert_not_blank(page: np.ndarray) -> None:
    assert page.shape[0] > page.shape[1] > 200  # A4 portrait
    dark = (page < 128).mean()
    assert 0.02 < dark < 0.9, f"{dark:.3f} of the page is dark"
    assert page.std() > 20


@needs_poppler
def test_cli_report_one_page_per_film(tmp_path: Path, capsys) -> None:
    out = tmp_path / "case.pdf"
    status = cli_main(["report", str(FILM), str(SAMPLES / "normal_1.jpeg"), "--out", str(out)])
    assert status == 0 and out.read_bytes().startswith(b"%PDF")
    pages = rendered_pages(out)
    assert len(pages) == 2
    for page in pages:
        assert_not_blank(page)
    text = pdf_text(out)
    assert "Result: PNEUMONIA" in text and "Result: NORMAL" in text
    threshold = registry.resolve("chest_xray").meta["threshold"]
    assert f"Threshold: {threshold:.2f}, stored with this version" in text and "Probability of PNEUMONIA" in text
    assert "AUC" in text and "Sensitivity" in text and "Specificity" in text and "Intended use" in text
    assert "AI result, decision support only, not for diagnosis." in text


def test_cli_report_names_a_bad_film_and_keeps_the_good_ones(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "case.pdf"
    assert cli_main(["report", str(FILM), str(bad), "--out", str(out)]) == 1
    assert out.read_bytes().startswith(b"%PDF") and "broken.png" in capsys.readouterr().err
    assert cli_main(["report", str(bad), "--out", str(tmp_path / "none.pdf")]) == 1
    assert not (tmp_path / "none.pdf").exists()


@pytest.mark.skipif(not shutil.which("pdffonts"), reason="poppler-utils (pdffonts) is not installed")
@pytest.mark.skipif(cjk_font.font_file() is None, reason="no Noto Sans CJK font installed (fonts-noto-cjk)")
def test_a_chinese_report_embeds_a_noto_subset_and_its_text_extracts_as_written(tmp_path: Path) -> None:
    summary = {"model": "chest_xray:1", "metrics": {}, "intended_use": ["肺炎辅助阅片"]}
    pixels = np.asarray(Image.open(FILM).convert("L"))
    prediction = {"label": "PNEUMONIA", "probabilities": {"NORMAL": 0.2, "PNEUMONIA": 0.8}, "threshold": 0.155,
                  "positive_class": "PNEUMONIA", "out_of_distribution": False, "model": "chest_xray:1"}
    page = FilmPage("患儿胸片甲.jpeg", pixels, np.stack([pixels] * 3, axis=-1), prediction, "gradcam", "PNEUMONIA")
    out = tmp_path / "zh.pdf"
    out.write_bytes(render([page], summary, "zh_CN"))
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout.splitlines()
    noto = [line for line in fonts if "NotoSansCJKsc" in line]
    assert noto and all(line.split()[-5] == "yes" for line in noto), fonts  # columns: ... emb sub uni object ID
    assert not any("STSong" in line for line in fonts)
    text = pdf_text(out)
    assert "LucidDx 病例报告" in text and "患儿胸片甲.jpeg" in text and "肺炎辅助阅片" in text
    assert "AI 结果，仅供辅助决策，不可用于诊断。" in text
    # A second report with other characters gets its own subset, not the first one's glyphs.
    page.name, summary["intended_use"] = "乙丙丁.jpeg", ["儿童胸片第二阅片者"]
    out.write_bytes(render([page], summary, "zh_CN"))
    assert "乙丙丁.jpeg" in pdf_text(out) and "儿童胸片第二阅片者" in pdf_text(out)


def test_without_a_cjk_font_a_chinese_report_falls_back_and_says_so(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    monkeypatch.setattr(cjk_font, "font_file", lambda: None)
    monkeypatch.setattr(cjk_font, "_registered", cjk_font.OrderedDict())
    with caplog.at_level("WARNING", logger=cjk_font.__name__):
        assert cjk_font.register_for("一段没有缓存的文字") == cjk_font.FALLBACK_FONT
    assert "fonts-noto-cjk" in caplog.text


def test_out_of_distribution_is_not_assessable() -> None:
    prediction = {"label": "PNEUMONIA", "probabilities": {"NORMAL": 0.3, "PNEUMONIA": 0.7}, "threshold": 0.155,
                  "positive_class": "PNEUMONIA", "out_of_distribution": True}
    headline, lines = result_lines(prediction)
    assert headline.startswith("Not assessable")
    assert "0.70" in lines[0] and "unreliable" in lines[0] and "above" not in lines[0]  # no side, no class
    assert lines[-1] == "Label: none (not assessable)" and not any("PNEUMONIA" in line for line in lines[1:])


@needs_poppler
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_api_report_is_a_pdf_in_either_language(client, clinician, tmp_path: Path, lang: str) -> None:
    name = "胸片.jpeg" if lang == "zh" else FILM.name  # Chinese text must come out as text, not boxes
    response = client.post(f"/v1/report?lang={lang}", headers=clinician, files=upload(FILM, name))
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    out = tmp_path / f"case_{lang}.pdf"
    out.write_bytes(response.content)
    (page,) = rendered_pages(out)
    assert_not_blank(page)
    text = pdf_text(out)
    threshold = registry.resolve("chest_xray").meta["threshold"]
    assert "PNEUMONIA" in text and f"{threshold:.2f}" in text and f"{threshold:.3f}" not in text and name in text
    if lang == "zh":
        assert "LucidDx 病例报告" in text and "AI 结果，仅供辅助决策，不可用于诊断。" in text
        assert "儿童前后位胸部X线片的第二阅片者" in "".join(text.split())  # the model's stored intended use (wrapped)
    (record,) = audit.records()
    assert (record.action, record.model, record.outcome) == ("report", registry.resolve("chest_xray").spec, "ok")


@needs_poppler
def test_the_report_shows_the_class_the_clinician_chose_to_explain(tmp_path: Path) -> None:
    """Issue 21 item 10: the overlay in the PDF is the one on screen (method and explained class)."""
    from core.services import reports

    out = tmp_path / "normal.pdf"
    out.write_bytes(reports.case_report([(FILM, FILM.name)], method="gradcam", lang="en", target="NORMAL").pdf)
    text = pdf_text(out)
    assert "Overlay: gradcam, class NORMAL" in text and "Result: PNEUMONIA" in text
