"""mlm.report.plots: each figure draws the fit's own numbers, the right number of things, labelled.

What is drawn is read back from the matplotlib artists and compared with the fit's
``ranef``/``ranef_sd``, ``fitted``/``residuals``, :func:`mlm.simple_slopes` and
``predict``; interval widths with the analytic formulas (z * SD, c' V c).
"""

from __future__ import annotations

import doctest
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mlm
from support import fit, hsb_with_cses

matplotlib = pytest.importorskip(
    "matplotlib", reason='the plots need matplotlib, which is not installed: pip install "mlm[plot]"')
matplotlib.use("Agg")  # no display here or on CI
import matplotlib.pyplot as plt  # noqa: E402

from mlm.report import plots  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SLOPES = "mathach ~ meanses*cses + sector*cses + (cses | school)"
# every number drawn is copied from the fit; 1e-12 only allows for float rounding in matplotlib
TOL = 1e-12


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def hsb():
    return hsb_with_cses()


@pytest.fixture(scope="module")
def hsb_fit(hsb):
    return fit(SLOPES, hsb)


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return fit("Reaction ~ Days + (Days | Subject)", sleep)


def _by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, f"{len(found)} artists with gid {gid!r}"
    return found[0]


# --------------------------------------------------------------------------- optional dependency
def test_import_mlm_does_not_import_matplotlib():
    code = "import sys, mlm; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


@pytest.mark.parametrize("name", ["plot_ranef", "plot_residuals"])
def test_missing_matplotlib_says_how_to_install(name, sleep_fit, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(mlm.MLMError, match=r'needs matplotlib.*pip install "mlm\[plot\]"'):
        getattr(mlm, name)(sleep_fit)


def test_missing_matplotlib_simple_slopes_and_groups(hsb_fit, sleep, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(mlm.MLMError, match=r'pip install "mlm\[plot\]"'):
        mlm.plot_simple_slopes(hsb_fit, "cses", "sector")
    with pytest.raises(mlm.MLMError, match=r'pip install "mlm\[plot\]"'):
        mlm.plot_groups(sleep, "Days", "Reaction", "Subject")


def test_docstring_examples_run():
    result = doctest.testmod(plots, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0


# --------------------------------------------------------------------------- caterpillar
def _check_caterpillar(figure, result, factor, z):
    modes, sds = result.ranef[factor], result.ranef_sd[factor]
    key = "(Intercept)" if "(Intercept)" in modes.columns else modes.columns[0]
    order = np.argsort(modes[key].to_numpy(), kind="stable")
    assert [ax.get_title() for ax in figure.axes] == list(modes.columns)
    for ax, col in zip(figure.axes, modes.columns):
        points = _by_gid(ax, "modes")
        np.testing.assert_allclose(points.get_xdata(), modes[col].to_numpy()[order], rtol=TOL)
        np.testing.assert_array_equal(points.get_ydata(), np.arange(len(modes)))
        segs = np.array(_by_gid(ax, "intervals").get_segments())       # (n, 2 ends, xy)
        m, s = modes[col].to_numpy()[order], sds[col].to_numpy()[order]
        np.testing.assert_allclose(segs[:, 0, 0], m - z * s, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(segs[:, 1, 0], m + z * s, rtol=1e-10, atol=1e-12)
        assert ax.get_xlabel() == f"conditional mode of {col}"
    return order


def test_caterpillar_sleepstudy_points_are_ranef_with_labelled_subjects(sleep_fit):
    figure = mlm.plot_ranef(sleep_fit)
    assert isinstance(figure, matplotlib.figure.Figure)
    order = _check_caterpillar(figure, sleep_fit, "Subject", 1.959963984540054)  # qnorm(0.975)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == [str(v) for v in sleep_fit.ranef["Subject"].index[order]]
    assert len(labels) == 18
    assert figure.axes[0].get_ylabel() == "Subject (sorted by (Intercept))"
    assert "95% intervals" in figure.get_suptitle()


def test_caterpillar_160_schools_hides_labels_and_says_so(hsb_fit):
    figure = mlm.plot_ranef(hsb_fit, "school", level=0.9)
    _check_caterpillar(figure, hsb_fit, "school", 1.6448536269514722)  # qnorm(0.95)
    assert len(_by_gid(figure.axes[0], "modes").get_xdata()) == 160
    assert figure.axes[0].get_yticks().size == 0
    ylabel = figure.axes[0].get_ylabel()
    assert "160" in ylabel and "hidden" in ylabel
    assert "90% intervals" in figure.get_suptitle()


def test_caterpillar_picks_the_factor_asked_for():
    pastes = mlm.load_dataset("pastes")
    result = fit("strength ~ 1 + (1 | batch/cask)", pastes)
    figure = mlm.plot_ranef(result, factor="cask:batch")
    _check_caterpillar(figure, result, "cask:batch", 1.959963984540054)
    assert len(_by_gid(figure.axes[0], "modes").get_xdata()) == 30
    first = mlm.plot_ranef(result)                              # default: the first factor
    assert len(_by_gid(first.axes[0], "modes").get_xdata()) == 10


def test_caterpillar_of_a_glmer_fit_is_lme4s_conditional_modes():
    import json
    ref = json.loads((ROOT / "tests/reference/glmer.json").read_text())["contra_intercept"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mlm.glmer("use ~ age + I(age**2) + urban + livch + (1 | district)",
                           mlm.load_dataset("contraception"))
    figure = mlm.plot_ranef(result)
    order = _check_caterpillar(figure, result, "district", 1.959963984540054)   # qnorm(0.975)
    assert len(_by_gid(figure.axes[0], "modes").get_xdata()) == 60
    # the first five districts against lme4: ranef(m, condVar = TRUE) (tolerances of
    # tests/test_glmer_reference.py: modes 1e-2 relative + 1e-3 of their scale, SDs 1e-2)
    modes = result.ranef["district"]["(Intercept)"].to_numpy()
    sds = result.ranef_sd["district"]["(Intercept)"].to_numpy()
    r_modes = np.asarray(ref["ranef_head"]["(Intercept)"])
    np.testing.assert_allclose(modes[:5], r_modes, rtol=1e-2, atol=1e-3 * np.abs(r_modes).max())
    np.testing.assert_allclose(sds[:5], ref["ranef_condsd_head"], rtol=1e-2)
    segs = np.array(_by_gid(figure.axes[0], "intervals").get_segments())
    pos = {int(k): i for i, k in enumerate(order)}
    for j in range(5):       # the plotted interval of district j is lme4's mode +- 1.96 condsd
        lo, hi = segs[pos[j], 0, 0], segs[pos[j], 1, 0]
        assert lo == pytest.approx(r_modes[j] - 1.959963984540054 * ref["ranef_condsd_head"][j], abs=0.01)
        assert hi == pytest.approx(r_modes[j] + 1.959963984540054 * ref["ranef_condsd_head"][j], abs=0.01)


def test_residual_plot_refuses_a_glmer_fit_and_says_why():
    result = mlm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", mlm.load_dataset("cbpp"))
    with pytest.raises(mlm.MLMError, match=r"residuals of a binary or count outcome are not normal.*"
                                           r"mlm.plot_ranef\(fit\)"):
        mlm.plot_residuals(result)


@pytest.mark.parametrize("kwargs, match", [
    ({"factor": "class"}, r"'class' is not a grouping factor.*Grouping factors: 'Subject'"),
    ({"factor": 3}, r"3 is not a grouping factor"),
    ({"level": 95}, r"level must be a number between 0 and 1"),
    ({"level": "0.95"}, r"level must be a number between 0 and 1"),
])
def test_caterpillar_bad_input(sleep_fit, kwargs, match):
    with pytest.raises(mlm.MLMError, match=match):
        mlm.plot_ranef(sleep_fit, **kwargs)


@pytest.mark.parametrize("name", ["plot_ranef", "plot_residuals"])
def test_not_a_fit(name, sleep):
    with pytest.raises(mlm.MLMError, match=r"fit must be a fitted model from mlm.lmer.*DataFrame"):
        getattr(mlm, name)(sleep)


# --------------------------------------------------------------------------- simple slopes
def _contrast(result, focal, moderator, x, w):
    """The fixed-part prediction at focal = x, moderator = w, others 0, as a row of weights."""
    names = list(result.fixef.index)
    c = np.zeros(len(names))
    c[names.index("(Intercept)")] = 1.0
    c[names.index(moderator)] = w
    c[names.index(focal)] = x
    inter = [n for n in names if sorted(n.split(":")) == sorted([focal, moderator])][0]
    c[names.index(inter)] = x * w
    return c


@pytest.mark.parametrize("moderator, at, n_lines", [
    ("meanses", None, 3), ("sector", None, 2), ("meanses", [-0.5, 0.0, 0.25, 0.5], 4)])
def test_simple_slope_lines_are_the_simple_slopes(hsb, hsb_fit, moderator, at, n_lines):
    table = mlm.simple_slopes(hsb_fit, "cses", moderator, at=at)
    figure = mlm.plot_simple_slopes(hsb_fit, "cses", moderator, at=at)
    ax = figure.axes[0]
    lines = [ln for ln in ax.lines if (ln.get_gid() or "").startswith("line:")]
    assert len(lines) == len(table) == n_lines
    df = table.attrs["df"]  # the fit's df (Satterthwaite's by default): t; z when infinite
    crit = stats.t.ppf(0.975, df) if np.isfinite(df) else stats.norm.ppf(0.975)
    assert np.isfinite(df)
    V = hsb_fit.vcov.to_numpy()
    for line, (w, row) in zip(lines, table.iterrows()):
        x, y = line.get_xdata(), line.get_ydata()
        np.testing.assert_allclose(x[[0, -1]], [hsb["cses"].min(), hsb["cses"].max()], rtol=TOL)
        slope, _ = np.polyfit(x, y, 1)
        np.testing.assert_allclose(slope, row["slope"], rtol=1e-10)
        # the line is the model's fixed-part prediction with the other predictors at 0
        new = pd.DataFrame({"cses": x, "meanses": 0.0, "sector": 0.0})
        new[moderator] = w
        np.testing.assert_allclose(y, hsb_fit.predict(new, include_random=False), rtol=1e-10)
        # band: +- t sqrt(c' V c) around it
        band = _by_gid(ax, f"band:{w:g}")
        verts = band.get_paths()[0].vertices
        C = np.array([_contrast(hsb_fit, "cses", moderator, xi, w) for xi in x])
        half = crit * np.sqrt(np.einsum("ij,jk,ik->i", C, V, C))
        lower = np.interp(x, verts[1:102, 0], verts[1:102, 1])
        np.testing.assert_allclose(lower, y - half, rtol=1e-9)
        assert np.max(verts[:, 1]) == pytest.approx(np.max(y + half), rel=1e-10)
    legend = ax.get_legend()
    assert legend.get_title().get_text() == moderator
    assert [t.get_text() for t in legend.get_texts()] == [
        f"{w:.3g} (slope {s:.3g})" for w, s in table["slope"].items()]
    assert ax.get_xlabel() == "cses" and ax.get_ylabel() == "predicted mathach"


def test_simple_slopes_into_given_axes(hsb_fit):
    fig, axes = plt.subplots(1, 2)
    out = mlm.plot_simple_slopes(hsb_fit, "cses", "sector", level=0.9, ax=axes[1])
    assert out is fig
    assert len(axes[0].lines) == 0 and len(axes[1].lines) == 2
    assert "90% CI" in axes[1].get_title()


@pytest.mark.parametrize("args, kwargs, match", [
    (("ses", "sector"), {}, r"focal predictor 'ses' is not a fixed-effect term"),
    (("cses", "female"), {}, r"moderator 'female' is not a term or variable"),
    (("cses", "sector"), {"level": 2}, r"level must be between 0 and 1"),
    (("cses", "sector"), {"ax": "left"}, r"ax must be a matplotlib Axes.*not str"),
])
def test_simple_slopes_bad_input(hsb_fit, args, kwargs, match):
    with pytest.raises(mlm.MLMError, match=match):
        mlm.plot_simple_slopes(hsb_fit, *args, **kwargs)


def test_simple_slopes_not_a_fit(hsb):
    with pytest.raises(mlm.MLMError, match=r"fit must be a fitted model"):
        mlm.plot_simple_slopes(hsb, "cses", "sector")


# --------------------------------------------------------------------------- one line per group
def _group_lines(ax):
    return {ln.get_gid(): ln for ln in ax.lines if ln.get_gid()}


def test_spaghetti_one_line_per_subject_with_the_data(sleep):
    before = sleep.copy()
    figure = mlm.plot_groups(sleep, "Days", "Reaction", "Subject")
    ax = figure.axes[0]
    lines = _group_lines(ax)
    assert len(lines) == 18
    for subject, part in sleep.groupby("Subject"):
        part = part.sort_values("Days")
        np.testing.assert_array_equal(lines[str(subject)].get_xdata(), part["Days"])
        np.testing.assert_array_equal(lines[str(subject)].get_ydata(), part["Reaction"])
    assert ax.get_xlabel() == "Days" and ax.get_ylabel() == "Reaction"
    assert "18 groups" in ax.get_title()
    assert ax.get_legend() is None                   # 18 entries would hide the data
    pd.testing.assert_frame_equal(sleep, before)


def test_few_groups_get_a_legend_outside(sleep):
    small = sleep[sleep["Subject"].isin([308, 309, 310])]
    ax = mlm.plot_groups(small, "Days", "Reaction", "Subject").axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["308", "309", "310"]
    assert legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1   # right of the axes


def test_fitted_lines_are_the_fits_predictions(sleep, sleep_fit):
    figure = mlm.plot_groups(sleep, "Days", "Reaction", "Subject", fit=sleep_fit,
                             highlight=[308, 335])
    ax = figure.axes[0]
    lines = _group_lines(ax)
    assert len(lines) == 18
    for subject, part in sleep.groupby("Subject"):
        part = part.sort_values("Days")
        np.testing.assert_allclose(lines[str(subject)].get_ydata(),
                                   sleep_fit.fitted.loc[part.index], rtol=TOL)
    points = _by_gid(ax, "observed").get_offsets()
    assert len(points) == 180
    np.testing.assert_array_equal(np.sort(points[:, 1]), np.sort(sleep["Reaction"]))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["308", "335"]
    assert lines["308"].get_linewidth() > lines["309"].get_linewidth()


def test_fitted_lines_160_schools(hsb, hsb_fit):
    ax = mlm.plot_groups(hsb, "cses", "mathach", "school", fit=hsb_fit).axes[0]
    lines = _group_lines(ax)
    assert len(lines) == 160
    one = hsb[hsb["school"] == 1224].sort_values("cses", kind="stable")
    np.testing.assert_allclose(lines["1224"].get_ydata(), hsb_fit.fitted.loc[one.index], rtol=TOL)
    assert max(ln.get_linewidth() for ln in lines.values()) < 1      # thin lines ...
    assert max(ln.get_alpha() for ln in lines.values()) < 0.5        # ... partly transparent
    assert len(_by_gid(ax, "observed").get_offsets()) == 7185
    assert "160 groups" in ax.get_title()


def test_max_groups_draws_that_many_and_keeps_highlighted(sleep):
    ax = mlm.plot_groups(sleep, "Days", "Reaction", "Subject", max_groups=5,
                         highlight=[372]).axes[0]
    lines = _group_lines(ax)
    assert len(lines) == 5 and "372" in lines
    assert "5 of 18 groups, drawn at random" in ax.get_title()
    again = _group_lines(mlm.plot_groups(sleep, "Days", "Reaction", "Subject", max_groups=5,
                                         highlight=[372]).axes[0])
    assert set(again) == set(lines)                                   # seeded


def test_groups_into_given_axes(sleep):
    fig, ax = plt.subplots()
    assert mlm.plot_groups(sleep, "Days", "Reaction", "Subject", ax=ax) is fig
    assert len(_group_lines(ax)) == 18
    root = plt.figure()
    sub_ax = root.subfigures(1, 2)[1].subplots()
    assert mlm.plot_groups(sleep, "Days", "Reaction", "Subject", ax=sub_ax) is root


def test_one_highlighted_group_may_be_given_alone(sleep):
    ax = mlm.plot_groups(sleep, "Days", "Reaction", "Subject", highlight=308).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["308"]


@pytest.mark.parametrize("kwargs, match", [
    ({"x": "day"}, r"x='day' is not a column of data. Columns: 'Reaction', 'Days', 'Subject'"),
    ({"y": "RT"}, r"y='RT' is not a column of data"),
    ({"group": "subject"}, r"group='subject' is not a column of data"),
    ({"highlight": [999]}, r"highlight names group\(s\) not in 'Subject': 999"),
    ({"highlight": "308"}, r"highlight names group\(s\) not in 'Subject': '308'"),
    ({"highlight": [[308]]}, r"highlight must be group labels of 'Subject', e.g. \[308\]"),
    ({"max_groups": 0}, r"max_groups must be a positive whole number, not 0"),
    ({"max_groups": 2.5}, r"max_groups must be a positive whole number, not 2.5"),
    ({"ax": 1}, r"ax must be a matplotlib Axes"),
    ({"fit": "model"}, r"fit must be a fitted model from mlm.lmer.*not str"),
])
def test_groups_bad_input(sleep, kwargs, match):
    args = {"x": "Days", "y": "Reaction", "group": "Subject", **kwargs}
    with pytest.raises(mlm.MLMError, match=match):
        mlm.plot_groups(sleep, **args)


def test_groups_bad_data(sleep, sleep_fit, hsb):
    with pytest.raises(mlm.MLMError, match=r"data must be a pandas DataFrame, not dict"):
        mlm.plot_groups({"Days": [1]}, "Days", "Reaction", "Subject")
    text = sleep.assign(label=sleep["Subject"].astype(str) + "x")
    with pytest.raises(mlm.MLMError, match=r"y='label' must be a numeric column"):
        mlm.plot_groups(text, "Days", "label", "Subject")
    with pytest.raises(mlm.MLMError, match=r"y='Days' is not the outcome of the fit \('Reaction'\)"):
        mlm.plot_groups(sleep, "Reaction", "Days", "Subject", fit=sleep_fit)
    other = sleep.assign(Reaction=sleep["Reaction"] + 1)
    with pytest.raises(mlm.MLMError, match=r"fit was not fitted to data"):
        mlm.plot_groups(other, "Days", "Reaction", "Subject", fit=sleep_fit)
    with pytest.raises(mlm.MLMError, match=r"fit was not fitted to data"):
        mlm.plot_groups(sleep.iloc[:100], "Days", "Reaction", "Subject", fit=sleep_fit)
    doubled = pd.concat([sleep, sleep])
    with pytest.raises(mlm.MLMError, match=r"data has duplicate index labels"):
        mlm.plot_groups(doubled, "Days", "Reaction", "Subject", fit=sleep_fit)


# --------------------------------------------------------------------------- residual checks
def _check_qq(ax, values):
    points = _by_gid(ax, "qq")
    np.testing.assert_allclose(points.get_ydata(), np.sort(values), rtol=TOL)
    # normal quantiles of Filliben's (1975) plotting positions, the convention of
    # scipy.stats.probplot (R's qqnorm uses ppoints' (i - 3/8) / (n + 1/4); they differ little)
    n = len(values)
    m = (np.arange(1, n + 1) - 0.3175) / (n + 0.365)
    m[0], m[-1] = 1 - 0.5 ** (1 / n), 0.5 ** (1 / n)
    np.testing.assert_allclose(points.get_xdata(), stats.norm.ppf(m), rtol=1e-12)
    # R's qqline: through the quartiles of the data and of the normal distribution
    qline = _by_gid(ax, "qqline")
    (x0, x1), (y0, y1) = qline.get_xdata(), qline.get_ydata()
    q25, q75 = np.quantile(values, [0.25, 0.75])
    slope = (q75 - q25) / (2 * stats.norm.ppf(0.75))
    assert (y1 - y0) / (x1 - x0) == pytest.approx(slope, rel=1e-10)
    assert y0 + slope * (stats.norm.ppf(0.25) - x0) == pytest.approx(q25, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("which", ["sleep", "hsb"])
def test_residual_panels_show_the_fits_residuals(which, sleep_fit, hsb_fit):
    result = {"sleep": sleep_fit, "hsb": hsb_fit}[which]
    figure = mlm.plot_residuals(result)
    factor = list(result.ranef)[0]
    cols = list(result.ranef[factor].columns)
    assert [ax.get_title() for ax in figure.axes] == [
        "Level 1: residuals vs fitted (red: lowess)", "Level 1: normal QQ of residuals",
        *[f"{factor}: normal QQ of {c}" for c in cols]]
    first = figure.axes[0]
    xy = _by_gid(first, "residuals").get_offsets()
    np.testing.assert_allclose(xy[:, 0], result.fitted, rtol=TOL)
    np.testing.assert_allclose(xy[:, 1], result.residuals, rtol=TOL)
    assert first.get_xlabel() == f"fitted {result.design.formula.response}"
    assert first.get_ylabel() == "residual"
    _check_qq(figure.axes[1], result.residuals.to_numpy())
    for ax, c in zip(figure.axes[2:], cols):
        _check_qq(ax, result.ranef[factor][c].to_numpy())
        assert ax.get_ylabel() == f"conditional mode of {c}"
        assert ax.get_xlabel() == "normal quantile"
    assert result.formula in figure.get_suptitle().replace("\n", " ")


def test_residual_grid_with_two_factors_and_five_panels(hsb):
    pastes = mlm.load_dataset("pastes")
    figure = mlm.plot_residuals(fit("strength ~ 1 + (1 | batch/cask)", pastes))
    assert [ax.get_title() for ax in figure.axes][2:] == [
        "batch: normal QQ of (Intercept)", "cask:batch: normal QQ of (Intercept)"]
    three = fit("mathach ~ cses + female + (cses + female | school)", hsb)
    figure = mlm.plot_residuals(three)
    assert len(figure.axes) == 5                    # 2 x 3 grid, the empty sixth removed
    assert figure.axes[4].get_title() == "school: normal QQ of female"
    _check_qq(figure.axes[4], three.ranef["school"]["female"].to_numpy())
