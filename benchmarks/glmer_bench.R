## Time lme4's glmer or glmmTMB on one model; prints JSON. Called by glmer_bench.py, one process
## per (model, tool), so that the peak memory (VmHWM of /proc/self/status) is the tool's own.
## Usage: Rscript benchmarks/glmer_bench.R TOOL REPEATS FORMULA DATA
##   TOOL: lme4_default (glmer's defaults), lme4_tolPwrss (bobyqa, tolPwrss = 1e-10: PIRLS to
##   the optimum, field notes) or glmmTMB; DATA: a bundled data set's name or a CSV file.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
args <- commandArgs(TRUE)
tool <- args[1]; reps <- as.integer(args[2]); f <- as.formula(args[3]); src <- args[4]
if (grepl("\\.csv$", src)) {
  d <- read.csv(src)
  d$g <- factor(d$g)
} else {
  data_dir <- normalizePath(file.path(here, "..", "datasets"))
  source(file.path(here, "..", "tests", "reference", "load_data.R"))
  d <- load_data(src)
}
fit <- switch(tool,
  lme4_default = function() glmer(f, d, family = binomial),
  lme4_tolPwrss = function() glmer(f, d, family = binomial,
                                   control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)),
  glmmTMB = function() glmmTMB::glmmTMB(f, d, family = binomial),
  stop("unknown tool ", tool))
times <- cpu <- numeric(reps)
for (i in seq_len(reps)) {
  st <- system.time(m <- suppressWarnings(fit()))
  times[i] <- st[["elapsed"]]
  cpu[i] <- st[["user.self"]] + st[["sys.self"]]
}
fe <- if (tool == "glmmTMB") glmmTMB::fixef(m)$cond else fixef(m)
se <- if (tool == "glmmTMB") sqrt(diag(vcov(m)$cond)) else sqrt(diag(vcov(m)))
status <- readLines("/proc/self/status")
hwm <- as.numeric(gsub("[^0-9]", "", grep("^VmHWM", status, value = TRUE))) / 1024
cat(toJSON(list(median_s = median(times), times_s = times, median_cpu_s = median(cpu),
                loglik = as.numeric(logLik(m)), fixef = unname(fe), se = unname(se), peak_mib = hwm,
                version = as.character(packageVersion(if (tool == "glmmTMB") "glmmTMB" else "lme4"))),
           auto_unbox = TRUE, digits = NA), "\n")
