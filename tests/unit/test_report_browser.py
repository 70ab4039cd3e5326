"""The report in a real browser: it renders, its charts are in the DOM, the console is clean.

Needs Debian's ``chromium`` (``make browser``; ``make test`` installs it first); without it
the test fails and says so. The screenshot is kept in the test's tmp dir and copied to
docs/report.png, the picture in the README.
"""

from __future__ import annotations

import datetime as dt
import shutil
import struct
from pathlib import Path

from genai_apm.serve import report
from genai_apm.settings import config
from tests import browser
from tests import report_fixture as fx

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "report.png"
PROBE = """JSON.parse(JSON.stringify({
  charts: document.querySelectorAll('svg[data-chart]').length,
  drawn: [...document.querySelectorAll('svg[data-chart]')]
    .filter(s => s.getBoundingClientRect().width > 100 && s.getBBox().height > 50).length,
  empty: document.querySelectorAll('svg[data-chart="empty"], p.nodata').length,
  lines: document.querySelectorAll('svg[data-chart="line"] polyline[data-series]').length,
  bars: document.querySelectorAll('svg rect[data-series]').length,
  markers: document.querySelectorAll('rect[data-marker="anomaly"]').length,
  sessionRows: [...document.querySelectorAll('section')]
    .filter(s => s.querySelector('h2').textContent === 'Agent sessions')
    .map(s => s.querySelectorAll('tbody tr').length)[0],
}))"""


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_report_renders_in_chromium_with_its_charts_and_no_console_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the page shows the tables path: relative, so it is stable
    fx.write_tables(tmp_path / "tables")
    out = tmp_path / "report.html"
    written = report.build(
        config.load(None),
        out,
        tables_path="tables",
        alerts=fx.alerts(),
        now=dt.datetime(2026, 1, 1, 2, tzinfo=dt.UTC),  # a stable picture for the README
    )
    shot = tmp_path / "report.png"
    page = browser.open_page(out.as_uri(), PROBE, screenshot=shot)

    assert page.errors == []
    facts = page.facts
    # every chart the report says it drew is in the DOM, laid out at a real size
    assert facts["charts"] == written.charts
    assert facts["drawn"] == written.charts
    assert facts["empty"] == 0
    # 4 models ("*" and three) x (latency + TTFT) x 3 percentiles, one gap in model-b's TTFT;
    # the error budget of SLO avail on m1 and m2; quota use of m1 in us-east-1
    assert facts["lines"] == 4 * 2 * 3 + 3 + 2 + 1
    assert facts["markers"] == 1
    assert facts["sessionRows"] == 12
    assert facts["bars"] > 0
    width, height = png_size(shot)
    assert width == 1400 and height > 2000
    shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_the_browser_check_sees_console_errors_and_failed_loads(tmp_path):
    # the same harness on a broken page: proof that "no errors" above can fail
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='missing.png'>"
        "<script>console.error('broken chart'); undefinedFunction();</script></body></html>"
    )
    page = browser.open_page(bad.as_uri(), "document.querySelectorAll('img').length")
    assert page.facts == 1
    text = "\n".join(page.errors)
    assert "console: broken chart" in text
    assert "undefinedFunction" in text
    assert "missing.png" in text
