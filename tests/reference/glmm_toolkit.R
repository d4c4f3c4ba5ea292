## Reference numbers for the GLMM variance toolkit: mlm.icc, mlm.r2 and
## mlm.check_overdispersion on glmer fits, against performance::icc, r2_nakagawa and
## check_overdispersion (performance 0.10.2, insight 0.19.0, lme4 1.1.31, R 4.2.2, from
## Debian's packages) and against Nakagawa, Johnson & Schielzeth (2017) evaluated by hand
## on lme4's estimates (what newer insight versions compute for Poisson fits).
## Run from anywhere:  Rscript tests/reference/glmm_toolkit.R
## Writes tests/reference/glmm_toolkit.json; the simulated counts go to
## tests/reference/glmm_toolkit_counts.csv (seed 20261126), read by R and by the tests.
##
## Every fit: glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10), as glmer.R (lme4's
## default PIRLS tolerance leaves Laplace estimates slightly off the optimum), then polished
## by nloptwrap from there (see fit_one).
##
## What performance 0.10.2 / insight 0.19.0 compute (read from their source):
##   V_f  = var(X beta) (sample variance, n - 1; offset not included)
##   V_r  = sum over random-effect terms of mean_i z_i' Sigma z_i (Johnson 2014), except
##          a term whose factor has as many levels as rows (an observation-level random
##          effect): its variance goes to V_dispersion, part of the residual.
##   V_distribution: pi^2/3 (logit), 1 (probit), pi^2/6 (cloglog); Poisson (log link):
##          log1p(1 / lambda), lambda = exp(beta0 of the null model y ~ 1 + <same random
##          terms>, refitted with the same offset).
##   icc adjusted = V_r / (V_r + V_res); unadjusted = V_r / (V_f + V_r + V_res);
##   r2 marginal = V_f / (V_f + V_r + V_res); conditional = (V_f + V_r) / (same);
##   V_res = V_distribution + V_dispersion. A singular fit (some theta on its lower bound
##   below 1e-5) gives NA for icc and the conditional R2.
##   check_overdispersion (merMod): Pearson chi-square = sum of squared Pearson residuals,
##   df = df.residual (nobs - number of parameters), p = upper chi-square tail.
## Newer insight (>= 0.20, performance >= 0.12) uses lambda = exp(beta0 + V_r0 / 2), V_r0
## the null model's random-intercept variance (Nakagawa et al. 2017, Suppl. 2), and offers
## approximation = "delta" (1 / lambda) and "trigamma" (trigamma(lambda)); those are
## evaluated here by hand as `expected_*`.
suppressPackageStartupMessages({ library(lme4); library(performance); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
contraception <- load_data("contraception")
cbpp <- load_data("cbpp")
cbpp$obs <- factor(seq_len(nrow(cbpp)))

## Simulated counts: 40 sites x 12 visits, an exposure, a covariate x with a random slope
## by site, and a crossed factor (observer, 6 levels).
set.seed(20261126)
n_site <- 40; n_visit <- 12
counts <- data.frame(site = rep(seq_len(n_site), each = n_visit),
                     observer = sample(seq_len(6), n_site * n_visit, replace = TRUE),
                     x = round(rnorm(n_site * n_visit), 3),
                     exposure = round(runif(n_site * n_visit, 0.5, 3), 3))
b0 <- rnorm(n_site, 0, 0.5); b1 <- rnorm(n_site, 0, 0.3); c0 <- rnorm(6, 0, 0.3)
eta <- 1.2 + 0.4 * counts$x + b0[counts$site] + b1[counts$site] * counts$x +
  c0[counts$observer] + log(counts$exposure)
counts$y <- rpois(nrow(counts), exp(eta))
write.csv(counts, file.path(here, "glmm_toolkit_counts.csv"), row.names = FALSE)
counts <- read.csv(file.path(here, "glmm_toolkit_counts.csv"))
counts$site <- factor(counts$site); counts$observer <- factor(counts$observer)
counts$obs <- factor(seq_len(nrow(counts)))

data <- list(contraception = contraception, cbpp = cbpp, counts = counts)
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)
contra_fixed <- "use ~ age + I(age^2) + urban + livch"
cases <- list(
  list(id = "contra_intercept", data = "contraception", family = "binomial", link = "logit",
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_slope", data = "contraception", family = "binomial", link = "logit",
       formula = paste(contra_fixed, "+ (urban | district)")),
  list(id = "contra_probit", data = "contraception", family = "binomial", link = "probit",
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_cloglog", data = "contraception", family = "binomial", link = "cloglog",
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_probit_slope", data = "contraception", family = "binomial", link = "probit",
       formula = paste(contra_fixed, "+ (urban | district)")),
  list(id = "contra_nested", data = "contraception", family = "binomial", link = "logit",
       formula = paste(contra_fixed, "+ (1 | district/urban)")),
  list(id = "contra_crossed", data = "contraception", family = "binomial", link = "logit",
       formula = "use ~ age + I(age^2) + urban + (1 | district) + (1 | livch)"),
  list(id = "contra_uncorrelated", data = "contraception", family = "binomial", link = "logit",
       formula = paste(contra_fixed, "+ (age || district)")),
  ## singular: urban is a fixed effect, so its random intercept's variance is 0
  list(id = "contra_singular", data = "contraception", family = "binomial", link = "logit",
       formula = paste(contra_fixed, "+ (1 | district) + (1 | urban)")),
  list(id = "cbpp_cbind", data = "cbpp", family = "binomial", link = "logit",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(id = "cbpp_cbind_olre", data = "cbpp", family = "binomial", link = "logit",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs)"),
  list(id = "cbpp_proportion", data = "cbpp", family = "binomial", link = "logit",
       formula = "incidence / size ~ period + (1 | herd)", weights = "size"),
  list(id = "cbpp_poisson_offset", data = "cbpp", family = "poisson", link = "log",
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)"),
  list(id = "cbpp_poisson_olre", data = "cbpp", family = "poisson", link = "log",
       formula = "incidence ~ period + offset(log(size)) + (1 | herd) + (1 | obs)"),
  list(id = "counts_slope", data = "counts", family = "poisson", link = "log",
       formula = "y ~ x + offset(log(exposure)) + (x | site)"),
  list(id = "counts_crossed", data = "counts", family = "poisson", link = "log",
       formula = "y ~ x + offset(log(exposure)) + (1 | site) + (1 | observer)"),
  list(id = "counts_intercept", data = "counts", family = "poisson", link = "log",
       formula = "y ~ x + (1 | site)")
)

## lme4's bobyqa can stop short of the optimum (contraception: 8e-5 log-likelihood units,
## a probit random-slope model: 8e-3); every fit is therefore polished from lme4's answer by
## nloptwrap's BOBYQA with tight tolerances, and the better of the two is kept.
polish <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10,
                       optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12,
                                      ftol_rel = 1e-15, maxeval = 1e5))
fit_one <- function(c, formula = c$formula) {
  fam <- get(c$family)(link = c$link)
  d <- data[[c$data]]
  if (!is.null(c$weights)) d$.w <- d[[c$weights]]
  go <- function(control, start = NULL) {
    if (is.null(c$weights)) glmer(as.formula(formula), d, family = fam, control = control, start = start)
    else glmer(as.formula(formula), d, family = fam, control = control, start = start, weights = .w)
  }
  m <- go(ctrl)
  m2 <- suppressWarnings(go(polish, list(theta = getME(m, "theta"), fixef = fixef(m))))
  if (as.numeric(logLik(m2)) > as.numeric(logLik(m))) {
    ## insight's null_model() refits through update(): without this start (its fixef
    ## would not fit the intercept-only model)
    m2@call$start <- NULL
    attr(m2, "polished") <- as.numeric(logLik(m2)) - as.numeric(logLik(m))
    m2
  } else {
    attr(m, "polished") <- 0
    m
  }
}
num <- function(x) if (is.null(x) || length(x) == 0 || all(is.na(x))) NA else as.numeric(x)

## Johnson's V of each term from lme4's VarCorr and the term's own model columns
## (getME(m, "mmList")): V = mean_i z_i' Sigma z_i; an uncorrelated (x || g) slope counts.
johnson <- function(m) {
  vc <- VarCorr(m)
  mm <- getME(m, "mmList")
  fl <- getME(m, "flist")
  n <- nobs(m)
  out <- list()
  for (t in seq_along(vc)) {
    nm <- names(vc)[t]
    S <- as.matrix(vc[[t]])
    Z <- as.matrix(mm[[t]])
    stopifnot(identical(colnames(Z), colnames(S)))
    v <- sum(rowSums((Z %*% S) * Z)) / n
    g <- sub("\\.[0-9]+$", "", nm)
    out[[nm]] <- list(group = g, variance = v, observation_level = nlevels(fl[[g]]) == n)
  }
  out
}

out <- lapply(cases, function(c) {
  m <- fit_one(c)
  c$r_call <- sprintf("glmer(%s, data = %s, family = %s(link = \"%s\")%s, control = glmerControl(optimizer = \"bobyqa\", tolPwrss = 1e-10))",
                      c$formula, c$data, c$family, c$link,
                      if (is.null(c$weights)) "" else sprintf(", weights = %s", c$weights))
  c$loglik <- as.numeric(logLik(m))
  c$loglik_gain_by_polishing <- attr(m, "polished")
  c$nobs <- nobs(m)
  c$singular <- isSingular(m, tol = 1e-5)
  vars <- suppressWarnings(insight::get_variance(m, verbose = FALSE))
  c$performance <- list(
    icc_call = "performance::icc(m)", r2_call = "performance::r2_nakagawa(m)",
    var_fixed = num(vars$var.fixed), var_random = num(vars$var.random),
    var_distribution = num(vars$var.distribution), var_dispersion = num(vars$var.dispersion),
    var_residual = num(vars$var.residual))
  ic <- suppressWarnings(icc(m))
  c$performance$icc_adjusted <- if (is.data.frame(ic)) num(ic$ICC_adjusted) else NA
  c$performance$icc_unadjusted <- if (is.data.frame(ic)) num(ic$ICC_unadjusted) else NA
  r2 <- suppressWarnings(r2_nakagawa(m))
  c$performance$r2_marginal <- if (is.list(r2)) num(r2$R2_marginal) else NA
  c$performance$r2_conditional <- if (is.list(r2)) num(r2$R2_conditional) else NA
  ## the formulas by hand on lme4's estimates
  terms <- johnson(m)
  vf <- var(as.vector(getME(m, "X") %*% fixef(m)))
  obs <- vapply(terms, `[[`, TRUE, "observation_level")
  vr <- sum(vapply(terms[!obs], `[[`, 0, "variance"))
  vdisp <- sum(vapply(terms[obs], `[[`, 0, "variance"))
  by_term <- lapply(terms, function(t) t)
  c$hand <- list(var_fixed = vf, var_random = vr, var_dispersion = vdisp,
                 terms = unname(lapply(names(terms), function(nm)
                   list(term = nm, group = terms[[nm]]$group, variance = terms[[nm]]$variance,
                        observation_level = terms[[nm]]$observation_level))))
  if (c$family == "binomial") {
    vd <- switch(c$link, logit = pi^2 / 3, probit = 1, cloglog = pi^2 / 6)
    c$hand$var_distribution <- vd
  } else {
    ## the null model: the same random terms and offset, intercept only
    rhs <- paste(c("1", if (grepl("offset\\(", c$formula)) regmatches(c$formula, regexpr("offset\\([^+]*\\)\\)", c$formula)),
                   paste0("(", vapply(findbars(as.formula(c$formula)), deparse, ""), ")")), collapse = " + ")
    resp <- sub("~.*", "", c$formula)
    f0 <- paste(resp, "~", rhs)
    m0 <- fit_one(c, f0)
    b0 <- unname(fixef(m0)[1])
    t0 <- johnson(m0)
    obs0 <- vapply(t0, `[[`, TRUE, "observation_level")
    ## newer insight: the null model's random variance from its intercept columns only
    v0 <- sum(vapply(names(t0)[!obs0], function(nm) VarCorr(m0)[[nm]][1, 1], 0))
    lam <- exp(b0); lam_e <- exp(b0 + 0.5 * v0)
    c$hand$null_formula <- f0
    c$hand$null_intercept <- b0
    c$hand$null_random_intercept_variance <- v0
    c$hand$var_distribution <- log1p(1 / lam)
    c$hand$expected <- list(lambda = lam_e, lognormal = log1p(1 / lam_e), delta = 1 / lam_e,
                            trigamma = trigamma(lam_e))
    c$hand$intercept_delta <- 1 / lam
    c$hand$intercept_trigamma <- trigamma(lam)
  }
  if (c$family == "poisson" || !is.null(c$weights) || grepl("cbind", c$formula)) {
    od <- check_overdispersion(m)
    c$overdispersion <- list(call = "performance::check_overdispersion(m)",
                             chisq = od$chisq_statistic, ratio = od$dispersion_ratio,
                             df = od$residual_df, p_value = od$p_value)
  }
  c
})
names(out) <- vapply(cases, `[[`, "", "id")
## performance 0.10.2's merMod method does not refuse a 0/1 (Bernoulli) glmer fit: its
## is_bernoulli test looks only at glm objects. Its glm method refuses them.
mb <- fit_one(cases[[1]])
odb <- check_overdispersion(mb)
out$bernoulli_mermod <- list(call = "check_overdispersion(glmer(use ~ ... + (1 | district)))",
                             chisq = odb$chisq_statistic, ratio = odb$dispersion_ratio)
gb <- glm(use ~ age, contraception, family = binomial)
out$bernoulli_glm_error <- tryCatch({ check_overdispersion(gb); NA },
                                    error = function(e) conditionMessage(e))
writeLines(toJSON(list(cases = out), auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null", null = "null"),
           file.path(here, "glmm_toolkit.json"))
cat("wrote", file.path(here, "glmm_toolkit.json"), "\n")
