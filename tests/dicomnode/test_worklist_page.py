"""The worklist page lists what the node received, in words, with one meaning per column."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.imaging import dicom_index as index

ROOT = Path(__file__).resolve().parents[2]


def test_the_page_lists_received_instances_with_status_and_finding(isolated_home: Path) -> None:
    index.put(index.Entry("1.2.3.4", index.now_text(), modality="DX", status="done", label="PNEUMONIA",
                          probabilities={"NORMAL": 0.1, "PNEUMONIA": 0.9}, out_of_distribution=False,
                          results=["a.dcm", "b.dcm"]))
    index.put(index.Entry("1.2.3.5", index.now_text(), modality="CT", status="refused", reason="Not a chest radiograph"))
    at = AppTest.from_file(str(ROOT / "pages" / "worklist.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["Status"]) == ["refused", "done"] or sorted(table["Status"]) == ["done", "refused"]
    done = table[table["Status"] == "done"].iloc[0]
    assert done["Finding"] == "PNEUMONIA" and done["Probability of the finding"] == 0.9 and done["Result objects"] == 2
    assert "Not a chest radiograph" in list(table["Reason"])
    at.selectbox(key="worklist_status").select("refused").run()
    assert list(at.dataframe[0].value["Status"]) == ["refused"]


def test_an_empty_worklist_says_how_to_start_the_node(isolated_home: Path) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / "worklist.py"), default_timeout=60).run()
    assert any("python -m core dicom-node" in i.value for i in at.info)
