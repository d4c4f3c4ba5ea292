## Reference numbers for mlm.marginal_means and mlm.pairwise (issue 12, item 6): emmeans
## 1.8.4-1 on the exam model, with lmerTest's Satterthwaite df and pbkrtest's Kenward-Roger.
## emmeans switches df off above 3000 rows unless told (exam has 4,059): the limits are raised.
## Run from anywhere:  Rscript tests/reference/inference_emmeans.R
## Writes tests/reference/inference_emmeans.json (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3).
suppressPackageStartupMessages({ library(lmerTest); library(emmeans); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
exam <- load_data("exam")
emm_options(lmerTest.limit = 10000, pbkrtest.limit = 10000)
m <- lmer(normexam ~ standLRT * vr + schgend + (standLRT | school), exam,
          control = lmerControl(optimizer = "bobyqa"))
em <- emmeans(m, "vr", lmer.df = "satterthwaite")
em_s <- as.data.frame(summary(em))
pw <- list()
for (adj in c("tukey", "holm", "none")) {
  p <- as.data.frame(summary(pairs(em, adjust = adj)))
  pw[[adj]] <- list(contrast = as.character(p$contrast), estimate = p$estimate, se = p$SE,
                    df = p$df, t = p$t.ratio, p = p$p.value)
}
em_by <- as.data.frame(summary(emmeans(m, "vr", by = "schgend", lmer.df = "satterthwaite")))
kr <- as.data.frame(summary(emmeans(m, "vr", lmer.df = "kenward-roger")))
res <- list(
  generated_by = "tests/reference/inference_emmeans.R", r_version = R.version.string,
  emmeans_version = as.character(packageVersion("emmeans")),
  r_call = "emmeans(lmer(normexam ~ standLRT * vr + schgend + (standLRT | school), exam), \"vr\", lmer.df = \"satterthwaite\")",
  loglik = as.numeric(logLik(m)),
  vr = list(level = as.character(em_s$vr), emmean = em_s$emmean, se = em_s$SE, df = em_s$df,
            lower = em_s$lower.CL, upper = em_s$upper.CL),
  pairs = pw,
  vr_by_schgend = list(level = as.character(em_by$vr), by = as.character(em_by$schgend),
                       emmean = em_by$emmean, se = em_by$SE, df = em_by$df,
                       lower = em_by$lower.CL, upper = em_by$upper.CL),
  kenward_roger = list(level = as.character(kr$vr), emmean = kr$emmean, se = kr$SE, df = kr$df)
)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           file.path(here, "inference_emmeans.json"))
