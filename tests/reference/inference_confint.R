## Reference numbers for mlm's intervals and random-term tests (mlm/inference/confint.py,
## mlm/inference/ranova.py): lme4's confint() (profile, Wald, parametric bootstrap) and
## lmerTest's ranova().
##
## Reads the bundled CSV files (load_data.R), so R and Python fit exactly the same data,
## and writes inference_confint.json next to this script.  Run by hand (CI has no R):
##     Rscript tests/reference/inference_confint.R
##
## For every case: lme4's confint(m, method = "profile", oldNames = FALSE) and
## confint(m, method = "Wald", oldNames = FALSE) (rows: random-effect SDs and
## correlations, sigma, fixed effects), lmerTest's ranova(m) (npar, logLik, AIC, LRT, Df,
## p-value; row names as lmerTest prints them), logLik(m), and the ML refit's estimates
## that lme4's profile starts from (profile.merMod profiles the ML deviance, for REML fits
## too: devfun2() calls refitML()).  The bootstrap cases hold
## confint(m, method = "boot", boot.type = "perc", nsim = 1000, oldNames = FALSE) computed
## as lme4 does (bootMer with lme4's own bootFun, then boot.ci percentile intervals), plus
## the bootstrap SD of every parameter for stating Monte Carlo error bounds.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(jsonlite)
})

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))  # load_data(name): the CSVs as mlm reads them

hsb <- load_data("hsb")
## R&B's group-mean centred ses (the Python test builds the same column)
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
sleepstudy <- load_data("sleepstudy")
## Days as a grouping factor (crossed with Subject): a singular fit, variance 0
sleepstudy$Dayg <- factor(sleepstudy$Days)
## a centred quadratic in Days, for a 3 x 3 random-effects covariance
sleepstudy$D2 <- (sleepstudy$Days - 4.5)^2 / 10
pastes <- load_data("pastes")
penicillin <- load_data("penicillin")

quiet <- function(expr) suppressMessages(suppressWarnings(expr))
ci_list <- function(ci) list(parameter = rownames(ci), conf_low = unname(ci[, 1]),
                             conf_high = unname(ci[, 2]))

cases <- list(
  hsb_rc = list(data = "hsb", formula = "mathach ~ ses + (ses | school)", REML = TRUE),
  hsb_rb = list(data = "hsb", formula =
    "mathach ~ meanses + sector + cses + meanses:cses + sector:cses + (cses | school)",
    REML = TRUE),
  sleep_rc = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  sleep_rc_ml = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  sleep_uncor = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days || Subject)", REML = TRUE),
  sleep_quad = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days + D2 | Subject)", REML = TRUE),
  hsb_ri_ml = list(data = "hsb", formula = "mathach ~ ses + sector + (1 | school)", REML = FALSE),
  pastes_nested = list(data = "pastes", formula = "strength ~ 1 + (1 | batch/cask)", REML = TRUE),
  penicillin_crossed = list(data = "penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
                            REML = TRUE),
  pastes_singular = list(data = "pastes", formula = "strength ~ 1 + (1 | cask)", REML = TRUE),
  sleep_singular = list(data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject) + (1 | Dayg)",
                        REML = TRUE)
)
datasets <- list(hsb = hsb, sleepstudy = sleepstudy, pastes = pastes, penicillin = penicillin)

out <- list(R = paste(R.version$major, R.version$minor, sep = "."),
            lme4 = as.character(packageVersion("lme4")),
            lmerTest = as.character(packageVersion("lmerTest")), cases = list())
for (id in names(cases)) {
  cs <- cases[[id]]
  d <- datasets[[cs$data]]
  m <- quiet(lmerTest::lmer(as.formula(cs$formula), data = d, REML = cs$REML))
  mml <- quiet(refitML(m))
  prof <- quiet(confint(m, method = "profile", oldNames = FALSE))
  wald <- confint(m, method = "Wald", oldNames = FALSE)
  rt <- quiet(ranova(m))
  res <- list(
    data = cs$data, formula = cs$formula, REML = cs$REML,
    r_call = sprintf("m <- lmer(%s, data = %s, REML = %s); confint(m, method = 'profile', oldNames = FALSE); confint(m, method = 'Wald', oldNames = FALSE); lmerTest::ranova(m)",
                     cs$formula, cs$data, cs$REML),
    loglik = as.numeric(logLik(m)), singular = isSingular(m),
    ml_loglik = as.numeric(logLik(mml)), ml_theta = unname(getME(mml, "theta")),
    ml_sigma = sigma(mml), ml_fixef = unname(fixef(mml)),
    profile = ci_list(prof), wald = ci_list(wald),
    ranova = list(term = rownames(rt), npar = rt$npar, loglik = rt$logLik, aic = rt$AIC,
                  lrt = rt$LRT, df = rt$Df, p_value = rt[["Pr(>Chisq)"]]))
  out$cases[[id]] <- res
  cat(id, "done\n", file = stderr())
}

## level and parm
m <- quiet(lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy))
out$sleep_rc_level90 <- ci_list(quiet(confint(m, level = 0.90, oldNames = FALSE)))
out$sleep_rc_parm_beta <- ci_list(quiet(confint(m, parm = "beta_", oldNames = FALSE)))
out$sleep_rc_parm_theta <- ci_list(quiet(confint(m, parm = "theta_", oldNames = FALSE)))

## Parametric bootstrap, as confint(m, method = "boot", boot.type = "perc", nsim = 1000)
boot_case <- function(m, seed) {
  vn <- rownames(confint(m, method = "Wald", oldNames = FALSE))
  vn <- vn[seq_len(length(vn) - length(fixef(m)))]
  bootFun <- function(x) {  # lme4's own bootFun in confint.merMod (LMM branch)
    ss <- lme4:::Cv_to_Sv(x@theta, n = lengths(x@cnms), s = sigma(x))
    c(setNames(ss, vn), fixef(x))
  }
  bb <- quiet(bootMer(m, FUN = bootFun, nsim = 1000, seed = seed))
  ci <- confint(bb, level = 0.95, type = "perc")
  c(ci_list(ci), list(boot_sd = unname(apply(bb$t, 2, sd, na.rm = TRUE)),
                      nsim = 1000, seed = seed, failures = sum(!complete.cases(bb$t))))
}
out$boot_sleep_rc <- c(list(formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy",
  r_call = "confint(m, method = 'boot', boot.type = 'perc', nsim = 1000, seed = 1, oldNames = FALSE)"),
  boot_case(m, 1))
m <- quiet(lmer(strength ~ 1 + (1 | batch/cask), data = pastes))
out$boot_pastes_nested <- c(list(formula = "strength ~ 1 + (1 | batch/cask)", data = "pastes",
  r_call = "confint(m, method = 'boot', boot.type = 'perc', nsim = 1000, seed = 1, oldNames = FALSE)"),
  boot_case(m, 1))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(script_dir, "inference_confint.json"))
