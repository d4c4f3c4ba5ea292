## lme4's confint(method = "profile") for chem97 `score ~ gcsescore + gender + (1 | lea/school)`
## (ML) puts the lower bound of sd_(Intercept)|school:lea at 1.0332, where lme4's own profiled
## deviance gives zeta = -1.22, not -1.96 (the lea SD is near 0 and lme4's profile/spline
## goes astray). This script finds the crossing of zeta = -1.96 (and +1.96) on lme4's
## deviance function (lme4:::devfun2: SDs and sigma, fixed effects profiled out) by uniroot,
## minimising over the other parameters with nlminb from several starts, and records zeta at
## lme4's reported bound. Run:  Rscript tests/reference/qa_unseen_root.R (writes qa_unseen_root.json)
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
chem <- load_data("chem97")
m <- lmer(score ~ gcsescore + gender + (1 | lea/school), chem, REML = FALSE,
          control = lmerControl(optimizer = "bobyqa"))
dd <- lme4:::devfun2(m, useSc = TRUE, signames = FALSE)
base <- attr(dd, "basedev"); opt <- attr(dd, "optimum")
zeta <- function(x) {  # profile zeta of sd_(Intercept)|school:lea at x
  best <- Inf
  for (s in list(opt[2:3], c(0.05, opt[3]), c(0.25, opt[3]), c(0, opt[3]))) {
    r <- nlminb(s, function(v) dd(c(x, v)), lower = c(0, 0.5),
                control = list(rel.tol = 1e-13, eval.max = 3000, iter.max = 2000))
    best <- min(best, r$objective)
  }
  sign(x - opt[1]) * sqrt(max(0, best - base))
}
zc <- qnorm(0.975)
lo <- uniroot(function(x) zeta(x) + zc, c(0.95, opt[1] - 1e-4), tol = 1e-9)$root
hi <- uniroot(function(x) zeta(x) - zc, c(opt[1] + 1e-4, 1.2), tol = 1e-9)$root
lme4_lo <- quiet <- suppressWarnings(suppressMessages(
  confint(m, parm = 1, method = "profile", oldNames = FALSE)))[1, 1]
out <- list(parameter = "sd_(Intercept)|school:lea", root_low = lo, root_high = hi,
            lme4_confint_low = lme4_lo, zeta_at_lme4_confint_low = zeta(lme4_lo),
            r_call = "uniroot on zeta from lme4:::devfun2(m, useSc = TRUE), nlminb over the other SD and sigma",
            versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
write_json(out, file.path(here, "qa_unseen_root.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
