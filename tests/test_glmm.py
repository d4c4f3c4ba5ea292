"""glmer's design, engine identities and bad input (numbers from lme4 are in test_glmer_reference)."""

import numpy as np
import pandas as pd
import pytest
from scipy import special

import mlm
import mlm.glmm.design
from mlm.glmm.engine import GLMMProblem
from mlm.glmm.design import split_glm_formula
from mlm.glmm.family import make_family
from mlm.glmm.fitting import SeparationWarning, glmer

CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp_fit(cbpp):
    return glmer(CBPP_FORMULA, cbpp)


@pytest.fixture(scope="module")
def binary():
    """A 0/1 outcome simulated from a random-intercept logit model (seeded)."""
    rng = np.random.default_rng(14)
    g = np.repeat(np.arange(30), 12)
    x = rng.normal(size=g.size)
    eta = -0.3 + 0.8 * x + rng.normal(scale=0.7, size=30)[g]
    y = (rng.uniform(size=g.size) < special.expit(eta)).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g, "t": rng.integers(1, 5, g.size)})


@pytest.mark.parametrize("formula, expected", [
    ("cbind(k, n - k) ~ x + (1 | g)", ("k ~ x + (1 | g)", ("k", "n - k"), ())),
    ("y ~ x + offset(log(t)) + (1 | g)", ("y ~ x + (1 | g)", None, ("log(t)",))),
    ("y ~ offset(np.log(t)) + x + (1 | g)", ("y ~ x + (1 | g)", None, ("np.log(t)",))),
    ("y ~ x + (1 | g)", ("y ~ x + (1 | g)", None, ())),
])
def test_split_glm_formula(formula, expected):
    assert split_glm_formula(formula) == expected


def test_outcome_codings_agree(binary):
    """0/1, bool, a two-level factor and text give the same fit (second level = success)."""
    base = glmer("y ~ x + (1 | g)", binary)
    variants = {
        "bool": binary.assign(y=binary["y"] == 1),
        "factor": binary.assign(y=pd.Categorical(np.where(binary["y"] == 1, "yes", "no"),
                                                 categories=["no", "yes"])),
        "text": binary.assign(y=np.where(binary["y"] == 1, "pass", "fail")),
    }
    for name, data in variants.items():
        fit = glmer("y ~ x + (1 | g)", data)
        np.testing.assert_allclose(fit.fixef, base.fixef, rtol=1e-6, err_msg=name)
        assert abs(fit.loglik - base.loglik) < 1e-6
    assert glmer("y ~ x + (1 | g)", variants["text"]).success == "pass"


def test_cbind_equals_proportion_with_weights(cbpp, cbpp_fit):
    """lme4's cbpp help page: cbind() and proportions with weights= are the same model."""
    prop = glmer("I(incidence / size) ~ period + (1 | herd)", cbpp, weights="size")
    np.testing.assert_allclose(prop.fixef, cbpp_fit.fixef, rtol=1e-6)
    assert abs(prop.loglik - cbpp_fit.loglik) < 1e-6
    arr = glmer("I(incidence / size) ~ period + (1 | herd)", cbpp, weights=cbpp["size"].to_numpy())
    assert abs(arr.loglik - cbpp_fit.loglik) < 1e-6


def test_offset_in_formula_equals_argument(cbpp):
    a = glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, family="poisson")
    b = glmer("incidence ~ period + (1 | herd)", cbpp, family="poisson", offset=np.log(cbpp["size"]))
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-6)
    new = cbpp.iloc[:3]
    np.testing.assert_allclose(a.predict(new), a.fitted.iloc[:3], rtol=1e-8)
    np.testing.assert_allclose(b.predict(new, offset=np.log(new["size"])), a.fitted.iloc[:3], rtol=1e-6)
    with pytest.raises(mlm.MLMError, match="offset= array: pass offset="):
        b.predict(new)


def test_laplace_is_agq_with_one_node(cbpp):
    """AGQ with one node is the Laplace approximation: same deviance at any point."""
    d = mlm.glmm.design.build_glmm_design(CBPP_FORMULA, cbpp, make_family("binomial"))
    args = (d.y, d.design.X, d.design.pls_terms(), d.family, d.weights, d.offset)
    lap, agq1 = GLMMProblem(*args, nagq=1), GLMMProblem(*args)
    agq1.nagq, agq1._nodes, agq1._logw = 2, np.array([0.0]), np.array([0.0])
    beta = np.array([-1.4, -1.0, -1.1, -1.6])
    for theta in (0.3, 0.64, 1.2):
        assert agq1.deviance([theta], beta) == pytest.approx(lap.deviance([theta], beta), rel=1e-12)


def test_zero_variance_gives_the_glm(cbpp):
    """theta = 0: the deviance is the single-level GLM's -2 log-likelihood (an identity)."""
    d = mlm.glmm.design.build_glmm_design(CBPP_FORMULA, cbpp, make_family("binomial"))
    prob = GLMMProblem(d.y, d.design.X, d.design.pls_terms(), d.family, d.weights, d.offset)
    beta = prob.glm_start
    mu = special.expit(d.design.X @ beta)
    k, n = d.y * d.weights, d.weights
    ll = np.sum(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
                + k * np.log(mu) + (n - k) * np.log1p(-mu))
    assert prob.deviance([0.0], beta) == pytest.approx(-2 * ll, rel=1e-12)


def test_results_shapes_and_names(cbpp_fit):
    fit = cbpp_fit
    assert list(fit.fixef.index) == ["(Intercept)", "period2", "period3", "period4"]
    assert list(fit.coefficients.columns) == ["estimate", "std_error", "df", "statistic", "p_value",
                                              "conf_low", "conf_high"]
    np.testing.assert_allclose(fit.odds_ratios["odds_ratio"], np.exp(fit.fixef))
    assert fit.ranef["herd"].shape == (15, 1) and fit.ranef_sd["herd"].shape == (15, 1)
    np.testing.assert_allclose(fit.coef["herd"]["(Intercept)"],
                               fit.fixef["(Intercept)"] + fit.ranef["herd"]["(Intercept)"])
    np.testing.assert_allclose(fit.predict(type="link"), np.log(fit.fitted / (1 - fit.fitted)))
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * 5)
    assert fit.bic == pytest.approx(-2 * fit.loglik + np.log(56) * 5)
    text = fit.summary()
    for piece in ("Laplace Approximation", "Family: binomial  ( logit )", "Random effects:",
                  "Number of obs: 56, groups:  herd, 15", "Odds ratios"):
        assert piece in text
    with pytest.raises(mlm.MLMError, match="Rate ratios need the log link"):
        fit.rate_ratios


def test_predict_unseen_group_is_population(cbpp_fit, cbpp):
    new = pd.DataFrame({"period": pd.Categorical([1, 1], categories=[1, 2, 3, 4]), "herd": [1, 99],
                        "incidence": [0, 0], "size": [1, 1]})
    link = cbpp_fit.predict(new, type="link")
    assert link.iloc[1] == pytest.approx(cbpp_fit.fixef["(Intercept)"])
    assert link.iloc[0] == pytest.approx(cbpp_fit.coef["herd"].loc[1, "(Intercept)"])
    pop = cbpp_fit.predict(new, include_random=False)
    assert pop.iloc[0] == pytest.approx(special.expit(cbpp_fit.fixef["(Intercept)"]))


def test_residual_types(cbpp_fit):
    fit = cbpp_fit
    mu, y, n = fit.fitted.to_numpy(), fit.gdesign.y, fit.gdesign.weights
    np.testing.assert_allclose(fit.residuals("response"), y - mu)
    np.testing.assert_allclose(fit.residuals("pearson"), (y - mu) * np.sqrt(n / (mu * (1 - mu))))
    with pytest.raises(mlm.MLMError, match="type='raw'"):
        fit.residuals("raw")


def test_caller_data_not_modified(binary):
    data = binary.assign(y=np.where(binary["y"] == 1, "pass", "fail"))
    before = data.copy()
    glmer("y ~ x + (1 | g)", data)
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize("kwargs, message", [
    (dict(formula="y2 ~ x + (1 | g)"), r"binomial outcome 'y2' must be 0/1 (?s:.*)cbind\(y2, n - y2\)"),
    (dict(formula="yp ~ x + (1 | g)"), r"'yp' holds proportions .* no number of trials .* weights="),
    (dict(formula="y2 ~ x + (1 | g)", family="poisson", data_col=("y2", -1)),
     r"Poisson outcome 'y2' must be non-negative whole numbers"),
    (dict(formula="yp ~ x + (1 | g)", family="poisson"), r"Poisson outcome 'yp' must be non-negative whole"),
    (dict(formula="y ~ x + (1 + x | g)", nagq=5), r"nagq=5 .* single scalar random-effects term"),
    (dict(formula="y ~ x + (1 | g)", family="gaussian"), r"Unknown family 'gaussian'"),
    (dict(formula="y ~ x + (1 | g)", link="identity"), r"Unknown link 'identity' for the binomial"),
    (dict(formula="y ~ x + (1 | g)", family="poisson", link="logit"), r"Unknown link 'logit' for the poisson"),
    (dict(formula="y ~ x + (1 | g)", nagq=0), r"nagq must be a whole number"),
    (dict(formula="y3 ~ x + (1 | g)"), r"'y3' has 3 categories"),
    (dict(formula="cbind(y, y - 2) ~ x + (1 | g)"), r"cbind\(y, y - 2\) needs non-negative whole"),
    (dict(formula="cbind(y) ~ x + (1 | g)"), r"cbind\(\) on the left takes two arguments"),
    (dict(formula="y ~ x + (1 | g)", weights=[1, 2]), r"weights= has 2 values but the data has 360"),
    (dict(formula="y ~ x + (1 | g)", offset="nope"), r"offset='nope' is not a column"),
])
def test_bad_input(binary, kwargs, message):
    data = binary.assign(y2=binary["y"] * 2, yp=binary["y"] * 0.5 + 0.25,
                         y3=np.array(["a", "b", "c"] * 120))
    kwargs = dict(kwargs)
    col = kwargs.pop("data_col", None)
    if col is not None:
        data.loc[0, col[0]] = col[1]
    with pytest.raises(mlm.MLMError, match=message):
        glmer(data=data, **kwargs)


def test_separation_is_explained(binary):
    data = binary.assign(flag=(binary["g"] < 3).astype(int))
    data.loc[data["flag"] == 1, "y"] = 0
    with pytest.warns(SeparationWarning, match=r"every row with flag = 1 is one of the failures"):
        fit = glmer("y ~ x + flag + (1 | g)", data)
    assert any("Separation" in m for m in fit.messages())


@pytest.mark.parametrize("formula", ["y ~ x + (x || g)", "y ~ x + (1 + x | g)", "y ~ x + (1 | g)"])
def test_one_factor_path_equals_general_path(binary, formula):
    """The batched per-level structure and the general (nested/crossed) one: same deviance."""
    from mlm.glmm.structure import General

    d = mlm.glmm.design.build_glmm_design(formula, binary, make_family("binomial"))
    args = (d.y, d.design.X, d.design.pls_terms(), d.family, d.weights, d.offset)
    fast, general = GLMMProblem(*args), GLMMProblem(*args)
    general.rs = General(d.design.pls_terms())
    beta = np.array([-0.2, 0.7])
    for theta in ([0.5, 0.2, 0.3], [1.0, -0.4, 0.1], [0.0, 0.0, 0.5]):
        theta = theta[:fast.n_theta]
        assert fast.deviance(theta, beta) == pytest.approx(general.deviance(theta, beta), rel=1e-10)


def test_polars_frame(binary):
    pl = pytest.importorskip("polars")
    a = glmer("y ~ x + (1 | g)", binary)
    b = glmer("y ~ x + (1 | g)", pl.from_pandas(binary))
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)


def test_observation_level_effect_refused_for_binary_rows(binary):
    data = binary.assign(obs=np.arange(len(binary)))
    with pytest.raises(mlm.MLMError, match="as many levels"):
        glmer("y ~ x + (1 | g) + (1 | obs)", data)


def test_agq_counts_note_lme4_constant(cbpp):
    fit = glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp, family="poisson", nagq=5)
    assert any("lme4 leaves them out with nAGQ > 1" in m for m in fit.messages())
    assert "Adaptive Gauss-Hermite Quadrature, nAGQ = 5" in fit.summary()


@pytest.mark.parametrize("name, rows, groups, outcome_levels", [
    ("contraception", 1934, {"district": 60}, ("use", ["N", "Y"])),   # mlmRev::Contraception
    ("cbpp", 56, {"herd": 15}, ("period", [1, 2, 3, 4])),              # lme4::cbpp
])
def test_bundled_glmm_datasets(name, rows, groups, outcome_levels):
    data = mlm.load_dataset(name)
    assert len(data) == rows
    for g, n in groups.items():
        assert data[g].nunique() == n
    col, levels = outcome_levels
    assert list(data[col].cat.categories) == levels


def test_missing_offset_or_failures_drop_rows_with_a_word(cbpp):
    data = cbpp.astype({"size": float})
    data.loc[3, "size"] = np.nan
    with pytest.warns(mlm.MissingDataWarning, match=r"1 of 56 rows dropped .*offset\(log\(size\)\): 1"):
        fit = glmer("incidence ~ period + offset(log(size)) + (1 | herd)", data, family="poisson")
    assert (fit.nobs, fit.nobs_dropped) == (55, 1)
    assert 3 not in fit.fitted.index
    with pytest.warns(mlm.MissingDataWarning, match=r"size - incidence \(failures in cbind\): 1"):
        glmer(CBPP_FORMULA, data)


def test_comparison_on_the_left_is_a_logical_outcome(binary):
    data = binary.assign(score=np.where(binary["y"] == 1, 7.0, 2.0))
    a = glmer("I(score > 5) ~ x + (1 | g)", data)
    b = glmer("y ~ x + (1 | g)", binary)
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=1e-8)
    assert a.formula == "I(score > 5) ~ x + (1 | g)"
