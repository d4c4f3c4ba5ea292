## Reference fits at and near the boundary (a variance estimated at or close to zero), where
## glmer's gradient-based optimiser must move off a zero variance or stay there (issue 14,
## glmer speed). Data: glmer_boundary.csv beside this script, simulated once in Python with
## numpy's default_rng(7): 60 groups of 20, x ~ N(0, 1);
##   y1: logit = -0.2 + 0.7 x + b0 (SD 0.8), no slope variance;
##   y2: logit = 0.3 + 0.5 x, no group variance at all;
##   y3: logit = 0.1 + 0.4 x + b0 (SD 0.6) + b1 x (SD 0.3);
##   c:  Poisson, log rate = 0.5 + 0.3 x + b0 (SD 0.01).
## Run from anywhere:  Rscript tests/reference/glmer_boundary.R  -> glmer_boundary.json
## lme4 with bobyqa and tolPwrss = 1e-10 (its default PIRLS tolerance stops short: field notes),
## and glmmTMB; the better log-likelihood of the two is `loglik_best`.
suppressPackageStartupMessages({ library(lme4); library(jsonlite); library(glmmTMB) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
d <- read.csv(file.path(here, "glmer_boundary.csv"))
d$g <- factor(d$g)
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)
cases <- list(
  slope_zero = list(formula = "y1 ~ x + (x | g)", family = "binomial"),
  slope_zero_uncorrelated = list(formula = "y1 ~ x + (x || g)", family = "binomial"),
  intercept_zero = list(formula = "y2 ~ x + (1 | g)", family = "binomial"),
  both_small = list(formula = "y2 ~ x + (x | g)", family = "binomial"),
  interior = list(formula = "y3 ~ x + (x | g)", family = "binomial"),
  poisson_small = list(formula = "c ~ x + (x | g)", family = "poisson"),
  poisson_zero = list(formula = "c ~ x + (1 | g)", family = "poisson")
)
tmb_vcov <- function(t) {  # the order of as.data.frame(VarCorr(m)): each term's variances, then covariances
  unlist(lapply(VarCorr(t)$cond, function(S) c(diag(S), S[lower.tri(S)])), use.names = FALSE)
}
out <- list()
for (id in names(cases)) {
  cs <- cases[[id]]
  fam <- get(cs$family)()
  m <- suppressWarnings(suppressMessages(glmer(as.formula(cs$formula), d, family = fam, control = ctrl)))
  t <- suppressWarnings(glmmTMB(as.formula(cs$formula), d, family = fam))
  vc <- as.data.frame(VarCorr(m))
  out[[id]] <- list(
    formula = cs$formula, family = cs$family,
    r_call = sprintf("glmer(%s, d, family = %s, control = glmerControl(optimizer = 'bobyqa', tolPwrss = 1e-10))",
                     cs$formula, cs$family),
    loglik = as.numeric(logLik(m)), loglik_glmmtmb = as.numeric(logLik(t)),
    loglik_best = max(as.numeric(logLik(m)), as.numeric(logLik(t))),
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(vcov(m)))),
    fixef_glmmtmb = as.list(fixef(t)$cond), se_glmmtmb = as.list(sqrt(diag(vcov(t)$cond))),
    vcov = vc$vcov, vcov_glmmtmb = tmb_vcov(t), singular = isSingular(m))
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     glmmTMB = as.character(packageVersion("glmmTMB")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "glmer_boundary.json"))
