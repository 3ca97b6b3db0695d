"""``report.html``: one self-contained page (PNG data URIs, inline CSS and JS, no server)."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;white-space:nowrap;vertical-align:top}
td.long{white-space:normal;overflow-wrap:anywhere;min-width:12em;max-width:30em}
td.fold summary{cursor:pointer;color:#036}td.fold dl{display:grid;grid-template-columns:auto auto;gap:0 0.8em;margin:0.3em 0}
td.fold dt{color:#555}td.fold dd{margin:0;overflow-wrap:anywhere;max-width:24em;white-space:normal}
div.wide{max-width:100%;overflow-x:auto}p.caption{color:#444;font-size:0.85em;margin:0 0 1em;max-width:60em}
th{background:#eee}table.sortable th{cursor:pointer;user-select:none}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
tr.knee td{background:#fff6cc}td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #ddd;margin:0.4em 0}
code{font-size:0.9em}.note{color:#666;font-size:0.85em}
"""

# Click a header to sort by it; again to reverse. Cells with data-v sort as numbers.
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      heads.forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col], y = b.cells[col];
        var u = x.getAttribute("data-v"), v = y.getAttribute("data-v");
        var c = (u !== null && v !== null) ? parseFloat(u) - parseFloat(v)
                                           : x.textContent.localeCompare(y.textContent);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


#: Text longer than this wraps in its cell (an NB201 string, an error message).
_LONG = 32
#: Columns with this prefix are folded into one ``config`` cell per row.
FOLDED_PREFIX = "config/"


def _cell(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return f"<td>{'' if value is None else html.escape(str(value))}</td>"
    if isinstance(value, (int, float)) and math.isfinite(value):
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return f'<td class="num" data-v="{value!r}">{html.escape(text)}</td>'
    text = "" if _is_missing(value) else str(value)
    if len(text) <= _LONG:
        return f"<td>{html.escape(text)}</td>"
    return f'<td class="long">{html.escape(text).replace("+", "+<wbr>")}</td>'  # an NB201 string breaks at its nodes


def _folded(items: Sequence[tuple[str, Any]]) -> str:
    """One cell holding ``items`` (key, value) behind a ``<details>`` toggle."""
    shown = [(k, v) for k, v in items if not _is_missing(v) and v != ""]
    if not shown:
        return "<td></td>"
    pairs = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(_text(v))}</dd>" for k, v in shown)
    return (f'<td class="fold"><details><summary>{len(shown)} key{"" if len(shown) == 1 else "s"}</summary>'
            f"<dl>{pairs}</dl></details></td>")


def _text(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def table_html(frame: pd.DataFrame, *, sortable: bool = True, highlight: str | None = None) -> str:
    """An HTML table of ``frame``; rows whose bool column ``highlight`` is True are marked.

    Columns named ``config/KEY`` become one last column, ``config``, whose cells fold their
    keys and values behind a toggle; long text wraps. The table scrolls sideways on its own
    rather than widening the page when it cannot fit.
    """
    shown = [c for c in frame.columns if not str(c).startswith(FOLDED_PREFIX)]
    folded = [c for c in frame.columns if str(c).startswith(FOLDED_PREFIX)]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown) + ("<th>config</th>" if folded else "")
    rows = []
    for record in frame.to_dict("records"):
        values = {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}
        marked = highlight is not None and bool(values.get(highlight))
        cells = "".join(_cell(values[c]) for c in shown)
        if folded:
            cells += _folded([(str(c)[len(FOLDED_PREFIX):], values[c]) for c in folded])
        rows.append(f'<tr class="knee">{cells}</tr>' if marked else f"<tr>{cells}</tr>")
    css = ' class="sortable"' if sortable else ""
    return f'<div class="wide"><table{css}><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _image(title: str, png: bytes, caption: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    text = f'\n<p class="caption">{html.escape(caption)}</p>' if caption else ""
    return f'<h2>{html.escape(title)}</h2>\n<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">{text}'


def summary_facts(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines of one search's ``summary.json`` for the page's head table."""
    objectives = ", ".join(f"{n} ({d})" for n, d in zip(summary["objectives"], summary["directions"]))
    reference = ", ".join(f"{v:.4g}" for v in summary["reference_point"])
    knee = summary.get("knee")
    fidelity = "their last result" if summary["fidelity"] == "all" else f"{summary['max_epochs']} epochs"
    items = [
        ("trials", f"{summary['n_trials']} ({summary['n_complete']} complete, {summary['n_stopped_early']} "
                   f"stopped early, {summary['n_running']} running, {summary['n_pending']} pending, "
                   f"{summary['n_failed']} failed, {summary['n_diverged']} diverged)"),
        ("objectives", objectives),
        ("front over", f"{summary['n_eligible']} trials at {fidelity}"),
        ("Pareto front", f"{summary['n_pareto']} trial{'' if summary['n_pareto'] == 1 else 's'}"),
        ("hypervolume", f"{summary['hypervolume']:.6g} (reference point {reference})"),
        ("knee", f"{knee['trial_id']} {knee['arch']}" if knee else "none"),
    ]
    if summary.get("search_time_s") is not None:
        gaps = summary.get("idle_gaps", [])
        items.append(("search time", f"{summary['search_time_s']:.0f} s to the last finished trial "
                                     f"(wall time {summary.get('wall_time_s') or 0:.0f} s less {len(gaps)} idle "
                                     f"gap{'' if len(gaps) == 1 else 's'} without a trial at work)"))
    items += _final_facts(summary.get("final"))
    for name, best in summary.get("best", {}).items():
        items.append((f"best {name}", f"{best['trial_id']}: {best['value']:.4g}" if best else "none"))
    for failure in summary.get("failed", []):
        items.append((f"failed {failure['trial_id']}", failure["error"]))
    return items


def _final_facts(final: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Head-table lines on the final (test) numbers of ``summary["final"]``."""
    if not final:
        return [("final numbers", "none: the front and knee above are on selection numbers "
                                  "(robnas evaluate DIR measures the test split)")]
    knee = final.get("knee")
    eps = ", ".join(f"{v:.4g}" for v in final["eps"])
    images = ", ".join(str(v) for v in final["images"])
    gaps = ", ".join(f"{m} {v:+.4f}" for m, v in final["mean_gap"].items() if v is not None)
    return [
        ("final numbers", f"{final['n_evaluated']} trials on the {final['split']} split, attack "
                          f"{final['attack']}, eps {eps}, {images} images"),
        ("final front", f"{final['n_pareto']} of {final['n_eligible']} eligible trials, on final "
                        f"{', '.join(final['final_metrics'])}: {', '.join(final['pareto']) or 'none'}"),
        ("final knee", f"{knee['trial_id']} {knee['arch']}" if knee else "none"),
        ("mean gap (selection - final)", gaps or "none"),
    ]


def render_report(
    title: str,
    facts: Sequence[tuple[str, str]],
    table_title: str,
    table: pd.DataFrame,
    images: Sequence[tuple[str, bytes] | tuple[str, bytes, str]],
    *,
    trials: pd.DataFrame | None = None,
    final: tuple[str, pd.DataFrame] | None = None,
) -> str:
    """The HTML page: ``facts`` (label, text), ``table`` sortable (rows with a true ``knee``
    column highlighted), ``final`` (title, table; rows with a true ``final_knee`` highlighted),
    ``images`` (title, PNG bytes and optionally a caption saying what its marks mean) and,
    folded, the ``trials`` table."""
    head = "".join(f"<tr><th>{html.escape(k)}</th>{_cell(str(v))}</tr>" for k, v in facts)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<table>{head}</table>",
        f"<h2>{html.escape(table_title)}</h2>",
        '<p class="note">Click a column header to sort.</p>',
        table_html(table, highlight="knee" if "knee" in table else None),
    ]
    if final is not None:
        parts += [f"<h2>{html.escape(final[0])}</h2>", table_html(final[1], highlight="final_knee")]
    parts += [_image(*image) for image in images]
    if trials is not None:
        parts.append("<h2>All trials</h2><details><summary>show the table</summary>")
        parts.append(table_html(trials, highlight="pareto" if "pareto" in trials else None))
        parts.append("</details>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts) + "\n"
