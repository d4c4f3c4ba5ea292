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


# --------------------------------------------------------------------------- shared with explain_glmm
# The pieces below are the same for linear and generalised fits (explain_glmm imports them);
# only the wording of an effect's size differs between the two.
def _blocks_by_factor(fit):
    """The first random-effects block of each grouping factor, in the formula's order."""
    seen = {}
    for b in fit.design.blocks:
        seen.setdefault(b.group_name, b)
    return list(seen.values())


def _observations(fit) -> str:
    """'7185 observations in 160 schools (14 to 67 per school)', missing rows noted."""
    sizes = []
    for b in _blocks_by_factor(fit):
        n = np.bincount(b.codes, minlength=b.n_levels)
        each = f"{n.min()}" if n.min() == n.max() else f"{n.min()} to {n.max()}"
        sizes.append(f"{b.n_levels} {_groups(b.group_name)} ({each} per {b.group_name})")
    dropped = f" ({fit.nobs_dropped} row(s) with missing values left out)" if fit.nobs_dropped else ""
    return f"{fit.nobs} observations{dropped} in " + " and ".join(sizes)


def _intercept_condition(cols) -> str:
    """' when x = 0, sex = F' for the intercept: every single-part predictor at its zero."""
    zeros = []
    for c in cols.values():
        if len(c.parts) == 1:
            z = _phrase_zero(c.parts[0])
            if z not in zeros:
                zeros.append(z)
    return " when " + ", ".join(zeros) if zeros else ""


def _part_key(part) -> str:
    return part.get("label") or f"{part['var']}{part.get('category') or ''}"


def _moderators_at_zero(cols) -> dict:
    """Main effects that are also in interactions are conditional on the partners at 0."""
    partners = {}
    for c in cols.values():
        if len(c.parts) > 1:
            labels = [_part_key(p) for p in c.parts]
            for i, lab in enumerate(labels):
                for other in c.parts[:i] + c.parts[i + 1:]:
                    z = _phrase_zero(other)
                    partners.setdefault(lab, [])
                    if z not in partners[lab]:
                        partners[lab].append(z)
    return partners


def _between_shares(levels_table) -> dict:
    """Each column's between-group share when there is one grouping factor (else empty)."""
    within = {}
    gcols = [c for c in levels_table.columns if c.startswith("between_")]
    if len(gcols) == 1:
        within = {n: float(v) for n, v in levels_table[gcols[0]].items()}
        within["_group"] = gcols[0][len("between_"):]
    return within


def _effect_lines(fit, cols, levels_table, main_effect, interaction):
    """One sentence per fixed-effect column: ``main_effect(c, row, within, moderated_by)``
    for a single predictor, ``interaction(c, row)`` for a product of several."""
    co = fit.coefficients
    partners = _moderators_at_zero(cols)
    within = _between_shares(levels_table)
    lines = []
    for name, c in cols.items():
        row = co.loc[name]
        if len(c.parts) == 1:
            lines.append(main_effect(c, row, within, partners.get(_part_key(c.parts[0]), [])))
        else:
            lines.append(interaction(c, row))
    return lines


def _level1_within(c, within) -> str:
    """' (a within-school effect: x varies only within schools)' for a level-1 column."""
    g = within.get("_group")
    if g and within.get(c.name, 1.0) <= 1e-10:
        return f" (a within-{g} effect: {c.name} varies only within {_groups(g)})"
    return ""


@dataclass
class _Roles:
    """Who is who in a two-way interaction: the focal predictor, its moderator and words."""

    names: list
    focal: str = None
    mod: str = None
    group: str = None
    kind: str = ""
    mpart: dict = None
    one: str = None      # the moderator's 'sex = M' (None for a numeric moderator)
    zero: str = None

    @property
    def than(self) -> str:
        return f"with {self.one} than with {self.zero}" if self.one is not None else f"with higher {self.mod}"

    @property
    def per(self) -> str:
        return f"with {self.one}" if self.one is not None else f"per unit of {self.mod}"

    @property
    def where(self) -> str:
        return f"in {_groups(self.group)} " if self.group else ""


def _roles(fit, c, cross) -> _Roles:
    """Focal and moderator of an interaction column: the cross-level table's reading, else
    the first part as focal (a dummy is read as the moderator of a numeric predictor).
    ``focal`` is None for interactions of three or more parts."""
    names = [p.get("label") or (f"{p['var']}{p['category']}" if p["kind"] == "dummy" else p["var"])
             for p in c.parts]
    hit = cross[cross["term"] == c.name] if len(cross) else cross
    if len(hit) and ":" not in hit.iloc[0]["level1"] and ":" not in hit.iloc[0]["level2"]:
        r = _Roles(names, hit.iloc[0]["level1"], hit.iloc[0]["level2"], hit.iloc[0]["factor"],
                   "cross-level")
    elif len(names) == 2:
        r = _Roles(names, names[0], names[1], None, "interaction")
        if _is_binary_part(fit, c.parts[0], r.focal) and not _is_binary_part(fit, c.parts[1], r.mod):
            r.focal, r.mod = r.mod, r.focal
    else:
        return _Roles(names)
    r.mpart = dict(zip(names, c.parts)).get(r.mod, {"kind": "numeric", "var": r.mod})
    r.one, r.zero = _binary_words(fit, r.mpart, r.mod)
    return r


def _direction(b: float, focal_slope: float) -> str:
    return "stronger" if b * focal_slope > 0 else "weaker" if b != 0 else "unchanged"


def _slope_labels(at, r, two, three):
    """Where the simple slopes are taken, in words; ``two``/``three`` format the values."""
    if len(at) == 2 and r.one is not None and list(at) == [0.0, 1.0]:
        return [r.zero, r.one]
    if len(at) == 2:
        return [f"{r.mod} = {two(v)}" for v in at]
    labels = [f"{three(v)} (mean{w})" for v, w in zip(at, (" - 1 SD", "", " + 1 SD"))]
    labels[0] = f"{r.mod} = " + labels[0]
    return labels


def _simple_slopes_text(fit, c, cols, r, ss, labels, values) -> tuple:
    """(' (with x = 0)', 'a at A, b at B', ', p = ... for each.' or '.') of simple slopes."""
    ps = [_p(p) for p in ss["p_value"]]
    same = len(set(ps)) == 1
    slopes = ", ".join(f"{v} at {lab}" + ("" if same else f" ({p})")
                       for lab, v, p in zip(labels, values, ps))
    same_factor = {n for n, col in cols.items() if len(col.parts) == 1 and r.mpart["kind"] == "dummy"
                   and col.parts[0]["kind"] == "dummy" and col.parts[0]["var"] == r.mpart["var"]}
    held = [n for n in _partners(fit, r.focal) if n not in (r.mod, c.name) and n not in same_factor]
    zero_of = {n: _phrase_zero(col.parts[0]) for n, col in cols.items() if len(col.parts) == 1}
    held_txt = f" (with {' and '.join(zero_of.get(h, h + ' = 0') for h in held)})" if held else ""
    return held_txt, slopes, (f", {ps[0]} for each." if same else ".")


def _sign_changes(ss) -> bool:
    return (ss["slope"].min() < 0) != (ss["slope"].max() < 0)


def _contextual_contrasts(fit, cols):
    """(variable, group, L) for each cwc(x, g) with gm(x, g): L picks between - within."""
    names = list(fit.fixef.index)
    singles = {(c.parts[0]["kind"], c.parts[0]["var"], c.parts[0].get("group")): n
               for n, c in cols.items() if len(c.parts) == 1}
    for (kind, var, g), w in singles.items():
        if kind != "cwc" or ("gm", var, g) not in singles:
            continue
        L = np.zeros(len(names))
        L[names.index(singles[("gm", var, g)])], L[names.index(w)] = 1.0, -1.0
        yield var, g, L


def _components(fit):
    """Each random term of varcorr: (factor, correlations, rows of standard deviations)."""
    vc = fit.varcorr
    for label in dict.fromkeys(vc["grp"]):
        if label == "Residual":
            continue
        part = vc[vc["grp"] == label]
        # lme4 labels a second term of the same factor 'Subject.1' (x || Subject)
        g = label if label in fit.ngroups else re.sub(r"\.\d+$", "", label)
        corr = {(r["var1"], r["var2"]): float(r["sdcor"]) for _, r in part[part["var2"].notna()].iterrows()}
        yield g, corr, [r for _, r in part[part["var2"].isna()].iterrows()]


def _slope_moderators(cross, x, g):
    """('beyond what w explains', 'among schools with w = 0, ') for a random slope of x."""
    mods = cross[(cross["level1"] == x) & (cross["factor"] == g)]["level2"].tolist() \
        if len(cross) else []
    among = f"among {_groups(g)} with {' and '.join(m + ' = 0' for m in mods)}, " if mods else ""
    beyond = (f" beyond what {' and '.join(mods)} explain{'s' if len(mods) == 1 else ''}"
              if mods else "")
    return beyond, among


def _slope_correlations(g, corr, noun):
    """'Schools with higher a slopes tend to have lower b slopes (correlation -0.50).'"""
    return [f"{_cap(_groups(g))} with higher {a} {noun} tend to have {_hl(rho)} {b} {noun} "
            f"(correlation {rho:.2f})." for (a, b), rho in corr.items()
            if a != "(Intercept)" and np.isfinite(rho)]


def _few_groups(counts, why):
    """The few-groups warning for each (factor, number of groups) below FEW_GROUPS."""
    return [f"Few groups: only {n} {g} groups. The variance between them is estimated "
            f"imprecisely{why(g)}; with fewer than about {FEW_GROUPS} groups, consider {g} as a "
            "fixed factor instead." for g, n in counts if n < FEW_GROUPS]


SINGULAR = ("Singular fit: a variance is estimated as zero or a correlation as +-1. The data "
            "cannot tell that part of the random effects apart from nothing; read those "
            "components as 'not detectably different from zero' and consider a simpler random "
            "part. The fixed effects can still be used.")


def _fit_state(fit, remedies: str) -> list:
    """The singular-fit and no-convergence warnings; ``remedies`` for the latter."""
    out = [SINGULAR] if fit.singular else []
    if not fit.converged:
        out.append("Not converged: the optimizer stopped before the best estimates, so every "
                   f"number above is uncertain. {remedies}, and refit.")
    return out


def _sections(sample, fixed, random, warnings) -> "Explanation":
    sections = [("", tuple(sample)), ("Fixed effects", tuple(fixed)),
                ("Random effects", tuple(random))]
    if warnings:
        sections.append(("Warnings", tuple(warnings)))
    return Explanation(tuple(sections))


# --------------------------------------------------------------------------- sections
def _sample(fit):
    y = fit.design.formula.response
    from mlm.inference.ddf import DDF_METHODS
    how = ("Wald z-tests" if fit.ddf == "normal" else "t-tests with residual df"
           if fit.ddf == "residual" else f"t-tests ({DDF_METHODS[fit.ddf].replace(' method', ' df')})")
    return [f"A linear mixed model of {y} ({'REML' if fit.reml else 'ML'}) on "
            f"{_observations(fit)}. "
            f"Effects are expected differences in {y}, controlling for the other predictors, "
            f"with 95% confidence intervals (CI) and {how}; significant: p < 0.05."]


def _intercept(fit, cols, co, d, y):
    if "(Intercept)" not in co.index:
        return []
    row = co.loc["(Intercept)"]
    cond = _intercept_condition(cols)
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
        text = f"{c.name}: {y} is {size} for each 1 unit higher {c.name}" + _level1_within(c, between)
    if moderated_by:
        text += " when " + " and ".join(moderated_by)
    return f"{text} {_test(row, d)}."


def _interaction(fit, c, row, d, y, cross, cols):
    from mlm.toolkit.interactions import simple_slopes
    b = float(row["estimate"])
    r = _roles(fit, c, cross)
    if r.focal is None:
        return (f"{c.name} (interaction of {', '.join(r.names)}): {b:+.{d}f} "
                f"{_test(row, d)}; read it through predictions at chosen values.")
    fpart = dict(zip(r.names, c.parts)).get(r.focal, {"kind": "numeric", "var": r.focal})
    effect, noun, label = _effect_words(fit, fpart, r.focal)
    if r.focal not in fit.fixef.index:
        return f"{c.name} ({r.kind}): {_num(b, d)} {_test(row, d)}."
    direction = _direction(b, float(fit.fixef[r.focal]))
    text = (f"{c.name} ({r.kind}): {effect} is {direction} {r.where}{r.than}, "
            f"its {noun} {_num(abs(b), d)} {_hl(b)} {r.per} {_test(row, d)}.")
    try:
        ss = simple_slopes(fit, r.focal, r.mod)
    except MLMError:
        return text
    labels = _slope_labels(ss.index.to_numpy(), r, lambda v: _num(v, 0 if v == int(v) else d),
                           lambda v: _num(v, d))
    held_txt, slopes, end = _simple_slopes_text(fit, c, cols, r, ss, labels,
                                                [_num(v, d) for v in ss["slope"]])
    if _sign_changes(ss):
        text += f" {_cap(effect)} changes sign over this range."
    return text + f" {label}{held_txt}: {slopes}" + end


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
    lines = _intercept(fit, cols, fit.coefficients, d, y)
    lines += _effect_lines(
        fit, cols, levels_table,
        lambda c, row, within, mods: _main_effect(fit, c, row, d, y, within, mods),
        lambda c, row: _interaction(fit, c, row, d, y, cross, cols))
    return lines + _contextual(fit, cols, d, y)


def _contextual(fit, cols, d, y):
    """cwc(x, g) and gm(x, g) together: contextual effect = between - within (field notes)."""
    from mlm.inference.ddf import contrast_test
    out = []
    for var, g, L in _contextual_contrasts(fit, cols):
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
    tab = icc(fit)
    for g, corr, rows in _components(fit):
        for r in rows:
            sd = float(r["sdcor"])
            if r["var1"] == "(Intercept)":
                share = float(tab.loc[g, "icc"]) if g in tab.index else float("nan")
                lines.append(_intercept_variance(fit, g, sd, share, d, y))
            else:
                lines.append(_slope_variance(fit, g, str(r["var1"]), sd, corr, d, y, cross))
        lines += _slope_correlations(g, corr, "slopes")
    return lines


def _intercept_variance(fit, g, sd, share, d, y):
    sigma = fit.sigma
    return (f"{_cap(_groups(g))} differ in their average {y}: standard deviation "
            f"{_num(sd, d)} between them (variance {_var(sd ** 2, d)}) against "
            f"{_num(sigma, d)} within them (variance {_var(sigma ** 2, d)}). ICC: "
            f"{100 * share:.1f}% of the variation in {y}"
            + (" not explained by the predictors" if len(fit.fixef) > 1 else "")
            + f" lies between {_groups(g)}.")


def _slope_variance(fit, g, x, sd, corr, d, y, cross):
    fixed = float(fit.fixef[x]) if x in fit.fixef.index else 0.0
    lo, hi = fixed - 1.96 * sd, fixed + 1.96 * sd
    beyond, among = _slope_moderators(cross, x, g)
    text = (f"The effect of {x} varies between {_groups(g)}{beyond}"
            f": standard deviation {_num(sd, d)} (variance {_var(sd ** 2, d)}), so "
            f"{among}the middle 95% of slopes lie between {_num(lo, d)} and {_num(hi, d)} "
            f"(the fixed slope {_num(fixed, d)} +- 1.96 SD).")
    rho = corr.get(("(Intercept)", x))
    if rho is not None and np.isfinite(rho):
        text += (f" {_cap(_groups(g))} with higher average {y} tend to have {_hl(rho)} "
                 f"{x} slopes (correlation {rho:.2f}).").replace(" no different ", " unrelated ")
    return text


def _warnings(fit):
    counts = [(b.group_name, b.n_levels) for b in _blocks_by_factor(fit)]
    out = _few_groups(counts, lambda g: f" and the tests of {g}-level predictors rest on few "
                                        "degrees of freedom")
    return out + _fit_state(fit, "Rescale predictors with very different ranges or simplify the "
                                 "random part")


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
    return _sections(_sample(fit), _fixed(fit, cols, lev, cross, d, y), _random(fit, d, y, cross),
                     _warnings(fit))
