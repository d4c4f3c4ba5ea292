## Formula transforms with missing values: lme4's fixed effects for small models using each
## function mlm's parser allows (mlm/formula.py ALLOWED_FUNCTIONS), on sleepstudy with
## missing values inserted deterministically. R evaluates a transform on the whole column
## (model.frame) before na.omit drops rows; scale() divides by the SD with n - 1.
## Run from anywhere:  Rscript tests/reference/transforms.R
## Writes tests/reference/transforms.json (R 4.2.2, lme4 1.1.31 from Debian's packages).
## Missing values (1-based row i of sleepstudy.csv): Reaction where i %% 9 == 0,
## Days where i %% 13 == 5. daygrp = Days %/% 4 (levels 0, 1, 2), missing where Days is.
suppressPackageStartupMessages({ library(lme4); library(jsonlite); library(MASS) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
d <- load_data("sleepstudy")
i <- seq_len(nrow(d))
d$Reaction[i %% 9 == 0] <- NA
d$Days[i %% 13 == 5] <- NA
d$daygrp <- factor(d$Days %/% 4)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12))
## R formula first, then mlm's spelling of the same model.
cases <- list(
  c("log", "Reaction ~ log(Days + 1) + (1 | Subject)", "Reaction ~ log(Days + 1) + (1 | Subject)"),
  c("np_log", "Reaction ~ log(Days + 1) + (1 | Subject)", "Reaction ~ np.log(Days + 1) + (1 | Subject)"),
  c("log2", "Reaction ~ log2(Days + 1) + (1 | Subject)", "Reaction ~ log2(Days + 1) + (1 | Subject)"),
  c("log10", "Reaction ~ log10(Days + 1) + (1 | Subject)", "Reaction ~ log10(Days + 1) + (1 | Subject)"),
  c("log1p", "Reaction ~ log1p(Days) + (1 | Subject)", "Reaction ~ log1p(Days) + (1 | Subject)"),
  c("exp", "Reaction ~ exp(Days / 10) + (1 | Subject)", "Reaction ~ exp(Days / 10) + (1 | Subject)"),
  c("sqrt", "Reaction ~ sqrt(Days) + (1 | Subject)", "Reaction ~ sqrt(Days) + (1 | Subject)"),
  c("abs", "Reaction ~ abs(Days - 4.5) + (1 | Subject)", "Reaction ~ abs(Days - 4.5) + (1 | Subject)"),
  c("sin", "Reaction ~ sin(Days) + (1 | Subject)", "Reaction ~ sin(Days) + (1 | Subject)"),
  c("cos", "Reaction ~ cos(Days) + (1 | Subject)", "Reaction ~ cos(Days) + (1 | Subject)"),
  c("tan", "Reaction ~ tan(Days / 10) + (1 | Subject)", "Reaction ~ tan(Days / 10) + (1 | Subject)"),
  c("log_outcome", "log(Reaction) ~ Days + (1 | Subject)", "log(Reaction) ~ Days + (1 | Subject)"),
  c("I_square", "Reaction ~ Days + I(Days^2) + (1 | Subject)", "Reaction ~ Days + I(Days**2) + (1 | Subject)"),
  c("scale", "Reaction ~ scale(Days) + (1 | Subject)", "Reaction ~ scale(Days) + (1 | Subject)"),
  c("scale_slope", "Reaction ~ scale(Days) + (scale(Days) | Subject)",
    "Reaction ~ scale(Days) + (scale(Days) | Subject)"),
  c("center", "Reaction ~ scale(Days, scale = FALSE) + (1 | Subject)", "Reaction ~ center(Days) + (1 | Subject)"),
  c("standardize",
    "Reaction ~ I((Days - mean(Days, na.rm = TRUE)) / sqrt(mean((Days - mean(Days, na.rm = TRUE))^2, na.rm = TRUE))) + (1 | Subject)",
    "Reaction ~ standardize(Days) + (1 | Subject)"),
  c("cwc_gm",
    "Reaction ~ I(Days - ave(Days, Subject, FUN = function(v) mean(v, na.rm = TRUE))) + I(ave(Days, Subject, FUN = function(v) mean(v, na.rm = TRUE))) + (1 | Subject)",
    "Reaction ~ cwc(Days, Subject) + gm(Days, Subject) + (1 | Subject)"),
  c("C", "Reaction ~ daygrp + (1 | Subject)", "Reaction ~ C(daygrp) + (1 | Subject)"),
  c("Treatment", "Reaction ~ relevel(daygrp, ref = \"2\") + (1 | Subject)",
    "Reaction ~ C(daygrp, Treatment(reference=2)) + (1 | Subject)"),
  c("Sum", "Reaction ~ C(daygrp, contr.sum) + (1 | Subject)", "Reaction ~ C(daygrp, Sum) + (1 | Subject)"),
  c("Diff", "Reaction ~ C(daygrp, contr.sdif) + (1 | Subject)", "Reaction ~ C(daygrp, Diff) + (1 | Subject)"),
  c("Helmert", "Reaction ~ C(daygrp, contr.helmert) + (1 | Subject)",
    "Reaction ~ C(daygrp, Helmert) + (1 | Subject)"),
  c("Poly", "Reaction ~ C(daygrp, contr.poly) + (1 | Subject)", "Reaction ~ C(daygrp, Poly) + (1 | Subject)")
)
out <- lapply(cases, function(c) {
  m <- lmer(as.formula(c[2]), d, REML = TRUE, control = ctrl)
  list(id = c[1], r_formula = c[2], formula = c[3],
       r_call = sprintf("lmer(%s, data = d, REML = TRUE, control = lmerControl(optimizer = \"bobyqa\", optCtrl = list(rhoend = 1e-12)))", c[2]),
       nobs = nobs(m), loglik = as.numeric(logLik(m)),
       fixef = unname(fixef(m)), fixef_names = names(fixef(m)))
})
meta <- list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
             na_rule = "Reaction NA where i %% 9 == 0; Days NA where i %% 13 == 5 (1-based rows); daygrp = Days %/% 4")
writeLines(toJSON(list(meta = meta, cases = out), digits = NA, auto_unbox = TRUE, pretty = TRUE),
           file.path(here, "transforms.json"))
