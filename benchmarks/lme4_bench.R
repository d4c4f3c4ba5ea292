## Timings of lme4 fits for comparison with mlm.
## Usage:  Rscript benchmarks/lme4_bench.R > benchmarks/lme4_timings.json
## Prints one JSON object to stdout: {model_id: median elapsed seconds, ...,
## "loglik": {model_id: logLik of the fit}, "R": version, "lme4": version}.
## Median of 5 repeats (3 for insteval, 1 for the 1,000,000-row model).
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "datasets"))
source(file.path(script_dir, "..", "tests", "reference", "load_data.R"))  # load_data(name)
hsb <- load_data("hsb")
chem97 <- load_data("chem97")
scotssec <- load_data("scotssec")
insteval <- load_data("insteval")

quiet <- function(expr) suppressMessages(suppressWarnings(expr))
out <- list()
loglik <- list()
## Median elapsed time of `reps` fits; the log-likelihood of the last one goes in `loglik`.
time_fit <- function(name, expr, reps = 5L) {
  f <- substitute(expr); env <- parent.frame()
  fit <- NULL
  t <- vapply(seq_len(reps), function(i)
    system.time(fit <<- quiet(eval(f, env)))[["elapsed"]], 0)
  out[[name]] <<- round(median(t), 3)
  loglik[[name]] <<- as.numeric(logLik(fit))
  invisible(NULL)
}

time_fit("hsb_slopes",
  lmer(mathach ~ ses + minority + female + meanses + sector + ses:meanses + (ses | school),
       data = hsb, REML = TRUE))
time_fit("chem97_3level", lmer(score ~ gcsescore + (1 | lea/school), data = chem97, REML = TRUE))
time_fit("scotssec_crossed",
  lmer(attain ~ verbal + sex + (1 | primary) + (1 | second), data = scotssec, REML = TRUE))
sim_path <- file.path(script_dir, "data", "sim100k.csv")
if (file.exists(sim_path)) {
  sim <- read.csv(sim_path)
  sim$g <- factor(sim$g)
  time_fit("sim100k_slope", lmer(y ~ x + (x | g), data = sim, REML = TRUE))
}
nested_path <- file.path(script_dir, "data", "sim_nested.csv")
if (file.exists(nested_path)) {
  nest <- read.csv(nested_path)
  nest$school <- factor(nest$school); nest$classroom <- factor(nest$classroom)
  time_fit("sim_nested", lmer(y ~ x + (1 | school/classroom), data = nest, REML = TRUE))
}
time_fit("insteval", lmer(y ~ service + (1 | s) + (1 | d), data = insteval, REML = TRUE), reps = 3L)
sim1m_path <- file.path(script_dir, "data", "sim1m.csv")
if (file.exists(sim1m_path)) {
  sim1m <- read.csv(sim1m_path)
  sim1m$g <- factor(sim1m$g)
  time_fit("sim1m_slope", lmer(y ~ x + (x | g), data = sim1m, REML = TRUE), reps = 1L)
  rm(sim1m)
}

m0 <- lmer(mathach ~ 1 + (1 | school), data = hsb)
icc <- function(m) { v <- as.data.frame(VarCorr(m))$vcov; v[1] / sum(v) }
bt <- system.time(b <- quiet(bootMer(m0, icc, nsim = 1000, seed = 1)))[["elapsed"]]
out$bootmer_icc <- round(bt, 3)
out$bootmer_icc_estimate <- unname(icc(m0))
out$bootmer_icc_percentile_2.5 <- unname(quantile(b$t[, 1], 0.025, na.rm = TRUE))
out$bootmer_icc_percentile_97.5 <- unname(quantile(b$t[, 1], 0.975, na.rm = TRUE))
out$bootmer_note <- "bootMer(m0, icc, nsim = 1000, seed = 1), parametric, use.u = FALSE; percentiles by quantile() type 7; time is one run"
out$loglik <- loglik
out$loglik$bootmer_icc <- as.numeric(logLik(m0))
out$R <- paste(R.version$major, R.version$minor, sep = ".")
out$lme4 <- as.character(packageVersion("lme4"))
out$machine_cores <- parallel::detectCores()
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "\n")
