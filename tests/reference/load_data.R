## Shared by the R scripts that produce reference numbers: read a bundled data set from
## the CSV files in datasets/ (not R's own objects), so that R and Python fit exactly the
## same data. The caller sets `data_dir` (the datasets folder) and then sources this file.
## Columns listed in the manifest's `categories` become factors with those levels (R's
## level order; ordered where the source has them ordered); grouping columns become
## factors with sorted levels (numeric order for integer ids, as factor() gives).
manifest <- jsonlite::fromJSON(file.path(data_dir, "manifest.json"), simplifyVector = TRUE)

load_data <- function(name) {
  m <- manifest[[name]]
  path <- file.path(data_dir, m$file)
  d <- read.csv(if (grepl("\\.gz$", path)) gzfile(path) else path, stringsAsFactors = FALSE)
  for (cc in names(m$categories))
    d[[cc]] <- factor(as.character(d[[cc]]), levels = m$categories[[cc]],
                      ordered = cc %in% m$ordered_factors)
  for (g in names(m$groups)) if (!is.factor(d[[g]])) d[[g]] <- factor(d[[g]])
  d
}
