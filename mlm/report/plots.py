"""Figures of a fitted model for papers and for checking it (issue 13, item 4).

Four plots, each returning a :class:`matplotlib.figure.Figure`:

* :func:`plot_ranef`: caterpillar plot of the conditional modes with intervals (lme4's
  ``dotplot(ranef(fit, condVar = TRUE))``);
* :func:`plot_simple_slopes`: predicted outcome against a focal predictor at values of a
  moderator, with confidence bands (the lines of :func:`mlm.simple_slopes`);
* :func:`plot_groups`: one line per group, observed (spaghetti plot) or fitted;
* :func:`plot_residuals`: level-1 residuals against fitted values and normal QQ plots at
  each level.

matplotlib is an optional dependency (``pip install "mlm[plot]"``), imported only when a
plot is drawn, so ``import mlm`` never loads it. New figures are made with
:mod:`matplotlib.pyplot`, so ``plt.show()`` and notebooks display them as usual; nothing
here calls ``show``.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from mlm._lazy import stats

from mlm.errors import DataError, MLMError
from mlm.results.linear import require_fit

__all__ = ["plot_ranef", "plot_simple_slopes", "plot_groups", "plot_residuals"]

#: Above this many groups the group labels of a caterpillar plot would overlap: they are hidden.
MAX_LABELLED_GROUPS = 40
#: Up to this many groups :func:`plot_groups` gives each its colour and a legend entry.
MAX_LEGEND_GROUPS = 10


def _pyplot():
    """matplotlib.pyplot, or an MLMError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MLMError('Plotting needs matplotlib, which is not installed. Install it with '
                       'pip install "mlm[plot]" (or pip install matplotlib).') from None
    return plt


def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise DataError(f"level must be a number between 0 and 1 (e.g. 0.95), not {level!r}.")


def _check_ax(ax):
    if ax is None:
        return
    from matplotlib.axes import Axes
    if not isinstance(ax, Axes):
        raise DataError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()), not "
                        f"{type(ax).__name__}.")


def _new_axes(plt, ax, figsize):
    if ax is not None:
        # the root Figure also for an Axes in a SubFigure (whose .figure is the root)
        return getattr(ax.figure, "figure", None) or ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax


def _legend_outside(ax, title):
    """A legend right of the axes, so that it never covers data."""
    ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
              frameon=False)


def _refuse_glmm(fit):
    """plot_residuals' checks assume normal level-1 residuals: say why a GLMM is refused."""
    from mlm.glmm.results import GLMMResult
    if isinstance(fit, GLMMResult):
        raise DataError(
            "plot_residuals draws checks of a linear model (normal residuals against fitted "
            "values, QQ plots); the residuals of a binary or count outcome are not normal, and "
            "for 0/1 outcomes they fall on two curves whatever the fit, so these plots would "
            "mislead. For a glmer fit use mlm.plot_ranef(fit) for the random effects, and "
            "fit.residuals('pearson') against fit.fitted, binned, for the level-1 check.")


# --------------------------------------------------------------------------- caterpillar
def _factor(fit, factor):
    factors = list(fit.ranef)
    if factor is None:
        return factors[0]
    if not isinstance(factor, str) or factor not in factors:
        raise DataError(f"{factor!r} is not a grouping factor of the model. Grouping factors: "
                        f"{', '.join(map(repr, factors))}.")
    return factor


def plot_ranef(fit, factor: str | None = None, level: float = 0.95):
    """Caterpillar plot: conditional modes of the random effects with intervals.

    One panel per random coefficient of ``factor`` (intercept, slopes), sharing the
    vertical axis: one row per group, sorted by the intercept's conditional mode (by the
    first coefficient when there is no random intercept). Each point is the group's
    conditional mode (``fit.ranef``), each bar mode +- z * conditional SD
    (``fit.ranef_sd``), as lme4's ``dotplot(ranef(fit, condVar = TRUE))``.

    Parameters
    ----------
    fit : MixedResult or GLMMResult
        A fit from :func:`mlm.lmer` or :func:`mlm.glmer` (whose modes and intervals are
        on the link scale, e.g. log-odds, as lme4's).
    factor : str, optional
        Grouping factor; default the model's first (e.g. ``"school"``).
    level : float, default 0.95
        Coverage of the intervals under normality (z = 1.96 for 0.95).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    DataError
        If ``fit`` is not a fit, ``factor`` is not one of its grouping factors or
        ``level`` is not in (0, 1).
    MLMError
        If matplotlib is not installed.

    Notes
    -----
    With more than 40 groups (``MAX_LABELLED_GROUPS``) the group labels would overlap,
    so they are hidden and the axis label says so; the rows keep the sorted order, and
    ``fit.ranef_table()`` lists the numbers. The intervals ignore the uncertainty in the
    variance parameters (as lme4's).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> fig = mlm.plot_ranef(fit)
    >>> [ax.get_title() for ax in fig.axes]
    ['(Intercept)', 'Days']
    >>> fig.savefig("caterpillar.png")                    # doctest: +SKIP
    """
    require_fit(fit, glmm=True)
    factor = _factor(fit, factor)
    _check_level(level)
    plt = _pyplot()
    modes, sds = fit.ranef[factor], fit.ranef_sd[factor]
    z = float(stats.norm.ppf(0.5 + level / 2))
    key = "(Intercept)" if "(Intercept)" in modes.columns else modes.columns[0]
    order = np.argsort(modes[key].to_numpy(), kind="stable")
    n, k = modes.shape
    labelled = n <= MAX_LABELLED_GROUPS
    height = max(2.8, 1.2 + 0.22 * n) if labelled else 7.0
    fig, axes = plt.subplots(1, k, sharey=True, squeeze=False, layout="constrained",
                             figsize=(max(4.8, 3.4 * k + (0.8 if labelled else 0.0)), height))
    pos = np.arange(n)
    for ax, col in zip(axes[0], modes.columns):
        m = modes[col].to_numpy()[order]
        s = sds[col].to_numpy()[order]
        ax.axvline(0.0, color="0.55", lw=0.8, zorder=0)
        ax.hlines(pos, m - z * s, m + z * s, color="C0", lw=1.0 if labelled else 0.7,
                  alpha=0.8 if labelled else 0.6, gid="intervals")
        ax.plot(m, pos, "o", color="C0", ms=4 if labelled else 2.5, gid="modes")
        ax.set_title(col)
        ax.set_xlabel(f"conditional mode of {col}")
        ax.grid(axis="x", color="0.9", lw=0.6)
        ax.set_axisbelow(True)
    first = axes[0, 0]
    first.set_ylim(-1, n)
    if labelled:
        first.set_yticks(pos, [str(v) for v in modes.index[order]],
                         fontsize=8 if n > 20 else 9)
        first.set_ylabel(f"{factor} (sorted by {key})")
    else:
        first.set_yticks([])
        first.set_ylabel(f"{n} {factor} groups, sorted by {key} (labels hidden above "
                         f"{MAX_LABELLED_GROUPS})")
    family = getattr(fit, "family", None)     # a glmer fit: modes on the link scale
    scale = ({"logit": " (log-odds scale)", "log": " (log scale)"}.get(family.link, f" ({family.link} scale)")
             if family is not None else "")
    title = (f"Random effects of {factor}{scale}: conditional modes, {level:.0%} intervals "
             f"(\u00b1{z:.2f} conditional SD)")
    # about ten characters of an 11-point title per inch of figure
    fig.suptitle(textwrap.fill(title, int(10 * fig.get_figwidth())), fontsize=11)
    return fig


# --------------------------------------------------------------------------- simple slopes
def plot_simple_slopes(fit, focal: str, moderator: str, at=None, level: float = 0.95, ax=None):
    """Predicted outcome against ``focal`` at values of ``moderator``, with confidence bands.

    One line per moderator value of :func:`mlm.simple_slopes` (the same defaults,
    computed by it): the fixed-part prediction
    ``a(W) + w(W) x``, with ``w(W)`` the simple slope from that table and
    ``a(W) = g00 + g01 W`` (intercept plus the moderator's main effect), every other
    predictor at zero as in :func:`mlm.simple_slopes`. The band is the pointwise
    confidence interval of that prediction,
    ``+- crit * sqrt(Var a + 2 x Cov(a, w) + x^2 Var w)``, from the fit's ``vcov`` with
    the critical value of the slopes' test (normal or t with the table's df). ``x`` spans
    the observed range of ``focal``.

    Parameters
    ----------
    fit : MixedResult
        A model with ``focal``, ``moderator`` and their interaction.
    focal, moderator : str
        As in :func:`mlm.simple_slopes`.
    at : sequence of float, optional
        Moderator values (default as :func:`mlm.simple_slopes`).
    level : float, default 0.95
        Confidence level of the bands.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes; by default a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InteractionError
        As :func:`mlm.simple_slopes` (unknown term, no interaction, not a fit).
    DataError
        If ``ax`` is not an Axes.

    Examples
    --------
    >>> import mlm
    >>> hsb = mlm.load_dataset("hsb")
    >>> hsb["cses"] = hsb["ses"] - hsb.groupby("school")["ses"].transform("mean")
    >>> fit = mlm.lmer("mathach ~ meanses*cses + sector*cses + (cses | school)", hsb)
    >>> fig = mlm.plot_simple_slopes(fit, "cses", "sector")
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['0 (slope 2.94)', '1 (slope 1.3)']
    """
    from mlm.toolkit.interactions import _critical, simple_slopes
    table = simple_slopes(fit, focal, moderator, at=at, level=level)
    _check_ax(ax)
    plt = _pyplot()
    names = list(fit.design.fixed_names)
    beta, V = fit.fixef.to_numpy(), fit.vcov.to_numpy()
    crit = _critical(table.attrs["df"], level)
    x_obs = fit.design.X[:, names.index(focal)]
    x = np.linspace(float(np.min(x_obs)), float(np.max(x_obs)), 101)
    fig, ax = _new_axes(plt, ax, (7.2, 4.6))
    for i, (w, row) in enumerate(table.iterrows()):
        c_a = np.zeros(len(names))            # the line's intercept a(W)
        if "(Intercept)" in names:
            c_a[names.index("(Intercept)")] = 1.0
        if moderator in names:
            c_a[names.index(moderator)] = w
        c_w = np.zeros(len(names))            # its slope w(W), as simple_slopes forms it
        c_w[names.index(focal)] = 1.0
        c_w[names.index(table.attrs["interaction"])] = w
        y = c_a @ beta + row["slope"] * x
        var = c_a @ V @ c_a + 2 * x * (c_a @ V @ c_w) + x ** 2 * row["std_error"] ** 2
        half = crit * np.sqrt(np.maximum(var, 0.0))
        colour = f"C{i % 10}"
        ax.fill_between(x, y - half, y + half, color=colour, alpha=0.18, lw=0, gid=f"band:{w:g}")
        ax.plot(x, y, color=colour, lw=2, label=f"{w:.3g} (slope {row['slope']:.3g})",
                gid=f"line:{w:g}")
    ax.set_xlabel(focal)
    ax.set_ylabel(f"predicted {fit.design.formula.response}")
    ax.set_title(f"Simple slopes of {focal} by {moderator}\n"
                 f"other predictors at 0; bands: {level:.0%} CI of the fixed-part prediction",
                 fontsize=10)
    _legend_outside(ax, moderator)
    return fig


# --------------------------------------------------------------------------- one line per group
def _check_columns(data, x, y, group):
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}.")
    for what, col in (("x", x), ("y", y), ("group", group)):
        if not isinstance(col, str) or col not in data.columns:
            raise DataError(f"{what}={col!r} is not a column of data. Columns: "
                            f"{', '.join(map(repr, map(str, data.columns)))}.")
    for what, col in (("x", x), ("y", y)):
        if not pd.api.types.is_numeric_dtype(data[col]) or pd.api.types.is_bool_dtype(data[col]):
            raise DataError(f"{what}={col!r} must be a numeric column to be drawn as a line; it "
                            f"has dtype {data[col].dtype}.")


def _fitted_for(data, y, fit):
    """The fit's predictions (random effects included) for the rows of ``data`` it used."""
    require_fit(fit)
    response = fit.design.formula.response
    if y != response:
        raise DataError(f"y={y!r} is not the outcome of the fit ({response!r}); pass "
                        f"y={response!r} to draw its fitted lines.")
    fitted = fit.fitted
    if not data.index.is_unique:
        raise DataError("data has duplicate index labels, so its rows cannot be matched with the "
                        "fit's; pass the data frame the model was fitted to.")
    if not fitted.index.isin(data.index).all() or not np.allclose(
            data.loc[fitted.index, y].to_numpy(dtype=float), fit.design.y):
        raise DataError("fit was not fitted to data (its rows or outcome values differ); pass "
                        "the data frame the model was fitted to.")
    return fitted


def _pick_groups(labels, max_groups, highlight, seed):
    if max_groups is None or max_groups >= len(labels):
        return labels
    if isinstance(max_groups, bool) or not isinstance(max_groups, (int, np.integer)) or max_groups < 1:
        raise DataError(f"max_groups must be a positive whole number, not {max_groups!r}.")
    keep = [g for g in labels if g in highlight]
    rest = [g for g in labels if g not in highlight]
    n_more = max(0, max_groups - len(keep))
    rng = np.random.default_rng(seed)
    chosen = set(keep) | {rest[i] for i in rng.choice(len(rest), size=min(n_more, len(rest)),
                                                      replace=False)}
    return [g for g in labels if g in chosen]


def plot_groups(data, x: str, y: str, group: str, fit=None, max_groups: int | None = None,
                highlight=None, ax=None, seed: int = 0):
    """One line per group: a spaghetti plot of the data, or the fit's line for each group.

    Without ``fit`` each group's observed ``y`` is joined in order of ``x`` (growth curves:
    one line per person). With ``fit`` the lines join the fit's predictions
    (``fit.fitted``, fixed part plus the group's random effects) at the group's rows,
    drawn over the observed points: with ``(x | school)`` they are the fitted
    school lines. Other level-1 predictors in the model make those lines bend where
    they change within a group.

    With more than 10 groups (``MAX_LEGEND_GROUPS``) the lines are thin, one colour and
    partly transparent, so 160 schools stay readable; ``highlight`` draws a few groups
    in colour, thicker, with a legend outside the axes.

    Parameters
    ----------
    data : pandas.DataFrame
        For ``fit``, the data frame the model was fitted to (rows matched by index).
    x, y, group : str
        Columns: horizontal axis, vertical axis (the fit's outcome when ``fit`` is given)
        and the grouping column.
    fit : MixedResult, optional
        Draw the fit's predicted lines instead of the observed ones.
    max_groups : int, optional
        Draw only this many groups, chosen at random (``seed``), highlighted ones always
        included; the title says how many of how many.
    highlight : sequence, optional
        Group labels to draw in colour with a legend.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes; by default a new figure.
    seed : int, default 0
        Seed of the random choice of groups for ``max_groups``.

    Returns
    -------
    matplotlib.figure.Figure
        Each group's line has ``gid`` equal to ``str(label)``.

    Raises
    ------
    DataError
        Unknown or non-numeric columns, a ``highlight`` label that is not a group,
        ``fit`` not a fit of ``data`` or ``y`` not its outcome.

    Examples
    --------
    >>> import mlm
    >>> sleep = mlm.load_dataset("sleepstudy")
    >>> fig = mlm.plot_groups(sleep, "Days", "Reaction", "Subject", highlight=[308, 309])
    >>> len([l for l in fig.axes[0].lines if l.get_gid()])
    18
    """
    _check_columns(data, x, y, group)
    _check_ax(ax)
    frame = data[list(dict.fromkeys([x, y, group]))]
    if fit is not None:
        fitted = _fitted_for(data, y, fit)
        frame = frame.loc[fitted.index].assign(**{"__line": fitted.to_numpy()})
    else:
        frame = frame.assign(**{"__line": frame[y].to_numpy()})
    frame = frame.dropna(subset=[x, "__line", group])
    labels = [v.item() if isinstance(v, np.generic) else v for v in pd.unique(frame[group])]
    try:
        labels = sorted(labels)
    except TypeError:
        pass
    if highlight is None:
        highlight = []
    elif isinstance(highlight, (str, bytes)) or np.ndim(highlight) == 0:
        highlight = [highlight]          # one label, not a sequence of characters
    highlight = list(highlight)
    known = set(labels)
    try:
        unknown = [h for h in highlight if h not in known]
    except TypeError:
        raise DataError(f"highlight must be group labels of {group!r}, e.g. [{labels[0]!r}]; "
                        f"got {highlight!r}.") from None
    if unknown:
        raise DataError(f"highlight names group(s) not in {group!r}: "
                        f"{', '.join(map(repr, unknown))}.")
    shown = _pick_groups(labels, max_groups, highlight, seed)
    plt = _pyplot()
    fig, ax = _new_axes(plt, ax, (7.2, 4.8))
    many = len(shown) > MAX_LEGEND_GROUPS
    if fit is not None:
        obs = frame[frame[group].isin(shown)]
        dense = len(obs) > 1000
        ax.scatter(obs[x], obs[y], s=3 if dense else 10, color="0.5", alpha=0.2 if dense else 0.5,
                   lw=0, zorder=1, gid="observed")
    alpha = float(np.clip(12.0 / max(len(shown), 1), 0.25, 0.8))
    grouped = dict(tuple(frame.groupby(group, sort=False)))
    for i, g in enumerate(shown):
        part = grouped[g].sort_values(x, kind="stable")
        if g in highlight:
            style = dict(color=f"C{(highlight.index(g) + 1) % 10}", lw=2.2, alpha=1.0, zorder=3,
                         label=str(g))
        elif many or highlight:
            style = dict(color="C0", lw=0.8, alpha=alpha, zorder=2)
        else:
            style = dict(color=f"C{i % 10}", lw=1.6, alpha=0.9, zorder=2, label=str(g))
        ax.plot(part[x].to_numpy(), part["__line"].to_numpy(), gid=str(g), **style)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    if len(shown) < len(labels):
        count = f"{len(shown)} of {len(labels)} groups, drawn at random"
    else:
        count = f"{len(labels)} groups"
    if fit is not None:
        title = (f"Fitted {y} by {x}: one line per {group} ({count})\n"
                 "lines: predictions with the group's random effects; points: observed")
    else:
        title = f"{y} by {x}: one line per {group} ({count})"
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[1]:
        _legend_outside(ax, group)
    return fig


# --------------------------------------------------------------------------- residual checks
def _qq(ax, values, title, ylabel):
    """Normal QQ plot with R's qqline (through the quartiles)."""
    values = np.asarray(values, dtype=float)
    (theo, ordered), _ = stats.probplot(values, dist="norm")
    ax.plot(theo, ordered, "o", ms=2.5 if len(values) > 500 else 3.5, color="C0",
            alpha=0.5 if len(values) > 500 else 0.8, gid="qq")
    q = np.quantile(values, [0.25, 0.75])
    zq = stats.norm.ppf([0.25, 0.75])
    slope = (q[1] - q[0]) / (zq[1] - zq[0])
    ends = np.array([theo[0], theo[-1]])
    ax.plot(ends, q[0] + slope * (ends - zq[0]), color="C3", lw=1.2, gid="qqline")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("normal quantile")
    ax.set_ylabel(ylabel)


def plot_residuals(fit):
    """Residual checks at each level, one panel each.

    * level 1: residuals (``fit.residuals``) against fitted values (``fit.fitted``),
      with a lowess smooth (statsmodels, 3 robustness iterations as R's ``plot(lm)``)
      that should stay flat around 0; and their normal QQ plot;
    * level 2 and up: a normal QQ plot of each random coefficient's conditional modes
      (``fit.ranef``), one panel per factor and coefficient.

    QQ lines pass through the quartiles (R's ``qqline``). Conditional modes are shrunk
    towards 0, more in small groups, so their QQ plot is a rough check of the normality
    of the random effects, not a test.

    Parameters
    ----------
    fit : MixedResult
        The fitted model.

    Returns
    -------
    matplotlib.figure.Figure
        A grid of ``2 + (number of random coefficients)`` titled panels, two or three
        across.

    Raises
    ------
    DataError
        If ``fit`` is not a linear fit (a :func:`mlm.glmer` fit is refused: its residuals
        are not normal, so these checks do not apply).

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> fig = mlm.plot_residuals(fit)
    >>> [ax.get_title() for ax in fig.axes]                 # doctest: +NORMALIZE_WHITESPACE
    ['Level 1: residuals vs fitted (red: lowess)', 'Level 1: normal QQ of residuals',
     'Subject: normal QQ of (Intercept)', 'Subject: normal QQ of Days']
    """
    _refuse_glmm(fit)
    require_fit(fit)
    plt = _pyplot()
    from statsmodels.nonparametric.smoothers_lowess import lowess
    coefs = [(g, c) for g, modes in fit.ranef.items() for c in modes.columns]
    n_panels = 2 + len(coefs)
    ncols = 2 if n_panels <= 4 else 3
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.5 * nrows),
                             layout="constrained", squeeze=False)
    flat = list(axes.ravel())
    for extra in flat[n_panels:]:
        extra.remove()
    fitted, resid = fit.fitted.to_numpy(), fit.residuals.to_numpy()
    response = fit.design.formula.response
    ax = flat[0]
    many = len(fitted) > 500
    ax.scatter(fitted, resid, s=4 if many else 10, alpha=0.3 if many else 0.7, lw=0, color="C0",
               gid="residuals")
    ax.axhline(0.0, color="0.4", lw=0.8)
    smooth = lowess(resid, fitted, frac=2 / 3, it=3, delta=0.01 * float(np.ptp(fitted)))
    ax.plot(smooth[:, 0], smooth[:, 1], color="C3", lw=1.5, gid="lowess")
    ax.set_title("Level 1: residuals vs fitted (red: lowess)", fontsize=10)
    ax.set_xlabel(f"fitted {response}")
    ax.set_ylabel("residual")
    _qq(flat[1], resid, "Level 1: normal QQ of residuals", "residual")
    for ax, (g, c) in zip(flat[2:], coefs):
        _qq(ax, fit.ranef[g][c].to_numpy(), f"{g}: normal QQ of {c}", f"conditional mode of {c}")
    fig.suptitle(textwrap.fill(f"Residual checks: {fit.formula}", int(10 * fig.get_figwidth())),
                 fontsize=11)
    return fig
