## Reference numbers from lme4 for mlm's core tests.
## Reads the bundled CSV files (not the R objects) so that R and Python fit
## exactly the same data, and writes lme4_core.json next to this script.
## Run:  Rscript tests/reference/lme4_core.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))  # load_data(name): the CSVs as mlm reads them
hsb <- load_data("hsb")
hsb$cses <- hsb$ses - ave(hsb$ses, hsb$school)
sleepstudy <- load_data("sleepstudy")
pastes <- load_data("pastes")
penicillin <- load_data("penicillin")
chem97 <- load_data("chem97")
scotssec <- load_data("scotssec")
exam <- load_data("exam")
insteval <- load_data("insteval")

chem97_school_unique <- all(tapply(as.character(chem97$lea), chem97$school,
                                   function(x) length(unique(x))) == 1)

## ------------------------------------------------------------------ cases
## One lmer() call per case.  Each is refitted with optimizer = "bobyqa" if
## lme4's default control gives a convergence warning.
cases <- list(
  hsb_null_reml = list(data = "hsb", fit = function(ctrl)
    lmer(mathach ~ 1 + (1 | school), data = hsb, REML = TRUE, control = ctrl)),
  hsb_null_ml = list(data = "hsb", fit = function(ctrl)
    lmer(mathach ~ 1 + (1 | school), data = hsb, REML = FALSE, control = ctrl)),
  hsb_slope_reml = list(data = "hsb", predict = "school", new_level = "99999", fit = function(ctrl)
    lmer(mathach ~ ses + (ses | school), data = hsb, REML = TRUE, control = ctrl)),
  hsb_slope_ml = list(data = "hsb", fit = function(ctrl)
    lmer(mathach ~ ses + (ses | school), data = hsb, REML = FALSE, control = ctrl)),
  hsb_slopes_outcomes_reml = list(data = "hsb",
    derived = list(cses = "ses - ave(ses, school): student ses minus the mean of ses over that school's rows in hsb.csv (not the meanses column)"),
    fit = function(ctrl)
    lmer(mathach ~ meanses + sector + cses + meanses:cses + sector:cses + (cses | school),
         data = hsb, REML = TRUE, control = ctrl)),
  hsb_uncorr_terms_reml = list(data = "hsb", fit = function(ctrl)
    lmer(mathach ~ ses + (1 | school) + (0 + ses | school), data = hsb, REML = TRUE, control = ctrl)),
  sleep_slope_reml = list(data = "sleepstudy", predict = "Subject", new_level = "999", fit = function(ctrl)
    lmer(Reaction ~ Days + (Days | Subject), data = sleepstudy, REML = TRUE, control = ctrl)),
  sleep_double_bar_reml = list(data = "sleepstudy", fit = function(ctrl)
    lmer(Reaction ~ Days + (Days || Subject), data = sleepstudy, REML = TRUE, control = ctrl)),
  sleep_slope_only_ml = list(data = "sleepstudy", fit = function(ctrl)
    lmer(Reaction ~ Days + (0 + Days | Subject), data = sleepstudy, REML = FALSE, control = ctrl)),
  sleep_intercept_ml = list(data = "sleepstudy", fit = function(ctrl)
    lmer(Reaction ~ Days + (1 | Subject), data = sleepstudy, REML = FALSE, control = ctrl)),
  pastes_nested_reml = list(data = "pastes", fit = function(ctrl)
    lmer(strength ~ 1 + (1 | batch/cask), data = pastes, REML = TRUE, control = ctrl)),
  penicillin_crossed_reml = list(data = "penicillin", fit = function(ctrl)
    lmer(diameter ~ 1 + (1 | plate) + (1 | sample), data = penicillin, REML = TRUE, control = ctrl)),
  chem97_three_level_ml = list(data = "chem97", fit = function(ctrl)
    lmer(score ~ gcsescore + (1 | lea/school), data = chem97, REML = FALSE, control = ctrl)),
  chem97_slope_inner_reml = list(data = "chem97",
    note = if (chem97_school_unique) "school ids in chem97 are unique across lea (each school lies in one lea), so (gcsescore | school) is the same as (gcsescore | lea:school)" else "WARNING: school ids in chem97 are NOT unique across lea",
    fit = function(ctrl)
    lmer(score ~ gcsescore + (1 | lea) + (gcsescore | school), data = chem97, REML = TRUE, control = ctrl)),
  scotssec_crossed_reml = list(data = "scotssec", fit = function(ctrl)
    lmer(attain ~ verbal + sex + (1 | primary) + (1 | second), data = scotssec, REML = TRUE, control = ctrl)),
  exam_factor_in_bar_reml = list(data = "exam", fit = function(ctrl)
    lmer(normexam ~ standLRT + sex + (1 + standLRT + sex | school), data = exam, REML = TRUE, control = ctrl)),
  exam_interaction_group_reml = list(data = "exam", fit = function(ctrl)
    lmer(normexam ~ standLRT + (1 | school) + (1 | school:sex), data = exam, REML = TRUE, control = ctrl)),
  exam_transform_reml = list(data = "exam", fit = function(ctrl)
    lmer(normexam ~ standLRT + I(standLRT^2) + (1 + I(standLRT^2) | school), data = exam, REML = TRUE, control = ctrl)),
  insteval_crossed_ml = list(data = "insteval", fit = function(ctrl)
    lmer(y ~ service + (1 | s) + (1 | d), data = insteval, REML = FALSE, control = ctrl))
)

## ------------------------------------------------------------------ helpers
fit_case <- function(cs) {
  run <- function(ctrl) {
    warns <- character(0); msgs <- character(0)
    m <- withCallingHandlers(cs$fit(ctrl),
      warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
      message = function(mm) { msgs <<- c(msgs, trimws(conditionMessage(mm))); invokeRestart("muffleMessage") })
    conv <- c(m@optinfo$conv$lme4$messages, m@optinfo$warnings)
    list(m = m, warnings = warns, messages = msgs,
         conv_problem = any(grepl("converge", c(warns, unlist(conv)), ignore.case = TRUE)))
  }
  r <- run(lmerControl())
  r$optimizer <- "default"
  r$default_warnings <- NULL
  if (r$conv_problem) {
    r0 <- r
    r <- run(lmerControl(optimizer = "bobyqa"))
    r$optimizer <- "bobyqa"
    r$default_warnings <- r0$warnings
    r$default_loglik <- as.numeric(logLik(r0$m))
  }
  r
}

named <- function(x) as.list(setNames(unname(x), names(x)))
ranef_block <- function(m) {
  re <- ranef(m, condVar = TRUE)
  out <- list()
  for (g in names(re)) {
    df <- re[[g]]
    pv <- attr(df, "postVar")
    k <- min(3L, nrow(df))
    ## postVar: q x q x n array; with several terms on one factor lme4 gives
    ## a list of such arrays (one per term), in column order.
    sd_mat <- function(a) {   # q x q x n array -> n x q matrix of sqrt(diag)
      q <- dim(a)[1]
      t(matrix(sqrt(apply(a, 3, function(s) diag(as.matrix(s)))), nrow = q))
    }
    sds <- if (is.list(pv)) do.call(cbind, lapply(pv, sd_mat)) else sd_mat(pv)
    stopifnot(nrow(sds) == nrow(df), ncol(sds) == ncol(df))
    colnames(sds) <- names(df)
    modes <- list(); csd <- list()
    for (i in seq_len(k)) {
      lab <- rownames(df)[i]
      modes[[lab]] <- as.list(setNames(as.numeric(df[i, ]), names(df)))
      csd[[lab]] <- as.list(setNames(as.numeric(sds[i, ]), names(df)))
    }
    out[[g]] <- list(columns = I(names(df)), n_groups = nrow(df),
                     first_levels = I(rownames(df)[seq_len(k)]),
                     modes = modes, cond_sd = csd)
  }
  out
}

record <- function(id, cs, r) {
  m <- r$m
  ll <- logLik(m)
  reml <- isREML(m)
  V <- as.matrix(vcov(m))
  vc <- as.data.frame(VarCorr(m))
  fcall <- deparse(body(cs$fit), width.cutoff = 500L)
  x <- list(
    id = id, data = cs$data,
    formula = paste(deparse(body(cs$fit)[[2]], width.cutoff = 500L), collapse = " "),
    formula_expanded = paste(deparse(formula(m), width.cutoff = 500L), collapse = " "),
    reml = reml,
    r_call = paste(trimws(fcall), collapse = " "),
    optimizer = r$optimizer,
    optimizer_name = m@optinfo$optimizer,
    loglik = as.numeric(ll), df = attr(ll, "df"),
    criterion = if (reml) unname(REMLcrit(m)) else unname(deviance(m)),
    criterion_name = if (reml) "REMLcrit" else "deviance",
    aic = AIC(m), bic = BIC(m),
    nobs = nobs(m),
    ngroups = named(ngrps(m)),
    sigma = sigma(m),
    theta = named(getME(m, "theta")),
    fixef = named(fixef(m)),
    se = named(sqrt(diag(V))),
    vcov_names = I(colnames(V)),
    vcov = lapply(seq_len(nrow(V)), function(i) I(unname(V[i, ]))),
    varcorr = lapply(seq_len(nrow(vc)), function(i) list(
      grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
      var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
      vcov = vc$vcov[i], sdcor = vc$sdcor[i])),
    singular = isSingular(m),
    ranef = ranef_block(m),
    fitted_head = I(unname(head(fitted(m), 5))),
    resid_head = I(unname(head(residuals(m), 5))),
    warnings = I(r$warnings), messages = I(r$messages)
  )
  if (!is.null(r$default_warnings)) {
    x$default_optimizer_warnings <- I(r$default_warnings)
    x$default_optimizer_loglik <- r$default_loglik
  }
  if (!is.null(cs$derived)) x$derived <- cs$derived
  if (!is.null(cs$note)) x$note <- cs$note
  if (!is.null(cs$predict)) {
    d <- get(cs$data)
    g <- cs$predict
    nd <- d[c(1, 2, 3, 1), ]
    lab <- as.character(nd[[g]]); lab[4] <- cs$new_level
    nd[[g]] <- factor(lab, levels = c(levels(d[[g]]), cs$new_level))
    rownames(nd) <- NULL
    x$predict_newdata <- lapply(seq_len(nrow(nd)), function(i) {
      row <- lapply(nd[i, intersect(names(nd), all.vars(formula(m))), drop = FALSE],
                    function(v) if (is.factor(v)) as.character(v) else v)
      row
    })
    x$predict_new <- I(unname(predict(m, newdata = nd, allow.new.levels = TRUE)))
    x$predict_new_fixed <- I(unname(predict(m, newdata = nd, re.form = NA)))
    x$predict_note <- sprintf("newdata = rows 1, 2, 3 of %s and a copy of row 1 with %s = %s (a new level); predict_new = predict(m, newdata, allow.new.levels = TRUE), predict_new_fixed = predict(m, newdata, re.form = NA)",
                              cs$data, g, cs$new_level)
  }
  x
}

## ------------------------------------------------------------------ JSON
## A small encoder so that numbers keep full double precision (%.17g);
## jsonlite's digits = NA stops at 15 significant digits.
## Length-1 vectors are written as scalars unless wrapped in I().
js_str <- function(s) jsonlite::toJSON(s, auto_unbox = TRUE)
js_num <- function(v) ifelse(is.finite(v), sprintf("%.17g", v), "null")
to_json <- function(x, indent = 0L) {
  pad <- strrep("  ", indent + 1L); pad0 <- strrep("  ", indent)
  asis <- inherits(x, "AsIs")
  if (asis) class(x) <- setdiff(class(x), "AsIs")
  if (is.null(x)) return("null")
  if (is.list(x)) {
    if (!is.null(names(x))) {
      if (!length(x)) return("{}")
      items <- vapply(seq_along(x), function(i)
        paste0(pad, js_str(names(x)[i]), ": ", to_json(x[[i]], indent + 1L)), "")
      return(paste0("{\n", paste(items, collapse = ",\n"), "\n", pad0, "}"))
    }
    if (!length(x)) return("[]")
    items <- vapply(x, function(e) paste0(pad, to_json(e, indent + 1L)), "")
    return(paste0("[\n", paste(items, collapse = ",\n"), "\n", pad0, "]"))
  }
  el <- if (is.logical(x)) ifelse(is.na(x), "null", ifelse(x, "true", "false"))
        else if (is.numeric(x)) js_num(as.numeric(x))
        else if (is.character(x) || is.factor(x)) ifelse(is.na(x), "null",
                 vapply(as.character(x), function(s) as.character(js_str(s)), ""))
        else stop("cannot encode ", class(x))
  el <- unname(el)
  if (length(el) == 1L && !asis && is.null(names(x))) return(el)
  if (!is.null(names(x)) && !asis)
    return(paste0("{", paste0(js_str_vec(names(x)), ": ", el, collapse = ", "), "}"))
  paste0("[", paste(el, collapse = ", "), "]")
}
js_str_vec <- function(s) vapply(s, function(z) as.character(js_str(z)), "")

## ------------------------------------------------------------------ run
results <- list()
for (id in names(cases)) {
  cs <- cases[[id]]
  t0 <- proc.time()[["elapsed"]]
  r <- tryCatch(fit_case(cs), error = function(e) e)
  if (inherits(r, "error")) {
    cat(sprintf("%-28s FAILED: %s\n", id, conditionMessage(r)))
    results[[id]] <- list(id = id, data = cs$data, error = conditionMessage(r))
    next
  }
  results[[id]] <- record(id, cs, r)
  cat(sprintf("%-28s %6.1fs optimizer=%s singular=%s warnings=%d messages=%s\n", id,
              proc.time()[["elapsed"]] - t0, r$optimizer, isSingular(r$m),
              length(r$warnings), paste(r$messages, collapse = " | ")))
}

out <- list(
  generated_by = "tests/reference/lme4_core.R",
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  matrix_version = as.character(packageVersion("Matrix")),
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  platform = R.version$platform,
  blas = tryCatch(sessionInfo()$BLAS, error = function(e) NA_character_),
  notes = I(c(
    "Data are read from the CSV files in datasets/; columns in manifest categories become factors with those levels; grouping columns become factors with sorted levels.",
    "Default lmerControl() unless the case's optimizer field says bobyqa (refitted because of a convergence warning).",
    "aic and bic are AIC(m), BIC(m) as lme4 gives them, using the REML criterion for REML fits.",
    "ranef: conditional modes of the first 3 levels of each grouping factor (level order) and conditional SDs = sqrt of the diagonal of attr(ranef(m, condVar = TRUE)[[g]], 'postVar').",
    "vcov is a list of rows in the order of vcov_names; varcorr rows are as.data.frame(VarCorr(m)) (var2 null when NA).",
    "Numbers are written with 17 significant digits.")),
  chem97_school_ids_unique_across_lea = chem97_school_unique,
  cases = unname(results)
)
writeLines(to_json(out), file.path(script_dir, "lme4_core.json"))
cat("wrote", file.path(script_dir, "lme4_core.json"), "\n")
