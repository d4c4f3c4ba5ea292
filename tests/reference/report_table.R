## Reference numbers from lme4 (and performance for the ICC) for mlm.table's tests:
## Raudenbush & Bryk's sequence of models on hsb (REML, lme4's default).
## Writes report_table.json next to this script.
## Run:  Rscript tests/reference/report_table.R
suppressPackageStartupMessages({ library(lme4); library(performance); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))
hsb <- load_data("hsb")
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)

models <- list(
  null = mathach ~ 1 + (1 | school),
  means = mathach ~ meanses + (1 | school),
  random_coef = mathach ~ cses + (cses | school),
  slopes = mathach ~ meanses + sector + cses + meanses:cses + sector:cses + (cses | school)
)

one <- function(f) {
  m <- lmer(f, data = hsb, REML = TRUE)
  vc <- as.data.frame(VarCorr(m))
  out <- list(
    formula = paste(deparse(f), collapse = ""),
    fixef = as.list(fixef(m)),                       # fixef(m)
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),    # sqrt(diag(vcov(m)))
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(
      grp = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i],
      vcov = vc$vcov[i], sdcor = vc$sdcor[i])),    # as.data.frame(VarCorr(m))
    nobs = nobs(m),                                  # nobs(m)
    ngroups = as.list(ngrps(m)),                     # ngrps(m)
    remlcrit = unname(REMLcrit(m)),                  # REMLcrit(m)
    aic = AIC(m),                                    # AIC(m) (REML likelihood)
    bic = BIC(m)                                     # BIC(m)
  )
  if (length(fixef(m)) >= 1 && ncol(VarCorr(m)$school) == 1)
    out$icc <- unname(icc(m)$ICC_adjusted)           # performance::icc(m)$ICC_adjusted
  out
}

res <- list(
  generated_by = "tests/reference/report_table.R",
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  performance_version = as.character(packageVersion("performance")),
  date = as.character(Sys.Date()),
  models = lapply(models, one)
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(script_dir, "report_table.json"))
