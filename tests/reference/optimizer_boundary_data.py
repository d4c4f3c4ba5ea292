"""Write the simulated data of tests/test_engine_optimize.py::test_optimum_just_inside_the_bound_is_found
to a CSV for tests/reference/optimizer_boundary.R (numpy's generator; R reads the file).

Usage: python tests/reference/optimizer_boundary_data.py /tmp/optimizer_boundary.csv
"""
import sys

import numpy as np
import pandas as pd

rng = np.random.default_rng(5)
n = 50000
a, b, x = rng.integers(0, 500, n), rng.integers(0, 40, n), rng.standard_normal(n)
y = (1 + x + rng.normal(0, 1, 500)[a] + rng.normal(0, .5, 500)[a] * x
     + rng.normal(0, .7, 40)[b] + rng.normal(0, 1, n))
pd.DataFrame({"y": y, "x": x, "a": a, "b": b}).to_csv(sys.argv[1], index=False, float_format="%.17g")
