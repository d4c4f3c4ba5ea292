## QA on models that no other reference script fits (issues 11 and 12, "checked on inputs you
## have not seen"): lmerTest 3.1-3 (Satterthwaite / Kenward-Roger coefficient tables, anova
## types 3 and 1, contest, ranova), pbkrtest (through lmerTest), lme4's confint (profile and
## Wald, oldNames = FALSE), clubSandwich (vcovCR CR2/CR1/CR0, coef_test Satterthwaite),
## emmeans (lmer.df = "satterthwaite") and lme4's quantities for prediction intervals combined
## by hand as in inference_predict.R.
## Run from anywhere:  Rscript tests/reference/qa_unseen.R   (writes qa_unseen.json beside it)
suppressPackageStartupMessages({
  library(lmerTest); library(pbkrtest); library(clubSandwich); library(emmeans); library(jsonlite)
})
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
ctrl <- lmerControl(optimizer = "bobyqa")
emm_options(lmerTest.limit = 1e6)  # emmeans otherwise falls back to df = Inf above 3000 rows
quiet <- function(x) suppressWarnings(suppressMessages(x))

cases <- list(
  list(id = "exam_sex", data = "exam", reml = TRUE, kr = TRUE, cluster = "school",
       formula = "normexam ~ standLRT * sex + schgend + (standLRT | school)",
       hypotheses = list(list(name = "schgendboys = schgendgirls", L = list(c(0, 0, 0, 1, -1, 0))),
                         list(name = "sexM and standLRT:sexM", L = list(c(0, 0, 1, 0, 0, 0), c(0, 0, 0, 0, 0, 1)))),
       emm = list(list(specs = "schgend", by = NULL), list(specs = "sex", by = NULL))),
  list(id = "chem_ml", data = "chem97", reml = FALSE, kr = FALSE, cluster = "lea",
       formula = "score ~ gcsescore + gender + (1 | lea/school)",
       hypotheses = list(list(name = "gcsescore + genderF", L = list(c(0, 1, 1)))),
       emm = list(list(specs = "gender", by = NULL))),
  list(id = "scot_crossed", data = "scotssec", reml = TRUE, kr = TRUE, cluster = NULL,
       formula = "attain ~ verbal * sex + (1 | primary) + (1 | second)",
       hypotheses = list(list(name = "sexF and verbal:sexF", L = list(c(0, 0, 1, 0), c(0, 0, 0, 1)))),
       emm = list(list(specs = "sex", by = NULL))),
  list(id = "sleep_uncorr", data = "sleepstudy", reml = TRUE, kr = TRUE, cluster = "Subject",
       formula = "Reaction ~ Days + (Days || Subject)",
       hypotheses = list(list(name = "Days = 10", L = list(c(0, 1)), rhs = 10)),
       emm = list())
)

tab <- function(x) { x <- as.data.frame(x); c(list(term = rownames(x)), as.list(x)) }
coef_table <- function(m, ddf) {
  s <- summary(m, ddf = ddf)$coefficients
  list(term = rownames(s), estimate = unname(s[, 1]), std_error = unname(s[, 2]),
       df = unname(s[, 3]), statistic = unname(s[, 4]), p_value = unname(s[, 5]))
}
anova_table <- function(m, type, ddf) {
  a <- anova(m, type = type, ddf = ddf)
  list(term = rownames(a), sum_sq = a[["Sum Sq"]], mean_sq = a[["Mean Sq"]],
       num_df = a[["NumDF"]], den_df = a[["DenDF"]], F = a[["F value"]], p_value = a[["Pr(>F)"]])
}
ci_list <- function(ci) list(parameter = rownames(ci), conf_low = unname(ci[, 1]), conf_high = unname(ci[, 2]))
pred_intervals <- function(m, newdata, terms_fixed) {  # as inference_predict.R
  X <- model.matrix(terms_fixed, newdata)
  V <- as.matrix(vcov(m)); var_fix <- rowSums((X %*% V) * X)
  fit_pop <- as.numeric(predict(m, newdata, re.form = NA))
  fit_re <- as.numeric(predict(m, newdata, allow.new.levels = TRUE))
  re <- ranef(m, condVar = TRUE); vc <- VarCorr(m); var_re <- numeric(nrow(newdata))
  for (g in names(re)) {
    cols <- colnames(re[[g]])
    Z <- if (identical(cols, "(Intercept)")) matrix(1, nrow(newdata), 1) else
      model.matrix(as.formula(paste("~", paste(setdiff(cols, "(Intercept)"), collapse = "+"))), newdata)
    lev <- as.character(newdata[[g]]); pv <- attr(re[[g]], "postVar"); T <- as.matrix(vc[[g]])
    for (i in seq_len(nrow(newdata))) {
      j <- match(lev[i], rownames(re[[g]]))
      S <- if (is.na(j)) T else as.matrix(pv[, , j])
      var_re[i] <- var_re[i] + as.numeric(t(Z[i, ]) %*% S %*% Z[i, ])
    }
  }
  q <- qnorm(0.975); var_pred <- var_fix + var_re + sigma(m)^2
  list(confidence = list(fit = fit_pop, lower = fit_pop - q * sqrt(var_fix), upper = fit_pop + q * sqrt(var_fix)),
       prediction = list(fit = fit_re, lower = fit_re - q * sqrt(var_pred), upper = fit_re + q * sqrt(var_pred)))
}

out <- list(cases = list())
for (c in cases) {
  d <- load_data(c$data)
  m <- lmer(as.formula(c$formula), data = d, REML = c$reml, control = ctrl)
  r <- list(id = c$id, data = c$data, reml = c$reml, formula = c$formula,
            r_call = sprintf("m <- lmer(%s, data = %s, REML = %s, control = lmerControl(optimizer = 'bobyqa'))",
                             c$formula, c$data, c$reml),
            loglik = as.numeric(logLik(m)))
  r$satterthwaite <- coef_table(m, "Satterthwaite")
  r$anova3 <- anova_table(m, 3, "Satterthwaite")
  r$anova1 <- anova_table(m, 1, "Satterthwaite")
  if (c$kr) {
    r$kenward_roger <- coef_table(m, "Kenward-Roger")
    r$anova3_kenward_roger <- anova_table(m, 3, "Kenward-Roger")
  }
  r$hypotheses <- lapply(c$hypotheses, function(h) {
    L <- do.call(rbind, h$L); rhs <- if (is.null(h$rhs)) 0 else h$rhs
    a <- contest(m, L, rhs = rhs, joint = TRUE, ddf = "Satterthwaite")
    list(name = h$name, L = h$L, rhs = rhs, F = a[["F value"]], num_df = a[["NumDF"]],
         den_df = a[["DenDF"]], p_value = a[["Pr(>F)"]])
  })
  rv <- ranova(m)
  r$ranova <- list(term = rownames(rv), npar = rv$npar, loglik = rv$logLik, aic = rv$AIC,
                   lrt = rv$LRT, df = rv$Df, p_value = rv[["Pr(>Chisq)"]])
  r$profile <- ci_list(quiet(confint(m, method = "profile", oldNames = FALSE)))
  r$wald <- ci_list(confint(m, method = "Wald", oldNames = FALSE))
  if (!is.null(c$cluster)) {
    r$robust <- list()
    for (tp in c("CR2", "CR1", "CR0")) {
      V <- vcovCR(m, type = tp, cluster = d[[c$cluster]])
      ct <- coef_test(m, vcov = V, test = "Satterthwaite")
      r$robust[[tp]] <- list(term = ct$Coef, std_error = ct$SE, df = ct$df_Satt)
    }
  }
  r$emmeans <- lapply(c$emm, function(e) {
    em <- emmeans(m, e$specs, lmer.df = "satterthwaite")
    s <- as.data.frame(summary(em))
    p <- as.data.frame(summary(pairs(em, adjust = "tukey")))
    list(specs = e$specs, level = as.character(s[[e$specs]]), emmean = s$emmean, SE = s$SE, df = s$df,
         lower = s$lower.CL, upper = s$upper.CL,
         pairs = list(contrast = as.character(p$contrast), estimate = p$estimate, SE = p$SE,
                      df = p$df, p_value = p$p.value))
  })
  out$cases[[length(out$cases) + 1]] <- r
  cat(c$id, "done\n")
}

## prediction intervals: seen and unseen groups
exam <- load_data("exam")
m <- lmer(normexam ~ standLRT * sex + schgend + (standLRT | school), exam, control = ctrl)
nd <- data.frame(standLRT = c(-1, 0.5, 2, 0), sex = factor(c("F", "M", "M", "F"), levels = c("F", "M")),
                 schgend = factor(c("mixed", "boys", "girls", "mixed"), levels = c("mixed", "boys", "girls")),
                 school = c("1", "2", "4", "999"))
out$predict_exam <- c(list(formula = "normexam ~ standLRT * sex + schgend + (standLRT | school)",
                           newdata = nd), pred_intervals(m, nd, ~ standLRT * sex + schgend))
scot <- load_data("scotssec")
m <- lmer(attain ~ verbal * sex + (1 | primary) + (1 | second), scot, control = ctrl)
nd <- data.frame(verbal = c(0, 5, -10), sex = factor(c("M", "F", "F"), levels = c("M", "F")),
                 primary = c("1", "999", "3"), second = c("9", "1", "999"))
out$predict_scot <- c(list(formula = "attain ~ verbal * sex + (1 | primary) + (1 | second)",
                           newdata = nd), pred_intervals(m, nd, ~ verbal * sex))
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     lmerTest = as.character(packageVersion("lmerTest")),
                     pbkrtest = as.character(packageVersion("pbkrtest")),
                     clubSandwich = as.character(packageVersion("clubSandwich")),
                     emmeans = as.character(packageVersion("emmeans")))
write_json(out, file.path(here, "qa_unseen.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE,
           null = "null", na = "null")
