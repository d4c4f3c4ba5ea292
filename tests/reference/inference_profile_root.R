## lme4's profile-likelihood intervals with the crossings found by root-finding.
##
## lme4's confint(method = "profile") evaluates the profile on a grid and inverts an
## interpolating spline; where the profile is strongly curved (an SD near 0, a correlation
## near -1) or its inner optimiser stays at a zero variance, the spline's crossing differs
## from the profile's own. This script computes, with lme4's own deviance functions, the
## values where the signed square root of the profiled deviance equals -+ qnorm(0.975):
##
## * variance parameters: lme4:::devfun2(refitML(m)), the ML deviance on lme4's
##   sd/cor/sigma scale with the fixed effects profiled out (what profile.merMod uses),
##   minimised over the other parameters by nlminb from several starts (the optimum, and
##   with zero SDs pushed off their bound);
## * fixed effects: lme4's ML deviance function of theta with x_j * b as an offset on the
##   design without column j (as profile.merMod: resp$setOffset), minimised over theta by
##   nlminb from several starts;
## * crossings: doubling steps from the ML estimate to bracket, then uniroot (tol 1e-7
##   relative); a profile that reaches a bound (SD 0, correlation -1 or 1) first gives the
##   bound, as lme4.
##
## Writes inference_profile_root.json next to this script.  Run by hand (CI has no R):
##     Rscript tests/reference/inference_profile_root.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))

hsb <- load_data("hsb")
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
sleepstudy <- load_data("sleepstudy")
sleepstudy$Dayg <- factor(sleepstudy$Days)
## a centred quadratic in Days, for a 3 x 3 random-effects covariance
sleepstudy$D2 <- (sleepstudy$Days - 4.5)^2 / 10
pastes <- load_data("pastes")
penicillin <- load_data("penicillin")
datasets <- list(hsb = hsb, sleepstudy = sleepstudy, pastes = pastes, penicillin = penicillin)

zc <- qnorm(0.975)

best_of <- function(fn, starts, lo, up) {
  ## lme4's deviance functions stop with an error ("Downdated VtV is not positive definite")
  ## at some trial points nlminb tries: treat those as very bad points, not as the end
  fn0 <- fn
  fn <- function(v) { r <- tryCatch(fn0(v), error = function(e) NA_real_)
                      if (is.finite(r)) r else 1e10 }
  best <- Inf; arg <- NULL
  for (s in starts) {
    s <- pmin(pmax(s, lo), up)
    r <- tryCatch(nlminb(s, fn, lower = lo, upper = up,
                         control = list(eval.max = 2000, iter.max = 1000, rel.tol = 1e-13)),
                  error = function(e) NULL)
    if (!is.null(r) && is.finite(r$objective) && r$objective < best) { best <- r$objective; arg <- r$par }
  }
  list(value = best, par = arg)
}

crossing <- function(zfun, est, dir, lo, up, h0) {
  target <- dir * zc
  x <- est; h <- h0
  repeat {
    xn <- x + dir * h
    if (xn < lo) xn <- lo
    if (xn > up) xn <- up
    z <- zfun(xn)
    if ((z - target) * dir >= 0) break
    if (xn == lo || xn == up) return(xn)
    x <- xn; h <- h * 2
    if (h > 1e6 * max(1, abs(est))) return(if (dir > 0) Inf else -Inf)
  }
  uniroot(function(t) zfun(t) - target, sort(c(x, xn)), tol = 1e-7 * max(1, abs(est)))$root
}

root_profile <- function(m, data) {
  mml <- refitML(m)
  ## lme4's deviance function keeps its factorisation between calls; after it stops with
  ## an error at an extreme trial point its later answers cannot be trusted, so it is
  ## rebuilt after every error.
  make_dd <- function() lme4:::devfun2(mml, useSc = TRUE, signames = FALSE)
  dd <- make_dd()
  safe_dd <- function(p) tryCatch(dd(p), error = function(e) { dd <<- make_dd(); NA_real_ })
  base <- attr(dd, "basedev")
  opt <- attr(dd, "optimum")
  nf <- length(fixef(mml)); nvp <- length(opt) - nf
  vp <- opt[seq_len(nvp)]
  thl <- mml@lower
  kind <- c(ifelse(thl == 0, "sd", "cor"), "sigma")
  ## bounds of the inner searches: lme4's, with sigma kept above 1% of its estimate and
  ## SDs below 100 times the larger of their estimate and sigma (far outside any 95%
  ## profile interval here; it keeps nlminb's trial points away from overflow)
  sdmax <- 100 * pmax(vp, sigma(mml))
  lower <- c(ifelse(thl == 0, 0, -1), 0.01 * sigma(mml))
  upper <- c(ifelse(thl == 0, sdmax[seq_along(thl)], 1), 100 * sigma(mml))
  pushed <- function(v, k) { v[k != "cor" & v < 1e-3] <- 0.5 * sigma(mml); v }
  out <- list(parameter = character(0), conf_low = numeric(0), conf_high = numeric(0))
  add <- function(name, lo, hi) {
    out$parameter <<- c(out$parameter, name)
    out$conf_low <<- c(out$conf_low, lo); out$conf_high <<- c(out$conf_high, hi)
  }
  for (w in seq_len(nvp)) {
    others <- setdiff(seq_len(nvp), w)
    zfun <- function(x) {
      fn <- function(v) { p <- vp; p[others] <- v; p[w] <- x; safe_dd(p) }
      r <- best_of(fn, list(vp[others], pushed(vp[others], kind[others])), lower[others], upper[others])
      sign(x - vp[w]) * sqrt(max(0, r$value - base))
    }
    h0 <- if (kind[w] == "cor") 0.05 else 0.1 * max(vp[w], 0.01 * sigma(mml))
    lo <- if (vp[w] <= lower[w] + 1e-8) lower[w] else crossing(zfun, vp[w], -1, lower[w], upper[w], h0)
    hi <- if (vp[w] >= upper[w] - 1e-8) upper[w] else crossing(zfun, vp[w], 1, lower[w], upper[w], h0)
    add(names(vp)[w], lo, hi)
  }
  X <- getME(mml, "X"); y <- getME(mml, "y")
  bars <- paste(vapply(findbars(formula(mml)), function(b) paste0("(", deparse(b), ")"), ""),
                collapse = " + ")
  thopt <- getME(mml, "theta")
  se <- sqrt(diag(as.matrix(vcov(mml))))
  for (j in seq_len(nf)) {
    dat <- data
    dat$.y <- y; dat$.off <- 0
    dat$.Xr <- X[, -j, drop = FALSE]
    form <- as.formula(paste(".y ~ 0 +", if (ncol(dat$.Xr)) ".Xr +" else "", "offset(.off) +", bars))
    make_devf <- function(b) {
      f <- suppressMessages(lmer(form, dat, REML = FALSE, devFunOnly = TRUE))
      environment(f)$resp$setOffset(b * X[, j])
      f
    }
    est <- fixef(mml)[j]
    zfun <- function(b) {
      devf <- make_devf(b)
      safe_devf <- function(th) tryCatch(devf(th), error = function(e) {
        devf <<- make_devf(b); NA_real_ })
      th2 <- thopt; th2[thl == 0 & th2 < 1e-3] <- 0.5
      r <- best_of(safe_devf, list(thopt, th2), thl, rep(Inf, length(thl)))
      sign(b - est) * sqrt(max(0, r$value - base))
    }
    add(names(est), crossing(zfun, est, -1, -Inf, Inf, se[j]), crossing(zfun, est, 1, -Inf, Inf, se[j]))
  }
  out
}

cases <- list(
  hsb_rc = list(data = "hsb", formula = "mathach ~ ses + (ses | school)", REML = TRUE),
  hsb_rb = list(data = "hsb", formula =
    "mathach ~ meanses + sector + cses + meanses:cses + sector:cses + (cses | school)", REML = TRUE),
  sleep_rc = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", REML = TRUE),
  sleep_uncor = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days || Subject)", REML = TRUE),
  sleep_quad = list(data = "sleepstudy", formula = "Reaction ~ Days + (Days + D2 | Subject)", REML = TRUE),
  hsb_ri_ml = list(data = "hsb", formula = "mathach ~ ses + sector + (1 | school)", REML = FALSE),
  pastes_nested = list(data = "pastes", formula = "strength ~ 1 + (1 | batch/cask)", REML = TRUE),
  penicillin_crossed = list(data = "penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
                            REML = TRUE),
  pastes_singular = list(data = "pastes", formula = "strength ~ 1 + (1 | cask)", REML = TRUE),
  sleep_singular = list(data = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject) + (1 | Dayg)",
                        REML = TRUE)
)
out <- list(R = paste(R.version$major, R.version$minor, sep = "."),
            lme4 = as.character(packageVersion("lme4")), cases = list())
for (id in names(cases)) {
  cs <- cases[[id]]
  d <- datasets[[cs$data]]
  m <- suppressMessages(suppressWarnings(lmer(as.formula(cs$formula), data = d, REML = cs$REML)))
  r <- suppressWarnings(root_profile(m, d))
  out$cases[[id]] <- c(list(formula = cs$formula, data = cs$data, REML = cs$REML), r)
  cat(id, "done\n", file = stderr())
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path(script_dir, "inference_profile_root.json"))
