## Reference numbers for mlm's variance-partition toolkit (mlm/variance.py):
## ICCs, Nakagawa R2, R&B / S&B explained variance, design effect, HLM reliability,
## and the Stata-style (logit delta-method) ICC interval.
##
## Reads the bundled CSV files, so R and Python fit exactly the same data, and writes
## toolkit_variance.json next to this script.  Run:  Rscript tests/reference/toolkit_variance.R
##
## What comes from where:
## * performance::icc() / performance::r2_nakagawa(): performance's own numbers.
## * R&B proportional reduction, S&B R2, design effect, HLM reliability, the Johnson
##   (2014) R2 of the (Days || Subject) model: the published formulas evaluated in R on
##   lme4's variance components (R's arithmetic, not mlm's).
## * The ICC interval: Stata's estat icc method (logit-scale delta method) computed in R,
##   with the asymptotic covariance of (theta, sigma) from lmerTest
##   (as_lmerModLmerTest(m)@vcov_varpar) and the gradient of the ICC in (theta, sigma)
##   by numDeriv::grad.  It is an R computation of Stata's formula, not Stata output
##   (Stata fits by ML by default; these are REML fits, as lme4's default).
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(performance); library(jsonlite); library(numDeriv)
})

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
hsb <- load_data("hsb")
sleepstudy <- load_data("sleepstudy")
chem97 <- load_data("chem97")

## ------------------------------------------------------------------ helpers
## Template T of each term (lme4's order) from theta: lower triangle filled by column.
templates <- function(m, theta) {
  cnms <- getME(m, "cnms")
  out <- list(); pos <- 0
  for (i in seq_along(cnms)) {
    k <- length(cnms[[i]])
    T <- matrix(0, k, k)
    for (j in seq_len(k)) for (r in j:k) { pos <- pos + 1; T[r, j] <- theta[pos] }
    out[[i]] <- T
  }
  out
}
## V of each term: mean over rows of z_i' (sigma^2 T T') z_i (Johnson 2014; Nakagawa's V_r).
term_variances <- function(m, theta, sigma) {
  Ts <- templates(m, theta)
  mm <- getME(m, "mmList")
  vapply(seq_along(Ts), function(i) {
    S <- sigma^2 * Ts[[i]] %*% t(Ts[[i]])
    Z <- as.matrix(mm[[i]])
    mean(rowSums((Z %*% S) * Z))
  }, numeric(1))
}
factor_of_term <- function(m) sub("\\.[0-9]+$", "", names(getME(m, "cnms")))
## Per-factor V (terms on the same factor summed), named by factor.
factor_variances <- function(m, theta, sigma) {
  v <- term_variances(m, theta, sigma)
  tapply(v, factor(factor_of_term(m), levels = unique(factor_of_term(m))), sum)
}
## Stata's interval: logit(rho) +- z SE(rho) / (rho (1 - rho)), SE by the delta method.
stata_ci <- function(m, rho_fun, level = 0.95) {
  mt <- as_lmerModLmerTest(m)
  A <- mt@vcov_varpar
  par <- c(getME(m, "theta"), sigma(m))
  rho <- rho_fun(par)
  g <- numDeriv::grad(rho_fun, par)
  se <- sqrt(drop(t(g) %*% A %*% g))
  z <- qnorm(1 - (1 - level) / 2)
  half <- z * se / (rho * (1 - rho))
  lo <- qlogis(rho) - half; hi <- qlogis(rho) + half
  list(rho = rho, se = se, conf_low = plogis(lo), conf_high = plogis(hi))
}
rho_factor <- function(m, f, with = character(0)) {
  function(par) {
    theta <- par[-length(par)]; sigma <- par[length(par)]
    v <- factor_variances(m, theta, sigma)
    sum(v[c(f, with)]) / (sum(v) + sigma^2)
  }
}
vc <- function(m) {
  d <- as.data.frame(VarCorr(m))
  d$var1[is.na(d$var1)] <- ""; d$var2[is.na(d$var2)] <- ""
  d
}
intercept_var <- function(m, f) {
  d <- as.data.frame(VarCorr(m))
  d$vcov[d$grp == f & d$var1 == "(Intercept)" & is.na(d$var2)]
}
hlm_reliability <- function(m, f) {
  ## HLM: lambda_j = tau00 / (tau00 + sigma2 / n_j), mean over groups (n_j = rows in group j)
  tau <- intercept_var(m, f); s2 <- sigma(m)^2
  n_j <- as.numeric(table(getME(m, "flist")[[f]]))
  mean(tau / (tau + s2 / n_j))
}
nak <- function(m) {
  r <- performance::r2_nakagawa(m)
  list(marginal = unname(r$R2_marginal), conditional = unname(r$R2_conditional))
}
icc_perf <- function(m) {
  r <- performance::icc(m)
  list(adjusted = unname(r$ICC_adjusted), unadjusted = unname(r$ICC_unadjusted))
}
icc_by_group <- function(m) {
  r <- suppressWarnings(performance::icc(m, by_group = TRUE))
  setNames(as.list(r$ICC), r$Group)
}
fixed_var <- function(m) var(drop(getME(m, "X") %*% fixef(m)))   # sample variance (n - 1)
cases <- list()

## ------------------------------------------------------------------ HSB null model
m0 <- lmer(mathach ~ 1 + (1 | school), data = hsb, REML = TRUE)
tau0 <- intercept_var(m0, "school"); s20 <- sigma(m0)^2
nbar <- nrow(hsb) / nlevels(hsb$school)
ci0 <- stata_ci(m0, rho_factor(m0, "school"))
cases$hsb_null <- list(
  r_call = "lmer(mathach ~ 1 + (1 | school), data = hsb, REML = TRUE)",
  formula = "mathach ~ 1 + (1 | school)", data = "hsb",
  varcorr = vc(m0), tau00 = tau0, sigma2 = s20,
  icc = icc_perf(m0), icc_by_group = icc_by_group(m0),
  r2_nakagawa = nak(m0),
  design_effect = list(school = 1 + (nbar - 1) * tau0 / (tau0 + s20)),
  reliability = list(school = hlm_reliability(m0, "school")),
  stata_ci = list(school = ci0),
  vcov_varpar = as_lmerModLmerTest(m0)@vcov_varpar)

## ------------------------------------------------------------------ chem97 three levels
m3 <- lmer(score ~ 1 + (1 | lea/school), data = chem97, REML = TRUE)
v3 <- factor_variances(m3, getME(m3, "theta"), sigma(m3))
tot3 <- sum(v3) + sigma(m3)^2
sizes <- function(f) nrow(chem97) / nlevels(getME(m3, "flist")[[f]])
cum_school <- (v3[["school:lea"]] + v3[["lea"]]) / tot3
cases$chem97_nested <- list(
  r_call = "lmer(score ~ 1 + (1 | lea/school), data = chem97, REML = TRUE)",
  formula = "score ~ 1 + (1 | lea/school)", data = "chem97",
  varcorr = vc(m3),
  icc = icc_perf(m3), icc_by_group = icc_by_group(m3),
  icc_cumulative = list("school:lea" = cum_school, lea = v3[["lea"]] / tot3),
  design_effect = list("school:lea" = 1 + (sizes("school:lea") - 1) * cum_school,
                       lea = 1 + (sizes("lea") - 1) * v3[["lea"]] / tot3),
  reliability = list("school:lea" = hlm_reliability(m3, "school:lea"),
                     lea = hlm_reliability(m3, "lea")),
  stata_ci = list("school:lea" = stata_ci(m3, rho_factor(m3, "school:lea")),
                  lea = stata_ci(m3, rho_factor(m3, "lea"))),
  stata_ci_cumulative = list("school:lea" = stata_ci(m3, rho_factor(m3, "school:lea", "lea")),
                             lea = stata_ci(m3, rho_factor(m3, "lea"))))

## ------------------------------------------------------------------ HSB with ses
m1 <- lmer(mathach ~ ses + (1 | school), data = hsb, REML = TRUE)
tau1 <- intercept_var(m1, "school"); s21 <- sigma(m1)^2
n_j <- as.numeric(table(hsb$school)); n_h <- length(n_j) / sum(1 / n_j)
cases$hsb_ses <- list(
  r_call = "lmer(mathach ~ ses + (1 | school), data = hsb, REML = TRUE)",
  formula = "mathach ~ ses + (1 | school)", data = "hsb",
  varcorr = vc(m1), tau00 = tau1, sigma2 = s21, fixed_var = fixed_var(m1),
  icc = icc_perf(m1),
  r2_nakagawa = nak(m1),
  stata_ci = list(school = stata_ci(m1, rho_factor(m1, "school"))),
  baseline = "hsb_null",
  harmonic_mean_group_size = n_h,
  prv = list(level1 = 1 - s21 / s20, school = 1 - tau1 / tau0),
  snijders_bosker = list(level1 = 1 - (s21 + tau1) / (s20 + tau0),
                         level2 = 1 - (s21 / n_h + tau1) / (s20 / n_h + tau0)))

## ------------------------------------------------------------------ HSB random slope
m2 <- lmer(mathach ~ ses + (ses | school), data = hsb, REML = TRUE)
cases$hsb_slope <- list(
  r_call = "lmer(mathach ~ ses + (ses | school), data = hsb, REML = TRUE)",
  formula = "mathach ~ ses + (ses | school)", data = "hsb",
  varcorr = vc(m2), fixed_var = fixed_var(m2),
  random_var = sum(term_variances(m2, getME(m2, "theta"), sigma(m2))),
  icc = icc_perf(m2), r2_nakagawa = nak(m2),
  stata_ci = list(school = stata_ci(m2, rho_factor(m2, "school"))))

## ------------------------------------------------------------------ sleepstudy
ms <- lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = TRUE)
cases$sleep_slope <- list(
  r_call = "lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = TRUE)",
  formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
  varcorr = vc(ms), fixed_var = fixed_var(ms),
  random_var = sum(term_variances(ms, getME(ms, "theta"), sigma(ms))),
  icc = icc_perf(ms), r2_nakagawa = nak(ms),
  stata_ci = list(Subject = stata_ci(ms, rho_factor(ms, "Subject"))))

## (Days || Subject): Johnson's formula by hand on lme4's variance components.
## V_r = tau00 + tau11 * mean(Days^2)  (uncorrelated: no covariance term), i.e. the mean
## over rows of z_i' T z_i with T = diag(tau00, tau11).  performance 0.10.2 leaves the
## slope variance out; its numbers are recorded only to document that quirk.
mu <- lmer(Reaction ~ Days + (Days || Subject), data = sleepstudy, REML = TRUE)
vu <- as.data.frame(VarCorr(mu))
tau00u <- vu$vcov[vu$var1 == "(Intercept)" & !is.na(vu$var1)]
tau11u <- vu$vcov[vu$var1 == "Days" & !is.na(vu$var1)]
s2u <- sigma(mu)^2
vfu <- fixed_var(mu)
vru <- tau00u + tau11u * mean(sleepstudy$Days^2)
cases$sleep_uncorrelated <- list(
  r_call = "lmer(Reaction ~ Days + (Days || Subject), data = sleepstudy, REML = TRUE)",
  formula = "Reaction ~ Days + (Days || Subject)", data = "sleepstudy",
  varcorr = vc(mu), fixed_var = vfu, random_var = vru, sigma2 = s2u,
  johnson = list(marginal = vfu / (vfu + vru + s2u), conditional = (vfu + vru) / (vfu + vru + s2u),
                 icc_adjusted = vru / (vru + s2u)),
  performance_0_10_2_quirk = list(r2 = suppressWarnings(nak(mu)),
                                  icc = suppressWarnings(icc_perf(mu))))

out <- list(
  generated_by = "tests/reference/toolkit_variance.R",
  r_version = R.version.string,
  packages = list(lme4 = as.character(packageVersion("lme4")),
                  performance = as.character(packageVersion("performance")),
                  lmerTest = as.character(packageVersion("lmerTest")),
                  numDeriv = as.character(packageVersion("numDeriv"))),
  cases = cases)
writeLines(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(script_dir, "toolkit_variance.json"))
cat("wrote", file.path(script_dir, "toolkit_variance.json"), "\n")
