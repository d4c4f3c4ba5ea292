## lme4's fit of the optimum just inside the bound (tests/test_engine_optimize.py).
## python tests/reference/optimizer_boundary_data.py /tmp/optimizer_boundary.csv
## Rscript tests/reference/optimizer_boundary.R /tmp/optimizer_boundary.csv
## Writes tests/reference/optimizer_boundary.json (R 4.2.2, lme4 1.1.31, bobyqa).
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
d <- read.csv(commandArgs(TRUE)[1]); d$a <- factor(d$a); d$b <- factor(d$b)
m <- lmer(y ~ x + (1 | a) + (x | b), d, control = lmerControl(optimizer = "bobyqa"))
out <- list(r_call = "lmer(y ~ x + (1 | a) + (x | b), d, control = lmerControl(optimizer = \"bobyqa\"))",
            loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
            messages = m@optinfo$conv$lme4$messages)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "optimizer_boundary.json"))
