"""What the ``mlm`` command prints besides the summary and :func:`mlm.table`: the JSON dump
of a fit, and the ICC and comparison tables in text, Markdown, LaTeX or HTML.
"""

from __future__ import annotations

import html
import json
import math
import re
import textwrap

import numpy as np
import pandas as pd

from mlm.report.table import latex_escape

__all__ = ["fit_json", "icc_table", "render", "to_json", "clean", "records"]

FORMATS = ("text", "markdown", "latex", "html", "json")


def _num(v, digits=4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.{digits}f}"


def clean(v):
    """JSON-safe value: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if v is pd.NA or v is None:
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def records(frame: pd.DataFrame, index_name: str | None = None) -> list:
    frame = frame.reset_index() if index_name else frame
    return [{str(k): clean(v) for k, v in row.items()} for row in frame.to_dict("records")]


def fit_json(fit, data_label: str) -> dict:
    """A machine-readable dump of the fit (every number at full precision)."""
    co = fit.coefficients.copy()
    co.index.name = "term"
    glmm = not hasattr(fit, "reml")
    if glmm:
        from mlm.glmm.display import method
    return {
        "formula": fit.formula, "data": data_label,
        "method": f"ML ({method(fit)})" if glmm else "REML" if fit.reml else "ML",
        **({"family": fit.family.name, "link": fit.family.link} if glmm else {}),
        "nobs": int(fit.nobs), "nobs_dropped": int(fit.nobs_dropped),
        "ngroups": {str(k): int(v) for k, v in fit.ngroups.items()},
        "loglik": clean(fit.loglik), "aic": clean(fit.aic), "bic": clean(fit.bic),
        "deviance": clean(fit.deviance), "sigma": None if glmm else clean(fit.sigma),
        "converged": bool(fit.converged), "singular": bool(fit.singular),
        "df_method": "normal" if glmm else fit.df_method,
        "fixef": {str(k): clean(v) for k, v in fit.fixef.items()},
        "coefficients": records(co, "term"),
        "varcorr": records(fit.varcorr),
        "messages": list(fit.messages()),
    }


def to_json(obj) -> str:
    return json.dumps(obj, indent=2, allow_nan=False)


# --------------------------------------------------------------------------- icc, compare
def icc_table(tab: pd.DataFrame) -> pd.DataFrame:
    """The ICC table of :func:`mlm.icc` as text cells."""
    level = tab.attrs.get("level", 0.95)
    cells = {"ICC": tab["icc"].map(lambda v: _num(v, 3))}
    if "conf_low" in tab:   # a glmer fit's latent-scale table has no interval
        cells[f"{level:.0%} CI"] = [f"[{_num(a, 3)}, {_num(b, 3)}]" for a, b in
                                    zip(tab["conf_low"], tab["conf_high"])]
    cells["ICC (cumulative)"] = tab["icc_cumulative"].map(lambda v: _num(v, 3))
    for col, label, d in (("design_effect", "Design effect", 2), ("reliability", "Reliability", 3)):
        if col in tab:
            cells[label] = tab[col].map(lambda v, d=d: _num(v, d))
    out = pd.DataFrame(cells, index=list(tab.index))
    if np.allclose(tab["icc"], tab["icc_cumulative"], equal_nan=True):
        out = out.drop(columns="ICC (cumulative)")
    out.index.name = "Group"
    return out


# --------------------------------------------------------------------------- renderers
_NUMBER = re.compile(r"^\s*(?:[<>]?[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:e[-+]?\d+)?|<2e-16|\[.*\])?\s*$", re.I)


def _numeric(values) -> bool:
    """Whether a column of text cells holds numbers (right-aligned) or words (left-aligned)."""
    return all(_NUMBER.match(str(v)) for v in values)


def _text(caption, table):
    head = [table.index.name or ""] + [str(c) for c in table.columns]
    cols = [[str(i) for i in table.index]] + [[str(v) for v in table[c]] for c in table.columns]
    right = [False] + [_numeric(c) for c in cols[1:]]
    widths = [max(len(h), *(len(v) for v in c)) if c else len(h) for h, c in zip(head, cols)]

    def line(cells):
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()
    rows = [line(head)] + [line([c[k] for c in cols]) for k in range(len(table))]
    body = "\n".join(rows)
    return f"{caption}:\n{body}" if caption else body


def _markdown(caption, table):
    head = [table.index.name or ""] + [str(c) for c in table.columns]

    def cell(s):
        s = str(s)
        for ch in ("\\", "|", "*", "_", "`"):
            s = s.replace(ch, "\\" + ch)
        return s
    align = ["---:" if _numeric(table[c]) else "---" for c in table.columns]
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "|".join(["---", *align]) + "|"]
    for idx, row in table.iterrows():
        lines.append("| " + " | ".join(cell(v) for v in [idx, *row]) + " |")
    return (f"**{caption}**\n\n" if caption else "") + "\n".join(lines)


def _latex(caption, table):
    head = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = [f"% {latex_escape(caption)}" if caption else "",
             r"\begin{tabular}{l" + "".join("r" if _numeric(table[c]) else "l" for c in table.columns)
             + "}", r"\hline",
             " & ".join(latex_escape(h) for h in head) + r" \\", r"\hline"]
    for idx, row in table.iterrows():
        lines.append(" & ".join(latex_escape(v) for v in [idx, *row]) + r" \\")
    lines += [r"\hline", r"\end{tabular}"]
    return "\n".join(line for line in lines if line)


def _html(caption, table):
    esc = html.escape
    head = [table.index.name or ""] + [str(c) for c in table.columns]
    rows = ["<tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for idx, row in table.iterrows():
        rows.append("<tr><th>" + esc(str(idx)) + "</th>"
                    + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}\n<thead>{rows[0]}</thead>\n<tbody>\n" + "\n".join(rows[1:]) + "\n</tbody>\n</table>"


_RENDER = {"text": _text, "markdown": _markdown, "latex": _latex, "html": _html}


def render(tables, fmt: str, notes=()) -> str:
    """Captioned tables (and note lines) in ``fmt``: text, markdown, latex or html."""
    parts = [_RENDER[fmt](caption, table) for caption, table in tables]
    notes = list(notes)
    if notes:
        if fmt == "markdown":
            parts.append("\n".join(f"*{n}*  " for n in notes))
        elif fmt == "latex":
            parts.append("\n".join(f"% {latex_escape(n)}" for n in notes))
        elif fmt == "html":
            parts.append("\n".join(f"<p><i>{html.escape(n)}</i></p>" for n in notes))
        else:
            parts.append("\n".join(textwrap.fill(n, 88, break_on_hyphens=False) for n in notes))
    return "\n\n".join(parts)
