## Reference numbers from clubSandwich for mlm.robust (cluster-robust standard errors).
## For each model: vcovCR(m, type = t) standard errors and coef_test(m, vcov = t,
## test = "Satterthwaite") df, for t in CR2, CR1, CR0, clustered on clubSandwich's
## default (the outer grouping factor). Writes inference_robust.json next to this script.
## Run:  Rscript tests/reference/inference_robust.R
suppressPackageStartupMessages({ library(lme4); library(clubSandwich); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))
hsb <- load_data("hsb")
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
sleepstudy <- load_data("sleepstudy")
## an unbalanced sleepstudy: drop every row with (row number %% 7 == 0), so that the
## clusters differ (in a balanced design CR2 reduces to a multiple of CR0)
sleep_unbal <- sleepstudy[seq_len(nrow(sleepstudy)) %% 7 != 0, ]
chem97 <- load_data("chem97")

ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))
cases <- list(
  hsb_slopes_outcomes = list(formula = "mathach ~ meanses*cses + sector*cses + (cses | school)",
    data = "hsb", fit = function() lmer(mathach ~ meanses*cses + sector*cses + (cses | school), hsb, control = ctrl)),
  hsb_intercept_sector = list(formula = "mathach ~ ses + sector + (1 | school)",
    data = "hsb", fit = function() lmer(mathach ~ ses + sector + (1 | school), hsb, control = ctrl)),
  sleep_slope = list(formula = "Reaction ~ Days + (Days | Subject)",
    data = "sleepstudy", fit = function() lmer(Reaction ~ Days + (Days | Subject), sleepstudy, control = ctrl)),
  sleep_unbalanced = list(formula = "Reaction ~ Days + (Days | Subject)",
    data = "sleepstudy rows with row number %% 7 != 0 (1-based)",
    fit = function() lmer(Reaction ~ Days + (Days | Subject), sleep_unbal, control = ctrl)),
  chem97_nested = list(formula = "score ~ gcsescore + (1 | lea/school)",
    data = "chem97", fit = function() lmer(score ~ gcsescore + (1 | lea/school), chem97, control = ctrl))
)

out <- list()
for (nm in names(cases)) {
  cs <- cases[[nm]]
  m <- cs$fit()
  res <- list(formula = cs$formula, data = cs$data, reml = isREML(m),
              logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
              cluster = names(lme4::getME(m, "flist"))[which.min(lme4::getME(m, "l_i"))],
              clusters = min(lme4::getME(m, "l_i")))
  for (tp in c("CR2", "CR1", "CR0")) {
    V <- vcovCR(m, type = tp)
    ct <- coef_test(m, vcov = V, test = "Satterthwaite")
    res[[tp]] <- list(se = as.list(setNames(sqrt(diag(as.matrix(V))), names(fixef(m)))),
                      df = as.list(setNames(ct$df_Satt, names(fixef(m)))))
  }
  out[[nm]] <- res
}
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     clubSandwich = as.character(packageVersion("clubSandwich")))
write_json(out, file.path(script_dir, "inference_robust.json"), auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
