## Reference numbers for the reports of generalized linear mixed models (issue 13 for glmer
## fits): fit.explain(), mlm.table(), fit.summary(style = "hlm") and mlm.plot_ranef.
## lme4's glmer (Laplace), exp(fixef) as odds / rate ratios with Wald intervals, the median
## odds ratio (Merlo et al. 2006, J Epidemiol Community Health 60: 290-297:
## MOR = exp(sqrt(2 * tau2) * qnorm(0.75))), performance's latent-scale ICC (residual
## variance pi^2/3 logit, 1 probit, pi^2/6 cloglog), lme4's two deviances, and HLM's
## layout of a Bernoulli model (t-ratio = z, approx. d.f. J - F_q or N - p, p from t with
## those d.f., odds-ratio intervals exp(b +- qt(0.975, df) * se)).
## Run from anywhere:  Rscript tests/reference/report_glmm.R   (writes report_glmm.json)
suppressPackageStartupMessages({ library(lme4); library(performance); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))
contraception <- load_data("contraception")
# cwc(age, district) and gm(age, district) of mlm's formulas
contraception$age_c <- contraception$age - ave(contraception$age, contraception$district)
contraception$age_m <- ave(contraception$age, contraception$district)
cbpp <- load_data("cbpp")
data <- list(contraception = contraception, cbpp = cbpp)
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)

cases <- list(
  list(id = "logit", data = "contraception", family = "binomial", link = "logit",
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)",
       # the fixed effects HLM's df rule assigns: the intercept predicts B0 (random: J - 1),
       # the others are level-1 predictors with fixed slopes (N - p)
       hlm = TRUE),
  list(id = "centered", data = "contraception", family = "binomial", link = "logit",
       formula = "use ~ age_c + age_m + urban + (1 | district)"),
  # mlm: use ~ cwc(age, district) + gm(age, district) + urban + gm(age, district):urban + livch
  #      + (urban | district)
  list(id = "slopes", data = "contraception", family = "binomial", link = "logit",
       formula = "use ~ age_c + age_m + urban + age_m:urban + livch + (urban | district)",
       hlm = TRUE),
  list(id = "probit", data = "contraception", family = "binomial", link = "probit",
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  list(id = "cloglog", data = "contraception", family = "binomial", link = "cloglog",
       formula = "use ~ age + I(age^2) + urban + livch + (1 | district)"),
  list(id = "cbind", data = "cbpp", family = "binomial", link = "logit",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(id = "poisson", data = "cbpp", family = "poisson", link = "log",
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)", hlm = TRUE)
)

hlm_df <- function(m, id) {
  # HLM's approximate d.f. of each fixed effect: J - F_q for the F_q effects predicting a
  # random coefficient q, N - p for a level-1 coefficient that does not vary
  p <- length(fixef(m)); N <- nobs(m); J <- nlevels(getME(m, "flist")[[1]])
  nm <- names(fixef(m))
  if (id == "slopes") {
    # B0 = G00 + G01 age_m + U0; B1 (urbanY) = G10 + G11 age_m + U1: J - 2;
    # age_c and livch: level-1 predictors with fixed slopes: N - p
    return(setNames(ifelse(nm %in% c("(Intercept)", "age_m", "urbanY", "age_m:urbanY"), J - 2, N - p), nm))
  }
  setNames(ifelse(nm == "(Intercept)", J - 1, N - p), nm)
}

one <- function(c) {
  d <- data[[c$data]]
  m <- glmer(as.formula(c$formula), d, family = get(c$family)(link = c$link), control = ctrl)
  b <- fixef(m); se <- sqrt(diag(as.matrix(vcov(m))))
  vc <- as.data.frame(VarCorr(m))
  tau2 <- vc$vcov[is.na(vc$var2) & vc$var1 == "(Intercept)"][1]
  out <- list(
    r_call = sprintf("glmer(%s, data = %s, family = %s(link = \"%s\"), control = glmerControl(optimizer = \"bobyqa\", tolPwrss = 1e-10))",
                     c$formula, c$data, c$family, c$link),
    fixef = as.list(b),                                       # fixef(m)
    se = as.list(se),                                         # sqrt(diag(vcov(m)))
    z = as.list(b / se),
    p = as.list(2 * pnorm(-abs(b / se))),
    exp_fixef = as.list(exp(b)),                              # exp(fixef(m))
    exp_conf_low = as.list(exp(b - qnorm(0.975) * se)),       # exp(confint(m, method = "Wald"))
    exp_conf_high = as.list(exp(b + qnorm(0.975) * se)),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(
      grp = vc$grp[i], var1 = vc$var1[i], var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
      vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    tau2 = tau2,
    mor = exp(sqrt(2 * tau2) * qnorm(0.75)),                  # Merlo et al. 2006
    nobs = nobs(m), ngroups = as.list(ngrps(m)),
    loglik = as.numeric(logLik(m)),
    minus2loglik = -2 * as.numeric(logLik(m)),                # summary(m)$AICtab["deviance"]
    deviance_resid = deviance(m),                             # deviance(m): sum of squared deviance residuals
    aic = AIC(m), bic = BIC(m),
    singular = isSingular(m)
  )
  if (c$family == "binomial") {
    ic <- performance::icc(m)
    out$icc_adjusted <- unname(ic$ICC_adjusted)               # performance::icc(m)$ICC_adjusted
    out$residual_variance_latent <- insight::get_variance_residual(m)
  }
  if (isTRUE(c$hlm)) {
    df <- hlm_df(m, c$id)
    out$hlm_df <- as.list(df)
    out$hlm_p <- as.list(2 * pt(-abs(b / se), df))            # HLM: p of the t-ratio with approx. d.f.
    out$hlm_ratio_low <- as.list(exp(b - qt(0.975, df) * se)) # HLM's odds-ratio interval
    out$hlm_ratio_high <- as.list(exp(b + qt(0.975, df) * se))
  }
  c$hlm <- NULL
  c(c, out)
}
res <- lapply(cases, one)
names(res) <- vapply(cases, `[[`, "", "id")
res$generated_by <- "tests/reference/report_glmm.R"
res$versions <- list(r = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     performance = as.character(packageVersion("performance")))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "report_glmm.json"))
cat("wrote", file.path(here, "report_glmm.json"), "\n")
