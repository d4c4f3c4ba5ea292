## Reference numbers for mlm's comparison toolkit (mlm/comparison.py, mlm/interactions.py).
## Reads the bundled CSV (datasets/hsb.csv; school converted to a factor) so that R and
## Python fit exactly the same data, and writes toolkit_comparison.json next to this script.
## Run:  Rscript tests/reference/toolkit_comparison.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
hsb <- read.csv(file.path(data_dir, "hsb.csv"))
hsb$school <- factor(hsb$school)
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)   # group-mean centred ses
hsb$sesm <- ave(hsb$ses, hsb$school)             # school mean of ses over these rows
ctrl <- lmerControl()
out <- list(r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")))

vc_df <- function(m) {
  v <- as.data.frame(VarCorr(m))
  list(grp = v$grp, var1 = ifelse(is.na(v$var1), "", v$var1),
       var2 = ifelse(is.na(v$var2), "", v$var2), vcov = v$vcov)
}

## ---------------------------------------------------------------- OLS versus multilevel
ols <- lm(mathach ~ ses + meanses + sector, data = hsb)
m_reml <- lmer(mathach ~ ses + meanses + sector + (1 | school), data = hsb)
m_ml <- lmer(mathach ~ ses + meanses + sector + (1 | school), data = hsb, REML = FALSE)
m_slope_ml <- lmer(mathach ~ ses + meanses + sector + (ses | school), data = hsb, REML = FALSE)
res_aov <- anova(lm(resid(ols) ~ hsb$school))
vc <- as.data.frame(VarCorr(m_reml))
lr1 <- 2 * (as.numeric(logLik(m_ml)) - as.numeric(logLik(ols)))
lr3 <- 2 * (as.numeric(logLik(m_slope_ml)) - as.numeric(logLik(ols)))
out$ols_vs_mlm <- list(
  r_call = paste("ols <- lm(mathach ~ ses + meanses + sector, hsb);",
                 "m <- lmer(mathach ~ ses + meanses + sector + (1 | school), hsb)"),
  terms = names(coef(ols)),
  ols_estimate = unname(coef(ols)),
  ols_std_error = unname(sqrt(diag(vcov(ols)))),
  ols_loglik = as.numeric(logLik(ols)),
  mlm_estimate = unname(fixef(m_reml)),
  mlm_std_error = unname(sqrt(diag(as.matrix(vcov(m_reml))))),
  residual_anova = list(r_call = "anova(lm(resid(ols) ~ school))",
                        F = res_aov[["F value"]][1], df1 = res_aov$Df[1], df2 = res_aov$Df[2],
                        p_value = res_aov[["Pr(>F)"]][1]),
  lr_test = list(r_call = "2 * (logLik(lmer(..., REML = FALSE)) - logLik(ols)); p = 0.5 * pchisq(stat, 1, lower.tail = FALSE)",
                 ml_loglik = as.numeric(logLik(m_ml)), statistic = lr1, df = 1,
                 p_value = 0.5 * pchisq(lr1, 1, lower.tail = FALSE)),
  lr_test_slope = list(r_call = "random slope (ses | school), REML = FALSE: 3 variance parameters; p = pchisq(stat, 3, lower.tail = FALSE)",
                       ml_loglik = as.numeric(logLik(m_slope_ml)), statistic = lr3, df = 3,
                       p_value = pchisq(lr3, 3, lower.tail = FALSE)),
  icc = list(r_call = "tau00 / (tau00 + sigma2) from VarCorr(m) (REML)",
             tau00 = vc$vcov[1], sigma2 = vc$vcov[2], icc = vc$vcov[1] / (vc$vcov[1] + vc$vcov[2]))
)

## ---------------------------------------------------------------- anova(m0, m1)
anova_rows <- function(a) list(models = rownames(a), npar = a$npar, aic = a$AIC, bic = a$BIC,
                               loglik = a$logLik, deviance = a$deviance, chisq = a$Chisq,
                               df = a$Df, p_value = a[["Pr(>Chisq)"]])
m0 <- lmer(mathach ~ ses + (1 | school), data = hsb)
m1 <- lmer(mathach ~ ses + meanses + (1 | school), data = hsb)
m2 <- lmer(mathach ~ ses + (ses | school), data = hsb)
out$anova <- list(
  fixed = c(list(r_call = "anova(m1, m0)  # m0: mathach ~ ses + (1|school), m1: mathach ~ ses + meanses + (1|school); REML fits, refitted with ML"),
            anova_rows(suppressMessages(anova(m1, m0)))),
  slope = c(list(r_call = "anova(m0, m2)  # m2: mathach ~ ses + (ses|school); same fixed part, refit = TRUE (default)"),
            anova_rows(suppressMessages(anova(m0, m2)))),
  slope_reml = c(list(r_call = "anova(m0, m2, refit = FALSE)"),
                 anova_rows(anova(m0, m2, refit = FALSE))),
  three = c(list(r_call = "anova(m2, m0, m1)"),
            anova_rows(suppressMessages(anova(m2, m0, m1))))
)

## ---------------------------------------------------------------- slopes as outcomes
rb <- lmer(mathach ~ meanses * cses + sector * cses + (cses | school), data = hsb)
rb_base <- lmer(mathach ~ meanses + sector + cses + (cses | school), data = hsb)
g <- fixef(rb); V <- as.matrix(vcov(rb))
slopes <- function(focal, inter, W) {
  est <- g[focal] + W * g[inter]
  se <- sqrt(V[focal, focal] + 2 * W * V[focal, inter] + W^2 * V[inter, inter])
  z <- est / se; q <- qnorm(0.975)
  list(at = W, slope = unname(est), std_error = unname(se), statistic = unname(z),
       p_value = unname(2 * pnorm(-abs(z))), conf_low = unname(est - q * se),
       conf_high = unname(est + q * se))
}
W <- mean(hsb$meanses) + c(-1, 0, 1) * sd(hsb$meanses)
## meanses is a school-level variable: its mean and SD over the 160 schools (one value each)
sch <- hsb[!duplicated(hsb$school), ]
W_schools <- mean(sch$meanses) + c(-1, 0, 1) * sd(sch$meanses)
jn <- local({
  q <- qnorm(0.975); b0 <- g["cses"]; b1 <- g["meanses:cses"]
  v0 <- V["cses", "cses"]; v1 <- V["meanses:cses", "meanses:cses"]; c01 <- V["cses", "meanses:cses"]
  a <- b1^2 - q^2 * v1; b <- 2 * (b0 * b1 - q^2 * c01); cc <- b0^2 - q^2 * v0
  sort(unname(Re(polyroot(c(cc, b, a)))))
})
vc_rb <- VarCorr(rb)$school; vc_base <- VarCorr(rb_base)$school
out$slopes_as_outcomes <- list(
  r_call = "rb <- lmer(mathach ~ meanses * cses + sector * cses + (cses | school), hsb)  # cses = ses - ave(ses, school)",
  fixef_names = names(g), fixef = unname(g), vcov = unname(V),
  simple_slopes_meanses = c(list(r_call = "w(W) = g[cses] + W g[meanses:cses], Var = V10 + 2 W C + W^2 V11; W = mean(meanses) + c(-1,0,1) sd(meanses); Wald z, CI with qnorm(0.975)"),
                            slopes("cses", "meanses:cses", W)),
  simple_slopes_meanses_schools = c(list(r_call = "as simple_slopes_meanses with W = mean + c(-1,0,1) sd of meanses over schools: sch <- hsb[!duplicated(hsb$school), ]"),
                                    slopes("cses", "meanses:cses", W_schools)),
  simple_slopes_sector = c(list(r_call = "same with moderator sector at 0, 1"),
                           slopes("cses", "cses:sector", c(0, 1))),
  johnson_neyman_meanses = list(r_call = "roots of (b0 + b1 W)^2 = qnorm(0.975)^2 (v0 + 2 W c01 + W^2 v1), polyroot", roots = jn,
                                meanses_range = range(hsb$meanses)),
  slope_variance = list(r_call = "1 - VarCorr(rb)$school['cses','cses'] / VarCorr(rb_base)$school['cses','cses']; rb_base: mathach ~ meanses + sector + cses + (cses | school)",
                        tau11_model = vc_rb["cses", "cses"], tau11_baseline = vc_base["cses", "cses"],
                        explained = 1 - vc_rb["cses", "cses"] / vc_base["cses", "cses"])
)

## ---------------------------------------------------------------- contextual effect
ctx1 <- lmer(mathach ~ ses + sesm + (1 | school), data = hsb)
ctx2 <- lmer(mathach ~ cses + sesm + (1 | school), data = hsb)
out$contextual <- list(
  r_call = "lmer(mathach ~ ses + sesm + (1|school)) and lmer(mathach ~ cses + sesm + (1|school)); sesm = ave(ses, school)",
  contextual = unname(fixef(ctx1)["sesm"]), within = unname(fixef(ctx2)["cses"]),
  between = unname(fixef(ctx2)["sesm"]), loglik1 = as.numeric(logLik(ctx1)),
  loglik2 = as.numeric(logLik(ctx2))
)

## ---------------------------------------------------------------- zero group variance
## Deterministic data: x and e are permutations of 0..7 within each of 12 groups, so both
## have group means exactly 3.5; OLS residuals then have group means exactly 0 and the
## estimated group variance is on the boundary.
zd <- expand.grid(j = 0:7, g = 1:12)
zd$x <- ((zd$j * 7 + zd$g * 3) %% 8) - 3.5
zd$e <- ((zd$j * 5 + zd$g * 11) %% 8) - 3.5
zd$y <- 2 + zd$x + 0.5 * zd$e
zd$g <- factor(zd$g)
z_lm <- lm(y ~ x, data = zd)
z_mm <- lmer(y ~ x + (1 | g), data = zd)
out$zero_variance <- list(
  r_call = "zd: j = 0:7, g = 1:12; x = (7j + 3g) %% 8 - 3.5; e = (5j + 11g) %% 8 - 3.5; y = 2 + x + 0.5 e; lmer(y ~ x + (1 | g))",
  ols = unname(coef(z_lm)), lmer = unname(fixef(z_mm)), singular = isSingular(z_mm),
  group_variance = as.data.frame(VarCorr(z_mm))$vcov[1]
)

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, na = "null"),
           file.path(script_dir, "toolkit_comparison.json"))
cat("wrote", file.path(script_dir, "toolkit_comparison.json"), "\n")
