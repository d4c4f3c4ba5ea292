## More lme4 reference fits: crossed factors with slopes, slopes at the top of three levels,
## `||` with a factor, a 3 x 3 covariance, a transform, ML with several fixed effects, and
## layouts that take the optimiser's other paths.
## Run from anywhere:  Rscript tests/reference/lme4_more.R
## Writes tests/reference/lme4_more.json (R 4.2.2, lme4 1.1.31 from Debian's packages).
## Every fit uses bobyqa, lme4's more careful optimizer (its default stalls on some of these).
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
data <- list(exam = load_data("exam"), scotssec = load_data("scotssec"),
             chem97 = load_data("chem97"), sleepstudy = load_data("sleepstudy"),
             hsb = load_data("hsb"), egsingle = load_data("egsingle"))
ctrl <- lmerControl(optimizer = "bobyqa")
cases <- list(
  list(id = "exam_slope_factor_fixed", data = "exam", reml = TRUE,
       formula = "normexam ~ standLRT + schgend + (standLRT | school)"),
  list(id = "exam_ml_three_fixed", data = "exam", reml = FALSE,
       formula = "normexam ~ standLRT + sex + vr + (1 + standLRT | school)"),
  list(id = "sleep_quadratic_ml", data = "sleepstudy", reml = FALSE,
       formula = "Reaction ~ Days + I(Days^2) + (Days | Subject)"),
  list(id = "scotssec_crossed_slope", data = "scotssec", reml = TRUE,
       formula = "attain ~ verbal + sex + (verbal | primary) + (1 | second)"),
  list(id = "chem97_slope_top_level", data = "chem97", reml = TRUE,
       formula = "score ~ gcsescore + gender + (gcsescore | lea) + (1 | lea:school)"),
  list(id = "exam_double_bar_factor", data = "exam", reml = TRUE,
       formula = "normexam ~ standLRT + (sex || school)"),
  list(id = "hsb_three_by_three", data = "hsb", reml = TRUE,
       formula = "mathach ~ ses*sector + (1 + ses + minority | school)"),
  ## the optimiser's paths (issue 16): a slope on the smaller of two crossed factors (that
  ## factor is eliminated first), two terms of one factor, growth with crossed schools
  list(id = "scotssec_slope_on_smaller_factor", data = "scotssec", reml = TRUE,
       formula = "attain ~ verbal + (1 | primary) + (verbal | second)"),
  list(id = "sleep_two_terms_one_factor", data = "sleepstudy", reml = TRUE,
       formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
  list(id = "egsingle_growth_crossed", data = "egsingle", reml = TRUE,
       formula = "math ~ year + (year | childid) + (1 | schoolid)")
)
out <- lapply(cases, function(c) {
  m <- suppressWarnings(lmer(as.formula(c$formula), data[[c$data]], REML = c$reml, control = ctrl))
  c$r_call <- sprintf("lmer(%s, data = %s, REML = %s, control = lmerControl(optimizer = \"bobyqa\"))",
                      c$formula, c$data, c$reml)
  c$loglik <- as.numeric(logLik(m))
  c$fixef <- as.list(fixef(m))
  c$se <- as.list(sqrt(diag(as.matrix(vcov(m)))))
  c$sigma <- sigma(m)
  c$singular <- isSingular(m)
  c$messages <- m@optinfo$conv$lme4$messages
  c
})
res <- list(generated_by = "tests/reference/lme4_more.R", r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")), cases = out)
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           file.path(here, "lme4_more.json"))
