"""Likelihood-ratio tests of the random-effects terms: lmerTest's ``ranova``.

Each random term is reduced in turn, as lmerTest's ``ranova(fit, reduce.terms = TRUE)``
does (its ``get_newforms``): a term with slopes loses one slope term at a time (those
that R's ``drop.scope`` allows, i.e. not contained in a higher-order term); a term whose
only slope goes becomes ``(1 | g)``; an intercept-only term is removed. The reduced model
is refitted by the same criterion as the fit (REML or ML, as lmerTest's ``update``);
when removing the only random term leaves none, the reduced model is the linear model
(``lm``) and its REML or ML log-likelihood is used, as lmerTest does.
"""

from __future__ import annotations

import dataclasses
import io
import tokenize

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.design import build_design
from mlm.errors import MLMError
from mlm.formula import ParsedFormula, RandomTerm, parse_formula
from mlm.results.linear import require_fit

__all__ = ["ranova"]

_LOG2PI = np.log(2.0 * np.pi)


# --- lmerTest's labels ---------------------------------------------------------------------------
def _bar_groups(formula: str):
    """The text of every top-level ``( ... | ... )`` group of a formula, in order."""
    rhs = formula.split("~", 1)[1] if "~" in formula else formula
    out, depth, start, quote = [], 0, None, None
    for pos, ch in enumerate(rhs):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            if depth == 0:
                start = pos
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0 and start is not None:
                text = rhs[start + 1:pos]
                if _split_bar(text) is not None:
                    out.append(text)
    return out


def _split_bar(text):
    """``lhs``, bar (``|`` or ``||``) and group of a term's inside, or None without a bar."""
    depth = 0
    for pos, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            double = text[pos + 1:pos + 2] == "|"
            return text[:pos], "||" if double else "|", text[pos + (2 if double else 1):]
    return None


_SPACED = {"+", "-", "*", "|", "~", "==", "!=", "<", ">", "<=", ">=", "%"}


def _deparse(text: str) -> str:
    """An expression spaced as R's ``deparse`` prints it: ``ses|g`` -> ``ses | g``, ``a:b`` kept."""
    try:
        toks = [t for t in tokenize.generate_tokens(io.StringIO(text.strip()).readline)
                if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)]
    except (tokenize.TokenError, IndentationError):
        return " ".join(text.split())
    out, prev = "", None
    for t in toks:
        s = t.string
        unary = s in ("+", "-") and (prev is None or prev.string in _SPACED | {"(", ","})
        if s in _SPACED and not unary:
            out = out.rstrip() + f" {s} "
        elif s == ",":
            out = out.rstrip() + ", "
        else:
            out += s
        prev = t
    return out.strip()


def _r_group_texts(levels):
    """lme4's ``findbars`` names of a nested group ``a/b/c``: ``c:(b:a)``, ``b:a``, ``a`` (deepest first)."""
    texts = [levels[0]]
    for k in range(1, len(levels)):
        inner = texts[-1] if k == 1 else f"({texts[-1]})"
        texts.append(f"{levels[k]}:{inner}")
    return texts[::-1]


def _labelled_terms(fit):
    """The fit's random terms in lme4's ``findbars`` order, each with lmerTest's text of it.

    Returns a list of (RandomTerm, text) where text is e.g. ``ses | school``,
    ``1 | cask:batch`` or ``0 + Days | Subject`` (an expanded ``||``).
    """
    parsed = fit.design.formula
    groups = _bar_groups(parsed.formula)
    out = []
    try:
        for text in groups:
            lhs, bar, grp = _split_bar(text)
            sub = parse_formula(f"{parsed.response} ~ ({text})").random
            levels = [_deparse(g) for g in grp.split("/")]
            if len(levels) > 1:  # nested: findbars lists the deepest level first
                sub = sub[::-1]
                names = _r_group_texts(levels)
            else:
                names = [levels[0]] * len(sub)
            for term, gtext in zip(sub, names):
                if bar == "||":
                    lhs_text = "1" if not term.covariates else "0 + " + " + ".join(term.covariates)
                else:
                    lhs_text = _deparse(lhs)
                out.append((term, f"{lhs_text} | {gtext}"))
    except MLMError:
        out = []
    if sorted(map(str, (t for t, _ in out))) != sorted(map(str, parsed.random)):
        # a formula written in a way not recovered above: lme4's expanded form
        out = [(t, f"{t.lhs} | {t.group_name}") for t in parsed.random]
    return out


def _droppable(covariates):
    """R's ``drop.scope``: covariate terms not contained in another (marginality)."""
    sets = [frozenset(c.split(":")) for c in covariates]
    return [c for c, s in zip(covariates, sets) if not any(s < o for o in sets)]


def _same(a: RandomTerm, b: RandomTerm) -> bool:
    return (a.intercept, a.covariates, a.group) == (b.intercept, b.covariates, b.group)


def _reductions(terms):
    """lmerTest's ``get_newforms``: (label, reduced list of terms) for every reduction."""
    out = []
    for pos, (term, text) in enumerate(terms):
        others = [t for k, (t, _) in enumerate(terms) if k != pos]
        scope = _droppable(term.covariates)
        if not scope:
            out.append((f"({text})", others))
            continue
        for scp in scope:
            rest = tuple(c for c in term.covariates if c != scp)
            new = (RandomTerm(True, (), term.group) if not rest
                   else RandomTerm(term.intercept, rest, term.group))
            reduced = others[:pos] + [new] + others[pos:]
            unique = []  # R's formula keeps one copy of a repeated term
            for t in reduced:
                if not any(_same(t, u) for u in unique):
                    unique.append(t)
            out.append((f"{scp} in ({text})", unique))
    return out


# --- the reduced fits --------------------------------------------------------------------------
def _lm_loglik(fit):
    """The linear model's log-likelihood (REML or ML as the fit; R's ``logLik.lm``) and npar."""
    X, y = fit.design.X, fit.design.y
    n, p = X.shape
    Q, R = np.linalg.qr(X)
    rss = float(np.sum((y - Q @ (Q.T @ y)) ** 2))
    if fit.reml:
        m = n - p
        ll = -0.5 * m * (_LOG2PI + 1.0 - np.log(m) + np.log(rss)) - np.sum(np.log(np.abs(np.diag(R))))
    else:
        ll = -0.5 * n * (_LOG2PI + 1.0 - np.log(n) + np.log(rss))
    return float(ll), p + 1


def _refit(fit, terms):
    from mlm.fitting import fit_design

    if not terms:
        return _lm_loglik(fit)
    parsed = fit.design.formula
    new = ParsedFormula(formula="", response=parsed.response, fixed=parsed.fixed,
                        random=tuple(terms))
    new = dataclasses.replace(new, formula=str(new))
    reduced = fit_design(build_design(new, fit.design.frame), reml=fit.reml)
    return reduced.loglik, reduced.npar


def ranova(fit) -> pd.DataFrame:
    """Likelihood-ratio test of each random-effects term, as lmerTest's ``ranova(fit)``.

    Parameters
    ----------
    fit : MixedResult
        From :func:`mlm.lmer`. Reduced models are refitted by the same criterion (REML
        or ML) on the same rows.

    Returns
    -------
    pandas.DataFrame
        Index ``term``, labelled as lmerTest: ``<none>`` (the fit), then one row per
        reduction: ``ses in (ses | school)`` (the slope of ``ses`` removed, leaving
        ``(1 | school)``), ``(1 | school)`` (an intercept-only term removed). Columns
        ``npar`` (fixed effects + variance parameters + residual), ``loglik`` (REML
        log-likelihood for REML fits, as lmerTest), ``aic`` (-2 loglik + 2 npar),
        ``lrt`` (2 x the drop in log-likelihood), ``df`` (parameters removed) and
        ``p_value`` (chi-square with ``df``, as lmerTest: not halved for a variance
        on its boundary, so conservative). ``attrs``: ``formulae`` (each reduced
        model) and ``criterion``.

    Notes
    -----
    Following lmerTest, ``(0 + x | g)`` is reduced to ``(1 | g)`` and an ``(x || g)``
    term is treated as its expansion ``(1 | g) + (0 + x | g)``. Removing the only
    random term compares with the linear model fitted by ``lm`` (REML or ML
    log-likelihood as the fit).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> mlm.ranova(fit).round(3)
                                  npar   loglik      aic     lrt   df  p_value
    term
    <none>                           6 -871.814 1755.628     NaN  NaN      NaN
    Days in (Days | Subject)         4 -893.233 1794.465  42.837  2.0      0.0
    """
    require_fit(fit)
    terms = _labelled_terms(fit)
    rows = [("<none>", fit.loglik, fit.npar, None)]
    for label, reduced in _reductions(terms):
        ll, npar = _refit(fit, reduced)
        formula = (str(dataclasses.replace(fit.design.formula, random=tuple(reduced)))
                   if reduced else fit.design.formula.fixed_formula)
        rows.append((label, ll, npar, formula))
    ll0, np0 = rows[0][1], rows[0][2]
    out = pd.DataFrame({
        "npar": [r[2] for r in rows],
        "loglik": [r[1] for r in rows],
        "aic": [-2 * r[1] + 2 * r[2] for r in rows],
        "lrt": [np.nan] + [2 * (ll0 - r[1]) for r in rows[1:]],
        "df": [np.nan] + [float(np0 - r[2]) for r in rows[1:]],
    }, index=pd.Index([r[0] for r in rows], name="term"))
    out["p_value"] = [np.nan] + [float(stats.chi2.sf(lrt, df)) if df > 0 else np.nan
                                 for lrt, df in zip(out["lrt"].iloc[1:], out["df"].iloc[1:])]
    out.attrs.update({"formulae": {r[0]: r[3] for r in rows[1:]},
                      "criterion": "REML" if fit.reml else "ML"})
    return out
