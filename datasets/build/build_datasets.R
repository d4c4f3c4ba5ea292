## Build the CSV data files bundled with mlm, plus datasets/manifest.json.
## Run from anywhere:  Rscript datasets/build/build_datasets.R
## Needs R packages: lme4, mlmRev, nlme, jsonlite.
suppressPackageStartupMessages({
  library(lme4); library(mlmRev); library(nlme); library(jsonlite)
})
options(digits = 15, scipen = 0)
all_integer_labels <- function(lv) all(grepl("^-?[0-9]+$", lv))

script_dir <- local({
  a <- grep("^--file=", commandArgs(FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else getwd()
})
out_dir <- normalizePath(file.path(script_dir, ".."))

## factor -> its labels (character); grouping-id factors whose labels are all
## integers are written as integers; everything else unchanged
unfactor <- function(d, ids = character(0)) {
  for (n in names(d)) if (is.factor(d[[n]])) {
    lab <- as.character(d[[n]])
    d[[n]] <- if (n %in% ids && all_integer_labels(levels(d[[n]]))) as.integer(lab) else lab
  }
  d
}
write_csv <- function(d, file) {
  path <- file.path(out_dir, file)
  if (grepl("\\.gz$", file)) {
    con <- gzfile(path, "w")
    write.csv(d, con, row.names = FALSE, na = "")
    close(con)
  } else {
    write.csv(d, path, row.names = FALSE, na = "")
  }
  invisible(path)
}
lic <- function(pkg) packageDescription(pkg)$License

## ---------------------------------------------------------------- hsb
ma <- as.data.frame(nlme::MathAchieve)
ms <- as.data.frame(nlme::MathAchSchool)
i <- match(as.character(ma$School), as.character(ms$School))
stopifnot(!anyNA(i))
hsb <- data.frame(
  school   = as.integer(as.character(ma$School)),
  minority = as.integer(ma$Minority == "Yes"),
  female   = as.integer(ma$Sex == "Female"),
  ses      = ma$SES,
  mathach  = ma$MathAch,
  size     = ms$Size[i],
  sector   = as.integer(ms$Sector[i] == "Catholic"),
  pracad   = ms$PRACAD[i],
  disclim  = ms$DISCLIM[i],
  himinty  = as.integer(as.character(ms$HIMINTY[i])),
  meanses  = ms$MEANSES[i]
)
stopifnot(nrow(hsb) == 7185, length(unique(hsb$school)) == 160)

## ---------------------------------------------------------------- others
sleep <- unfactor(lme4::sleepstudy[, c("Reaction", "Days", "Subject")], "Subject")
pastes <- unfactor(lme4::Pastes[, c("strength", "batch", "cask", "sample")])
penic <- unfactor(lme4::Penicillin[, c("diameter", "plate", "sample")])
exam <- unfactor(mlmRev::Exam, c("school", "student"))
chem <- unfactor(mlmRev::Chem97, c("lea", "school", "student"))
scots <- unfactor(mlmRev::ScotsSec, c("primary", "second"))
inst <- unfactor(lme4::InstEval, c("s", "d"))
egs <- unfactor(mlmRev::egsingle, c("schoolid", "childid"))
contra <- unfactor(mlmRev::Contraception, c("woman", "district"))
cbpp <- unfactor(lme4::cbpp, "herd")

write_csv(hsb, "hsb.csv")
write_csv(sleep, "sleepstudy.csv")
write_csv(pastes, "pastes.csv")
write_csv(penic, "penicillin.csv")
write_csv(exam, "exam.csv")
write_csv(chem, "chem97.csv")
write_csv(scots, "scotssec.csv")
write_csv(inst, "insteval.csv.gz")
write_csv(egs, "egsingle.csv")
write_csv(contra, "contraception.csv")
write_csv(cbpp, "cbpp.csv")

## ---------------------------------------------------------------- manifest
## categories: every R factor column with its levels in R's order, except
## grouping/id columns whose labels are all integers (those are written as
## integer labels and need no level list).
cats <- function(orig, ids) {
  out <- list()
  for (n in names(orig)) {
    f <- orig[[n]]
    if (!is.factor(f)) next
    lv <- levels(f)
    if (n %in% ids && all_integer_labels(lv)) next
    out[[n]] <- lv
  }
  if (!length(out)) structure(list(), names = character(0)) else out
}
ordered_cols <- function(orig) {
  o <- names(orig)[vapply(orig, is.ordered, TRUE)]
  o
}
ngrp <- function(d, cols) {
  r <- lapply(cols, function(cc) length(unique(d[[cc]])))
  names(r) <- cols
  r
}

## Codebook fields (issue 15), all optional so that entries without them stay valid:
##   structure       - the grouping structure in words
##   levels          - the units, lowest first: unit name, the id column (NA for the
##                     row itself) and the level number (crossed units share a number)
##   variable_levels - the unit each variable describes
##   quirks          - known traps of the data, one sentence each
## A variable said to describe a unit with an id column must be constant within it:
## checked here on the data, so the codebook cannot claim a level the data contradict.
unit <- function(unit, id = NA_character_, level) list(unit = unit, id = id, level = as.integer(level))
check_levels <- function(d, levels, variable_levels) {
  ids <- setNames(vapply(levels, function(u) u$id, ""), vapply(levels, function(u) u$unit, ""))
  stopifnot(all(unlist(variable_levels) %in% names(ids)),
            identical(sort(names(variable_levels)), sort(names(d))))
  for (v in names(variable_levels)) {
    id <- ids[[variable_levels[[v]]]]
    if (is.na(id) || id == v) next
    k <- tapply(as.character(d[[v]]), d[[id]], function(x) length(unique(x)))
    if (any(k > 1)) stop(sprintf("%s is not constant within %s", v, id))
  }
}

entry <- function(file, title, description, d, groups, source, license,
                  categories, variables, ordered = character(0), notes = NULL,
                  structure = NULL, levels = NULL, variable_levels = NULL, quirks = NULL) {
  stopifnot(identical(sort(names(variables)), sort(names(d))))
  e <- list(file = file, title = title, description = description,
            rows = nrow(d), columns = names(d), groups = groups,
            source = source, license = license, categories = categories,
            ordered_factors = I(ordered),
            variables = variables[names(d)])
  if (!is.null(notes)) e$notes <- notes
  if (!is.null(levels)) {
    check_levels(d, levels, variable_levels)
    e$structure <- structure
    e$levels <- levels
    e$variable_levels <- variable_levels[names(d)]
  }
  if (!is.null(quirks)) e$quirks <- I(quirks)
  e
}

manifest <- list()

manifest$hsb <- entry(
  "hsb.csv",
  "High School and Beyond: mathematics achievement of 7185 US students in 160 schools",
  paste("One row per student from the 1982 High School and Beyond survey as used by Raudenbush and Bryk.",
        "Students (level 1) are nested in 160 schools (level 2), 90 public and 70 Catholic;",
        "school-level variables (size, sector, pracad, disclim, himinty, meanses) are repeated on every student row of the school.",
        "Rows keep the order of nlme's MathAchieve."),
  hsb, list(school = 160L),
  list(r_package = "nlme", r_objects = "MathAchieve (students) merged with MathAchSchool (schools) by School",
       citation = "Raudenbush, S. W. and Bryk, A. S. (2002). Hierarchical Linear Models: Applications and Data Analysis Methods, 2nd ed. Sage."),
  lic("nlme"),
  structure(list(), names = character(0)),
  list(school = "school id (R&B's school code, integer)",
       minority = "1 = student belongs to a racial/ethnic minority group, 0 = not",
       female = "1 = female, 0 = male",
       ses = "student socio-economic status (standardized composite)",
       mathach = "student mathematics achievement score",
       size = "school enrolment (number of students)",
       sector = "school sector: 1 = Catholic, 0 = public",
       pracad = "proportion of the school's students on the academic track",
       disclim = "school disciplinary climate scale",
       himinty = "1 = school with more than 40% minority enrolment, 0 = not",
       meanses = "school mean SES as given in R&B's school file (MathAchSchool$MEANSES; not recomputed from these rows)"),
  notes = "Recoded from nlme factors: minority = (Minority == 'Yes'), female = (Sex == 'Female'), sector = (Sector == 'Catholic'), himinty = HIMINTY label. The school mean of ses in these rows differs slightly from meanses.",
  structure = "students (rows, level 1) nested in schools (level 2)",
  levels = list(unit("student", level = 1), unit("school", "school", 2)),
  variable_levels = list(school = "school", minority = "student", female = "student", ses = "student",
                         mathach = "student", size = "school", sector = "school", pracad = "school",
                         disclim = "school", himinty = "school", meanses = "school"),
  quirks = c("meanses is R&B's school mean SES from their school file; the mean of ses over a school's rows in these data differs slightly from it (use gm(ses, school) for the sample mean).",
             "R&B's chapter-4 models centre ses on the school mean: write cwc(ses, school), not ses.",
             "minority, female, sector and himinty are 0/1 numbers, not factors: each enters a formula as one slope.")
)

manifest$sleepstudy <- entry(
  "sleepstudy.csv",
  "Reaction times in a sleep deprivation study",
  paste("Average reaction time per day for 18 subjects in the most sleep-deprived group (3 hours time in bed) of a sleep deprivation study, 10 days each (180 rows).",
        "Days (level 1) are nested in subjects (level 2).",
        "Days 0-1 were adaptation and training, day 2 was baseline; sleep deprivation started after day 2."),
  sleep, list(Subject = 18L),
  list(r_package = "lme4", r_objects = "sleepstudy",
       citation = "Belenky, G., Wesensten, N. J., Thorne, D. R., Thomas, M. L., Sing, H. C., Redmond, D. P., Russo, M. B. and Balkin, T. J. (2003). Patterns of performance degradation and restoration during sleep restriction and subsequent recovery: a sleep dose-response study. Journal of Sleep Research 12, 1-12."),
  lic("lme4"), cats(lme4::sleepstudy, "Subject"),
  list(Reaction = "average reaction time (ms)",
       Days = "number of days of sleep deprivation (0-9)",
       Subject = "subject number (integer label, e.g. 308)"),
  structure = "days (rows, level 1) nested in subjects (level 2)",
  levels = list(unit("day", level = 1), unit("subject", "Subject", 2)),
  variable_levels = list(Reaction = "day", Days = "day", Subject = "subject"),
  quirks = c("Days 0 and 1 were adaptation and training and day 2 the baseline (Belenky et al. 2003): some analyses keep Days >= 2 and recentre at 2; lme4's examples use all ten days.",
             "Subject is an integer label: a grouping factor, not a number for the fixed part.")
)

manifest$pastes <- entry(
  "pastes.csv",
  "Paste strength by delivery batch and cask",
  paste("Strength of a chemical paste product: 10 delivery batches, 3 casks sampled within each batch, and 2 assays per cask sample (60 rows).",
        "Casks are nested in batches; the cask labels a, b, c are reused in every batch, so the unique cask is batch:cask, which is the sample column (30 levels)."),
  pastes, list(batch = 10L, cask = 3L, sample = 30L),
  list(r_package = "lme4", r_objects = "Pastes",
       citation = "Davies, O. L. and Goldsmith, P. L. (eds) (1972). Statistical Methods in Research and Production, 4th ed. Oliver and Boyd, section 6.5."),
  lic("lme4"), cats(lme4::Pastes, character(0)),
  list(strength = "paste strength",
       batch = "delivery batch, A to J",
       cask = "cask within the batch, a to c (labels repeat across batches)",
       sample = "the cask sample, batch:cask, e.g. 'A:a' (30 levels)"),
  structure = "assays (rows, level 1) nested in cask samples (level 2) nested in delivery batches (level 3)",
  levels = list(unit("assay", level = 1), unit("sample", "sample", 2), unit("batch", "batch", 3)),
  variable_levels = list(strength = "assay", batch = "batch", cask = "sample", sample = "sample"),
  quirks = c("cask repeats its labels a, b, c in every batch: (1 | batch) + (1 | cask) would cross 3 casks with 10 batches; write (1 | batch/cask) or (1 | batch) + (1 | sample).")
)

manifest$penicillin <- entry(
  "penicillin.csv",
  "Variation in penicillin testing",
  paste("Six penicillin samples were each tested on each of 24 assay plates by the B. subtilis plate method (144 rows).",
        "Plates and samples are fully crossed grouping factors: every sample appears on every plate once."),
  penic, list(plate = 24L, sample = 6L),
  list(r_package = "lme4", r_objects = "Penicillin",
       citation = "Davies, O. L. and Goldsmith, P. L. (eds) (1972). Statistical Methods in Research and Production, 4th ed. Oliver and Boyd, section 6.6."),
  lic("lme4"), cats(lme4::Penicillin, character(0)),
  list(diameter = "diameter (mm) of the zone of inhibition of growth of the organism",
       plate = "assay plate, a to x",
       sample = "penicillin sample, A to F"),
  structure = "tests (rows, level 1) cross-classified by assay plate and penicillin sample (level 2, crossed): every sample on every plate once",
  levels = list(unit("test", level = 1), unit("plate", "plate", 2), unit("sample", "sample", 2)),
  variable_levels = list(diameter = "test", plate = "plate", sample = "sample"),
  quirks = c("plate and sample are crossed, not nested: (1 | plate) + (1 | sample).",
             "The sample variance rests on only 6 levels, so it is imprecise.")
)

manifest$exam <- entry(
  "exam.csv",
  "Exam scores of 4059 students in 65 inner-London schools",
  paste("One row per student: GCSE exam score at 16 with intake reading test score and background, for 4059 students in 65 schools in inner London.",
        "Students (level 1) are nested in schools (level 2).",
        "The student column is an id within school only: the same student number occurs in several schools."),
  exam, list(school = 65L, student = length(unique(exam$student))),
  list(r_package = "mlmRev", r_objects = "Exam",
       citation = "Goldstein, H., Rasbash, J., Yang, M., Woodhouse, G., Pan, H., Nuttall, D. and Thomas, S. (1993). A multilevel analysis of school examination results. Oxford Review of Education 19, 425-433."),
  lic("mlmRev"), cats(mlmRev::Exam, c("school", "student")),
  list(school = "school id (integer label)",
       normexam = "normalized GCSE exam score at age 16",
       schgend = "school gender: mixed, boys or girls (reference level: mixed)",
       schavg = "school average of the intake score",
       vr = "verbal reasoning score band at intake: bottom 25%, mid 50%, top 25% (constant within school: see quirks)",
       intake = "band of the student's intake score: bottom 25%, mid 50%, top 25%",
       standLRT = "standardized London Reading Test score at intake (age 11)",
       sex = "student sex: F or M (reference level: F)",
       type = "school type: Mxd (mixed) or Sngl (single sex)",
       student = "student id within school (integer label; not unique across schools)"),
  structure = "students (rows, level 1) nested in schools (level 2)",
  levels = list(unit("student", level = 1), unit("school", "school", 2)),
  variable_levels = list(school = "school", normexam = "student", schgend = "school", schavg = "school",
                         vr = "school", intake = "student", standLRT = "student", sex = "student",
                         type = "school", student = "student"),
  quirks = c("Student numbers restart in every school: student is not an id across schools (650 labels for 4059 students).",
             "vr is constant within every school, although mlmRev's help page calls it the student's band: it is a school-level variable in these data.",
             "normexam and standLRT are normal scores, already standardised over the whole sample.")
)

chem_nested_ok <- all(tapply(as.character(chem$lea), chem$school, function(x) length(unique(x))) == 1)
manifest$chem97 <- entry(
  "chem97.csv",
  "Scores on the 1997 A-level Chemistry examination in England",
  paste("One row per student: A-level Chemistry point score in 1997 with the student's average GCSE score, age and gender (31022 rows).",
        sprintf("Students are nested in %d schools, which are nested in %d local education authorities (lea).",
                length(unique(chem$school)), length(unique(chem$lea))),
        if (chem_nested_ok) "School ids are unique across leas (each school lies in exactly one lea)." else "School ids are NOT unique across leas."),
  chem, list(lea = length(unique(chem$lea)), school = length(unique(chem$school)),
             student = length(unique(chem$student))),
  list(r_package = "mlmRev", r_objects = "Chem97",
       citation = "Yang, M., Fielding, A. and Goldstein, H. (2002). Multilevel ordinal models for examination grades. Data from the Centre for Multilevel Modelling, University of Bristol."),
  lic("mlmRev"), cats(mlmRev::Chem97, c("lea", "school", "student")),
  list(lea = "local education authority id (integer label)",
       school = "school id (integer label; unique across leas)",
       student = "student id (integer label; unique)",
       score = "A-level Chemistry point score in 1997 (0, 2, 4, 6, 8, 10)",
       gender = "student gender: M or F (R level order M, F, so M is the reference)",
       age = "age in months, centred at 222 months (18.5 years)",
       gcsescore = "student's average GCSE score",
       gcsecnt = "average GCSE score centred at its mean (gcsescore - mean)"),
  notes = sprintf("The data have %d distinct schools (the mlmRev help page says 2,280).",
                  length(unique(chem$school))),
  structure = "students (rows, level 1) nested in schools (level 2) nested in local education authorities (level 3)",
  levels = list(unit("student", "student", 1), unit("school", "school", 2), unit("lea", "lea", 3)),
  variable_levels = list(lea = "lea", school = "school", student = "student", score = "student",
                         gender = "student", age = "student", gcsescore = "student", gcsecnt = "student"),
  quirks = c(sprintf("The data have %d distinct schools; the mlmRev help page says 2,280.", length(unique(chem$school))),
             "score is an ordinal grade (A = 10 down to F = 0 in steps of 2); a linear model treats it as interval.",
             "age is centred (months - 222) and gcsecnt is gcsescore centred at its grand mean, as in mlmRev.")
)

manifest$scotssec <- entry(
  "scotssec.csv",
  "Scottish secondary school attainment (primary and secondary school cross-classified)",
  paste("Attainment scores of 3435 Scottish students on a standardized test at age 16, with verbal reasoning score on entry to secondary school, sex and social class.",
        "Each student is classified by the primary school and the secondary school attended; these two grouping factors are crossed, not nested."),
  scots, list(primary = length(unique(scots$primary)), second = length(unique(scots$second))),
  list(r_package = "mlmRev", r_objects = "ScotsSec",
       citation = "Paterson, L. (1991). Socio-economic status and educational attainment: a multidimensional and multilevel study. Evaluation and Research in Education 5, 97-121."),
  lic("mlmRev"), cats(mlmRev::ScotsSec, c("primary", "second")),
  list(verbal = "verbal reasoning score on entry to secondary school",
       attain = "score attained on the standardized test at age 16",
       primary = "primary school id (integer label)",
       sex = "student sex: M or F (R level order M, F, so M is the reference)",
       social = "social class on a numeric scale from low to high",
       second = "secondary school id (integer label)"),
  structure = "students (rows, level 1) cross-classified by primary school and secondary school (level 2, crossed)",
  levels = list(unit("student", level = 1), unit("primary school", "primary", 2),
                unit("secondary school", "second", 2)),
  variable_levels = list(verbal = "student", attain = "student", primary = "primary school",
                         sex = "student", social = "student", second = "secondary school"),
  quirks = c("primary and second are crossed (a primary school sends students to several secondaries): (1 | primary) + (1 | second).",
             sprintf("social takes only the values %s: a class code rather than a scale, so C(social) may suit better than a slope.",
                     paste(sort(unique(scots$social)), collapse = ", ")))
)

manifest$insteval <- entry(
  "insteval.csv.gz",
  "University lecture evaluations by students at ETH Zurich",
  paste("Each row is one student's rating (1-5) of one lecture by one lecturer (73421 rows), anonymized.",
        "Students (s, 2972 levels) and lecturers (d, 1128 levels) are crossed grouping factors: each student rates several lecturers and each lecturer is rated by many students.",
        "Gzip-compressed CSV."),
  inst, list(s = length(unique(inst$s)), d = length(unique(inst$d))),
  list(r_package = "lme4", r_objects = "InstEval",
       citation = "ETH Zurich lecture evaluation survey, anonymized; distributed with lme4 (Bates, Maechler, Bolker and Walker 2015, Journal of Statistical Software 67(1))."),
  lic("lme4"), cats(lme4::InstEval, c("s", "d")),
  list(s = "student id (integer label)",
       d = "lecturer (instructor) id (integer label)",
       studage = "ordered factor: the student's semester number, 2 < 4 < 6 < 8",
       lectage = "ordered factor: how many semesters back the rated lecture took place, 1 < ... < 6",
       service = "factor '0'/'1': 1 = lecture held for a different department than the lecturer's main one (reference level '0')",
       dept = "department of the lecture, anonymized code; R factor whose level order is NOT numeric (see categories)",
       y = "rating of the lecture, 1 = poor to 5 = very good"),
  ordered = ordered_cols(lme4::InstEval),
  structure = "ratings (rows, level 1) cross-classified by student s and lecturer d (level 2, crossed)",
  levels = list(unit("rating", level = 1), unit("student", "s", 2), unit("lecturer", "d", 2)),
  variable_levels = list(s = "student", d = "lecturer", studage = "student", lectage = "rating",
                         service = "rating", dept = "lecturer", y = "rating"),
  quirks = c("dept keeps R's level order, which is not numeric: the reference department is '15'.",
             "studage and lectage are ordered factors; patsy codes them with treatment contrasts where R uses orthogonal polynomials (contr.poly): same fit, different coefficients.",
             "y is a 1-5 rating fitted as a number.")
)


egs_children_in_one_school <- all(tapply(as.character(egs$schoolid), egs$childid,
                                         function(x) length(unique(x))) == 1)
stopifnot(egs_children_in_one_school)
manifest$egsingle <- entry(
  "egsingle.csv",
  "Mathematics growth: yearly tests of 1721 children in 60 schools (US Sustaining Effects Study)",
  paste(sprintf("Mathematics scores from the US Sustaining Effects Study: %d tests of %d children in %d schools, one row per child and year (%s tests per child).",
                nrow(egs), length(unique(egs$childid)), length(unique(egs$schoolid)),
                paste(range(table(egs$childid)), collapse = " to ")),
        "Tests (level 1) are nested in children (level 2), who are nested in schools (level 3); every child stays in one school.",
        "Raudenbush and Bryk's (2002) three-level growth example: math on year, with child and school random effects."),
  egs, list(schoolid = length(unique(egs$schoolid)), childid = length(unique(egs$childid))),
  list(r_package = "mlmRev", r_objects = "egsingle",
       citation = "Bryk, A. S., Raudenbush, S. W. and Congdon, R. T. (1996). HLM: Hierarchical Linear and Nonlinear Modeling with the HLM/2L and HLM/3L Programs. Scientific Software International (the data are distributed with HLM). Analysed in Raudenbush, S. W. and Bryk, A. S. (2002). Hierarchical Linear Models, 2nd ed. Sage, chapter 8. R conversion: Doran, H. C. and Lockwood, J. R. (2006). Fitting value-added models in R. Journal of Educational and Behavioral Statistics 31, 205-230."),
  lic("mlmRev"), cats(mlmRev::egsingle, c("schoolid", "childid")),
  list(schoolid = "school id (integer label)",
       childid = "child id (integer label; unique across schools)",
       year = sprintf("time of the test in years, centred (values %s)", paste(sort(unique(egs$year)), collapse = ", ")),
       grade = "grade level at the test (0 to 5)",
       math = "mathematics test score on the IRT scale-score metric",
       retained = "factor '0'/'1': 1 = the child has been retained in a grade (can change from year to year)",
       female = "factor 'Female'/'Male': the child's sex (reference level: Female)",
       black = "factor '0'/'1': 1 = the child is Black",
       hispanic = "factor '0'/'1': 1 = the child is Hispanic",
       size = "number of students enrolled in the school",
       lowinc = "percentage of low-income students in the school",
       mobility = "school mobility, in percent (mlmRev documents it only as 'a numeric vector')"),
  structure = "yearly tests (rows, level 1) nested in children (level 2) nested in schools (level 3)",
  levels = list(unit("test", level = 1), unit("child", "childid", 2), unit("school", "schoolid", 3)),
  variable_levels = list(schoolid = "school", childid = "child", year = "test", grade = "test",
                         math = "test", retained = "test", female = "child", black = "child",
                         hispanic = "child", size = "school", lowinc = "school", mobility = "school"),
  quirks = c(sprintf("year - grade is not the same for every test (%s): retained children repeat a grade while year moves on.",
                     paste(sprintf("%s in %d rows", names(table(egs$year - egs$grade)), as.integer(table(egs$year - egs$grade))), collapse = ", ")),
             "female holds the labels Female and Male, not a 0/1 indicator as its name suggests; black, hispanic and retained are factors with levels '0' and '1'.",
             "Children have different numbers of tests (unbalanced growth data); model time with year, not the row position.")
)

contra_sizes <- range(table(contra$district))
contra_ages <- range(round(contra$age + 30.56))
stopifnot(max(abs(contra$age + 30.56 - round(contra$age + 30.56))) < 0.0011,
          !(54L %in% contra$district), length(unique(contra$district)) == 60)
manifest$contraception <- entry(
  "contraception.csv",
  "Contraceptive use of 1934 women in 60 districts of Bangladesh",
  paste("One row per woman from the Bangladesh Fertility Survey of 1989: whether she was using contraception at the time of the survey,",
        "with her age, number of living children and urban or rural residence (1934 rows).",
        sprintf("Women (level 1) are nested in 60 districts (level 2) of %d to %d women; a binary outcome for logistic mixed models (glmer).",
                contra_sizes[1], contra_sizes[2])),
  contra, list(district = length(unique(contra$district))),
  list(r_package = "mlmRev", r_objects = "Contraception",
       citation = "Huq, N. M. and Cleland, J. (1990). Bangladesh Fertility Survey 1989 (Main Report). National Institute of Population Research and Training, Dhaka. Distributed by the Centre for Multilevel Modelling, University of Bristol (http://www.bristol.ac.uk/cmm/learning/mmsoftware/data-rev.html), the source mlmRev names; licence: the GPL (>= 2) of mlmRev, which distributes the data in R."),
  lic("mlmRev"), cats(mlmRev::Contraception, c("woman", "district")),
  list(woman = "woman id (integer label 1-1934, one row per woman)",
       district = "district id (integer label 1-61; 60 districts, there is no district 54)",
       use = "contraceptive use at the time of the survey: N (not using) or Y (using); Y, the second level, is the success of a logistic model, as in R",
       livch = "number of living children at the time of the survey: 0, 1, 2 or 3+ (three or more); reference level 0",
       age = sprintf("age of the woman at the time of the survey in years, centred at the sample mean (whole years minus 30.56: -13.56 is a woman of %d, 19.44 one of %d)",
                     contra_ages[1], contra_ages[2]),
       urban = "type of region of residence: N (rural) or Y (urban); reference level N"),
  structure = "women (rows, level 1) nested in districts (level 2)",
  levels = list(unit("woman", "woman", 1), unit("district", "district", 2)),
  variable_levels = list(woman = "woman", district = "district", use = "woman", livch = "woman",
                         age = "woman", urban = "woman"),
  quirks = c("mlmRev's help page says the survey is of 1988; the survey's report (Huq and Cleland 1990) and the Centre for Multilevel Modelling's copies of these data call it the 1989 Bangladesh Fertility Survey.",
             "mlmRev's help page gives urban the levels 'urban' and 'rural' and calls livch an ordered factor; in the data urban is coded N/Y (Y = urban) and livch is an unordered factor, so it enters a model as three contrasts against 0 children.",
             sprintf("urban describes the woman's place of residence, not the district: %d of the 60 districts have both urban and rural women.",
                     sum(tapply(as.character(contra$urban), contra$district, function(x) length(unique(x))) == 2)),
             "age carries rounding noise in the third decimal (-13.56 and -13.559 are both 17 years): treat it as numeric. Its square reaches 378, so lme4 warns that use ~ age + I(age^2) + ... is 'nearly unidentifiable' and suggests rescaling; the fit is fine, and scale(age) silences the warning.",
             "mlmRev's help page lists Steele, Diamond and Amin (1996) as its reference: a study of immunization uptake in four rural areas of Bangladesh (a discrete-time hazards model), not an analysis of these contraception data, so the citation here is the survey's report.")
)

cbpp_gaps <- which(xtabs(~ herd + period, cbpp) == 0, arr.ind = TRUE)
cbpp_gaps <- cbpp_gaps[order(cbpp_gaps[, 1], cbpp_gaps[, 2]), , drop = FALSE]
cbpp_missing <- paste(mapply(function(h, p) sprintf("herd %s (period%s %s)", h, if (length(p) > 1) "s" else "",
                                                   paste(p, collapse = ", ")),
                             names(split(cbpp_gaps[, 2], cbpp_gaps[, 1])), split(cbpp_gaps[, 2], cbpp_gaps[, 1])),
                      collapse = " and ")
manifest$cbpp <- entry(
  "cbpp.csv",
  "Contagious bovine pleuropneumonia: new cases in 15 herds over 4 periods",
  paste("Serological incidence of contagious bovine pleuropneumonia (CBPP) in zebu cattle in Ethiopia, from a follow-up survey of 15 commercial herds in the Boji district:",
        "for each herd and period, the herd size at the start of the period and the number of new serological cases (56 rows).",
        "Blood samples were taken from every animal quarterly and tested by cELISA.",
        "Periods (level 1) are nested in herds (level 2); binomial counts (incidence out of size) for glmer with cbind(incidence, size - incidence)."),
  cbpp, list(herd = length(unique(cbpp$herd))),
  list(r_package = "lme4", r_objects = "cbpp",
       citation = "Lesnoff, M., Laval, G., Bonnet, P., Abdicho, S., Workalemahu, A., Kifle, D., Peyraud, A., Lancelot, R. and Thiaucourt, F. (2004). Within-herd spread of contagious bovine pleuropneumonia in Ethiopian highlands. Preventive Veterinary Medicine 64, 27-40."),
  lic("lme4"), cats(lme4::cbpp, "herd"),
  list(herd = "herd id (integer label, 1-15)",
       incidence = "number of new serological cases in the herd during the period (the successes of a binomial model)",
       size = "herd size at the beginning of the period (the animals at risk: the trials of a binomial model)",
       period = "follow-up period, 1 to 4 (an unordered factor; reference level 1)"),
  structure = "periods (rows, level 1) nested in herds (level 2)",
  levels = list(unit("period", level = 1), unit("herd", "herd", 2)),
  variable_levels = list(herd = "herd", incidence = "period", size = "period", period = "period"),
  quirks = c(sprintf("56 rows, not 15 x 4 = 60: rows are missing for %s, lost to follow-up, as lme4's help page says.", cbpp_missing),
             "size is the herd size at the beginning of each period and changes from period to period within a herd: a period-level variable, not a herd constant.",
             "lme4's help page also fits the counts with an observation-level random effect for overdispersion: cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | obs) with obs = 1:56.",
             "incidence and size are whole numbers stored as doubles in R; they are written as integers here.")
)

manifest <- manifest[c("hsb", "sleepstudy", "pastes", "penicillin", "exam",
                       "chem97", "scotssec", "insteval", "egsingle", "contraception", "cbpp")]
writeLines(toJSON(manifest, auto_unbox = TRUE, pretty = TRUE, null = "null"),
           file.path(out_dir, "manifest.json"))
cat("wrote data files and manifest to", out_dir, "\n")
