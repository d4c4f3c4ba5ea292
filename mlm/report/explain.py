"""A fitted linear mixed model in words (issue 13, item 1).

:func:`explain` reads a :class:`mlm.MixedResult` as an applied textbook would
(Raudenbush & Bryk 2002, ch. 4; Snijders & Bosker 2012, ch. 4-5; Enders & Tofighi 2007
on centering): each fixed effect in the outcome's units with its test and interval,
reference categories named, group-mean centered predictors read as within-group effects
and group means as between-group ones (their difference is the contextual effect),
cross-level interactions with simple slopes, the variance components and ICC, the sample
sizes and the warnings that matter. No equations: every number comes from the fit or
from the toolkit functions that already compute it (:func:`mlm.icc`,
:func:`mlm.levels`, :func:`mlm.cross_level`, :func:`mlm.simple_slopes`,
:func:`mlm.inference.ddf.contrast_test`).
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from dataclasses import dataclass

import numpy as np

from mlm.errors import MLMError

__all__ = ["explain", "Explanation"]

#: Below this many groups variance components are poorly estimated (Maas & Hox 2005
#: find level-2 SEs too small with 10 groups; Snijders & Bosker 2012, sec. 12.2).
FEW_GROUPS = 10
WIDTH = 100
_CENTER = re.compile(r"^(cwc|gm)\((.+),\s*([^,()]+)\)$")


@dataclass(frozen=True)
class Explanation:
    """A fit in words: sections of paragraphs; ``str`` gives text, Jupyter HTML.

    Attributes
    ----------
    sections : tuple of (str, tuple of str)
        Section titles and their paragraphs, unwrapped.
    """

    sections: tuple

    def __str__(self) -> str:
        out = []
        for title, paras in self.sections:
            if title:
                out.append(f"{title}:")
            for p in paras:
                indent = "  " if title else ""
                out.extend(textwrap.wrap(p, WIDTH, initial_indent=indent + "- " if title else "",
                                         subsequent_indent=indent + ("  " if title else "")))
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = []
        for title, paras in self.sections:
            if title:
                parts.append(f"<p><b>{html.escape(title)}</b></p><ul>"
                             + "".join(f"<li>{html.escape(p)}</li>" for p in paras) + "</ul>")
            else:
                parts.extend(f"<p>{html.escape(p)}</p>" for p in paras)
        return "".join(parts)


# --------------------------------------------------------------------------- formatting
def _digits(fit) -> int:
    """Decimals for values in the outcome's units: 2 for an SD of 1-99, more for small SDs."""
    sd = float(np.std(fit.design.y, ddof=1)) if fit.nobs > 1 else 1.0
    if not np.isfinite(sd) or sd <= 0:
        return 2
    return int(min(4, max(2, 3 - math.ceil(math.log10(sd)))))


def _num(x: float, d: int) -> str:
    """x with d decimals; a small nonzero x that would print as 0 gets 2 significant digits."""
    if x != 0 and abs(x) < 0.5 * 10 ** -d:
        return f"{x:.2g}"
    s = f"{x:.{d}f}"
    return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s


def _p(p: float) -> str:
    """The p-value in words' company: 2 significant digits, 'p < 0.0001' below that."""
    if not np.isfinite(p):
        return "p not available"
    if p < 1e-4:
        return "p < 0.0001"
    return f"p = {p:.2g}" if p < 0.01 else f"p = {p:.3f}".rstrip("0").rstrip(".") if p < 1 else "p = 1"


def _test(row, d: int, level: int = 95) -> str:
    """'(95% CI a to b; t(df) = s, p = ...; significant at the 5% level)'."""
    df = float(row["df"])
    stat = (f"z = {row['statistic']:.2f}" if not np.isfinite(df)
            else f"t({df:.1f}) = {row['statistic']:.2f}")
    sig = "significant" if row["p_value"] < 0.05 else "not significant"
    return (f"({level}% CI {_num(row['conf_low'], d)} to {_num(row['conf_high'], d)}; {stat}, "
            f"{_p(row['p_value'])}, {sig})")


def _hl(x: float) -> str:
    return "higher" if x > 0 else "lower" if x < 0 else "no different"


def _groups(g: str) -> str:
    """'schools' for school, 'batches' for batch; 'school:lea groups' for a compound name."""
    if not re.fullmatch(r"[A-Za-z]+", g):
        return f"{g} groups"
    if g.endswith(("s", "x", "ch", "sh")):
        return g + "es"
    if g.endswith("y") and g[-2:-1] not in "aeiou":
        return g[:-1] + "ies"
    return g + "s"


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _binary(fit, name) -> bool:
    """A numeric column holding only 0 and 1 (read as 'sector = 1 rather than 0')."""
    j = list(fit.design.fixed_names).index(name)
    return set(np.unique(fit.design.X[:, j])) <= {0.0, 1.0}


# --------------------------------------------------------------------------- the columns
@dataclass
class _Column:
    """What one fixed-effect column is: its parts (variables, dummies, centering)."""

    name: str
    parts: list          # one dict per factor of the column's term
    level: str           # "1" or the grouping factor it is constant within


def _columns(fit, levels_table):
    """Describe each fixed-effect column from patsy's design info (factor types, contrasts)."""
    d = fit.design
    info = d.x_info
    out = {}
    for term in info.terms:
        sl = info.term_slices[term]
        codings = info.term_codings[term]
        sub = codings[0] if codings else None
        for j in range(sl.start, sl.stop):
            name = d.fixed_names[d.x_order.index(j)]
            if name == "(Intercept)":
                continue
            parts = []
            # position of this column among the term's columns, split per factor (patsy
            # varies the first factor fastest)
            k = j - sl.start
            for fa in term.factors:
                fi = info.factor_infos[fa]
                label = fa.name()
                if fi.type == "categorical" and sub is not None and fa in sub.contrast_matrices:
                    cm = sub.contrast_matrices[fa]
                    ncol = cm.matrix.shape[1]
                    col, k = k % ncol, k // ncol
                    ref = [c for c, row in zip(fi.categories, cm.matrix) if not np.any(row)]
                    level_of = [c for c, row in zip(fi.categories, cm.matrix)
                                if row[col] == 1 and np.sum(np.abs(row)) == 1]
                    var = re.sub(r"^C\((.+?)(,.*)?\)$", r"\1", label)
                    parts.append({"kind": "dummy", "var": var,
                                  "category": str(level_of[0]) if len(level_of) == 1 else None,
                                  "reference": str(ref[0]) if len(ref) == 1 else None})
                else:
                    m = _CENTER.match(label)
                    if m:
                        parts.append({"kind": m.group(1), "var": m.group(2).strip(),
                                      "group": m.group(3).strip(), "label": label})
                    else:
                        parts.append({"kind": "numeric", "var": label, "label": label})
            lev = str(levels_table.loc[name, "level"]) if name in levels_table.index else "1"
            out[name] = _Column(name, parts, lev)
    return out


def _phrase_zero(part) -> str:
    """What 'this predictor at 0' means, for the intercept and conditional effects."""
    if part["kind"] == "dummy":
        ref = part["reference"] or "its reference category"
        return f"{part['var']} = {ref}"
    if part["kind"] == "cwc":
        return f"{part['var']} is at its {part['group']}'s mean"
    if part["kind"] == "gm":
        return f"the {part['group']}'s mean {part['var']} is 0"
    return f"{part['label']} = 0"


# --------------------------------------------------------------------------- sections
def _sample(fit):
    sizes = []
    seen = set()
    for b in fit.design.blocks:
        if b.group_name in seen:
            continue
        seen.add(b.group_name)
        n = np.bincount(b.codes, minlength=b.n_levels)
        each = f"{n.min()}" if n.min() == n.max() else f"{n.min()} to {n.max()}"
        sizes.append(f"{b.n_levels} {_groups(b.group_name)} ({each} per {b.group_name})")
    y = fit.design.formula.response
    from mlm.inference.ddf import DDF_METHODS
    how = ("Wald z-tests" if fit.ddf == "normal" else "t-tests with residual df"
           if fit.ddf == "residual" else f"t-tests ({DDF_METHODS[fit.ddf].replace(' method', ' df')})")
    dropped = f" ({fit.nobs_dropped} row(s) with missing values left out)" if fit.nobs_dropped else ""
    return [f"A linear mixed model of {y} ({'REML' if fit.reml else 'ML'}) on {fit.nobs} "
            f"observations{dropped} in " + " and ".join(sizes) + ". "
            f"Effects are expected differences in {y}, controlling for the other predictors, "
            f"with 95% confidence intervals (CI) and {how}; significant: p < 0.05."]


def _intercept(fit, cols, co, d, y):
    if "(Intercept)" not in co.index:
        return []
    row = co.loc["(Intercept)"]
    zeros = []
    for c in cols.values():
        if len(c.parts) == 1:
            z = _phrase_zero(c.parts[0])
            if z not in zeros:
                zeros.append(z)
    cond = " when " + ", ".join(zeros) if zeros else ""
    return [f"Intercept: the expected {y} is {_num(row['estimate'], d)}{cond} "
            f"{_test(row, d)}."]


def _main_effect(fit, c, row, d, y, between, moderated_by):
    """One predictor's effect (a column of one part)."""
    part = c.parts[0]
    b = float(row["estimate"])
    size = f"{_num(abs(b), d)} {_hl(b)}"
    if part["kind"] == "dummy":
        ref = part["reference"] or "the reference category"
        text = (f"{c.name}: {y} is {size} for {part['var']} = {part['category']} than for "
                f"{part['var']} = {ref} (the reference category)")
    elif part["kind"] == "cwc":
        text = (f"{c.name}, the within-{part['group']} effect of {part['var']}: within the same "
                f"{part['group']}, {y} is {size} for each 1 unit of {part['var']} above the "
                f"{part['group']}'s mean")
    elif part["kind"] == "gm":
        text = (f"{c.name}, the between-{part['group']} effect of {part['var']}: "
                f"{_groups(part['group'])} whose mean {part['var']} is 1 unit higher have {y} {size}")
    elif _binary(fit, c.name):
        who = f"{_groups(c.level)} " if c.level != "1" else ""
        text = f"{c.name}: {who}with {c.name} = 1 rather than 0 have {y} {size}"
        text = text.replace(f"{c.name}: with", f"{c.name}: observations with")
    elif c.level != "1":
        text = (f"{c.name} ({c.level}-level): {_groups(c.level)} whose {c.name} is 1 unit higher "
                f"have {y} {size}")
    else:
        text = f"{c.name}: {y} is {size} for each 1 unit higher {c.name}"
        g = between.get("_group")
        if g and between.get(c.name, 1.0) <= 1e-10:
            text += f" (a within-{g} effect: {c.name} varies only within {_groups(g)})"
    if moderated_by:
        text += " when " + " and ".join(moderated_by)
    return f"{text} {_test(row, d)}."


def _interaction(fit, c, row, d, y, cross, cols):
    from mlm.toolkit.interactions import simple_slopes
    b = float(row["estimate"])
    names = [p.get("label") or (f"{p['var']}{p['category']}" if p["kind"] == "dummy" else p["var"])
             for p in c.parts]
    hit = cross[cross["term"] == c.name]
    if len(hit) and ":" not in hit.iloc[0]["level1"] and ":" not in hit.iloc[0]["level2"]:
        focal, mod, g = hit.iloc[0]["level1"], hit.iloc[0]["level2"], hit.iloc[0]["factor"]
        kind = "cross-level"
    elif len(names) == 2:
        focal, mod, g, kind = names[0], names[1], None, "interaction"
        if _is_binary_part(fit, c.parts[0], focal) and not _is_binary_part(fit, c.parts[1], mod):
            focal, mod = mod, focal     # read a dummy as the moderator of a numeric predictor
    else:
        return (f"{c.name} (interaction of {', '.join(names)}): {b:+.{d}f} "
                f"{_test(row, d)}; read it through predictions at chosen values.")
    fpart = dict(zip(names, c.parts)).get(focal, {"kind": "numeric", "var": focal})
    effect, noun, label = _effect_words(fit, fpart, focal)
    if focal not in fit.fixef.index:
        return f"{c.name} ({kind}): {_num(b, d)} {_test(row, d)}."
    g10 = float(fit.fixef[focal])
    where = f"in {_groups(g)} " if g else ""
    direction = "stronger" if b * g10 > 0 else "weaker" if b != 0 else "unchanged"
    mpart = dict(zip(names, c.parts)).get(mod, {"kind": "numeric", "var": mod})
    one, zero = _binary_words(fit, mpart, mod)
    if one is not None:
        than, per = f"with {one} than with {zero}", f"with {one}"
    else:
        than, per = f"with higher {mod}", f"per unit of {mod}"
    text = (f"{c.name} ({kind}): {effect} is {direction} {where}{than}, "
            f"its {noun} {_num(abs(b), d)} {_hl(b)} {per} {_test(row, d)}.")
    try:
        ss = simple_slopes(fit, focal, mod)
    except MLMError:
        return text
    at = ss.index.to_numpy()
    if len(at) == 2 and one is not None and list(at) == [0.0, 1.0]:
        labels = [zero, one]
    elif len(at) == 2:
        labels = [f"{mod} = {_num(v, 0 if v == int(v) else d)}" for v in at]
    else:
        labels = [f"{_num(v, d)} (mean{w})" for v, w in zip(at, (" - 1 SD", "", " + 1 SD"))]
        labels[0] = f"{mod} = " + labels[0]
    ps = [_p(p) for p in ss["p_value"]]
    same = len(set(ps)) == 1
    slopes = ", ".join(f"{_num(s, d)} at {lab}" + ("" if same else f" ({p})")
                       for lab, s, p in zip(labels, ss["slope"], ps))
    same_factor = {n for n, col in cols.items() if len(col.parts) == 1 and mpart["kind"] == "dummy"
                   and col.parts[0]["kind"] == "dummy" and col.parts[0]["var"] == mpart["var"]}
    held = [n for n in _partners(fit, focal) if n not in (mod, c.name) and n not in same_factor]
    zero_of = {n: _phrase_zero(col.parts[0]) for n, col in cols.items() if len(col.parts) == 1}
    held_txt = f" (with {' and '.join(zero_of.get(h, h + ' = 0') for h in held)})" if held else ""
    if (ss["slope"].min() < 0) != (ss["slope"].max() < 0):
        text += f" {_cap(effect)} changes sign over this range."
    return text + f" {label}{held_txt}: {slopes}" + (f", {ps[0]} for each." if same else ".")


def _effect_words(fit, part, name):
    """What the focal term's 'slope' is: (phrase, noun, label of the simple slopes)."""
    if part["kind"] in ("cwc", "gm"):
        side = "within" if part["kind"] == "cwc" else "between"
        return f"the {side}-{part['group']} effect of {part['var']}", "slope", f"Slopes of {name}"
    one, zero = _binary_words(fit, part, name)
    if one is not None:
        diff = f"{one} minus {zero.split(' = ')[-1]}"
        return f"the difference {diff}", "difference", f"Differences {diff}"
    return f"the effect of {name}", "slope", f"Slopes of {name}"


def _is_binary_part(fit, part, name) -> bool:
    return part["kind"] == "dummy" or (name in fit.fixef.index and _binary(fit, name))


def _binary_words(fit, part, name):
    """('sex = M', 'sex = F') for a dummy, ('sector = 1', 'sector = 0') for a 0/1 column."""
    if part["kind"] == "dummy" and part.get("category") and part.get("reference"):
        return f"{part['var']} = {part['category']}", f"{part['var']} = {part['reference']}"
    if name in fit.fixef.index and _binary(fit, name):
        return f"{name} = 1", f"{name} = 0"
    return None, None


def _partners(fit, focal):
    """The other variables interacting with ``focal`` (held at 0 by simple_slopes)."""
    from mlm.toolkit.interactions import _split_name
    out = []
    for n in fit.fixef.index:
        parts = _split_name(n)
        if len(parts) == 2 and focal in parts:
            other = parts[1] if parts[0] == focal else parts[0]
            if other not in out:
                out.append(other)
    return out


def _fixed(fit, cols, levels_table, cross, d, y):
    co = fit.coefficients
    lines = _intercept(fit, cols, co, d, y)
    # main effects that are also in interactions are conditional on the partners at 0
    partners = {}
    for c in cols.values():
        if len(c.parts) > 1:
            labels = [p.get("label") or f"{p['var']}{p.get('category') or ''}" for p in c.parts]
            for i, lab in enumerate(labels):
                for p_other in (c.parts[:i] + c.parts[i + 1:]):
                    z = _phrase_zero(p_other)
                    partners.setdefault(lab, [])
                    if z not in partners[lab]:
                        partners[lab].append(z)
    within = {}
    gcols = [c for c in levels_table.columns if c.startswith("between_")]
    if len(gcols) == 1:
        within = {n: float(v) for n, v in levels_table[gcols[0]].items()}
        within["_group"] = gcols[0][len("between_"):]
    for name, c in cols.items():
        row = co.loc[name]
        if len(c.parts) == 1:
            key = c.parts[0].get("label") or f"{c.parts[0]['var']}{c.parts[0].get('category') or ''}"
            lines.append(_main_effect(fit, c, row, d, y, within, partners.get(key, [])))
        else:
            lines.append(_interaction(fit, c, row, d, y, cross, cols))
    lines.extend(_contextual(fit, cols, d, y))
    return lines


def _contextual(fit, cols, d, y):
    """cwc(x, g) and gm(x, g) together: contextual effect = between - within (field notes)."""
    from mlm.inference.ddf import contrast_test
    out = []
    names = list(fit.fixef.index)
    singles = {(c.parts[0]["kind"], c.parts[0]["var"], c.parts[0].get("group")): n
               for n, c in cols.items() if len(c.parts) == 1}
    for (kind, var, g), w in singles.items():
        if kind != "cwc" or ("gm", var, g) not in singles:
            continue
        b = singles[("gm", var, g)]
        L = np.zeros(len(names))
        L[names.index(b)], L[names.index(w)] = 1.0, -1.0
        t = contrast_test(fit, L)
        est = float(t.estimate[0])
        se = math.sqrt(float(t.vcov[0, 0]))
        from scipy import stats
        crit = stats.norm.ppf(0.975) if not np.isfinite(t.den_df) else stats.t.ppf(0.975, t.den_df)
        row = {"estimate": est, "df": t.den_df, "statistic": t.statistic, "p_value": t.p_value,
               "conf_low": est - crit * se, "conf_high": est + crit * se}
        out.append(f"Contextual effect of {var} (between minus within): of two observations with "
                   f"the same {var}, the one in a {g} whose mean {var} is 1 unit higher has "
                   f"{y} {_num(abs(est), d)} {_hl(est)} {_test(row, d)}.")
    return out


def _var(v: float, d: int) -> str:
    return _num(v, d) if v >= 10 ** -d else f"{v:.2g}"


def _random(fit, d, y, cross):
    from mlm.toolkit.variance import icc
    lines = []
    vc = fit.varcorr
    sigma = fit.sigma
    tab = icc(fit)
    for label in dict.fromkeys(vc["grp"]):
        if label == "Residual":
            continue
        part = vc[vc["grp"] == label]
        # lme4 labels a second term of the same factor 'Subject.1' (x || Subject)
        g = label if label in fit.ngroups else re.sub(r"\.\d+$", "", label)
        corr = {(r["var1"], r["var2"]): float(r["sdcor"]) for _, r in part[part["var2"].notna()].iterrows()}
        for _, r in part[part["var2"].isna()].iterrows():
            sd = float(r["sdcor"])
            if r["var1"] == "(Intercept)":
                share = float(tab.loc[g, "icc"]) if g in tab.index else float("nan")
                lines.append(f"{_cap(_groups(g))} differ in their average {y}: standard deviation "
                             f"{_num(sd, d)} between them (variance {_var(sd ** 2, d)}) against "
                             f"{_num(sigma, d)} within them (variance {_var(sigma ** 2, d)}). ICC: "
                             f"{100 * share:.1f}% of the variation in {y}"
                             + (" not explained by the predictors" if len(fit.fixef) > 1 else "")
                             + f" lies between {_groups(g)}.")
                continue
            x = str(r["var1"])
            fixed = float(fit.fixef[x]) if x in fit.fixef.index else 0.0
            lo, hi = fixed - 1.96 * sd, fixed + 1.96 * sd
            mods = cross[(cross["level1"] == x) & (cross["factor"] == g)]["level2"].tolist() \
                if len(cross) else []
            among = f"among {_groups(g)} with {' and '.join(m + ' = 0' for m in mods)}, " if mods else ""
            text = (f"The effect of {x} varies between {_groups(g)}"
                    + (f" beyond what {' and '.join(mods)} explain{'s' if len(mods) == 1 else ''}"
                       if mods else "")
                    + f": standard deviation {_num(sd, d)} (variance {_var(sd ** 2, d)}), so "
                    f"{among}the middle 95% of slopes lie between {_num(lo, d)} and {_num(hi, d)} "
                    f"(the fixed slope {_num(fixed, d)} +- 1.96 SD).")
            rho = corr.get(("(Intercept)", x))
            if rho is not None and np.isfinite(rho):
                text += (f" {_cap(_groups(g))} with higher average {y} tend to have {_hl(rho)} "
                         f"{x} slopes (correlation {rho:.2f}).").replace(" no different ", " unrelated ")
            lines.append(text)
        for (a, b), rho in corr.items():
            if a != "(Intercept)" and np.isfinite(rho):
                lines.append(f"{_cap(_groups(g))} with higher {a} slopes tend to have {_hl(rho)} {b} "
                             f"slopes (correlation {rho:.2f}).")
    return lines


def _warnings(fit):
    out = []
    seen = set()
    for b in fit.design.blocks:
        if b.group_name in seen:
            continue
        seen.add(b.group_name)
        if b.n_levels < FEW_GROUPS:
            out.append(f"Few groups: only {b.n_levels} {b.group_name} groups. The variance between "
                       f"them is estimated imprecisely and the tests of {b.group_name}-level "
                       f"predictors rest on few degrees of freedom; with fewer than about "
                       f"{FEW_GROUPS} groups, consider {b.group_name} as a fixed factor instead.")
    if fit.singular:
        out.append("Singular fit: a variance is estimated as zero or a correlation as +-1. The data "
                   "cannot tell that part of the random effects apart from nothing; read those "
                   "components as 'not detectably different from zero' and consider a simpler "
                   "random part. The fixed effects can still be used.")
    if not fit.converged:
        out.append("Not converged: the optimizer stopped before the best estimates, so every "
                   "number above is uncertain. Rescale predictors with very different ranges or "
                   "simplify the random part, and refit.")
    return out


def explain(fit) -> Explanation:
    """A fitted linear mixed model in plain language.

    Parameters
    ----------
    fit : MixedResult
        A model fitted by :func:`mlm.lmer`.

    Returns
    -------
    Explanation
        ``str(...)`` is the text; in Jupyter it shows as HTML. Sections: the data and
        method, each fixed effect (in the outcome's units, controlling for the others,
        with its 95% CI and test by the fit's df method, "significant" at the 5% level),
        the random effects (standard deviations, ICC, the range of group slopes) and
        warnings (few groups, singular fit, no convergence).

    Raises
    ------
    MLMError
        When ``fit`` is not a fitted linear mixed model.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> text = str(fit.explain())
    >>> print(text.splitlines()[0][:92])
    A linear mixed model of Reaction (REML) on 180 observations in 18 Subjects (10 per Subject).
    >>> "Days: Reaction is 10.47 higher for each 1 unit higher Days" in text
    True
    """
    from mlm.toolkit.interactions import cross_level
    from mlm.toolkit.nesting import levels
    from mlm.results.linear import MixedResult, require_fit

    require_fit(fit, "explain()'s argument", glmm=True)
    if not isinstance(fit, MixedResult):  # a GLMM: odds / rate ratios (mlm.report.explain_glmm)
        from mlm.report.explain_glmm import explain_glmm
        return explain_glmm(fit)
    d = _digits(fit)
    y = fit.design.formula.response
    lev = levels(fit)
    cross = cross_level(fit)
    cols = _columns(fit, lev)
    sections = [("", tuple(_sample(fit))),
                ("Fixed effects", tuple(_fixed(fit, cols, lev, cross, d, y))),
                ("Random effects", tuple(_random(fit, d, y, cross)))]
    warn = _warnings(fit)
    if warn:
        sections.append(("Warnings", tuple(warn)))
    return Explanation(tuple(sections))
