## Reference numbers for the comparison toolkit on glmer fits (mlm/toolkit/comparison.py,
## mlm/toolkit/glm_comparison.py) and for the bootstrap check of glmer fits.
## Run from anywhere:  Rscript tests/reference/glmm_compare.R
## Writes tests/reference/glmm_compare.json (R 4.2.2, lme4 1.1.31).
##
## 1. anova(m0, m1, ...) of nested glmer fits: lme4 compares the (Laplace or AGQ)
##    log-likelihoods as they are; no refit, glmer is maximum likelihood.
## 2. The single-level GLM (glm) beside the glmer fit: coefficients, SEs, logLik, and the LR
##    test of the random part computed from the two logLiks (anova(glmer, glm) does not work in
##    R). One variance parameter: p = 0.5 * pchisq(LR, 1, lower = FALSE) (chi-bar-square 01);
##    more: pchisq(LR, k, lower = FALSE) (conservative), as mlm.compare_ols does for lmer fits.
## 3. Wald SEs of the model whose parametric bootstrap the tests check.
## 4. confint(method = "Wald", oldNames = FALSE) of a glmer fit: lme4's row names and intervals.
##
## Every glmer fit uses control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10), as
## tests/reference/glmer.R does: lme4's default PIRLS tolerance leaves Laplace log-likelihoods
## up to 4e-4 low (field notes). The default fits' anova tables are recorded beside
## (`*_default_control`) to show the size of that difference.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
contraception <- load_data("contraception")
cbpp <- load_data("cbpp")
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)
out <- list(r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")))

anova_rows <- function(a) list(models = rownames(a), npar = a$npar, aic = a$AIC, bic = a$BIC,
                               loglik = a$logLik, deviance = a$deviance, chisq = a$Chisq,
                               df = a$Df, p_value = a[["Pr(>Chisq)"]])

## ---------------------------------------------------------------- 1. anova of glmer fits
contra <- list(
  m0 = "use ~ age + I(age^2) + urban + (1 | district)",
  m1 = "use ~ age + I(age^2) + urban + livch + (1 | district)",
  m2 = "use ~ age + I(age^2) + urban + livch + (urban | district)")
fits <- lapply(contra, function(f) glmer(as.formula(f), contraception, binomial, control = ctrl))
a <- anova(fits$m0, fits$m1, fits$m2)
out$anova_contraception <- c(list(formulas = unname(contra), r_call = "anova(m0, m1, m2)"),
                             anova_rows(a))
fits_d <- lapply(contra, function(f) glmer(as.formula(f), contraception, binomial))
out$anova_contraception_default_control <- anova_rows(anova(fits_d$m0, fits_d$m1, fits_d$m2))

agq <- lapply(contra[1:2], function(f) glmer(as.formula(f), contraception, binomial, nAGQ = 9,
                                             control = ctrl))
out$anova_contraception_agq9 <- c(list(formulas = unname(contra[1:2]), nagq = 9,
                                       r_call = "anova(m0, m1), nAGQ = 9"),
                                  anova_rows(anova(agq$m0, agq$m1)))

cb <- list(c0 = "cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
           c1 = "cbind(incidence, size - incidence) ~ period + (1 | herd)")
cfits <- lapply(cb, function(f) glmer(as.formula(f), cbpp, binomial, control = ctrl))
out$anova_cbpp <- c(list(formulas = unname(cb), r_call = "anova(c0, c1)"),
                    anova_rows(anova(cfits$c0, cfits$c1)))

po <- list(p0 = "incidence ~ 1 + offset(log(size)) + (1 | herd)",
           p1 = "incidence ~ period + offset(log(size)) + (1 | herd)")
pfits <- lapply(po, function(f) glmer(as.formula(f), cbpp, poisson, control = ctrl))
out$anova_poisson <- c(list(formulas = unname(po), r_call = "anova(p0, p1), family = poisson"),
                       anova_rows(anova(pfits$p0, pfits$p1)))

## ---------------------------------------------------------------- 2. GLM beside glmer
glm_case <- function(id, formula, glm_formula, data, family, link, k, weights = NULL) {
  fam <- get(family)(link = link)
  if (is.null(weights)) {
    m <- glmer(as.formula(formula), data, fam, control = ctrl)
    g <- glm(as.formula(glm_formula), fam, data)
  } else {
    data$.w <- data[[weights]]
    m <- glmer(as.formula(formula), data, fam, weights = .w, control = ctrl)
    g <- glm(as.formula(glm_formula), fam, data, weights = .w)
  }
  lr <- 2 * (as.numeric(logLik(m)) - as.numeric(logLik(g)))
  p <- if (k == 1) 0.5 * pchisq(lr, 1, lower.tail = FALSE) else pchisq(lr, k, lower.tail = FALSE)
  list(id = id, formula = formula, family = family, link = link, weights = weights,
       r_call = sprintf("glm(%s, %s(link = '%s')) beside glmer(%s); LR = 2 (logLik(glmer) - logLik(glm))",
                        glm_formula, family, link, formula),
       terms = names(coef(g)),
       glm_estimate = unname(coef(g)), glm_std_error = unname(sqrt(diag(vcov(g)))),
       glm_loglik = as.numeric(logLik(g)),
       mlm_estimate = unname(fixef(m)), mlm_std_error = unname(sqrt(diag(as.matrix(vcov(m))))),
       mlm_loglik = as.numeric(logLik(m)), n_variance_parameters = k,
       lr_statistic = lr, lr_df = k, lr_p_value = p,
       lr_distribution = if (k == 1) "chibar2(01)" else sprintf("chi2(%d)", k))
}
cf <- "use ~ age + I(age^2) + urban + livch"
out$glm_vs_glmer <- list(
  glm_case("contra_logit", paste(cf, "+ (1 | district)"), cf, contraception, "binomial", "logit", 1),
  glm_case("contra_probit", paste(cf, "+ (1 | district)"), cf, contraception, "binomial", "probit", 1),
  glm_case("contra_slope", paste(cf, "+ (urban | district)"), cf, contraception, "binomial", "logit", 3),
  glm_case("cbpp_cbind", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
           "cbind(incidence, size - incidence) ~ period", cbpp, "binomial", "logit", 1),
  glm_case("cbpp_proportion", "incidence / size ~ period + (1 | herd)", "incidence / size ~ period",
           cbpp, "binomial", "logit", 1, weights = "size"),
  glm_case("cbpp_poisson", "incidence ~ period + offset(log(size)) + (1 | herd)",
           "incidence ~ period + offset(log(size))", cbpp, "poisson", "log", 1)
)

## ---------------------------------------------------------------- 3. Wald SEs for the bootstrap check
bf <- "use ~ urban + (1 | district)"
bm <- glmer(as.formula(bf), contraception, binomial, control = ctrl)
out$bootstrap_model <- list(formula = bf, r_call = "sqrt(diag(vcov(glmer(use ~ urban + (1 | district), binomial))))",
                            terms = names(fixef(bm)), estimate = unname(fixef(bm)),
                            std_error = unname(sqrt(diag(as.matrix(vcov(bm))))),
                            sd_district = attr(VarCorr(bm)$district, "stddev")[[1]])

## ---------------------------------------------------------------- 4. confint names and Wald intervals
sm <- glmer(use ~ urban + (urban | district), contraception, binomial, control = ctrl)
ci <- confint(sm, method = "Wald", oldNames = FALSE)
out$confint_wald <- list(formula = "use ~ urban + (urban | district)",
                         r_call = "confint(m, method = 'Wald', oldNames = FALSE)",
                         parameters = rownames(ci), conf_low = unname(ci[, 1]),
                         conf_high = unname(ci[, 2]))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null"),
           file.path(here, "glmm_compare.json"))
cat("wrote", file.path(here, "glmm_compare.json"), "\n")
