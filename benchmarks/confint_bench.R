## Timing of lme4's profile-likelihood intervals, for comparison with mlm.confint.
## Usage:  Rscript benchmarks/confint_bench.R [repeats]
## Prints one JSON object: median and all elapsed seconds of
## confint(m, method = "profile") for the HSB random-coefficient model
## mathach ~ ses + (ses | school) (REML), the fit itself not included.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "datasets"))
source(file.path(script_dir, "..", "tests", "reference", "load_data.R"))
args <- commandArgs(trailingOnly = TRUE)
reps <- if (length(args)) as.integer(args[1]) else 3L

hsb <- load_data("hsb")
m <- lmer(mathach ~ ses + (ses | school), data = hsb, REML = TRUE)
ci <- NULL
times <- vapply(seq_len(reps), function(i)
  system.time(ci <<- suppressMessages(suppressWarnings(confint(m, method = "profile"))))[["elapsed"]], 0)
cat(toJSON(list(model = "mathach ~ ses + (ses | school)", call = "confint(m, method = 'profile')",
                median_s = median(times), times_s = times,
                conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]),
                R = paste(R.version$major, R.version$minor, sep = "."),
                lme4 = as.character(packageVersion("lme4"))),
            auto_unbox = TRUE, digits = NA), "\n")
