## Reference numbers for Satterthwaite and Kenward-Roger tests (issue 12, items 1, 2 and 6):
## lmerTest 3.1-3 (summary with ddf = "Satterthwaite" / "Kenward-Roger", anova types 3 and 1,
## contest) and pbkrtest 0.5.2 (vcovAdj, KRmodcomp) on the bundled data. (Marginal means:
## inference_emmeans.R.)
## Run from anywhere:  Rscript tests/reference/inference_ddf.R
## Writes tests/reference/inference_ddf.json (R 4.2.2, lme4 1.1-31, Debian's packages).
suppressPackageStartupMessages({
  library(lmerTest); library(pbkrtest); library(jsonlite)
})
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them

hsb <- load_data("hsb")
## sector as a factor, as the Python tests build it: Public (0) is the reference level
hsb$sector <- factor(ifelse(hsb$sector == 1, "Catholic", "Public"), levels = c("Public", "Catholic"))
chem <- load_data("chem97")
chem <- droplevels(chem[as.integer(as.character(chem$lea)) <= 12, ])  # leas 1-12 (pbkrtest forms n x n)
data <- list(hsb = hsb, sleepstudy = load_data("sleepstudy"), exam = load_data("exam"),
             pastes = load_data("pastes"), penicillin = load_data("penicillin"),
             scotssec = load_data("scotssec"), chem97_lea12 = chem)
ctrl <- lmerControl(optimizer = "bobyqa")

## lmerTest calls pbkrtest::vcovAdj once per coefficient and per term, and each call forms
## n x n matrices; remember its result per fitted model (same numbers, minutes less).
local({
  cache <- new.env()
  orig <- pbkrtest::vcovAdj
  memo <- function(object, details = 0) {
    key <- paste(deparse(formula(object)), nrow(getME(object, "X")), getME(object, "is_REML"),
                 paste(format(getME(object, "theta"), digits = 15), collapse = ","), collapse = "")
    if (is.null(cache[[key]])) cache[[key]] <- orig(object, details)
    cache[[key]]
  }
  environment(memo)$orig <- orig
  assignInNamespace("vcovAdj", memo, "pbkrtest")
})

cases <- list(
  list(id = "hsb_sector_slope", data = "hsb", reml = TRUE,
       formula = "mathach ~ ses * sector + meanses + (ses | school)",
       contrasts = list(list(name = "sectorCatholic", L = list(c(0, 0, 1, 0, 0))),
                        list(name = "ses - meanses", L = list(c(0, 1, 0, -1, 0))),
                        list(name = "sector joint", L = list(c(0, 0, 1, 0, 0), c(0, 0, 0, 0, 1))))),
  list(id = "hsb_sector_slope_ml", data = "hsb", reml = FALSE,
       formula = "mathach ~ ses * sector + meanses + (ses | school)",
       contrasts = list(list(name = "sector joint", L = list(c(0, 0, 1, 0, 0), c(0, 0, 0, 0, 1))))),
  list(id = "sleep_slope", data = "sleepstudy", reml = TRUE,
       formula = "Reaction ~ Days + (Days | Subject)",
       contrasts = list(list(name = "both", L = list(c(1, 0), c(0, 1))))),
  list(id = "sleep_slope_ml", data = "sleepstudy", reml = FALSE,
       formula = "Reaction ~ Days + (Days | Subject)", contrasts = list()),
  list(id = "exam_factors", data = "exam", reml = TRUE,
       formula = "normexam ~ standLRT * vr + schgend + (standLRT | school)",
       contrasts = list(list(name = "vr top - mid", L = list(c(0, 0, -1, 1, 0, 0, 0, 0))),
                        list(name = "three rows, rank 2",
                             L = list(c(0, 0, 1, 0, 0, 0, 0, 0), c(0, 0, 0, 1, 0, 0, 0, 0),
                                      c(0, 0, 1, 1, 0, 0, 0, 0))))),
  list(id = "exam_factors_ml", data = "exam", reml = FALSE,
       formula = "normexam ~ standLRT * vr + schgend + (standLRT | school)", contrasts = list()),
  list(id = "pastes_nested", data = "pastes", reml = TRUE,
       formula = "strength ~ 1 + (1 | batch/cask)", contrasts = list()),
  list(id = "chem97_three_level", data = "chem97_lea12", reml = TRUE,
       formula = "score ~ gcsescore + gender + (1 | lea/school)",
       contrasts = list(list(name = "joint", L = list(c(0, 1, 0), c(0, 0, 1))))),
  list(id = "penicillin_crossed", data = "penicillin", reml = TRUE,
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", contrasts = list()),
  list(id = "scotssec_crossed", data = "scotssec", reml = TRUE,
       formula = "attain ~ verbal * sex + (1 | primary) + (1 | second)",
       contrasts = list(list(name = "sex joint", L = list(c(0, 0, 1, 0), c(0, 0, 0, 1))))),
  list(id = "scotssec_crossed_slope", data = "scotssec", reml = TRUE,
       formula = "attain ~ verbal + sex + (verbal | primary) + (1 | second)", contrasts = list())
)

coef_table <- function(m, ddf) {
  s <- coef(summary(m, ddf = ddf))
  list(term = rownames(s), estimate = unname(s[, "Estimate"]), std_error = unname(s[, "Std. Error"]),
       df = unname(s[, "df"]), t = unname(s[, "t value"]), p = unname(s[, "Pr(>|t|)"]))
}
anova_table <- function(m, type, ddf) {
  a <- anova(m, type = type, ddf = ddf)
  list(term = rownames(a), sum_sq = unname(a[, "Sum Sq"]), mean_sq = unname(a[, "Mean Sq"]),
       num_df = unname(a[, "NumDF"]), den_df = unname(a[, "DenDF"]), F = unname(a[, "F value"]),
       p = unname(a[, "Pr(>F)"]))
}
contest_table <- function(m, L, ddf) {
  L <- do.call(rbind, lapply(L, as.numeric))
  a <- contest(m, L, joint = TRUE, ddf = ddf)
  list(sum_sq = a[["Sum Sq"]], mean_sq = a[["Mean Sq"]], num_df = a[["NumDF"]],
       den_df = a[["DenDF"]], F = a[["F value"]], p = a[["Pr(>F)"]])
}

out <- lapply(cases, function(c) {
  m <- lmer(as.formula(c$formula), data[[c$data]], REML = c$reml, control = ctrl)
  c$r_call <- sprintf("lmerTest::lmer(%s, data = %s, REML = %s, control = lmerControl(optimizer = \"bobyqa\"))",
                      c$formula, c$data, c$reml)
  c$loglik <- as.numeric(logLik(m))
  c$theta <- unname(getME(m, "theta"))
  c$sigma <- sigma(m)
  c$satterthwaite <- coef_table(m, "Satterthwaite")
  c$anova3_satterthwaite <- anova_table(m, 3, "Satterthwaite")
  c$anova1_satterthwaite <- anova_table(m, 1, "Satterthwaite")
  c$contest_satterthwaite <- lapply(c$contrasts, function(k) contest_table(m, k$L, "Satterthwaite"))
  if (c$reml) {  # lmerTest: "Kenward-Roger's method is only available for REML model fits"
    c$kenward_roger <- coef_table(m, "Kenward-Roger")
    c$anova3_kenward_roger <- anova_table(m, 3, "Kenward-Roger")
    c$anova1_kenward_roger <- anova_table(m, 1, "Kenward-Roger")
    c$contest_kenward_roger <- lapply(c$contrasts, function(k) contest_table(m, k$L, "Kenward-Roger"))
    c$vcov_adj <- unname(as.matrix(vcovAdj(m)))
    c$krmodcomp <- lapply(c$contrasts, function(k) {
      L <- do.call(rbind, lapply(k$L, as.numeric))
      t <- KRmodcomp(m, L)$test
      list(F = t["Ftest", "stat"], ndf = t["Ftest", "ndf"], ddf = t["Ftest", "ddf"],
           F_scaling = t["Ftest", "F.scaling"], p = t["Ftest", "p.value"])
    })
  }
  c
})

res <- list(generated_by = "tests/reference/inference_ddf.R", r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")),
            pbkrtest_version = as.character(packageVersion("pbkrtest")),
            cases = out)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           file.path(here, "inference_ddf.json"))
