## Reference fits of generalized linear mixed models: lme4's glmer (Laplace and adaptive
## Gauss-Hermite quadrature) and, for the Laplace fits, glmmTMB.
## Run from anywhere:  Rscript tests/reference/glmer.R
## Writes tests/reference/glmer.json (R 4.2.2, lme4 1.1.31, glmmTMB from Debian's packages).
##
## Every lme4 fit uses control = glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10):
## lme4's default PIRLS tolerance leaves Laplace log-likelihoods up to 4e-4 low and SEs up
## to 1.3% low (field notes); the default fit's log-likelihood is recorded beside it.
## lme4 quirk recorded here: with nAGQ > 1 on binomial counts (cbind) its logLik leaves out
## the binomial coefficients; `loglik_integrated` is the log-likelihood by numerical
## integration (R's integrate) at lme4's estimates, which includes them.
suppressPackageStartupMessages({ library(lme4); library(jsonlite); library(glmmTMB) })
here <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(here, "..", "..", "datasets"))
source(file.path(here, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
contraception <- load_data("contraception")
cbpp <- load_data("cbpp")
cbpp$obs <- factor(seq_len(nrow(cbpp)))
data <- list(contraception = contraception, cbpp = cbpp)
ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = 1e-10)
contra_fixed <- "use ~ age + I(age^2) + urban + livch"
cases <- list(
  list(id = "contra_intercept", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_slope", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = paste(contra_fixed, "+ (urban | district)")),
  list(id = "contra_probit", data = "contraception", family = "binomial", link = "probit", nagq = 1,
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_cloglog", data = "contraception", family = "binomial", link = "cloglog", nagq = 1,
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_agq9", data = "contraception", family = "binomial", link = "logit", nagq = 9,
       formula = paste(contra_fixed, "+ (1 | district)")),
  list(id = "contra_nested", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = paste(contra_fixed, "+ (1 | district/urban)")),
  list(id = "contra_uncorrelated", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = paste(contra_fixed, "+ (age || district)")),
  list(id = "contra_crossed", data = "contraception", family = "binomial", link = "logit", nagq = 1,
       formula = "use ~ age + I(age^2) + urban + (1 | district) + (1 | livch)"),
  list(id = "cbpp_laplace", data = "cbpp", family = "binomial", link = "logit", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(id = "cbpp_agq9", data = "cbpp", family = "binomial", link = "logit", nagq = 9,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(id = "cbpp_agq25", data = "cbpp", family = "binomial", link = "logit", nagq = 25,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(id = "cbpp_proportion", data = "cbpp", family = "binomial", link = "logit", nagq = 1,
       formula = "incidence / size ~ period + (1 | herd)", weights = "size"),
  list(id = "cbpp_overdispersion", data = "cbpp", family = "binomial", link = "logit", nagq = 1,
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs)"),
  list(id = "cbpp_poisson_offset", data = "cbpp", family = "poisson", link = "log", nagq = 1,
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)"),
  list(id = "cbpp_poisson_agq9", data = "cbpp", family = "poisson", link = "log", nagq = 9,
       formula = "incidence ~ period + offset(log(size)) + (1 | herd)")
)

varcorr <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(grp = vc$grp[i], var1 = vc$var1[i],
                                             var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
                                             vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}
## log-likelihood of a one-intercept binomial/poisson GLMM by integrate(), at given estimates
integrated_loglik <- function(m, d) {
  eta <- drop(model.matrix(m) %*% fixef(m)) + (if (is.null(model.offset(model.frame(m)))) 0 else model.offset(model.frame(m)))
  g <- getME(m, "flist")[[1]]
  sd <- sqrt(VarCorr(m)[[1]][1, 1])
  fam <- family(m)$family
  y <- model.response(model.frame(m))
  if (is.factor(y)) y <- as.numeric(y != levels(y)[1])
  if (is.matrix(y)) { k <- y[, 1]; nn <- y[, 1] + y[, 2] } else { k <- y; nn <- rep(1, length(y)) }
  total <- 0
  for (lev in levels(g)) {
    i <- which(g == lev)
    f <- function(b) sapply(b, function(bb) {
      e <- eta[i] + bb
      ll <- if (fam == "poisson") sum(dpois(k[i], exp(e), log = TRUE)) else
        sum(dbinom(k[i], nn[i], plogis(e), log = TRUE))
      exp(ll) * dnorm(bb, 0, sd)
    })
    total <- total + log(integrate(f, -Inf, Inf, rel.tol = 1e-12)$value)
  }
  total
}
fit_one <- function(c, control) {
  fam <- get(c$family)(link = c$link)
  d <- data[[c$data]]
  if (is.null(c$weights)) {
    glmer(as.formula(c$formula), d, family = fam, nAGQ = c$nagq, control = control)
  } else {
    d$.w <- d[[c$weights]]
    glmer(as.formula(c$formula), d, family = fam, nAGQ = c$nagq, control = control, weights = .w)
  }
}
out <- lapply(cases, function(c) {
  m <- fit_one(c, ctrl)
  m0 <- fit_one(c, glmerControl())
  c$r_call <- sprintf("glmer(%s, data = %s, family = %s(link = \"%s\"), nAGQ = %d%s, control = glmerControl(optimizer = \"bobyqa\", tolPwrss = 1e-10))",
                      c$formula, c$data, c$family, c$link, c$nagq,
                      if (is.null(c$weights)) "" else sprintf(", weights = %s", c$weights))
  c$loglik <- as.numeric(logLik(m))
  c$loglik_default_control <- as.numeric(logLik(m0))
  c$deviance <- deviance(m)
  c$aic <- AIC(m); c$bic <- BIC(m)
  c$nobs <- nobs(m)
  c$fixef <- as.list(fixef(m))
  c$se <- as.list(sqrt(diag(as.matrix(vcov(m)))))
  c$theta <- as.numeric(getME(m, "theta"))
  c$varcorr <- varcorr(m)
  c$singular <- isSingular(m)
  re <- ranef(m, condVar = TRUE)
  g1 <- names(re)[1]
  c$ranef_group <- g1
  c$ranef_head <- lapply(as.list(re[[g1]][1:5, , drop = FALSE]), as.numeric)
  c$ranef_levels_head <- rownames(re[[g1]])[1:5]
  pv <- attr(re[[g1]], "postVar")
  if (is.list(pv)) pv <- pv[[1]]  # several terms on one factor ((x || g)): one array per term
  c$ranef_condsd_head <- sqrt(pv[1, 1, 1:5])
  c$fitted_head <- as.numeric(fitted(m)[1:5])
  c$predict_link_head <- as.numeric(predict(m, type = "link")[1:5])
  c$predict_fixed_link_head <- as.numeric(predict(m, type = "link", re.form = NA)[1:5])
  c$residuals_deviance_head <- as.numeric(residuals(m, type = "deviance")[1:5])
  c$residuals_pearson_head <- as.numeric(residuals(m, type = "pearson")[1:5])
  if (c$nagq > 1) {
    c$loglik_integrated <- integrated_loglik(m, data[[c$data]])
  }
  if (c$nagq == 1 && is.null(c$weights)) {
    fam <- get(c$family)(link = c$link)
    tm <- glmmTMB(as.formula(c$formula), data[[c$data]], family = fam)
    c$glmmtmb <- list(loglik = as.numeric(logLik(tm)), fixef = as.list(fixef(tm)$cond),
                      se = as.list(sqrt(diag(vcov(tm)$cond))),
                      varcorr = lapply(VarCorr(tm)$cond, function(v) list(sd = as.numeric(attr(v, "stddev")),
                                                                            corr = as.numeric(attr(v, "correlation")))))
  }
  c
})
names(out) <- vapply(cases, `[[`, "", "id")
## speed of lme4 on contraception (default control), median of 5 runs
tm <- replicate(5, system.time(glmer(as.formula(cases[[1]]$formula), contraception, family = binomial))[["elapsed"]])
out$timing <- list(contra_intercept_lme4_seconds = median(tm))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(here, "glmer.json"))
cat("wrote", file.path(here, "glmer.json"), "\n")
