## Reference numbers for the gallery (examples/*.py; checked by tests/test_examples.py).
## Every number an example prints is computed here with lme4 / lmerTest / base R on the
## same bundled CSVs, under the same key as in the example's RESULTS dict.
## Run from anywhere:  Rscript tests/reference/gallery.R
## Writes tests/reference/gallery.json (R 4.2.2, lme4 1.1.31, lmerTest 3.1.3).
## Fits use bobyqa, lme4's more careful optimizer; the default (nloptwrap) agrees on
## every model here to the tolerances of the tests.
suppressPackageStartupMessages({ library(lme4); library(lmerTest); library(jsonlite) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
ctrl <- lmerControl(optimizer = "bobyqa")
fit <- function(f, d, REML = TRUE) suppressWarnings(lmerTest::lmer(f, d, REML = REML, control = ctrl))
vc <- function(m) { v <- as.data.frame(VarCorr(m)); v }
var_of <- function(m, grp, var1 = "(Intercept)", var2 = NA) {
  v <- vc(m)
  i <- which(v$grp == grp & (is.na(var1) & is.na(v$var1) | (!is.na(v$var1) & v$var1 %in% var1)) &
             (is.na(var2) & is.na(v$var2) | (!is.na(v$var2) & v$var2 %in% var2)))
  stopifnot(length(i) == 1); v$vcov[i]
}
sigma2 <- function(m) sigma(m)^2
coefs <- function(m) { s <- summary(m)$coefficients; s }
put_fixed <- function(res, prefix, m, names_map) {
  s <- coefs(m)
  for (k in names(names_map)) {
    term <- names_map[[k]]
    res[[paste0(prefix, k)]] <- unname(s[term, "Estimate"])
    res[[paste0(prefix, k, "_se")]] <- unname(s[term, "Std. Error"])
  }
  res
}
## lmerTest's t-tests with Satterthwaite df, and the 95% interval estimate +- t(0.975, df) SE
coef_table <- function(m) {
  s <- summary(m)$coefficients
  list(terms = rownames(s), estimate = unname(s[, "Estimate"]), std_error = unname(s[, "Std. Error"]),
       df = unname(s[, "df"]), statistic = unname(s[, "t value"]), p_value = unname(s[, "Pr(>|t|)"]),
       conf_low = unname(s[, "Estimate"] - qt(0.975, s[, "df"]) * s[, "Std. Error"]),
       conf_high = unname(s[, "Estimate"] + qt(0.975, s[, "df"]) * s[, "Std. Error"]))
}
## group sizes as mlm.describe_nesting counts them
sizes <- function(g) { n <- table(g); n <- n[n > 0]
  list(n_groups = length(n), min_size = min(n), median_size = median(n), max_size = max(n),
       singletons = sum(n == 1)) }
out <- list(r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")))

## HLM's chi-square test of each random coefficient and its reliability (R&B 2002, eqs.
## 3.103 and 3.56): an OLS regression per school of the level-1 model, sigma^2 from the
## mixed model, gamma_q' W_j from its fixed effects.
hlm_tests <- function(m, d, level1, level2_of) {
  s2 <- sigma(m)^2; fe <- fixef(m); v <- vc(m)
  names_q <- c("(Intercept)", level1)
  tau <- sapply(names_q, function(q) v$vcov[v$grp == "school" & v$var1 == q & is.na(v$var2)])
  chi <- setNames(rep(0, length(names_q)), names_q); rel <- chi; J <- 0
  for (g in split(d, d$school)) {
    X <- cbind(1, as.matrix(g[, level1, drop = FALSE]))
    if (nrow(X) <= ncol(X) || qr(X)$rank < ncol(X)) next
    J <- J + 1
    b <- qr.solve(X, g$mathach)
    V <- s2 * solve(crossprod(X))
    for (q in seq_along(names_q)) {
      pred <- 0
      for (term in level2_of[[names_q[q]]]) {
        w <- if (term$w == "1") 1 else g[[term$w]][1]
        pred <- pred + fe[[term$coef]] * w
      }
      chi[q] <- chi[q] + (b[q] - pred)^2 / V[q, q]
      rel[q] <- rel[q] + tau[q] / (tau[q] + V[q, q])
    }
  }
  list(chi = chi, rel = rel / J, J = J)
}
T <- function(coef, w = "1") list(coef = coef, w = w)

## ============================================================ 01 R&B chapter 4 (hsb)
hsb <- load_data("hsb")
hsb$cses <- hsb$ses - hsb$meanses           # R&B's cses: ses minus the school file's MEANSES
r <- list()
m0 <- fit(mathach ~ 1 + (1 | school), hsb)
t0 <- hlm_tests(m0, hsb, character(0), list("(Intercept)" = list(T("(Intercept)"))))
n_j <- table(hsb$school)
r <- put_fixed(r, "anova_", m0, list(g00 = "(Intercept)"))
r$anova_tau00 <- var_of(m0, "school"); r$anova_sigma2 <- sigma2(m0)
r$anova_icc <- r$anova_tau00 / (r$anova_tau00 + r$anova_sigma2)
r$anova_reliability <- mean(r$anova_tau00 / (r$anova_tau00 + r$anova_sigma2 / n_j))
r$anova_chi2 <- unname(t0$chi[1]); r$anova_df <- t0$J - 1
r$anova_loglik <- as.numeric(logLik(m0))

m1 <- fit(mathach ~ meanses + (1 | school), hsb)
t1 <- hlm_tests(m1, hsb, character(0), list("(Intercept)" = list(T("(Intercept)"), T("meanses", "meanses"))))
r <- put_fixed(r, "means_", m1, list(g00 = "(Intercept)", g01 = "meanses"))
r$means_tau00 <- var_of(m1, "school"); r$means_sigma2 <- sigma2(m1)
r$means_icc <- r$means_tau00 / (r$means_tau00 + r$means_sigma2)
r$means_explained <- 1 - r$means_tau00 / r$anova_tau00
r$means_reliability <- unname(t1$rel[1]); r$means_chi2 <- unname(t1$chi[1]); r$means_df <- t1$J - 2
r$means_loglik <- as.numeric(logLik(m1))

m2 <- fit(mathach ~ cses + (cses | school), hsb)
t2 <- hlm_tests(m2, hsb, "cses", list("(Intercept)" = list(T("(Intercept)")), cses = list(T("cses"))))
r <- put_fixed(r, "rc_", m2, list(g00 = "(Intercept)", g10 = "cses"))
r$rc_tau00 <- var_of(m2, "school"); r$rc_tau11 <- var_of(m2, "school", "cses")
r$rc_tau01 <- var_of(m2, "school", "(Intercept)", "cses"); r$rc_sigma2 <- sigma2(m2)
r$rc_explained_l1 <- 1 - r$rc_sigma2 / r$anova_sigma2
r$rc_reliability0 <- unname(t2$rel[1]); r$rc_reliability1 <- unname(t2$rel[2])
r$rc_chi2_0 <- unname(t2$chi[1]); r$rc_chi2_1 <- unname(t2$chi[2]); r$rc_df <- t2$J - 1
r$rc_loglik <- as.numeric(logLik(m2))

m3 <- fit(mathach ~ meanses*cses + sector*cses + (cses | school), hsb)
t3 <- hlm_tests(m3, hsb, "cses", list(
  "(Intercept)" = list(T("(Intercept)"), T("meanses", "meanses"), T("sector", "sector")),
  cses = list(T("cses"), T("meanses:cses", "meanses"), T("cses:sector", "sector"))))
r <- put_fixed(r, "full_", m3, list(g00 = "(Intercept)", g01 = "meanses", g02 = "sector",
                                    g10 = "cses", g11 = "meanses:cses", g12 = "cses:sector"))
r$full_tau00 <- var_of(m3, "school"); r$full_tau11 <- var_of(m3, "school", "cses")
r$full_tau01 <- var_of(m3, "school", "(Intercept)", "cses"); r$full_sigma2 <- sigma2(m3)
r$full_explained0 <- 1 - r$full_tau00 / r$rc_tau00
r$full_explained1 <- 1 - r$full_tau11 / r$rc_tau11
r$full_reliability0 <- unname(t3$rel[1]); r$full_reliability1 <- unname(t3$rel[2])
r$full_chi2_0 <- unname(t3$chi[1]); r$full_chi2_1 <- unname(t3$chi[2]); r$full_df <- t3$J - 3
r$full_chi2_0_p <- pchisq(r$full_chi2_0, r$full_df, lower.tail = FALSE)
r$full_chi2_1_p <- pchisq(r$full_chi2_1, r$full_df, lower.tail = FALSE)
r$full_loglik <- as.numeric(logLik(m3))
r$full_remlcrit <- unname(REMLcrit(m3))
s3 <- coefs(m3)
r$full_table <- coef_table(m3)
## explain()'s simple slopes of cses: g10 + g11 W at W = mean, mean -+ 1 SD of meanses
## over the 160 schools (the units it describes), with sector = 0; and at sector = 1 with
## meanses = 0
school_meanses <- tapply(hsb$meanses, hsb$school, function(x) x[1])
r$full_meanses_mean <- mean(school_meanses); r$full_meanses_sd <- sd(school_meanses)
W <- r$full_meanses_mean + c(-1, 0, 1) * r$full_meanses_sd
r$full_meanses_at <- W
r$full_simple_slopes_meanses <- unname(fixef(m3)[["cses"]] + fixef(m3)[["meanses:cses"]] * W)
r$full_simple_slope_sector1 <- unname(fixef(m3)[["cses"]] + fixef(m3)[["cses:sector"]])
r$full_slope_range <- fixef(m3)[["cses"]] + c(-1, 1) * qnorm(0.975) * sqrt(r$full_tau11)
r$full_cor <- vc(m3)$sdcor[3]
r$full_sd0 <- sqrt(r$full_tau00); r$full_sd1 <- sqrt(r$full_tau11); r$full_sigma <- sigma(m3)
r$full_icc_adjusted <- performance::icc(m3)$ICC_adjusted   # explain(): the Nakagawa/Johnson ICC
r$n_students <- nrow(hsb); r$n_schools <- nlevels(hsb$school)
r$school_size_range <- range(table(hsb$school))
r$r_calls <- c("m0 <- lmer(mathach ~ 1 + (1 | school), hsb)",
               "m1 <- lmer(mathach ~ meanses + (1 | school), hsb)",
               "m2 <- lmer(mathach ~ cses + (cses | school), hsb)  # cses <- ses - meanses",
               "m3 <- lmer(mathach ~ meanses*cses + sector*cses + (cses | school), hsb)",
               "chi-square and reliability: hlm_tests() above (one lm per school)")
out$rb_chapter4 <- r

## ============================================================ 02 single level vs multilevel
r <- list()
ols <- lm(mathach ~ ses + sector, hsb)
so <- summary(ols)$coefficients
r$ols_ses <- so["ses", 1]; r$ols_ses_se <- so["ses", 2]
r$ols_sector <- so["sector", 1]; r$ols_sector_se <- so["sector", 2]
r$ols_intercept <- so["(Intercept)", 1]; r$ols_intercept_se <- so["(Intercept)", 2]
r$ols_loglik <- as.numeric(logLik(ols))
dum <- lm(mathach ~ ses + school + sector, hsb)    # sector after the dummies: aliased
r$dummies_ses <- coef(dum)[["ses"]]; r$dummies_ses_se <- summary(dum)$coefficients["ses", 2]
r$dummies_sector_aliased <- is.na(coef(dum)[["sector"]])
r$dummies_rank <- lm(mathach ~ ses + school, hsb)$rank
r$dummies_rank_with_sector <- dum$rank
sep <- lmList(mathach ~ ses | school, hsb, pool = FALSE)
cs <- coef(sep)
r$separate_n <- nrow(cs)
r$separate_slope_mean <- mean(cs$ses); r$separate_slope_sd <- sd(cs$ses)
r$separate_slope_min <- min(cs$ses); r$separate_slope_max <- max(cs$ses)
# the part of that spread that is sampling error: mean of the squared standard errors
se2 <- sapply(split(hsb, hsb$school), function(g) summary(lm(mathach ~ ses, g))$coefficients["ses", 2]^2)
r$separate_slope_mean_se2 <- mean(se2)
r$separate_true_var <- r$separate_slope_sd^2 - r$separate_slope_mean_se2
ri <- fit(mathach ~ ses + sector + (1 | school), hsb)
ri_ml <- fit(mathach ~ ses + sector + (1 | school), hsb, REML = FALSE)
r <- put_fixed(r, "ri_", ri, list(intercept = "(Intercept)", ses = "ses", sector = "sector"))
r$ri_tau00 <- var_of(ri, "school"); r$ri_sigma2 <- sigma2(ri)
r$ri_icc <- r$ri_tau00 / (r$ri_tau00 + r$ri_sigma2)
r$ri_se_ratio_intercept <- r$ri_intercept_se / r$ols_intercept_se
r$ri_se_ratio_ses <- r$ri_ses_se / r$ols_ses_se
r$ri_se_ratio_sector <- r$ri_sector_se / r$ols_sector_se
r$ri_ml_loglik <- as.numeric(logLik(ri_ml))
r$lr_statistic <- 2 * (r$ri_ml_loglik - r$ols_loglik)
r$lr_p_value <- 0.5 * pchisq(r$lr_statistic, 1, lower.tail = FALSE)
aov <- anova(lm(resid(ols) ~ hsb$school))
r$resid_anova_F <- aov[["F value"]][1]; r$resid_anova_df1 <- aov$Df[1]; r$resid_anova_df2 <- aov$Df[2]
rs <- fit(mathach ~ ses + sector + (ses | school), hsb)
r <- put_fixed(r, "rs_", rs, list(intercept = "(Intercept)", ses = "ses", sector = "sector"))
r$rs_tau11 <- var_of(rs, "school", "ses"); r$rs_slope_sd <- sqrt(r$rs_tau11)
r$rs_blup_slope_sd <- sd(coef(rs)$school$ses)
r$rs_loglik <- as.numeric(logLik(rs))
r$r_calls <- c("ols <- lm(mathach ~ ses + sector, hsb)", "lm(mathach ~ ses + sector + school, hsb)",
               "lmList(mathach ~ ses | school, hsb)", "lmer(mathach ~ ses + sector + (1 | school), hsb)",
               "lmer(mathach ~ ses + sector + (ses | school), hsb)")
out$single_vs_multilevel <- r

## ============================================================ 03 sleepstudy
ss <- load_data("sleepstudy")
r <- list()
ms <- fit(Reaction ~ Days + (Days | Subject), ss)
s <- coefs(ms)
r$intercept <- s["(Intercept)", 1]; r$intercept_se <- s["(Intercept)", 2]; r$intercept_df <- s["(Intercept)", "df"]
r$days <- s["Days", 1]; r$days_se <- s["Days", 2]; r$days_df <- s["Days", "df"]
v <- vc(ms)
r$sd_intercept <- v$sdcor[1]; r$sd_days <- v$sdcor[2]; r$cor <- v$sdcor[3]; r$sigma <- sigma(ms)
r$loglik <- as.numeric(logLik(ms))
mi <- fit(Reaction ~ Days + (1 | Subject), ss)
mu <- fit(Reaction ~ Days + (Days || Subject), ss)
a <- anova(mi, ms)                    # refits with ML, as lme4
r$lrt_chisq <- a$Chisq[2]; r$lrt_df <- a$Df[2]; r$lrt_p <- a[["Pr(>Chisq)"]][2]
r$uncorrelated_loglik <- as.numeric(logLik(mu))
a2 <- anova(mu, ms, refit = FALSE)
r$cor_lrt_chisq <- a2$Chisq[2]; r$cor_lrt_p <- a2[["Pr(>Chisq)"]][2]
cf <- coef(ms)$Subject
r$subject_308_intercept <- cf["308", "(Intercept)"]; r$subject_308_days <- cf["308", "Days"]
r$subject_335_intercept <- cf["335", "(Intercept)"]; r$subject_335_days <- cf["335", "Days"]
r$slope_range_low <- r$days - qnorm(0.975) * r$sd_days
r$slope_range_high <- r$days + qnorm(0.975) * r$sd_days
r$r_calls <- c("ms <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)",
               "anova(lmer(Reaction ~ Days + (1 | Subject)), ms)",
               "anova(lmer(Reaction ~ Days + (Days || Subject)), ms, refit = FALSE)", "coef(ms)$Subject")
out$sleepstudy <- r

## ============================================================ 04 chem97 three levels
ch <- load_data("chem97")
r <- list()
c0 <- fit(score ~ 1 + (1 | lea/school), ch)
v <- vc(c0)
r$null_intercept <- fixef(c0)[[1]]
r$null_school <- v$vcov[v$grp == "school:lea"]; r$null_lea <- v$vcov[v$grp == "lea"]
r$null_sigma2 <- sigma2(c0)
tot <- r$null_school + r$null_lea + r$null_sigma2
r$null_share_lea <- r$null_lea / tot; r$null_share_school <- r$null_school / tot
r$null_icc_school_cumulative <- (r$null_lea + r$null_school) / tot
r$null_loglik <- as.numeric(logLik(c0))
c1 <- fit(score ~ gcsecnt + gender + (1 | lea/school), ch)
r <- put_fixed(r, "full_", c1, list(intercept = "(Intercept)", gcsecnt = "gcsecnt", genderF = "genderF"))
v <- vc(c1)
r$full_school <- v$vcov[v$grp == "school:lea"]; r$full_lea <- v$vcov[v$grp == "lea"]
r$full_sigma2 <- sigma2(c1)
r$full_explained_student <- 1 - r$full_sigma2 / r$null_sigma2
r$full_explained_school <- 1 - r$full_school / r$null_school
r$full_explained_lea <- 1 - r$full_lea / r$null_lea
r$full_loglik <- as.numeric(logLik(c1))
r$n_lea <- nlevels(ch$lea); r$n_school <- length(unique(interaction(ch$lea, ch$school, drop = TRUE)))
for (f in c("lea", "school")) {
  z <- sizes(if (f == "lea") ch$lea else interaction(ch$lea, ch$school, drop = TRUE))
  for (k in c("min_size", "median_size", "max_size", "singletons")) r[[paste0("nesting_", f, "_", k)]] <- z[[k]]
}
r$r_calls <- c("lmer(score ~ 1 + (1 | lea/school), Chem97)",
               "lmer(score ~ gcsecnt + gender + (1 | lea/school), Chem97)")
out$chem97 <- r

## ============================================================ 05 scotssec crossed
sc <- load_data("scotssec")
r <- list()
s0 <- fit(attain ~ 1 + (1 | primary) + (1 | second), sc)
v <- vc(s0)
r$null_primary <- v$vcov[v$grp == "primary"]; r$null_second <- v$vcov[v$grp == "second"]
r$null_sigma2 <- sigma2(s0)
tot <- r$null_primary + r$null_second + r$null_sigma2
r$null_share_primary <- r$null_primary / tot; r$null_share_second <- r$null_second / tot
r$null_share_residual <- r$null_sigma2 / tot
for (f in c("primary", "second")) {
  z <- sizes(sc[[f]])
  for (k in c("n_groups", "min_size", "max_size")) r[[paste0("nesting_", f, "_", k)]] <- z[[k]]
}
r$null_loglik <- as.numeric(logLik(s0))
s1 <- fit(attain ~ verbal + sex + (1 | primary) + (1 | second), sc)
r <- put_fixed(r, "full_", s1, list(intercept = "(Intercept)", verbal = "verbal", sexF = "sexF"))
v <- vc(s1)
r$full_primary <- v$vcov[v$grp == "primary"]; r$full_second <- v$vcov[v$grp == "second"]
r$full_sigma2 <- sigma2(s1); r$full_loglik <- as.numeric(logLik(s1))
s2 <- fit(attain ~ verbal + sex + (1 | second), sc)
r$second_only_second <- var_of(s2, "second"); r$second_only_sigma2 <- sigma2(s2)
r$second_only_loglik <- as.numeric(logLik(s2))
a <- anova(s2, s1, refit = FALSE)
r$primary_lrt_chisq <- a$Chisq[2]
r$r_calls <- c("lmer(attain ~ 1 + (1 | primary) + (1 | second), ScotsSec)",
               "lmer(attain ~ verbal + sex + (1 | primary) + (1 | second), ScotsSec)",
               "lmer(attain ~ verbal + sex + (1 | second), ScotsSec)",
               "anova(second_only, crossed, refit = FALSE)")
out$scotssec <- r

## ============================================================ 06 egsingle growth
eg <- load_data("egsingle")
r <- list()
g0 <- fit(math ~ year + (year | childid) + (year | schoolid), eg)
r <- put_fixed(r, "uncond_", g0, list(intercept = "(Intercept)", year = "year"))
r$uncond_child_intercept <- var_of(g0, "childid"); r$uncond_child_year <- var_of(g0, "childid", "year")
r$uncond_child_cor <- vc(g0)$sdcor[vc(g0)$grp == "childid" & !is.na(vc(g0)$var2)]
r$uncond_school_intercept <- var_of(g0, "schoolid"); r$uncond_school_year <- var_of(g0, "schoolid", "year")
r$uncond_school_cor <- vc(g0)$sdcor[vc(g0)$grp == "schoolid" & !is.na(vc(g0)$var2)]
r$uncond_sigma2 <- sigma2(g0)
r$uncond_loglik <- as.numeric(logLik(g0))
tot_i <- r$uncond_child_intercept + r$uncond_school_intercept
r$uncond_school_share_status <- r$uncond_school_intercept / tot_i
r$uncond_school_share_growth <- r$uncond_school_year / (r$uncond_school_year + r$uncond_child_year)
g1 <- fit(math ~ year * (black + hispanic + lowinc) + (year | childid) + (year | schoolid), eg)
r <- put_fixed(r, "cond_", g1, list(intercept = "(Intercept)", year = "year", black = "black1",
                                    hispanic = "hispanic1", lowinc = "lowinc",
                                    year_black = "year:black1", year_hispanic = "year:hispanic1",
                                    year_lowinc = "year:lowinc"))
r$cond_school_intercept <- var_of(g1, "schoolid"); r$cond_school_year <- var_of(g1, "schoolid", "year")
r$cond_child_intercept <- var_of(g1, "childid"); r$cond_child_year <- var_of(g1, "childid", "year")
r$cond_sigma2 <- sigma2(g1); r$cond_loglik <- as.numeric(logLik(g1))
r$cond_explained_school_intercept <- 1 - r$cond_school_intercept / r$uncond_school_intercept
r$cond_explained_school_year <- 1 - r$cond_school_year / r$uncond_school_year
r$r_calls <- c("lmer(math ~ year + (year | childid) + (year | schoolid), egsingle)",
               "lmer(math ~ year * (black + hispanic + lowinc) + (year | childid) + (year | schoolid), egsingle)")
out$egsingle <- r

## ============================================================ 07 contextual effects
r <- list()
hsb$ses_mean <- ave(hsb$ses, hsb$school)     # gm(ses, school): the mean of these rows
hsb$ses_cwc <- hsb$ses - hsb$ses_mean        # cwc(ses, school)
k1 <- fit(mathach ~ ses_cwc + ses_mean + (1 | school), hsb)
k2 <- fit(mathach ~ ses + ses_mean + (1 | school), hsb)
k0 <- fit(mathach ~ ses + (1 | school), hsb)
s1 <- coefs(k1); s2 <- coefs(k2); s0 <- coefs(k0)
r$within <- s1["ses_cwc", 1]; r$within_se <- s1["ses_cwc", 2]
r$between <- s1["ses_mean", 1]; r$between_se <- s1["ses_mean", 2]
r$contextual <- s2["ses_mean", 1]; r$contextual_se <- s2["ses_mean", 2]
r$contextual_t <- s2["ses_mean", "t value"]; r$contextual_df <- s2["ses_mean", "df"]
r$contextual_p <- s2["ses_mean", "Pr(>|t|)"]
r$contextual_conf <- s2["ses_mean", 1] + c(-1, 1) * qt(0.975, s2["ses_mean", "df"]) * s2["ses_mean", 2]
r$wb_table <- coef_table(k1)     # terms ses_cwc, ses_mean = cwc(ses, school), gm(ses, school)
r$ctx_table <- coef_table(k2)
r$sd0 <- sqrt(var_of(k1, "school")); r$sigma <- sigma(k1)
r$icc <- var_of(k1, "school") / (var_of(k1, "school") + sigma2(k1))
r$n_students <- nrow(hsb); r$n_schools <- nlevels(hsb$school)
r$school_size_range <- range(table(hsb$school))
r$raw_ses_within_model <- s2["ses", 1]
r$conflated <- s0["ses", 1]; r$conflated_se <- s0["ses", 2]
r$loglik_cwc <- as.numeric(logLik(k1)); r$loglik_raw <- as.numeric(logLik(k2))
r$tau00 <- var_of(k1, "school"); r$sigma2 <- sigma2(k1)
r$r_calls <- c("lmer(mathach ~ ses_cwc + ses_mean + (1 | school), hsb)  # ses_mean <- ave(ses, school)",
               "lmer(mathach ~ ses + ses_mean + (1 | school), hsb)", "lmer(mathach ~ ses + (1 | school), hsb)")
out$contextual <- r

## ============================================================ 08 power, cluster-randomised trial
## A balanced two-arm cluster-randomised trial analysed by the mixed model is a two-sample t-test
## on the J/2 + J/2 cluster means, each with variance tau2 + sigma2/n (Raudenbush 1997): R's
## power.t.test gives the same noncentral-t power (df J - 2), at the design values tau2 = 0.1,
## sigma2 = 0.9, n = 20, delta = 0.3.
J <- c(10, 20, 30, 40, 46, 60, 80)
out$power <- list(
  r_call = "power.t.test(n = J/2, delta = 0.3, sd = sqrt(0.1 + 0.9/20), sig.level = 0.05, strict = TRUE)",
  tau2 = 0.1, sigma2 = 0.9, group_size = 20, effect = 0.3, J = J,
  power = sapply(J, function(j) power.t.test(n = j / 2, delta = 0.3, sd = sqrt(0.1 + 0.9 / 20),
                                             sig.level = 0.05, strict = TRUE)$power))

writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(here, "gallery.json"))
cat("wrote", file.path(here, "gallery.json"), "\n")
