"""Tables for papers: several fitted models side by side, and the display of model comparisons.

:func:`table` lays fitted models out as a journal table (the layout of texreg,
stargazer and modelsummary in R, and of Stata's ``esttab``): fixed effects with their
standard errors in parentheses (or confidence intervals) below, then the variance
components, the ICC, the numbers of units at each level and the fit statistics. The
result renders as plain text, Markdown, LaTeX, HTML, Word (python-docx) and a
DataFrame.

:class:`ComparisonTable` is what :func:`mlm.compare` returns: a DataFrame that prints
like lme4's ``anova()`` table (issue 13, item 7).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlm.errors import MLMError
from mlm.results.linear import require_fit

__all__ = ["table", "ModelTable", "TableError", "ComparisonTable"]


class TableError(MLMError, ValueError):
    """Arguments that :func:`mlm.table` cannot lay out (not fits, wrong names or labels)."""


SE_CHOICES = ("parentheses", "ci", None)
VARIANCE_CHOICES = ("var", "sd")
STAR_LEVELS = ((0.001, "***"), (0.01, "**"), (0.05, "*"))
SECTIONS = ("Fixed effects", "Random effects", "Units", "Model fit")


@dataclass
class _Row:
    """One row of the table: its section, a unique key, the label shown, a cell per model."""

    section: str
    key: str
    label: str
    cells: list
    values: list
    kind: str
    marks: list = None

    def __post_init__(self):
        if self.marks is None:
            self.marks = [""] * len(self.cells)


# --------------------------------------------------------------------------- formatting
def _fmt(x, digits: int) -> str:
    """A number with ``digits`` decimals; '' for a missing value; no negative zero."""
    if x is None or not np.isfinite(x):
        return ""
    s = f"{x:.{digits}f}"
    if s.startswith("-") and float(s) == 0.0:
        s = s[1:]
    return s


def _stars(p) -> str:
    if p is None or not np.isfinite(p):
        return ""
    for level, mark in STAR_LEVELS:
        if p < level:
            return mark
    return ""


def _df_method(fit) -> str:
    """The rule behind the fit's tests: ``fit.ddf`` when the fit has one, else ``fit.df_method``
    (a glmer fit: Wald z, as lme4's summary)."""
    if _is_glmm(fit):
        return "Wald z"
    ddf = getattr(fit, "ddf", None)
    return str(ddf if isinstance(ddf, str) and ddf else fit.df_method)


def _is_glmm(fit) -> bool:
    return not hasattr(fit, "reml")


def _ratio_name(fit):
    """'odds ratio' / 'rate ratio' for a glmer fit whose exp(coefficient) is one, else None."""
    if not _is_glmm(fit):
        return None
    return {"logit": "odds ratio", "log": "rate ratio"}.get(fit.family.link)


def _coefficients(fit, exponentiate: bool) -> pd.DataFrame:
    """The fit's coefficient table; with ``exponentiate`` and a logit or log link, exp of the
    estimates and interval ends, and delta-method SEs exp(b) * SE (as modelsummary's
    ``exponentiate``); p-values stay those of the coefficients."""
    co = fit.coefficients
    if not (exponentiate and _ratio_name(fit)):
        return co
    co = co.copy()
    ratio = np.exp(co["estimate"])
    co["std_error"] = ratio * co["std_error"]
    co["estimate"] = ratio
    co["conf_low"], co["conf_high"] = np.exp(co["conf_low"]), np.exp(co["conf_high"])
    return co


# --------------------------------------------------------------------------- validation
def _check(fits, names, se, labels, digits, variance, fit_digits, exponentiate=False):
    if len(fits) == 1 and isinstance(fits[0], (list, tuple)):
        fits = tuple(fits[0])
    if not fits:
        raise TableError("mlm.table() needs at least one fitted model: mlm.table(fit0, fit1, ...).")
    for k, f in enumerate(fits):
        require_fit(f, f"Argument {k + 1} of mlm.table()", TableError, glmm=True)
    if names is None:
        names = [f"Model {k + 1}" for k in range(len(fits))]
    elif isinstance(names, str) or not hasattr(names, "__len__"):
        raise TableError(f"names must be a list of {len(fits)} labels, one per model, not "
                         f"{type(names).__name__} {names!r}.")
    names = [str(n) for n in names]
    if len(names) != len(fits):
        raise TableError(f"names has {len(names)} label(s) for {len(fits)} model(s): give one "
                         f"label per model, e.g. names={[f'Model {k + 1}' for k in range(len(fits))]!r}.")
    if len(set(names)) != len(names):
        raise TableError(f"names must be distinct (they head the columns); got {names!r}.")
    if not isinstance(exponentiate, (bool, np.bool_)):
        raise TableError(f"exponentiate must be True (odds or rate ratios for glmer fits with a "
                         f"logit or log link) or False, not {exponentiate!r}.")
    if se not in SE_CHOICES:
        raise TableError(f"se must be 'parentheses', 'ci' or None, not {se!r}.")
    if variance not in VARIANCE_CHOICES:
        raise TableError(f"variance must be 'var' (variances and covariances) or 'sd' (standard "
                         f"deviations and correlations), not {variance!r}.")
    for what, d in (("digits", digits), ("fit_digits", fit_digits)):
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or not 0 <= d <= 12:
            raise TableError(f"{what} must be a whole number of decimals from 0 to 12, not {d!r}.")
    labels = {} if labels is None else labels
    if not isinstance(labels, dict):
        raise TableError("labels must be a dict from a term, random-effect or grouping-factor "
                         f"name to its label, e.g. {{'ses': 'SES'}}; got {type(labels).__name__}.")
    known = _known_names(fits)
    unknown = [k for k in labels if k not in known]
    if unknown:
        raise TableError(f"labels has name(s) that are in none of the models: {unknown!r}. Known "
                         f"names: {sorted(known)!r}.")
    return tuple(fits), names, {str(k): str(v) for k, v in labels.items()}


def _known_names(fits) -> set:
    known = set()
    for f in fits:
        for term in f.design.fixed_names:
            known.add(term)
            known.update(term.split(":"))
        for b in f.design.blocks:
            known.add(b.group_name)
            known.update(b.columns)
        known.update(f.ngroups)
    return known


def _label(name: str, labels: dict) -> str:
    """A term's label: its own, or for an interaction its parts' labels joined by ' × '."""
    if name in labels:
        return labels[name]
    parts = name.split(":")
    if len(parts) > 1 and any(p in labels for p in parts):
        return " × ".join(labels.get(p, p) for p in parts)
    return name


def _union(seqs):
    """Items of several sequences, once each, in the order they first appear."""
    out = []
    for seq in seqs:
        for item in seq:
            if item not in out:
                out.append(item)
    return out


# --------------------------------------------------------------------------- rows
def _fixed_rows(fits, se, stars, labels, digits, exponentiate=False):
    coefs = [_coefficients(f, exponentiate) for f in fits]
    rows = []
    for term in _union(c.index for c in coefs):
        label = _label(term, labels)
        est, cells, marks, below, below_vals = [], [], [], [], []
        for c in coefs:
            if term not in c.index:
                for lst, v in ((est, None), (cells, ""), (marks, ""), (below, ""), (below_vals, None)):
                    lst.append(v)
                continue
            r = c.loc[term]
            est.append(float(r["estimate"]))
            cells.append(_fmt(r["estimate"], digits))
            marks.append(_stars(r["p_value"]) if stars else "")
            if se == "ci":
                below_vals.append((float(r["conf_low"]), float(r["conf_high"])))
                below.append(f"[{_fmt(r['conf_low'], digits)}, {_fmt(r['conf_high'], digits)}]")
            else:
                below_vals.append(float(r["std_error"]))
                below.append(f"({_fmt(r['std_error'], digits)})")
        rows.append(_Row("Fixed effects", label, label, cells, est, "estimate", marks))
        if se == "ci":
            rows.append(_Row("Fixed effects", f"{label} [95% CI]", "", below, below_vals, "ci"))
        elif se == "parentheses":
            rows.append(_Row("Fixed effects", f"{label} (SE)", "", below, below_vals, "se"))
    return rows


def _random_label(key, variance, labels):
    grp, v1, v2 = key
    if grp == "Residual":
        return ("Var" if variance == "var" else "SD") + ": Residual"
    g = _label(grp, labels)
    if v2 is None:
        return f"{'Var' if variance == 'var' else 'SD'}: {g} {_label(v1, labels)}"
    return f"{'Cov' if variance == 'var' else 'Corr'}: {g} {_label(v1, labels)}, {_label(v2, labels)}"


def _random_rows(fits, variance, labels, digits):
    col = "vcov" if variance == "var" else "sdcor"
    tables = []
    for f in fits:
        vc = f.varcorr
        tables.append({(r.grp, None if pd.isna(r.var1) else r.var1, None if pd.isna(r.var2) else r.var2):
                       float(getattr(r, col)) for r in vc.itertuples()})
    keys = _union(tables)
    # the residual last, as lme4 prints it
    keys = [k for k in keys if k[0] != "Residual"] + [k for k in keys if k[0] == "Residual"]
    rows = []
    for key in keys:
        vals = [t.get(key) for t in tables]
        label = _random_label(key, variance, labels)
        rows.append(_Row("Random effects", label, label, [_fmt(v, digits) for v in vals], vals,
                         "variance" if key[2] is None else "covariance"))
    return rows


def _icc_rows(fits, labels, digits):
    from mlm.toolkit.variance import icc

    from mlm.toolkit.glmm_variance import latent_icc

    per_fit = []
    for f in fits:
        slopes = any(c != "(Intercept)" for b in f.design.blocks for c in b.columns)
        if slopes:
            per_fit.append({})
        elif _is_glmm(f):
            per_fit.append(latent_icc(f))   # latent scale; none for counts
        else:
            per_fit.append(icc(f)["icc"].to_dict())
    rows = []
    for g in _union(per_fit):
        vals = [d.get(g) for d in per_fit]
        label = f"ICC: {_label(g, labels)}"
        rows.append(_Row("Random effects", label, label, [_fmt(v, digits) for v in vals], vals, "icc"))
    return rows


def _unit_rows(fits, labels):
    rows = [_Row("Units", "Observations", "Observations", [f"{f.nobs:,}" for f in fits],
                 [f.nobs for f in fits], "count")]
    for g in _union(f.ngroups for f in fits):
        vals = [f.ngroups.get(g) for f in fits]
        label = f"Groups: {_label(g, labels)}"
        rows.append(_Row("Units", label, label, ["" if v is None else f"{v:,}" for v in vals], vals,
                         "count"))
    return rows


def _fit_rows(fits, fit_digits):
    rows = []
    for label, attr in (("Deviance", "deviance"), ("AIC", "aic"), ("BIC", "bic")):
        vals = [float(getattr(f, attr)) for f in fits]
        rows.append(_Row("Model fit", label, label, [_fmt(v, fit_digits) for v in vals], vals, "fit"))
    est = [_estimation(f) for f in fits]
    if any(_is_glmm(f) for f in fits):
        fam = [f"{f.family.name} ({f.family.link})" if _is_glmm(f) else "gaussian (identity)"
               for f in fits]
        rows.append(_Row("Model fit", "Family", "Family", fam, fam, "text"))
    rows.append(_Row("Model fit", "Estimation", "Estimation", est, est, "text"))
    dfm = [_df_method(f) for f in fits]
    rows.append(_Row("Model fit", "df method", "df method", dfm, dfm, "text"))
    return rows


def _estimation(fit) -> str:
    if not _is_glmm(fit):
        return "REML" if fit.reml else "ML"
    return f"ML (AGQ, {fit.nagq} nodes)" if fit.nagq > 1 else "ML (Laplace)"


def _glmm_notes(fits, exponentiate):
    glmms = [f for f in fits if _is_glmm(f)]
    if not glmms:
        return []
    ratios = sorted({_ratio_name(f) for f in glmms if _ratio_name(f)})
    if exponentiate and ratios:
        notes = [f"glmer fits with a logit or log link: {' and '.join(r + 's' for r in ratios)}, "
                 "exp(coefficient);",
                 "SEs exp(b) x SE (delta method), intervals exp of the Wald ends, p as for b."]
        if any(not _ratio_name(f) for f in glmms):
            notes.append("Probit and cloglog fits stay on their link scale.")
    else:
        notes = ["glmer fits: coefficients on the link scale (log-odds for logit, log for counts)."]
        if exponentiate:
            notes.append("Probit and cloglog fits stay on their link scale.")
    notes.append("ICC of glmer fits on the latent scale (residual pi^2/3 logit, 1 probit, "
                 "pi^2/6 cloglog; as performance); none for counts.")
    notes.append("Deviance of glmer fits: -2 logLik (lme4's summary); lme4's deviance() of a "
                 "glmer fit is instead the sum of squared deviance residuals.")
    return notes


def _notes(fits, se, stars, variance, exponentiate=False):
    """Short notes (one line each, so that a LaTeX table is not widened by them)."""
    notes = []
    if se == "parentheses":
        notes.append("Standard errors in parentheses.")
    elif se == "ci":
        notes.append("95% confidence intervals in brackets.")
    if stars:
        notes.append("* p < 0.05, ** p < 0.01, *** p < 0.001 (df method as shown).")
    notes.append("Random effects: variances (Var) and covariances (Cov)." if variance == "var" else
                 "Random effects: standard deviations (SD) and correlations (Corr).")
    notes.append("ICC for random-intercept models only (with random slopes it depends on x).")
    notes.extend(_glmm_notes(fits, exponentiate))
    if any(getattr(f, "reml", False) for f in fits):
        notes.append("Deviance: -2 log-likelihood (the REML criterion for REML fits).")
        notes.append("Compare fixed effects by ML fits (mlm.compare), not by REML AIC/BIC.")
    else:
        notes.append("Deviance: -2 log-likelihood.")
    return notes


# --------------------------------------------------------------------------- renderers
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
          "|": r"\textbar{}", "<": r"\textless{}", ">": r"\textgreater{}", "×": r"$\times$"}


def latex_escape(text: str) -> str:
    r"""Text made safe for LaTeX: ``& % $ # _ { } ~ ^ \ | < >`` and ``×`` are escaped.

    >>> from mlm.report.table import latex_escape
    >>> print(latex_escape("cwc(ses, school) & sector_1: 10% ^ #"))
    cwc(ses, school) \& sector\_1: 10\% \textasciicircum{} \#
    """
    return "".join(_LATEX.get(ch, ch) for ch in str(text))


def _md_escape(text: str) -> str:
    out = str(text)
    for ch in ("\\", "|", "*", "_", "`"):
        out = out.replace(ch, "\\" + ch)
    return out


def _render_text(t) -> str:
    import textwrap

    n = len(t.names)
    cells = [[c + m for c, m in zip(r.cells, r.marks)] for r in t.rows]
    # within a block (coefficients and variances; counts; fit statistics) numbers line up
    # on their decimal point; each block, and each text cell, is then centred
    block = {"count": "count", "fit": "fit", "text": None}
    kinds = [block.get(r.kind, "coef") for r in t.rows]
    for kind in ("coef", "count", "fit"):
        for j in range(n):
            parts = [c[j].partition(".") for c, k in zip(cells, kinds) if k == kind]
            left = max([len(a) for a, _, _ in parts] + [0])
            right = max([len(b + x) for _, b, x in parts] + [0])
            for c, k in zip(cells, kinds):
                if k == kind:
                    a, b, x = c[j].partition(".")
                    c[j] = a.rjust(left) + (b + x).ljust(right)
    lw = max([len(r.label) for r in t.rows] + [len(s) for s in SECTIONS])
    cw = [max([len(t.names[j])] + [len(c[j]) for c in cells]) for j in range(n)]
    width = lw + sum(w + 2 for w in cw)
    lines = [" " * lw + "".join("  " + t.names[j].center(cw[j]) for j in range(n)), "=" * width]
    section = None
    for r, c in zip(t.rows, cells):
        if r.section != section:
            if section is not None:
                lines.append("-" * width)
            lines.append(r.section)
            section = r.section
        lines.append(r.label.ljust(lw) + "".join("  " + c[j].center(cw[j]) for j in range(n)))
    lines.append("=" * width)
    for note in t.notes:
        lines.extend(textwrap.wrap(note, width=80))
    return "\n".join(line.rstrip() for line in lines)


def _render_markdown(t) -> str:
    n = len(t.names)
    out = ["| | " + " | ".join(_md_escape(x) for x in t.names) + " |",
           "|:--|" + ":-:|" * n]
    section = None
    for r in t.rows:
        if r.section != section:
            out.append(f"| *{r.section}* |" + " |" * n)
            section = r.section
        cells = [_md_escape(c + m) for c, m in zip(r.cells, r.marks)]
        out.append(f"| {_md_escape(r.label)} | " + " | ".join(cells) + " |")
    out.append("")
    out.append(_md_escape("Notes: " + " ".join(t.notes)))
    return "\n".join(out)


def _latex_cell(r, j) -> str:
    cell = latex_escape(r.cells[j])
    if r.kind != "text":
        cell = cell.replace("-", "$-$")
    if r.marks[j]:
        cell += f"$^{{{r.marks[j]}}}$"
    return cell


def _render_latex(t, notes: bool) -> str:
    n = len(t.names)
    out = [r"\begin{tabular}{l" + "c" * n + "}", r"\hline",
           " & " + " & ".join(latex_escape(x) for x in t.names) + r" \\", r"\hline"]
    section = None
    for r in t.rows:
        if r.section != section:
            if section is not None:
                out.append(r"\hline")
            out.append(rf"\multicolumn{{{n + 1}}}{{l}}{{\textit{{{r.section}}}}} \\")
            section = r.section
        out.append(latex_escape(r.label) + " & " + " & ".join(_latex_cell(r, j) for j in range(n))
                   + r" \\")
    out.append(r"\hline")
    if notes:
        out.extend(rf"\multicolumn{{{n + 1}}}{{l}}{{\footnotesize {latex_escape(x)}}} \\"
                   for x in t.notes)
    out.append(r"\end{tabular}")
    return "\n".join(out)


def _render_html(t) -> str:
    esc = html.escape
    n = len(t.names)
    rule = "border-top: 1px solid currentColor"
    out = ['<table class="mlm-table" style="border-collapse: collapse">',
           f'<thead><tr style="{rule}; border-bottom: 1px solid currentColor"><th></th>'
           + "".join(f'<th style="text-align: center">{esc(x)}</th>' for x in t.names)
           + "</tr></thead>", "<tbody>"]
    section = None
    for r in t.rows:
        if r.section != section:
            style = f' style="{rule}"' if section is not None else ""
            out.append(f'<tr{style}><td colspan="{n + 1}" style="text-align: left">'
                       f"<em>{esc(r.section)}</em></td></tr>")
            section = r.section
        tds = "".join(f'<td style="text-align: center">{esc(c)}'
                      + (f"<sup>{esc(m)}</sup>" if m else "") + "</td>"
                      for c, m in zip(r.cells, r.marks))
        out.append(f'<tr><td style="text-align: left">{esc(r.label)}</td>{tds}</tr>')
    out.append("</tbody>")
    out.append(f'<tfoot><tr style="{rule}"><td colspan="{n + 1}" style="text-align: left">'
               + "<br>".join(f"<small>{esc(x)}</small>" for x in t.notes) + "</td></tr></tfoot>")
    out.append("</table>")
    return "\n".join(out)


def _docx_rules(grid, docx):
    """Journal rules: a line above and below the table and under the heading, none inside."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def border(parent, side):
        el = OxmlElement(f"w:{side}")
        for k, v in (("w:val", "single"), ("w:sz", "6"), ("w:space", "0"), ("w:color", "000000")):
            el.set(qn(k), v)
        parent.append(el)

    tbl_pr = grid._tbl.tblPr
    borders = OxmlElement("w:tblBorders")
    border(borders, "top")
    border(borders, "bottom")
    # OOXML fixes the order of tblPr's children: Word rejects a tblBorders after tblLook
    tbl_pr.insert_element_before(borders, "w:shd", "w:tblLayout", "w:tblCellMar", "w:tblLook",
                                 "w:tblCaption", "w:tblDescription", "w:tblPrChange")
    for cell in grid.rows[0].cells:
        tc_borders = OxmlElement("w:tcBorders")
        border(tc_borders, "bottom")
        cell._tc.get_or_add_tcPr().insert_element_before(
            tc_borders, "w:shd", "w:noWrap", "w:tcMar", "w:textDirection", "w:tcFitText",
            "w:vAlign", "w:hideMark", "w:headers", "w:cellIns", "w:cellDel", "w:cellMerge",
            "w:tcPrChange")


def _render_docx(t, path):
    try:
        import docx
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.shared import Pt
    except ImportError:
        raise TableError('Writing Word files needs python-docx: pip install "mlm[docx]" '
                         '(or pip install python-docx).') from None
    doc = docx.Document()
    n = len(t.names)
    sections = _union([r.section] for r in t.rows)
    grid = doc.add_table(rows=1 + len(t.rows) + len(sections), cols=n + 1)
    head = grid.rows[0].cells
    for j, name in enumerate(t.names):
        head[j + 1].text = name
        head[j + 1].paragraphs[0].runs[0].bold = True
    i, section = 1, None
    for r in t.rows:
        if r.section != section:
            cell = grid.rows[i].cells[0].merge(grid.rows[i].cells[n])
            cell.text = r.section
            cell.paragraphs[0].runs[0].italic = True
            section, i = r.section, i + 1
        row = grid.rows[i].cells
        row[0].text = r.label
        for j in range(n):
            row[j + 1].text = r.cells[j] + r.marks[j]
        i += 1
    for row in grid.rows:
        for cell in row.cells[1:]:
            cell.paragraphs[0].alignment = WD_ALIGN_PARAGRAPH.CENTER
    _docx_rules(grid, docx)
    for note in t.notes:
        p = doc.add_paragraph()
        p.add_run(note).font.size = Pt(8)
    try:
        doc.save(str(path))
    except OSError as exc:
        raise TableError(f"Cannot write the Word file {str(path)!r}: {exc.strerror or exc}.") from None


# --------------------------------------------------------------------------- the table
class ModelTable:
    """Fitted models side by side, as in a journal; made by :func:`mlm.table`.

    ``str()`` is a plain-text table; in a notebook it shows as HTML. Export with
    :meth:`to_markdown`, :meth:`to_latex`, :meth:`to_html`, :meth:`to_docx` or
    :meth:`to_frame`.

    Attributes
    ----------
    fits : tuple of MixedResult
        The models, in column order.
    names : tuple of str
        The column headings.
    notes : tuple of str
        The notes printed under the table (what the parentheses, marks and rows mean).
    """

    def __init__(self, fits, names, rows, notes):
        self.fits = tuple(fits)
        self.names = tuple(names)
        self.rows = list(rows)
        self.notes = tuple(notes)

    def to_frame(self, numeric: bool = False) -> pd.DataFrame:
        """The table as a DataFrame indexed by ``(section, row)``, a column per model.

        Parameters
        ----------
        numeric : bool, default False
            False: the cells as shown (strings, '' where a model lacks the row; rows of
            standard errors are keyed ``"term (SE)"``, of intervals ``"term [95% CI]"``).
            True: the unrounded numbers (NaN where absent); an interval becomes two rows,
            ``"term [95% CI] low"`` and ``"... high"``; the text rows (estimation, df
            method) are left out.
        """
        index, data = [], []
        for r in self.rows:
            if not numeric:
                index.append((r.section, r.key))
                data.append([c + m for c, m in zip(r.cells, r.marks)])
            elif r.kind == "ci":
                for k, end in enumerate(("low", "high")):
                    index.append((r.section, f"{r.key} {end}"))
                    data.append([np.nan if v is None else v[k] for v in r.values])
            elif r.kind != "text":
                index.append((r.section, r.key))
                data.append([np.nan if v is None else float(v) for v in r.values])
        idx = pd.MultiIndex.from_tuples(index, names=["section", "row"])
        return pd.DataFrame(data, index=idx, columns=pd.Index(self.names, name="model"))

    def to_text(self) -> str:
        """A plain-text table (fits 80 columns for two or three models with standard errors)."""
        return _render_text(self)

    def to_markdown(self) -> str:
        """A Markdown (GitHub) pipe table followed by the notes."""
        return _render_markdown(self)

    def to_latex(self, notes: bool = True) -> str:
        r"""A LaTeX ``tabular`` (no packages needed); put it in a ``table`` float yourself.

        Term and model names are escaped (``_ % & # ^ |`` ...).

        Parameters
        ----------
        notes : bool, default True
            ``False`` leaves the notes out (to set them in the caption instead).

        Returns
        -------
        str
        """
        return _render_latex(self, notes)

    def to_html(self) -> str:
        """An HTML ``<table class="mlm-table">`` with the notes in its footer."""
        return _render_html(self)

    def to_docx(self, path):
        """Write the table to a Word file at ``path`` (needs ``pip install "mlm[docx]"``).

        Parameters
        ----------
        path : str or os.PathLike
            The ``.docx`` file to write.

        Returns
        -------
        str or os.PathLike
            ``path``, as given.
        """
        _render_docx(self, path)
        return path

    def _repr_html_(self) -> str:
        return self.to_html()

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return self.to_text()


def table(*fits, names=None, se="parentheses", stars=False, labels=None, digits=3,
          variance="var", fit_digits=1, exponentiate=False) -> ModelTable:
    """Fitted models side by side, as in a journal table.

    Fixed effects first (an estimate, with its standard error in parentheses or its
    95% interval in brackets below), then the random effects (variances and
    covariances, or standard deviations and correlations) with the ICC, the numbers of
    observations and of groups of each factor, and the deviance, AIC, BIC, the
    estimation method and the df method of the tests. Models with different terms are
    aligned by term (blank where a model lacks it), in the order the terms first appear.

    Parameters
    ----------
    *fits : MixedResult or GLMMResult
        One or more fits from :func:`mlm.lmer` or :func:`mlm.glmer`, alone or mixed (or
        a single list of them).
    names : list of str, optional
        Column headings, one per model, distinct; default ``"Model 1"``, ``"Model 2"``, ...
    se : {"parentheses", "ci", None}, default "parentheses"
        What goes below each estimate: its standard error, its 95% confidence interval
        (``fit.coefficients``' ``conf_low`` and ``conf_high``) or nothing.
    stars : bool, default False
        Mark estimates with p < 0.05 (``*``), 0.01 (``**``) and 0.001 (``***``), with
        the legend in the notes. The p-values are ``fit.coefficients["p_value"]``, by
        the df method shown in the table.
    labels : dict, optional
        Labels for fixed-effect terms, random-effect terms and grouping factors, e.g.
        ``{"ses": "SES", "school": "School"}``; an interaction is labelled by its parts
        (``"sector:ses"`` becomes ``"sector × SES"``) unless labelled itself. A name that
        is in none of the models raises :class:`TableError` (a typo would otherwise pass
        unnoticed).
    digits : int, default 3
        Decimals of the estimates, standard errors, intervals, variance components and ICC.
    variance : {"var", "sd"}, default "var"
        Random effects as variances and covariances (the variance components of
        Raudenbush & Bryk and of HLM) or as standard deviations and correlations.
    fit_digits : int, default 1
        Decimals of the deviance, AIC and BIC.
    exponentiate : bool, default False
        For glmer fits with a logit (log) link, show odds (rate) ratios: exp of the
        estimates and of the interval ends, with delta-method standard errors
        ``exp(b) * SE`` (as broom's and modelsummary's ``exponentiate``). Linear fits and
        probit or cloglog fits keep their coefficients; the notes say which is which.

    Returns
    -------
    ModelTable
        ``str()`` gives plain text; ``to_markdown()``, ``to_latex()``, ``to_html()``,
        ``to_docx(path)``, ``to_frame()``; HTML in a notebook.

    Raises
    ------
    TableError
        (an :class:`mlm.MLMError`) when an argument is not a fit, ``names`` has the wrong
        length or repeats a name, ``labels`` names something no model has, or ``se``,
        ``variance`` or ``digits`` is not one of the allowed values.

    Notes
    -----
    The ICC is given for random-intercept models (``mlm.icc(fit)["icc"]``, each factor's
    share of the variance); with random slopes it depends on the predictors and the cell
    is left blank. Under REML the deviance, AIC and BIC are those of the REML likelihood,
    as lme4 reports them.

    glmer fits: coefficients on the link scale by default; the ICC is the latent-scale
    one (residual variance pi^2/3 for logit, 1 for probit, pi^2/6 for cloglog, as
    performance's ``icc()``), blank for counts; the deviance is -2 log-likelihood, the
    "deviance" of lme4's summary (lme4's ``deviance()`` of a glmer fit is the sum of
    squared deviance residuals, a different number); a "Family" row is added.

    Examples
    --------
    >>> import mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> m0 = mlm.lmer("mathach ~ 1 + (1 | school)", hsb)
    >>> m1 = mlm.lmer("mathach ~ meanses + (1 | school)", hsb)
    >>> t = mlm.table(m0, m1, names=["Null", "Means"], labels={"meanses": "Mean SES"})
    >>> print(t)  # doctest: +NORMALIZE_WHITESPACE
                                  Null          Means
    =====================================================
    Fixed effects
    (Intercept)                 12.637         12.649
                                (0.244)        (0.149)
    Mean SES                                    5.864
                                               (0.361)
    -----------------------------------------------------
    Random effects
    Var: school (Intercept)      8.614          2.639
    Var: Residual               39.148         39.157
    ICC: school                  0.180          0.063
    -----------------------------------------------------
    Units
    Observations                 7,185          7,185
    Groups: school                 160            160
    -----------------------------------------------------
    Model fit
    Deviance                    47116.8        46961.3
    AIC                         47122.8        46969.3
    BIC                         47143.4        46996.8
    Estimation                    REML           REML
    df method                satterthwaite  satterthwaite
    =====================================================
    Standard errors in parentheses.
    ...
    >>> t.to_frame(numeric=True).loc[("Units", "Groups: school")].tolist()
    [160.0, 160.0]
    """
    fits, names, labels = _check(fits, names, se, labels, digits, variance, fit_digits, exponentiate)
    rows = (_fixed_rows(fits, se, stars, labels, digits, exponentiate)
            + _random_rows(fits, variance, labels, digits)
            + _icc_rows(fits, labels, digits)
            + _unit_rows(fits, labels)
            + _fit_rows(fits, fit_digits))
    return ModelTable(fits, names, rows, _notes(fits, se, stars, variance, exponentiate))


# --------------------------------------------------------------------------- compare's table
def _p_text(p) -> str:
    if p is None or not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


class ComparisonTable(pd.DataFrame):
    """The result of :func:`mlm.compare`: a DataFrame that prints like lme4's ``anova()``.

    The columns hold the unrounded numbers (``npar, aic, bic, loglik, deviance, chisq,
    df, p_value``); ``str()``, ``repr()`` and the notebook view show them formatted, with
    the models' formulas above and the refit note below. A subset or a computed frame
    (``table[["chisq", "p_value"]]``, ``table.round(2)``) is a plain DataFrame.

    Examples
    --------
    >>> import warnings, mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> m0 = mlm.lmer("mathach ~ ses + (1 | school)", hsb)
    >>> m1 = mlm.lmer("mathach ~ ses + meanses + (1 | school)", hsb)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     result = mlm.compare(m0, m1)
    >>> print(result)  # doctest: +NORMALIZE_WHITESPACE
    Models:
    model1: mathach ~ ses + (1 | school)
    model2: mathach ~ ses + meanses + (1 | school)
            npar      AIC      BIC    logLik  deviance  Chisq  Df  Pr(>Chisq)
    model1     4  46649.0  46676.5  -23320.5   46641.0
    model2     5  46573.8  46608.2  -23281.9   46563.8  77.20   1      <0.001
    REML fit(s) refitted with maximum likelihood before comparing, because the
    fixed parts differ, and REML likelihoods of models with different fixed effects
    cannot be compared.
    >>> float(result.loc["model2", "p_value"]) < 1e-17
    True
    """

    @property
    def _constructor(self):
        # subsets and results of computations are ordinary frames with pandas' printing
        return pd.DataFrame

    def _display(self) -> pd.DataFrame:
        """The cells as shown: lme4's column names, fixed decimals, blanks for the first row."""
        def col(name, fmt):
            return [fmt(v) for v in self[name]] if name in self.columns else [""] * len(self)
        one = lambda v: _fmt(v, 1)  # noqa: E731
        return pd.DataFrame({
            "npar": col("npar", lambda v: f"{int(v)}"),
            "AIC": col("aic", one), "BIC": col("bic", one), "logLik": col("loglik", one),
            "deviance": col("deviance", one),
            "Chisq": col("chisq", lambda v: _fmt(v, 2)),
            "Df": col("df", lambda v: "" if not np.isfinite(v) else f"{int(v)}"),
            "Pr(>Chisq)": col("p_value", _p_text)}, index=[str(i) for i in self.index])

    def _formulas(self) -> dict:
        return dict(self.attrs.get("formulas") or {})

    def to_text(self) -> str:
        """The formatted table with the models' formulas and the note, as ``str()``."""
        import textwrap

        shown = self._display()
        lines = []
        forms = self._formulas()
        if forms:
            lines.append("Models:")
            lines.extend(f"{k}: {v}" for k, v in forms.items())
        label_w = max([len(i) for i in shown.index] + [1])
        widths = {c: max([len(c)] + [len(v) for v in shown[c]]) for c in shown.columns}
        lines.append(" " * label_w + "".join("  " + c.rjust(widths[c]) for c in shown.columns))
        for name, row in shown.iterrows():
            lines.append((name.ljust(label_w) + "".join("  " + row[c].rjust(widths[c])
                                                        for c in shown.columns)).rstrip())
        note = self.attrs.get("note")
        if note:
            lines.extend(textwrap.wrap(str(note), width=80))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.to_text()

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        esc = html.escape
        forms = self._formulas()
        head = ("<p><b>Model comparison</b> (likelihood-ratio tests)</p><ul>"
                + "".join(f"<li>{esc(str(k))}: <code>{esc(str(v))}</code></li>" for k, v in forms.items())
                + "</ul>") if forms else ""
        note = self.attrs.get("note")
        return (head + self._display().to_html(classes="mlm-compare")
                + (f"<p><i>{esc(str(note))}</i></p>" if note else ""))
