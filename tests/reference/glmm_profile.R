## Reference profile-likelihood confidence intervals of glmer fits: lme4's
## confint(m, method = "profile", oldNames = FALSE) (its default method).
## Run from anywhere:  Rscript tests/reference/glmm_profile.R [case ids]
## Writes tests/reference/glmm_profile.json (R 4.2.2, lme4 1.1.31 from Debian's packages).
## lme4's glmer profiles take minutes (the slope model tens of minutes on a shared
## machine): give case ids to run some cases only, in parallel processes. Each case is
## saved to glmm_profile_parts/<id>.json and the JSON is assembled from every part there.
##
## Fits use control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10), as
## tests/reference/glmer.R (lme4's default PIRLS tolerance leaves the deviance up to 8e-4
## high, which would move the profile's base point). lme4's profile tabulates zeta on a
## grid (delta = cutoff / 8, up to maxpts = 100) and confint() inverts an interpolation
## spline through it: its limits carry the spline's error (see the Python test for the
## tolerance). Warnings raised by profile() are recorded beside each case.
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
contraception <- load_data("contraception")
cbpp <- load_data("cbpp")
cbpp6 <- droplevels(subset(cbpp, as.integer(as.character(herd)) <= 6))  # herds 1-6
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)
contraception$g7 <- factor((seq_len(nrow(contraception)) - 1) %% 7)  # groups unrelated to use
data <- list(contraception = contraception, cbpp = cbpp, cbpp6 = cbpp6)
cases <- list(
  list(id = "contra_laplace", data = "contraception", family = "binomial", nagq = 1,
       formula = "use ~ age + urban + livch + (1 | district)"),
  list(id = "cbpp_laplace", data = "cbpp", family = "binomial", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(id = "cbpp_poisson_offset", data = "cbpp", family = "poisson", nagq = 1,
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)"),
  ## an SD whose profile reaches 0 before the lower crossing: lower limit 0
  list(id = "cbpp6_zero_lower", data = "cbpp6", family = "binomial", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  ## a singular fit: the SD is estimated at 0 (row i in group (i - 1) mod 7)
  list(id = "contra_singular", data = "contraception", family = "binomial", nagq = 1,
       formula = "use ~ urban + (1 | g7)"),
  list(id = "contra_agq9", data = "contraception", family = "binomial", nagq = 9,
       formula = "use ~ age + urban + livch + (1 | district)"),
  list(id = "contra_slope", data = "contraception", family = "binomial", nagq = 1,
       formula = "use ~ age + urban + livch + (urban | district)")
)
json_path <- file.path(here, "glmm_profile.json")
parts <- file.path(here, "glmm_profile_parts")
dir.create(parts, showWarnings = FALSE)
ids <- commandArgs(trailingOnly = TRUE)
run <- if (length(ids)) Filter(function(c) c$id %in% ids, cases) else cases
for (c in run) {
  m <- glmer(as.formula(c$formula), data[[c$data]], family = get(c$family)(), nAGQ = c$nagq,
             control = ctrl)
  c$r_call <- sprintf("confint(glmer(%s, data = %s, family = %s, nAGQ = %d, control = glmerControl(optimizer = \"bobyqa\", tolPwrss = 1e-10)), method = \"profile\", oldNames = FALSE)",
                      c$formula, c$data, c$family, c$nagq)
  c$deviance <- deviance(m)
  c$loglik <- as.numeric(logLik(m))
  c$fixef <- as.list(fixef(m))
  c$sdcor <- as.data.frame(VarCorr(m))$sdcor
  warns <- character(0)
  t0 <- proc.time()[["elapsed"]]
  ## confint(m, method = "profile", oldNames = FALSE) is confint(profile(m, signames = FALSE))
  pr <- withCallingHandlers(profile(m, signames = FALSE),
                            warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") })
  c$seconds <- proc.time()[["elapsed"]] - t0
  ci <- confint(pr)
  c$warnings <- unique(warns)
  c$parameters <- rownames(ci)
  c$lower <- as.numeric(ci[, 1])   # NA stays NA (null in JSON)
  c$upper <- as.numeric(ci[, 2])
  ## level 0.90 for the random-intercept Laplace fit (a second crossing of the same profile)
  if (c$id == "contra_laplace") {
    ci90 <- confint(pr, level = 0.90)
    c$lower90 <- as.numeric(ci90[, 1]); c$upper90 <- as.numeric(ci90[, 2])
  }
  message(c$id, ": ", round(c$seconds, 1), " s")
  writeLines(toJSON(c, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
             file.path(parts, paste0(c$id, ".json")))
}
out <- list(meta = list(r = R.version.string, lme4 = as.character(packageVersion("lme4"))))
for (c in cases) {
  f <- file.path(parts, paste0(c$id, ".json"))
  if (file.exists(f)) out[[c$id]] <- fromJSON(f, simplifyVector = TRUE)
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"), json_path)
