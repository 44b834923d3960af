"""The model-validation report: one self-contained HTML file a risk analyst can read.

Sections: headline metrics and the model's identity; ROC and KS curves; calibration by
decile; score distribution by outcome; the gains table; and per feature its bins with
counts, bad rate, WoE and IV (and points for a scorecard); a scorecard's pair tables as
grids of points per (bin of A × bin of B), shaded by the points below the pair's best
cell, with the training rows per cell. Charts are matplotlib PNGs
embedded as base64, so the file opens anywhere without a network.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray

from creditline.scoring import metrics

if TYPE_CHECKING:
    from creditline.scoring.serving import BatchScores
    from creditline.scoring.training.scorecard import BinStats, PairFit

BLUE, RED, GREY = "#1f5fa8", "#c0392b", "#888888"

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px 40px;color:#222;
 max-width:1200px}
h1{font-size:22px;margin-bottom:4px}
h2{font-size:17px;border-bottom:2px solid #1f5fa8;padding-bottom:3px;margin-top:28px}
h3{font-size:14px;margin:18px 0 4px} .sub{color:#666;font-size:12px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f1f4f8} td.l,th.l{text-align:left}
.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:20px;color:#1f5fa8}.card span{font-size:11px;color:#666}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:10px} img{width:100%}
.bar{background:#c0392b;height:9px;display:inline-block} .dropped{color:#888}
"""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return '<img src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '">'


def _charts(y: NDArray[np.int8], test: BatchScores) -> list[str]:
    pd_ = test.pd
    score = test.score.astype(np.float64)
    fpr, tpr = metrics.roc_curve(y, pd_)
    a = metrics.auc(y, pd_)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(fpr, tpr, color=BLUE, label=f"model (AUC {a:.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color=GREY, label="random")
    ax.set(
        xlabel="false positive rate (goods declined)",
        ylabel="true positive rate (bads caught)",
        title="ROC curve",
    )
    ax.legend(loc="lower right")
    roc = _png(fig)

    order = np.argsort(score, kind="mergesort")
    ys = y[order]
    cum_bad = np.cumsum(ys) / ys.sum()
    cum_good = np.cumsum(1 - ys) / (len(ys) - ys.sum())
    share = np.arange(1, len(ys) + 1) / len(ys)
    k = int(np.argmax(cum_bad - cum_good))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(share, cum_bad, color=RED, label="bads")
    ax.plot(share, cum_good, color=BLUE, label="goods")
    ax.vlines(
        share[k],
        cum_good[k],
        cum_bad[k],
        color="black",
        ls=":",
        label=f"KS {cum_bad[k] - cum_good[k]:.3f} at score {score[order][k]:.0f}",
    )
    ax.set(
        xlabel="share of applicants, lowest score first",
        ylabel="cumulative share",
        title="KS curve",
    )
    ax.legend(loc="lower right")
    ks = _png(fig)

    cal = metrics.calibration_by_decile(y, pd_)
    fig, ax = plt.subplots(figsize=(5, 4))
    pred = [r["mean_pd"] for r in cal]
    obs = [r["bad_rate"] for r in cal]
    top = max(max(pred), max(obs)) * 1.05
    ax.plot([0, top], [0, top], ls="--", color=GREY, label="perfect")
    ax.plot(pred, obs, "o-", color=BLUE, label="deciles of predicted PD")
    ax.set(xlabel="mean predicted PD", ylabel="observed bad rate", title="Calibration (test)")
    ax.legend(loc="upper left")
    calib = _png(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    edges = np.linspace(350, 950, 41)
    ax.hist(score[y == 0], bins=edges.tolist(), alpha=0.6, color=BLUE, label="good", density=True)
    ax.hist(score[y == 1], bins=edges.tolist(), alpha=0.6, color=RED, label="bad", density=True)
    for edge in (550, 600, 650, 700):
        ax.axvline(edge, color=GREY, lw=0.8, ls=":")
    ax.set(
        xlabel="score (tier edges dotted)",
        ylabel="density",
        title="Score distribution by outcome (test)",
    )
    ax.legend()
    dist = _png(fig)
    return [roc, ks, calib, dist]


def _table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(
        f'<th class="{"l" if i < left else ""}">{html.escape(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(
    path: Path,
    *,
    manifest: dict[str, Any],
    summary: dict[str, Any],
    stats: dict[str, BinStats],
    selected: list[str],
    y_test: NDArray[np.int8],
    test: BatchScores,
    dropped: dict[str, str],
    pairs: tuple[PairFit, ...] = (),
) -> None:
    kind = manifest["kind"]
    cards = [
        ("test AUC", f"{summary['auc']:.3f}"),
        ("Gini", f"{summary['gini']:.3f}"),
        ("KS", f"{summary['ks']:.3f}"),
        ("Brier", f"{summary['brier']:.4f}"),
        ("log loss", f"{summary['log_loss']:.4f}"),
        ("train AUC", f"{summary['train_auc']:.3f}"),
        ("PSI train→test", f"{summary['psi_train_test']:.4f}"),
        ("test bad rate", f"{summary['bad_rate']:.1%}"),
    ]
    parts = [
        f"<h1>Model validation report — {html.escape(manifest['dataset'])} {kind}</h1>",
        f'<div class="sub">version <b>{manifest["version"]}</b> · '
        f"created {manifest['created_at']} · "
        f"train {manifest['rows']['train']:,} / test {manifest['rows']['test']:,} rows "
        f"({manifest['split']['kind']}) · "
        f"data {manifest['data_fingerprint'][:16]} · scale {manifest['scale']}</div>",
        '<h2>Performance on the test part</h2><div class="cards">'
        + "".join(f"<div class=card><b>{v}</b><span>{k}</span></div>" for k, v in cards)
        + "</div>",
        '<div class="grid">' + "".join(_charts(y_test, test)) + "</div>",
        "<h2>Gains and lift (test, lowest score first)</h2>",
        _table(
            [
                "decile",
                "rows",
                "score range",
                "bads",
                "bad rate",
                "cum. bads caught",
                "lift",
                "cum. lift",
            ],
            [
                [
                    str(r["decile"]),
                    f"{r['count']:,}",
                    f"{r['min_score']:.0f}–{r['max_score']:.0f}",
                    str(r["bads"]),
                    f"{r['bad_rate']:.1%}",
                    f"{r['cum_capture']:.1%}",
                    f"{r['lift']:.2f}",
                    f"{r['cum_lift']:.2f}",
                ]
                for r in summary["gains"]
            ],
        ),
        "<h2>Calibration by decile of predicted PD (test)</h2>",
        _table(
            ["decile", "rows", "mean predicted PD", "observed bad rate"],
            [
                [str(r["decile"]), f"{r['count']:,}", f"{r['mean_pd']:.2%}", f"{r['bad_rate']:.2%}"]
                for r in summary["calibration_by_decile"]
            ],
        ),
        "<h2>Features</h2>",
    ]
    ranked = sorted(stats, key=lambda n: -stats[n].iv)
    summary_rows = []
    for name in ranked:
        s = stats[name]
        status = "in model" if name in selected else html.escape(dropped.get(name, "not used"))
        bar = f'<span class="bar" style="width:{min(s.iv, 1.0) * 200:.0f}px"></span>'
        trend = {1: "↑ risk", -1: "↓ risk", 0: "—"}[s.trend]
        summary_rows.append(
            [html.escape(name), f"{s.iv:.4f} {bar}", str(s.bins.n_regular), trend, status]
        )
    parts.append(_table(["feature", "IV", "bins", "trend", "status"], summary_rows))
    points_by_feature: dict[str, list[float]] = {}
    if kind == "scorecard":
        import json

        body = json.loads((path.parent / "scorecard.json").read_text())
        points_by_feature = {f["bins"]["name"]: f["points"] for f in body["features"]}
    for name in [n for n in ranked if n in selected] + [n for n in ranked if n not in selected]:
        s = stats[name]
        table = s.table()
        headers = ["bin", "count", "share", "bads", "bad rate", "WoE"]
        if name in points_by_feature:
            headers.append("points")
        rows = []
        for k, (_, r) in enumerate(table.iterrows()):
            if r["count"] == 0 and k >= s.bins.n_regular:
                continue
            row = [
                html.escape(str(r["bin"])),
                f"{int(r['count']):,}",
                f"{r['share']:.1%}",
                f"{int(r['bads']):,}",
                "" if np.isnan(r["bad_rate"]) else f"{r['bad_rate']:.1%}",
                f"{r['woe']:+.3f}",
            ]
            if name in points_by_feature:
                row.append(f"{points_by_feature[name][k]:.1f}")
            rows.append(row)
        cls = "" if name in selected else ' class="dropped"'
        parts.append(f"<h3{cls}>{html.escape(name)} — IV {s.iv:.4f}</h3>" + _table(headers, rows))
    if pairs:
        parts.append(_pairs_section(path, pairs))
    libs = ", ".join(f"{k} {v}" for k, v in manifest["libraries"].items())
    parts.append(f'<h2>Provenance</h2><div class="sub">{html.escape(libs)}</div>')
    head = f'<meta charset="utf-8"><title>{manifest["version"]}</title><style>{CSS}</style>'
    page = f'<!doctype html><html lang="en"><head>{head}</head><body>{"".join(parts)}</body></html>'
    path.write_text(page, encoding="utf-8")


def _pairs_section(path: Path, pairs: tuple[PairFit, ...]) -> str:
    """Each pair table as a grid: points per cell (as served), training rows below them."""
    import json

    from creditline.scoring.pairs import PairCells

    body = json.loads((path.parent / "scorecard.json").read_text())
    served = [PairCells.from_dict(p) for p in body["pairs"]]
    parts = [
        "<h2>Pair cells</h2>",
        '<div class="sub">Points added for the combination of two features, per bin of the '
        "row feature × bin of the column feature; the darker a cell, the more points below "
        "the pair's best cell (a reason naming both features). Small figures: training rows. "
        "Special and missing bins without training rows are not shown.</div>",
    ]
    for pair, cells in zip(pairs, served, strict=True):
        rows_shown = _shown(pair.first.n_regular, pair.counts.sum(axis=1))
        cols_shown = _shown(pair.second.n_regular, pair.counts.sum(axis=0))
        first_labels, second_labels = pair.first.labels(), pair.second.labels()
        spread = max(cells.best - float(cells.points.min()), 1e-9)
        grid = []
        for i in rows_shown:
            row = [html.escape(first_labels[i])]
            for j in cols_shown:
                points = float(cells.points[i, j])
                shade = 0.45 * (cells.best - points) / spread
                row.append(
                    f'<span style="background:rgba(192,57,43,{shade:.2f});padding:0 3px">'
                    f"{points:+.1f}</span><br><small>{int(pair.counts[i, j]):,}</small>"
                )
            grid.append(row)
        headers = [f"{pair.first.name} \\ {pair.second.name}"] + [
            second_labels[j] for j in cols_shown
        ]
        # wide grids (up to ~34 bins a side) scroll sideways instead of overflowing the page
        parts.append(
            f"<h3>{html.escape(cells.label)}</h3>"
            f'<div style="overflow-x:auto">{_table(headers, grid)}</div>'
        )
    return "".join(parts)


def _shown(n_regular: int, totals: NDArray[np.int64]) -> list[int]:
    return [k for k in range(len(totals)) if k < n_regular or totals[k] > 0]
