## Reference numbers for fit.predict(newdata, interval = ...): lme4's quantities combined by
## hand, as lme4's FAQ describes (lme4's predict() gives no intervals).
##   confidence: fit = predict(m, newdata, re.form = NA), var = x' vcov(m) x
##   prediction: fit = predict(m, newdata, allow.new.levels = TRUE),
##               var = x' vcov(m) x + sum over terms of
##                     z' postVar_j z   (group seen in fitting: ranef(m, condVar = TRUE))
##                     z' VarCorr z     (group not seen)
##                   + sigma(m)^2
## Intervals are fit -+ qnorm(0.975) sqrt(var). Writes inference_predict.json.
## Run:  Rscript tests/reference/inference_predict.R
suppressPackageStartupMessages({ library(lme4); library(jsonlite) })

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
data_dir <- normalizePath(file.path(script_dir, "..", "..", "datasets"))
source(file.path(script_dir, "load_data.R"))
sleepstudy <- load_data("sleepstudy")
hsb <- load_data("hsb")
chem97 <- load_data("chem97")

intervals <- function(m, newdata, terms_fixed) {
  X <- model.matrix(terms_fixed, newdata)
  V <- as.matrix(vcov(m))
  var_fix <- rowSums((X %*% V) * X)
  fit_pop <- as.numeric(predict(m, newdata, re.form = NA))
  fit_re <- as.numeric(predict(m, newdata, allow.new.levels = TRUE))
  re <- ranef(m, condVar = TRUE)
  vc <- VarCorr(m)
  var_re <- numeric(nrow(newdata))
  for (g in names(re)) {
    cols <- colnames(re[[g]])
    # the term's columns for the new rows: the same terms as the random part
    Z <- if (identical(cols, "(Intercept)")) matrix(1, nrow(newdata), 1) else
      model.matrix(as.formula(paste("~", paste(setdiff(cols, "(Intercept)"), collapse = "+"))), newdata)
    lev <- if (g == "school:lea") paste(newdata$school, newdata$lea, sep = ":") else as.character(newdata[[g]])
    pv <- attr(re[[g]], "postVar")
    T <- as.matrix(vc[[g]])
    for (i in seq_len(nrow(newdata))) {
      z <- Z[i, ]
      j <- match(lev[i], rownames(re[[g]]))
      S <- if (is.na(j)) T else as.matrix(pv[, , j])
      var_re[i] <- var_re[i] + as.numeric(t(z) %*% S %*% z)
    }
  }
  q <- qnorm(0.975)
  var_pred <- var_fix + var_re + sigma(m)^2
  list(confidence = list(fit = fit_pop, lower = fit_pop - q * sqrt(var_fix), upper = fit_pop + q * sqrt(var_fix)),
       prediction = list(fit = fit_re, lower = fit_re - q * sqrt(var_pred), upper = fit_re + q * sqrt(var_pred)),
       se_fixed = sqrt(var_fix), sd_random = sqrt(var_re), sigma = sigma(m))
}

out <- list()
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
nd <- data.frame(Days = c(0, 5, 9.5, 5, 12), Subject = c("308", "309", "372", "999", "999"))
out$sleep <- c(list(formula = "Reaction ~ Days + (Days | Subject)", newdata = nd),
               intervals(m, nd, ~ Days))

m <- lmer(mathach ~ ses + sector + (ses | school), hsb)
nd <- data.frame(ses = c(-1, 0.5, 1.2, 0), sector = c(0, 1, 0, 1),
                 school = c("1224", "9586", "99999", "99999"))
out$hsb <- c(list(formula = "mathach ~ ses + sector + (ses | school)", newdata = nd),
             intervals(m, nd, ~ ses + sector))

m <- lmer(score ~ gcsescore + (1 | lea/school), chem97)
## a seen school in a seen lea, an unseen school in a seen lea, an unseen lea
nd <- data.frame(gcsescore = c(6, 5.5, 7), lea = c("1", "1", "999"), school = c("1", "999", "999"))
out$chem97 <- c(list(formula = "score ~ gcsescore + (1 | lea/school)", newdata = nd),
                intervals(m, nd, ~ gcsescore))

out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
write_json(out, file.path(script_dir, "inference_predict.json"), auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
