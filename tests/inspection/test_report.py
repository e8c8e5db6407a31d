"""`mer-bench report`: a static site of the store. Its pages render in headless Chromium
(Debian's package, driven by Selenium through Debian's ChromeDriver), every image loads,
every link resolves to a page of the site; its numbers are the stored runs' and its t-SNE is
of the features the runs kept."""

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mer_bench.benchmark.cli import main

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def site(tmp_path_factory, _prepared_synthetic) -> Path:
    results = tmp_path_factory.mktemp("report") / "results"
    shutil.copytree(_prepared_synthetic, results)
    assert main(["run", "--methods", "ststnet.shared", "--budget", "3", "--keep", "features",
                 "--results", str(results), "--quiet"]) == 0
    assert main(["run", "--methods", "off_apexnet", "--budget", "2", "--seeds", "0,1",
                 "--results", str(results), "--quiet"]) == 0
    assert main(["report", "--results", str(results), "--quiet"]) == 0
    return results


def local_links(page: Path) -> list[Path]:
    text = page.read_text()
    return [(page.parent / target).resolve()
            for target in re.findall(r'(?:href|src)="([^"#]+)"', text)]


def test_every_link_and_image_of_the_site_is_in_its_folder(site):
    report = site / "report"
    pages = [report / "index.html", *sorted((report / "runs").glob("*.html"))]
    assert len(pages) == 3  # the index and one page per run
    for page in pages:
        for target in local_links(page):
            assert target.is_file(), f"{page.name} links to missing {target}"
            assert report.resolve() in target.parents, f"{page.name} leaves the site: {target}"


def test_the_index_shows_the_stored_scores_and_says_synthetic(site):
    text = (site / "report" / "index.html").read_text()
    table = pd.read_csv(site / "tables" / "comparison.csv")
    for _, row in table.iterrows():
        assert f"{row.uf1_mean:.2f}" in text  # the same numbers as the tables
    assert "SYNTHETIC" in text and "generated, not real data" in text
    assert "± " in text  # two seeds of off_apexnet: a spread


def test_a_run_that_kept_features_has_its_tsne_and_one_that_did_not_says_how(site):
    pages = {p.name.split("_synthetic")[0]: p.read_text()
             for p in (site / "report" / "runs").glob("*.html")}
    assert "t-SNE of the inputs to fc" in pages["ststnet.shared"]
    assert "--keep features" in pages["off_apexnet"] and "t-SNE of the inputs" not in pages["off_apexnet"]
    assert "Protocol card" in pages["off_apexnet"] and "synthetic/sub01" in pages["off_apexnet"]


@pytest.mark.skipif(not (CHROMIUM and DRIVER),
                    reason="Debian's chromium and chromium-driver are not installed (.ci/run "
                           "installs them)")
def test_the_site_renders_in_headless_chromium_images_load_and_links_resolve(site):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        index = (site / "report" / "index.html").resolve().as_uri()
        browser.get(index)
        assert browser.title == "MER-Bench report"
        rows = browser.execute_script("return document.querySelectorAll('tr').length")
        assert rows >= 3
        links = browser.execute_script(
            "return Array.from(document.querySelectorAll('a')).map(a => a.href)")
        runs = [link for link in links if "/runs/" in link]
        assert len(runs) == 2
        for link in runs:
            browser.get(link)
            assert " on synthetic-5" in browser.title  # the run's page, not an error page
            images = browser.execute_script(
                "return Array.from(document.images).map(i => [i.src, i.complete, "
                "i.naturalWidth])")
            assert len(images) >= 2  # confusion matrix, curves (and t-SNE where kept)
            for source, complete, width in images:
                assert complete and width > 100, f"{source} did not load"
            back = browser.execute_script("return document.querySelector('nav a').href")
            assert back == index
    finally:
        browser.quit()


PLUGIN = '''
import numpy as np
from mer_bench.api import Method, register_method

class Constant(Method):
    views = ("flow_28",)

    def budget_text(self, budget):
        return "no training (a constant)"

    def fit_predict(self, train, test, context):
        train.views["flow_28"], test.views["flow_28"]
        return {"final": np.tile(np.arange(context.num_classes, dtype=float), (len(test), 1))}

register_method("report_constant", Constant)
'''


def test_a_plugins_runs_report_without_the_plugin(results, tmp_path, capsys):
    """The report never builds a stored run's method: what it shows of it (the budget text)
    was stored with each job, so a plugin's runs render where the plugin is not loaded."""
    import sys

    from mer_bench.methods import METHODS

    plugin = tmp_path / "report_plugin.py"
    plugin.write_text(PLUGIN)
    try:
        assert main(["run", "--methods", "report_constant", "--plugin", str(plugin),
                     "--results", str(results), "--quiet"]) == 0
    finally:
        METHODS._entries.pop("report_constant", None)
        for module in [m for m in sys.modules if m.startswith("mer_bench_plugin_report_plugin")]:
            del sys.modules[module]
    capsys.readouterr()
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "site"),
                 "--quiet"]) == 0
    (page,) = (tmp_path / "site" / "runs").glob("report_constant*.html")
    assert "no training (a constant)" in page.read_text()
