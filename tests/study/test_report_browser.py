"""The HTML report in a real headless browser (Debian's chromium): no console errors, every figure rendered,
and a screenshot kept as an artifact of the run.

`.ci/run` installs chromium and sets TSTACK_REQUIRE_BROWSER=1, so in CI a missing browser fails instead of skipping.
The screenshot goes to $TSTACK_ARTIFACTS (CI: artifacts/) or the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("TSTACK_REQUIRE_BROWSER") == "1"
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip() -> str:
    if CHROMIUM is None:
        if REQUIRED:
            pytest.fail("chromium is not installed (apt-get install chromium); CI requires it for the report check")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        if REQUIRED:
            pytest.fail("playwright is not installed; pip install -e '.[test]'")
        pytest.skip("playwright is not installed")
    return CHROMIUM


def test_report_renders_in_headless_chromium(fast_study: tuple[dict[str, Any], Path], tmp_path: Path) -> None:
    chromium = _browser_or_skip()
    from playwright.sync_api import sync_playwright

    _, out = fast_study
    artifacts = Path(os.environ.get("TSTACK_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
            page.goto((out / "report.html").resolve().as_uri(), wait_until="load")
            sizes = page.eval_on_selector_all(
                "figure img",
                "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width,"
                " i.getBoundingClientRect().height])",
            )
            headline = page.inner_text("#headline")
            # the sensitivity of the speedup (issue 16): its figure decoded and laid out, its table present
            sensitivity = page.eval_on_selector(
                "#fig-gemmini_sensitivity img",
                "i => [i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width,"
                " i.getBoundingClientRect().height, i.alt]",
            )
            sensitivity_rows = page.eval_on_selector_all("#sensitivity + p + table tbody tr", "rows => rows.length")
            sensitivity_text = page.inner_text("#gemmini")
            codesign_text = page.inner_text("#codesign")
            codesign_figure = page.eval_on_selector(
                "#fig-codesign_front img", "i => [i.complete, i.naturalWidth, i.getBoundingClientRect().width]"
            )
            shot = artifacts / "study-report.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert requests == []  # self-contained: the page fetched nothing
    assert len(sizes) >= 6
    for complete, nat_w, nat_h, w, h in sizes:
        assert complete and nat_w > 0 and nat_h > 0 and w > 0 and h > 0
    assert "End to end" in headline
    complete, nat_w, nat_h, w, h, alt = sensitivity
    assert complete and nat_w > 300 and nat_h > 200 and w > 300 and h > 150
    assert alt.startswith("Sensitivity of the speedup")
    assert sensitivity_rows == 9
    assert "Sensitivity of the speedup" in sensitivity_text and "host and DMA predicted" in sensitivity_text
    # the co-design section (issue 18): all three strategies in its tables, its front figure decoded and laid out
    assert all(s in codesign_text for s in ("sequential", "joint", "alternating"))
    assert codesign_figure[0] and codesign_figure[1] > 300 and codesign_figure[2] > 300
    assert shot.stat().st_size > 10_000
