## Reference values for tests/test_data.py (issue 15): the egsingle file fits as R's own
## mlmRev::egsingle does. Run by hand from anywhere:  Rscript tests/reference/datasets.R
## Writes tests/reference/datasets.json. lme4 1.1-31, mlmRev 1.0-8 (Debian packages).
suppressPackageStartupMessages({library(lme4); library(mlmRev); library(jsonlite)})
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
egs <- load_data("egsingle")

## mlmRev's help-page example, on our CSV and on R's object: the same fit.
f <- math ~ year * size + female + (1 | childid) + (1 | schoolid)
m_csv <- lmer(f, egs, control = lmerControl(optimizer = "bobyqa"))
m_r <- lmer(f, mlmRev::egsingle, control = lmerControl(optimizer = "bobyqa"))
stopifnot(abs(logLik(m_csv) - logLik(m_r)) < 1e-8)

## R&B (2002) ch. 8 style growth model: linear growth varying over children and schools.
m_growth <- lmer(math ~ year + (year | childid) + (year | schoolid), egs, REML = FALSE,
                 control = lmerControl(optimizer = "bobyqa"))

vc <- function(m) { v <- as.data.frame(VarCorr(m)); setNames(v$vcov, paste(v$grp, v$var1, v$var2, sep = "|")) }
out <- list(
  egsingle_help = list(formula = deparse(f), loglik = as.numeric(logLik(m_csv)),
                       fixef = as.list(fixef(m_csv)), vcov = as.list(vc(m_csv))),
  egsingle_growth = list(formula = "math ~ year + (year | childid) + (year | schoolid)", reml = FALSE,
                         loglik = as.numeric(logLik(m_growth)), fixef = as.list(fixef(m_growth)),
                         vcov = as.list(vc(m_growth))),
  egsingle_levels = list(female = levels(mlmRev::egsingle$female),
                         retained = levels(mlmRev::egsingle$retained),
                         n_children = nlevels(mlmRev::egsingle$childid),
                         n_schools = nlevels(mlmRev::egsingle$schoolid))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "datasets.json"))
