"""Linear hypotheses about the fixed effects, written as text or as a contrast matrix.

``mlm.test(fit, "ses = meanses")`` turns each equation into a row of ``L beta = rhs`` and
tests it with :func:`mlm.inference.ddf.contrast_test` (lmerTest's ``contest``): a t-test
for one equation, and for several (separated by commas) a t-test of each and the joint
F-test.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mlm.errors import MLMError
from mlm.formula import match_term, split_top_level
from mlm.inference.ddf import check_ddf, contrast_test

__all__ = ["test", "parse_hypothesis"]

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _side(text, names, whole):
    """A linear expression in the coefficients: (weights, constant)."""
    w = np.zeros(len(names))
    const = 0.0
    by_len = sorted(range(len(names)), key=lambda i: -len(names[i]))
    i, n = 0, len(text)
    sign, seen_term = 1.0, False
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "+-":
            sign = sign * (-1.0 if ch == "-" else 1.0)
            i += 1
            continue
        factor = 1.0
        m = _NUMBER.match(text, i)
        if m:
            factor = float(m.group(0))
            i = m.end()
            j = i
            while j < n and text[j].isspace():
                j += 1
            if j < n and text[j] == "*":
                i = j + 1
                while i < n and text[i].isspace():
                    i += 1
            else:
                if j < n and text[j] not in "+-":
                    raise MLMError(f"Cannot read {whole!r}: write a weight and its coefficient with "
                                   "'*' (e.g. '2*ses'), and separate terms with + or -.")
                const += sign * factor
                sign, seen_term = 1.0, True
                i = j
                continue
        idx, end = _match_name(text, i, names, by_len, whole)
        coef = factor
        k = end
        while k < n and text[k].isspace():
            k += 1
        if k < n and text[k] == "*":  # name * number
            m = _NUMBER.match(text, k + 1 + (len(text[k + 1:]) - len(text[k + 1:].lstrip())))
            if not m:
                raise MLMError(f"Cannot read {whole!r}: after '*' a number is expected. Write "
                               "weights as '2*ses' or 'ses*2'.")
            coef *= float(m.group(0))
            end = m.end()
        w[idx] += sign * coef
        i = end
        sign, seen_term = 1.0, True
    if not seen_term:
        raise MLMError(f"Cannot read {whole!r}: one side of an equation is empty. Write e.g. "
                       "'ses = 0' or 'ses = meanses'.")
    return w, const


def _match_name(text, i, names, by_len, whole):
    if text[i] == "`":
        j = text.find("`", i + 1)
        if j < 0:
            raise MLMError(f"Cannot read {whole!r}: a backtick-quoted name is not closed.")
        name = match_term(text[i + 1:j], names)   # whatever the spacing (issue 11)
        if name is None:
            raise _unknown(text[i + 1:j], names)
        return names.index(name), j + 1
    for k in by_len:
        nm = names[k]
        if text.startswith(nm, i):
            end = i + len(nm)
            # a name must end at an operator, a space or the end (not 'ses' inside 'sesx')
            if end == len(text) or not (text[end].isalnum() or text[end] in "_."):
                return k, end
    token = re.match(r"[^+\-*=,]+", text[i:])
    raise _unknown((token.group(0) if token else text[i:]).strip(), names)


def _unknown(token, names):
    return MLMError(f"Unknown coefficient {token!r} in the hypothesis. The fixed effects are: "
                    f"{', '.join(names)} (quote a name with backticks if it has spaces or signs).")


def parse_hypothesis(hypothesis: str, names) -> tuple[np.ndarray, np.ndarray, list]:
    """``"a = b, c = 0"`` -> (L, rhs, texts): one row of ``L beta = rhs`` per equation."""
    names = list(names)
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        raise MLMError("The hypothesis must be a non-empty string such as 'ses = 0' or "
                       "'ses = meanses', or a contrast matrix.")
    rows, rhs, texts = [], [], []
    for _, part in split_top_level(hypothesis, ","):
        eq = part.replace("==", "=")
        if eq.count("=") > 1:
            raise MLMError(f"Cannot read {part.strip()!r}: one '=' per equation; separate several "
                           "equations with commas.")
        left, right = (eq.split("=") + ["0"])[:2]
        wl, cl = _side(left, names, part.strip())
        wr, cr = _side(right, names, part.strip())
        w = wl - wr
        if not np.any(w):
            raise MLMError(f"The equation {part.strip()!r} involves no coefficient: nothing to test.")
        rows.append(w)
        rhs.append(cr - cl)
        texts.append(" ".join(part.split()))
    return np.array(rows), np.array(rhs), texts


def _from_matrix(fit, L, rhs):
    names = list(fit.design.fixed_names)
    if isinstance(L, pd.Series):
        L = L.to_frame().T
    if isinstance(L, pd.DataFrame):
        # the model's spelling, whatever the spacing (issue 11)
        L = L.rename(columns=lambda c: match_term(c, names) or c if isinstance(c, str) else c)
        unknown = [c for c in L.columns if c not in names]
        if unknown:
            raise _unknown(unknown[0], names)
        L = L.reindex(columns=names, fill_value=0.0)
        texts = [str(i) for i in L.index]
        L = L.to_numpy(dtype=float)
    else:
        try:
            L = np.atleast_2d(np.array(L, dtype=float))
        except (TypeError, ValueError):
            raise MLMError("The hypothesis must be a string or a numeric contrast matrix.") from None
        texts = [f"row {i + 1}" for i in range(L.shape[0])]
    if L.ndim != 2 or L.shape[1] != len(names):
        raise MLMError(f"The contrast has {L.shape[-1]} column(s) but the model has {len(names)} fixed "
                       f"effects ({', '.join(names)}): give one weight per fixed effect, in that order.")
    zero = np.flatnonzero(~np.any(L != 0, axis=1))
    if zero.size:
        raise MLMError(f"Row {zero[0] + 1} of the contrast has every weight 0: it tests nothing "
                       "(0 = 0). Give each row at least one non-zero weight.")
    try:
        r = np.asarray(0.0 if rhs is None else rhs, dtype=float)
        r = np.broadcast_to(r, (L.shape[0],))
    except (TypeError, ValueError):
        raise MLMError(f"rhs must be a number or one number per row of the contrast "
                       f"({L.shape[0]} row(s)), not {rhs!r}.") from None
    return L, np.array(r), texts


def test(fit, hypothesis, ddf=None, rhs=None) -> pd.DataFrame:
    """Test linear hypotheses about the fixed effects (lmerTest's ``contest``).

    Parameters
    ----------
    fit : MixedResult
        The fitted model whose fixed effects are tested.
    hypothesis : str or array_like or pandas.DataFrame
        Equations in the coefficients' names, separated by commas for a joint test:
        ``"sectorCatholic = 0"``, ``"ses = meanses"``, ``"ses - meanses = 0"``,
        ``"2*ses + meanses = 1"``; names with spaces or signs in backticks. Or a contrast
        matrix ``L`` (one weight per fixed effect, or a DataFrame with columns named by
        them) for ``L beta = rhs``.
    ddf : {"satterthwaite", "kenward-roger", "residual", "normal"}, optional
        By default the fit's own (``fit.ddf``).
    rhs : float or array_like, optional
        Right-hand side for a contrast matrix (default 0).

    Returns
    -------
    pandas.DataFrame
        One row per equation (a t-test: ``estimate`` is ``L beta - rhs``) and, for several,
        a last row ``joint`` with the F-test. Columns ``estimate, std_error, statistic,
        num_df, den_df, p_value, test`` (``"t"`` or ``"F"``).

    Examples
    --------
    >>> import mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> fit = mlm.lmer("mathach ~ ses + meanses + (ses | school)", hsb)
    >>> res = mlm.test(fit, "ses = meanses")
    >>> res["test"].iloc[0], bool(res["p_value"].iloc[0] < 0.05)
    ('t', True)
    """
    from mlm.results.linear import require_fit

    require_fit(fit)
    method = check_ddf(ddf, fit)
    if isinstance(hypothesis, str):
        if rhs is not None:
            raise MLMError("rhs goes with a contrast matrix; in a text hypothesis write it after '=' "
                           "(e.g. 'ses = 2').")
        L, r, texts = parse_hypothesis(hypothesis, fit.design.fixed_names)
    else:
        L, r, texts = _from_matrix(fit, hypothesis, rhs)
    rows = []
    for i in range(L.shape[0]):
        t = contrast_test(fit, L[i], ddf=method, rhs=r[i])
        rows.append([float(t.estimate[0] - r[i]), float(np.sqrt(t.vcov[0, 0])), t.statistic,
                     1.0, t.den_df, t.p_value, "t"])
    index = list(texts)
    if L.shape[0] > 1:
        j = contrast_test(fit, L, ddf=method, rhs=r)
        rows.append([np.nan, np.nan, j.statistic, j.num_df, j.den_df, j.p_value, j.kind])
        index.append("joint")
    out = pd.DataFrame(rows, index=pd.Index(index, name="hypothesis"),
                       columns=["estimate", "std_error", "statistic", "num_df", "den_df", "p_value",
                                "test"])
    out.attrs["ddf"] = method
    return out
