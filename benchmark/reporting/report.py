"""`mer-bench report`: a static HTML site of the store, one folder to open or publish (no
server, no script, nothing fetched): every stored run with its scores, intervals, data and
protocol card; the paper's tables that the store has rows of; and for each run a page with
its folds, confusion matrix, training curves and the t-SNE of the features it kept.

Built from the stored jobs alone (no dataset needs to be present); the figures are drawn
into the site's own folder, so it can be moved whole.
"""

from __future__ import annotations

import html
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mer_bench.benchmark.storage.owned_outputs import (RefusedOutput, check_replaceable_folder,
                                                write_folder)
from mer_bench.benchmark.storage.store import FEATURES, JobRecord, Store
from mer_bench.benchmark.stats.runs import RunScores, data_identity, format_cell, run_scores

REPORT = "report"  # its kind in the site's manifest

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
.synthetic { background: #fff3cd; padding: 0.5em; border: 1px solid #e0c36b; }
.note { color: #555; font-size: 0.85em; }
img { max-width: min(100%, 720px); border: 1px solid #ddd; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
nav a { margin-right: 1em; }
"""


def _page(title: str, body: str, home: str = "index.html") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            f"<nav><a href=\"{home}\">MER-Bench report</a></nav>\n<h1>{html.escape(title)}</h1>\n"
            f"{body}\n</body></html>\n")


def _table(rows: list[dict], links: dict[int, str] | None = None) -> str:
    """An HTML table of `rows` (dicts of one shape); `links`: row index -> page its first
    cell links to."""
    if not rows:
        return "<p class=\"note\">(none)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    lines = []
    for index, row in enumerate(rows):
        cells = []
        for position, column in enumerate(columns):
            text = html.escape(str(row[column]))
            if position == 0 and links and index in links:
                text = f"<a href=\"{links[index]}\">{text}</a>"
            cells.append(f"<td>{text}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(lines) + "</table>"


def run_name(run: RunScores) -> str:
    """A file name for a run's page: readable, unique by its data version."""
    text = f"{run.method}_{run.task}_{run.selection}_{run.budget}_{run.data_version}"
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)


def _records_by_run(records: list[JobRecord]) -> dict[tuple, list[JobRecord]]:
    """Stored jobs by the row they score in (label, task, selection, budget, data version)."""
    from mer_bench.benchmark.stats.runs import _digest

    grouped = defaultdict(list)
    for record in records:
        job = record.job
        grouped[(job.run_label, job.task, job.selection, job.budget,
                  _digest(data_identity(job)))].append(record)
    return grouped


def _run_key(run: RunScores) -> tuple:
    return run.method, run.task, run.selection, run.budget, run.data_version


def _data_text(run: RunScores) -> str:
    return "SYNTHETIC (generated, not real data)" if run.synthetic else run.data


def _score_rows(runs: list[RunScores]) -> list[dict]:
    return [{"run": run.method, "task": run.task, "data": _data_text(run),
             "selection": run.selection, "budget": "default" if run.budget is None
             else run.budget, "folds": f"{run.folds}/{run.folds_expected}",
             "seeds": len(run.seeds), "UF1 % [95%]": format_cell(run, "uf1", interval=True),
             "UAR % [95%]": format_cell(run, "uar", interval=True),
             "ACC % [95%]": format_cell(run, "accuracy", interval=True)} for run in runs]


def build_report(store: Store, folder: Path, paper_grids: dict[str, Path] | None = None,
                 profile: str | None = None, progress: bool = True) -> Path:
    """Writes the site into `folder`, replacing only a report the harness wrote there
    (benchmark/storage/owned_outputs.py); returns its index page.
    `paper_grids`: name -> grid file of the paper tables to show (those with stored rows)."""
    inside = [part for part in (store.runs, store.failures, store.quarantine)
              if Path(folder).absolute().is_relative_to(part.absolute())]
    if inside:
        raise RefusedOutput(f"{folder} is inside the store's {inside[0].name}/ folder; the "
                            "report goes elsewhere (default: RESULTS/report)")
    check_replaceable_folder(Path(folder), REPORT)  # before any work
    records = list(store.records())
    runs = run_scores(records)
    by_run = _records_by_run(records)
    write_folder(folder, REPORT, lambda partial: _write_site(
        partial, store, records, runs, by_run, paper_grids, profile, progress))
    return Path(folder) / "index.html"


def _write_site(partial: Path, store: Store, records: list[JobRecord], runs: list[RunScores],
                by_run: dict, paper_grids: dict[str, Path] | None, profile: str | None,
                progress: bool) -> None:
    (partial / "runs").mkdir()
    (partial / "figures").mkdir()
    whole = [run for run in runs if "[" not in run.task]
    links = {}
    for index, run in enumerate(tqdm(whole, desc="report: runs", unit="run",
                                     disable=not progress)):
        name = run_name(run)
        (partial / "runs" / f"{name}.html").write_text(
            _run_page(run, by_run.get(_run_key(run), []), store, partial, name))
        links[index] = f"runs/{name}.html"
    body = [f"<p>{len(records)} stored jobs in {html.escape(str(store.root))}, {len(whole)} "
            "runs. Scores are UF1 / UAR / accuracy (%) of the predictions pooled over every "
            "LOSO fold (MEGC 2019), mean ± sd over seeds, with subject-bootstrap 95% "
            "intervals. Each run's page has its protocol card, folds, confusion matrix, "
            "training curves and kept features.</p>"]
    if any(run.synthetic for run in runs):
        body.append("<p class=\"synthetic\">Rows marked SYNTHETIC ran on the generated "
                    "default dataset (deterministic, from a public-domain photo): they test "
                    "the harness and say nothing of real micro-expressions.</p>")
    body += ["<h2>Every stored run</h2>", _table(_score_rows(whole), links)]
    parts = [run for run in runs if "[" in run.task]
    if parts:
        body += ["<h3>Per dataset of composite tasks</h3>", _table(_score_rows(parts))]
    for name, path in (paper_grids or {}).items():
        body.append(_paper_section(name, path, records, profile))
    index = partial / "index.html"
    index.write_text(_page("MER-Bench report", "\n".join(body), home="index.html"))


def _run_page(run: RunScores, records: list[JobRecord], store: Store, site: Path,
              name: str) -> str:
    """One run's page; its figures are drawn into the site's figures folder."""
    from mer_bench.benchmark.reporting.exporting import job_card
    from mer_bench.benchmark.reporting.figures import confusion_figure, curves_figure, save

    body = []
    if run.synthetic:
        body.append("<p class=\"synthetic\">SYNTHETIC data: the generated default dataset, "
                    "not real micro-expressions.</p>")
    body.append(_table(_score_rows([run])))
    if run.subject_mean:
        body.append("<p class=\"note\">Mean of per-subject scores (some papers report it; "
                    "not the protocol's): " + ", ".join(
                        f"{m} {v:.2f}" for m, v in run.subject_mean.items()) + "</p>")
    records = sorted(records, key=lambda r: (r.job.seed, r.job.fold))
    figures = []
    if run.complete:
        figures.append(("Confusion matrix (rows: true class, normalised; counts over seeds)",
                        save(confusion_figure(run), site / "figures" / f"{name}_confusion.png")))
    curves = [c for c in (store.curves(r.job) for r in records if r.job.seed == run.seeds[0])
              if c is not None]
    if curves:
        figures.append(("Training curves: loss per step of each fold (thin), their median "
                        "(thick), scored epochs (dots)", save(curves_figure(
                            f"{run.method} on {run.task} ({_data_text(run)})", curves),
                            site / "figures" / f"{name}_curves.png")))
    figures += _tsne_figures(run, records, store, site, name)
    for caption, path in figures:
        body.append(f"<figure><img src=\"../figures/{path.name}\" alt=\"{html.escape(caption)}\">"
                    f"<figcaption class=\"note\">{html.escape(caption)}</figcaption></figure>")
    if not any("t-SNE" in caption for caption, _ in figures):
        body.append("<p class=\"note\">No features kept: run with <code>--keep features</code> "
                    "for a t-SNE of them here.</p>")
    body += ["<h2>Folds</h2>", _table([
        {"fold": r.job.fold, "seed": r.job.seed, "test clips": len(r.predictions.clips),
         "UF1 %": f"{100 * r.info['fold_scores'].get('uf1', float('nan')):.2f}",
         "accuracy %": f"{100 * r.info['fold_scores'].get('accuracy', float('nan')):.2f}",
         "fit + predict s": f"{r.info.get('timings', {}).get('fit_predict_s', float('nan')):.1f}",
         "job": r.job.key} for r in records])]
    if records:
        card = job_card(records[0].job, run, records[0].info)
        body += ["<h2>Protocol card</h2>",
                 f"<pre>{html.escape(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"]
    return _page(f"{run.method} on {run.task}", "\n".join(body), home="../index.html")


def _tsne_figures(run: RunScores, records: list[JobRecord], store: Store, site: Path,
                  name: str) -> list[tuple[str, Path]]:
    """A t-SNE per final layer of the features the run's first seed kept, if every fold did."""
    from mer_bench.benchmark.reporting.figures import save, tsne_figure

    first = [r for r in records if r.job.seed == run.seeds[0]]
    paths = [store.job_dir(r.job) / FEATURES for r in first]
    if not first or not all(p.is_file() for p in paths):
        return []
    kept = []
    for path in paths:
        with np.load(path) as features:
            kept.append(dict(features))
    labels = np.concatenate([r.predictions.labels for r in first])
    out = []
    for layer in kept[0]:
        features = np.concatenate([k[layer] for k in kept])
        caption = (f"t-SNE of the inputs to {layer}: every fold's test clips, each by its own "
                   f"fold's model, coloured by true class ({_data_text(run)})")
        figure = tsne_figure(f"{run.method} on {run.task}: {layer}", features, labels,
                             tuple(run.classes))
        out.append((caption, save(figure, site / "figures" / f"{name}_tsne_{layer}.png")))
    return out


def _paper_section(name: str, path: Path, records: list[JobRecord],
                   profile: str | None) -> str:
    """A paper table as the store has it (the newest stored job of each cell), if any of its
    measured rows has a stored run; else nothing."""
    from mer_bench.benchmark.reporting.paper_outputs import scored_heads
    from mer_bench.benchmark.paper.tables import CARD, MISSING, caption, load_paper_table
    from mer_bench.benchmark.paper.tables import table_frame

    from mer_bench.benchmark.protocol.grids import grid_toml

    if profile and profile not in grid_toml(path).get("profiles", {}):
        return ""  # the profile rescales other tables, not this one
    table = load_paper_table(path, profile)
    chosen = [r for r in records if r.job.task in table.grid.runnable_tasks]
    if not chosen:
        return ""
    heads = scored_heads(chosen)
    frame = table_frame(table, heads)
    measured = frame[frame.source == "measured"]
    scores = measured.drop(columns=[c for c in measured if not c.endswith(" UF1")])
    if not (scores != MISSING).to_numpy().any():
        return ""
    cards = [json.loads(text) for text in frame.pop(CARD)]
    runs = [r for rs in heads.values() for r in rs if r.task in table.grid.tasks]
    lines = "".join(f"<p class=\"note\">{html.escape(line)}</p>" for line in caption(table, runs))
    details = "".join(
        f"<details><summary>{html.escape(card['row'])} ({card['source']})</summary><pre>"
        f"{html.escape(json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False))}</pre>"
        "</details>" for card in cards)
    return (f"<h2 id=\"{name}\">Paper {name}</h2>{lines}"
            + _table(frame.to_dict("records")) + "<h3>Protocol cards</h3>" + details)
