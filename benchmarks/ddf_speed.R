## Timings of lmerTest's Satterthwaite and pbkrtest's Kenward-Roger tables, beside which
## benchmarks/ddf_speed.py prints mlm's.
## Usage:  Rscript benchmarks/ddf_speed.R > benchmarks/ddf_speed_lmertest.json
## For each benchmark model: the lme4 fit, and lmerTest's extra work for the df of every
## coefficient (as_lmerModLmerTest: the Hessian of the deviance in the variance parameters and
## the Jacobian of vcov(beta), then summary(ddf = "Satterthwaite")); Kenward-Roger
## (summary(ddf = "Kenward-Roger"), pbkrtest's n x n matrices) only on HSB, where it takes tens of
## seconds (ScotsSec, with 3,435 rows crossed, took over ten minutes). Medians of 3 runs (1 for
## Kenward-Roger), seconds.
suppressPackageStartupMessages({ library(lme4); library(lmerTest); library(jsonlite) })
script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "datasets"))
source(file.path(script_dir, "..", "tests", "reference", "load_data.R"))
quiet <- function(expr) suppressMessages(suppressWarnings(expr))
med <- function(f, reps = 3L) round(median(vapply(seq_len(reps), function(i)
  system.time(quiet(f()))[["elapsed"]], 0)), 3)

models <- list(
  hsb_slopes = list(data = load_data("hsb"), kr = TRUE,
    formula = mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school)),
  chem97_3level = list(data = load_data("chem97"), kr = FALSE, formula = score ~ gcsescore + (1 | lea/school)),
  scotssec_crossed = list(data = load_data("scotssec"), kr = FALSE,
    formula = attain ~ verbal + sex + (1 | primary) + (1 | second)))
sim_path <- file.path(script_dir, "data", "sim100k.csv")  # written by benchmarks/run.py
if (file.exists(sim_path)) {
  sim <- read.csv(sim_path); sim$g <- factor(sim$g)
  models$sim100k_slope <- list(data = sim, kr = FALSE, formula = y ~ x + (x | g))
}
out <- list()
for (id in names(models)) {
  mm <- models[[id]]
  fit <- function() lme4::lmer(mm$formula, data = mm$data, REML = TRUE)
  m <- quiet(fit())
  row <- list(fit_s = med(fit),
              satterthwaite_s = med(function() summary(as_lmerModLmerTest(m), ddf = "Satterthwaite")))
  if (mm$kr) row$kenward_roger_s <- med(function() summary(as_lmerModLmerTest(m), ddf = "Kenward-Roger"), 1L)
  out[[id]] <- row
}
out$R <- paste(R.version$major, R.version$minor, sep = ".")
out$lmerTest <- as.character(packageVersion("lmerTest"))
out$pbkrtest <- as.character(packageVersion("pbkrtest"))
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "\n")
