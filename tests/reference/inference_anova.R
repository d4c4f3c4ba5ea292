## lmerTest's type III and type I ANOVA where containment matters: a factor x factor
## interaction (vr x schgend on exam) and a numeric x factor one, REML (Satterthwaite and
## Kenward-Roger) and ML (Satterthwaite). Complements inference_ddf.R (issue 12, item 2).
## Run from anywhere:  Rscript tests/reference/inference_anova.R
## Writes tests/reference/inference_anova.json (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2).
suppressPackageStartupMessages({ library(lmerTest); library(pbkrtest); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
exam <- load_data("exam")
ctrl <- lmerControl(optimizer = "bobyqa")
## lmerTest calls pbkrtest::vcovAdj once per term; remember it per fitted model (same numbers).
local({
  cache <- new.env()
  orig <- pbkrtest::vcovAdj
  memo <- function(object, details = 0) {
    key <- paste(deparse(formula(object)), getME(object, "is_REML"),
                 paste(format(getME(object, "theta"), digits = 15), collapse = ","), collapse = "")
    if (is.null(cache[[key]])) cache[[key]] <- orig(object, details)
    cache[[key]]
  }
  assignInNamespace("vcovAdj", memo, "pbkrtest")
})
cases <- list(
  list(id = "exam_factor_by_factor", data = "exam", reml = TRUE,
       formula = "normexam ~ vr * schgend + standLRT + (1 | school)"),
  list(id = "exam_factor_by_factor_ml", data = "exam", reml = FALSE,
       formula = "normexam ~ vr * schgend + standLRT + (1 | school)"),
  list(id = "exam_three_way", data = "exam", reml = TRUE,
       formula = "normexam ~ standLRT * sex * vr + (1 | school)")
)
anova_table <- function(m, type, ddf) {
  a <- anova(m, type = type, ddf = ddf)
  list(term = rownames(a), sum_sq = unname(a[, "Sum Sq"]), mean_sq = unname(a[, "Mean Sq"]),
       num_df = unname(a[, "NumDF"]), den_df = unname(a[, "DenDF"]), F = unname(a[, "F value"]),
       p = unname(a[, "Pr(>F)"]))
}
out <- lapply(cases, function(c) {
  m <- lmer(as.formula(c$formula), exam, REML = c$reml, control = ctrl)
  c$r_call <- sprintf("anova(lmerTest::lmer(%s, data = exam, REML = %s, control = lmerControl(optimizer = \"bobyqa\")), type = 3 | 1, ddf = ...)",
                      c$formula, c$reml)
  c$loglik <- as.numeric(logLik(m))
  c$anova3_satterthwaite <- anova_table(m, 3, "Satterthwaite")
  c$anova1_satterthwaite <- anova_table(m, 1, "Satterthwaite")
  if (c$reml) {
    c$anova3_kenward_roger <- anova_table(m, 3, "Kenward-Roger")
    c$anova1_kenward_roger <- anova_table(m, 1, "Kenward-Roger")
  }
  c
})
res <- list(generated_by = "tests/reference/inference_anova.R", r_version = R.version.string,
            lmerTest_version = as.character(packageVersion("lmerTest")),
            pbkrtest_version = as.character(packageVersion("pbkrtest")), cases = out)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           file.path(here, "inference_anova.json"))
