## Time lme4's glmer (and glmmTMB) on contraception; prints JSON. Called by glmer_bench.py.
## Usage: Rscript benchmarks/glmer_bench.R REPEATS
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "datasets"))
source(file.path(here, "..", "tests", "reference", "load_data.R"))
reps <- as.integer(commandArgs(TRUE)[1])
d <- load_data("contraception")
f <- use ~ age + I(age^2) + urban + livch + (1 | district)
time_it <- function(expr) median(replicate(reps, system.time(suppressWarnings(eval(expr)))[["elapsed"]]))
out <- list(lme4_default = time_it(quote(glmer(f, d, family = binomial))),
            lme4_bobyqa_tol = time_it(quote(glmer(f, d, family = binomial,
              control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)))))
if (requireNamespace("glmmTMB", quietly = TRUE))
  out$glmmTMB <- time_it(quote(glmmTMB::glmmTMB(f, d, family = binomial)))
cat(toJSON(out, auto_unbox = TRUE, digits = NA))
