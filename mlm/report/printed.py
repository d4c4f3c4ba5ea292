"""DataFrames that print like R's tables: a title above, formatted cells, a note below.

``mlm.anova`` and ``mlm.simple_slopes`` return one: the columns keep the unrounded numbers
(use them as any DataFrame), while ``str()``, ``repr()`` and the notebook view show the title
(lmerTest's "Type III Analysis of Variance Table with Satterthwaite's method"), p-values as
R prints them (``<2e-16``), and what the numbers assume (which other predictors are held at
0). A subset or a computed frame is a plain DataFrame (issue 13: bare frames printed with
columns hidden behind ``...`` and p-values like ``1.358369e-120``).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

__all__ = ["PrintedTable"]


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return ""
    if p < 2.2e-16:
        return "<2e-16"
    return f"{p:.3g}" if p < 1e-3 else f"{p:.4f}"


class PrintedTable(pd.DataFrame):
    """A DataFrame with ``attrs["title"]`` above and ``attrs["note"]`` below when printed.

    Examples
    --------
    >>> t = PrintedTable({"F": [208.69], "p_value": [2.9e-30]}, index=["meanses"])
    >>> t.attrs.update(title="An F-test", note="Satterthwaite's df.")
    >>> print(t)
    An F-test
                 F p_value
    meanses  208.7  <2e-16
    Satterthwaite's df.
    >>> float(t.loc["meanses", "F"])
    208.69
    """

    @property
    def _constructor(self):
        # subsets and computations are ordinary frames with pandas' own printing
        return pd.DataFrame

    def _cells(self) -> pd.DataFrame:
        out = pd.DataFrame(index=self.index)
        for col in self.columns:
            values = self[col]
            if col == "p_value":
                out[col] = [_format_p(float(v)) for v in values]
            elif pd.api.types.is_float_dtype(values):
                out[col] = [f"{v:.4g}" if abs(v) >= 1e-4 or v == 0 else f"{v:.3g}" for v in values]
            else:
                out[col] = values.astype(str)
        out.index.name = self.index.name
        return out

    def __str__(self) -> str:
        parts = [self.attrs.get("title", "")]
        parts.append(self._cells().to_string(line_width=100000))
        parts.append(self.attrs.get("note", ""))
        return "\n".join(p for p in parts if p)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        title = html.escape(self.attrs.get("title", ""))
        note = html.escape(self.attrs.get("note", ""))
        return ((f"<p><b>{title}</b></p>" if title else "") + self._cells().to_html()
                + (f"<p><i>{note}</i></p>" if note else ""))
