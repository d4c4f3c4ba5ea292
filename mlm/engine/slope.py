"""The deviance, its gradient and the estimates for one grouping factor with a 2 x 2 template.

A random intercept and slope ``(x | g)`` (or ``(1 | g) + (0 + x | g)``, the same factor
with a diagonal template) is the second most common model after ``(1 | g)``
(:mod:`mlm.engine.scalar`). Every level's block of ``Lambda'Z'Z Lambda + I`` is a 2 x 2
matrix, so its Cholesky factor, the solves with it, its inverse (the adjugate over the
determinant) and the per-level products of :func:`mlm.engine.gradient.primary_gradient`
are written out entry by entry on arrays over the levels. Same formulas (Bates et al.
2015, JSS 67(1), sec. 3; the gradient's derivation is in :mod:`mlm.engine.gradient`),
about a third of the numpy calls of the general flat kernels (:mod:`mlm.engine.kernels`),
whose per-call overhead dominates at a few dozen or hundred levels (sleepstudy, HSB:
issue 16). The two components' arrays sit side by side in one ``(p, 2 G)`` buffer so that
the products with ``X`` are one BLAS call each.

With ``pieces=True`` the gradient comes as its two terms ``(d f1, d r2)``, which
Satterthwaite's degrees of freedom difference (:mod:`mlm.engine.varpar`).
"""

from __future__ import annotations

import numpy as np

from mlm.engine.pls import _chol, _tri

__all__ = ["applies", "deviance_and_gradient", "solve", "grad_pieces"]


def applies(problem) -> bool:
    """Whether ``problem`` is one grouping factor with a two-column (lower triangular) template."""
    return (not problem.dense and problem.rem is None and problem.k1 == 2
            and len(problem.primary) in (1, 2))


def _template(problem, theta):
    """``(t0, t1, t2)``: the primary block ``[[t0, 0], [t1, t2]]``, and the per-term templates."""
    Ts = problem.templates(theta)
    if len(problem.primary) == 1:
        T = Ts[problem.primary[0]]
    else:
        T = np.diag([Ts[i][0, 0] for i in problem.primary])
    return float(T[0, 0]), float(T[1, 0]), float(T[1, 1]), Ts


class _Factor:
    """Every level's Cholesky factor ``[[l00, 0], [l10, l11]]`` and the solves it enters."""

    __slots__ = ("t", "l00", "l10", "l11", "i00", "i01", "i11", "tm", "R", "cu", "LX", "cbeta",
                 "r2", "logdet", "G")

    def __init__(self, problem, t0, t1, t2):
        Mc = problem.Mc
        m00, m01, m11 = Mc[0, 0], Mc[0, 1], Mc[1, 1]
        G = problem.G1
        self.G = G
        self.t = (t0, t1, t2)
        # T'M per level: [[t0 m00 + t1 m01, t0 m01 + t1 m11], [t2 m01, t2 m11]]
        tm00 = t0 * m00 + t1 * m01
        tm01 = t0 * m01 + t1 * m11
        tm10 = t2 * m01
        tm11 = t2 * m11
        self.tm = (tm00, tm01, tm10, tm11)
        # A = T'M T + I
        a00 = tm00 * t0 + tm01 * t1 + 1.0
        a01 = tm01 * t2
        a11 = tm11 * t2 + 1.0
        l00 = np.sqrt(a00)
        l10 = a01 / l00
        l11 = np.sqrt(a11 - l10 * l10)
        self.l00, self.l10, self.l11 = l00, l10, l11
        det = a00 * a11 - a01 * a01
        # A^{-1} = adj(A) / det
        self.i00, self.i01, self.i11 = a11 / det, -a01 / det, a00 / det
        zx, zy = problem.ZXc, problem.Zyc
        p = zx.shape[1]
        # R_ZX = L^{-1} T' Z'X, both components in one (p, 2G) buffer
        R = np.empty((p, 2 * G))
        R0, R1 = R[:, :G], R[:, G:]
        np.multiply(zx[0], t0, out=R0)
        R0 += t1 * zx[1]
        R0 /= l00
        np.multiply(zx[1], t2, out=R1)
        R1 -= l10 * R0
        R1 /= l11
        cu = np.empty(2 * G)
        c0, c1 = cu[:G], cu[G:]
        np.multiply(zy[0], t0, out=c0)
        c0 += t1 * zy[1]
        c0 /= l00
        np.multiply(zy[1], t2, out=c1)
        c1 -= l10 * c0
        c1 /= l11
        self.R, self.cu = R, cu
        self.LX = _chol(problem.XtX - R @ R.T)
        self.cbeta = _tri(self.LX, problem.Xty - R @ cu)
        self.r2 = problem.yty - float(cu @ cu) - float(self.cbeta @ self.cbeta)
        self.logdet = 2.0 * float(np.log(l00 * l11).sum())

    def back(self, v):
        """``L^{-T} v`` per level for ``v`` laid out as ``(..., 2G)``: (component 0, 1)."""
        G = self.G
        v0, v1 = v[..., :G], v[..., G:]
        u1 = v1 / self.l11
        u0 = (v0 - self.l10 * u1) / self.l00
        return u0, u1


def _deviance(problem, f):
    return float(problem._deviance_from(f.r2, f.logdet, f.LX))


def _factor(problem, theta):
    t0, t1, t2, Ts = _template(problem, theta)
    return _Factor(problem, t0, t1, t2), Ts


def _gradient_terms(problem, f):
    """``(phi, s u')``, 2 x 2: the trace and residual terms of the gradient
    (:func:`mlm.engine.gradient.primary_gradient`), and ``beta``."""
    t0, t1, t2 = f.t
    beta = _tri(f.LX, f.cbeta, lower=True, trans=True)
    u0, u1 = f.back(f.cu - beta @ f.R)
    b0 = t0 * u0
    b1 = t1 * u0 + t2 * u1
    Mc = problem.Mc
    m00, m01, m11 = Mc[0, 0], Mc[0, 1], Mc[1, 1]
    s = problem.Zyc - beta @ problem.ZXc                          # (2, G)
    s0 = s[0] - (m00 * b0 + m01 * b1)
    s1 = s[1] - (m01 * b0 + m11 * b1)
    su = np.array([[s0 @ u0, s0 @ u1], [s1 @ u0, s1 @ u1]])
    # phi = sum_l A_l^{-1} T'M_l
    tm00, tm01, tm10, tm11 = f.tm
    i00, i01, i11 = f.i00, f.i01, f.i11
    phi = np.array([[i00 @ tm00 + i01 @ tm10, i00 @ tm01 + i01 @ tm11],
                    [i01 @ tm00 + i11 @ tm10, i01 @ tm01 + i11 @ tm11]])
    if problem.reml:
        Linv = _tri(f.LX, np.eye(f.LX.shape[0]), lower=True)
        Q = Linv.T @ Linv                                         # (R_X'R_X)^{-1}
        y0, y1 = f.back(f.R)                                      # Y = L^{-T} R_ZX, (p, G) each
        zx = problem.ZXc
        # sum_{p,l} (Q Y_l)[a, p] (Y_l' T'M_l - Z'X_l)[b, p]
        D0 = tm00 * y0 + tm10 * y1 - zx[0]
        D1 = tm01 * y0 + tm11 * y1 - zx[1]
        QY0, QY1 = Q @ y0, Q @ y1
        phi += np.array([[np.vdot(QY0, D0), np.vdot(QY0, D1)],
                         [np.vdot(QY1, D0), np.vdot(QY1, D1)]])
    return phi, su, beta


def _collect(problem, G2):
    from mlm.engine.gradient import _collect_primary

    return _collect_primary(problem, G2)


def deviance_and_gradient(problem, theta):
    """``(deviance, gradient)`` at ``theta``; ``(inf, None)`` where the fixed-effects block
    is not positive definite."""
    try:
        f, _ = _factor(problem, theta)
    except np.linalg.LinAlgError:
        return np.inf, None
    dev = _deviance(problem, f)
    if not np.isfinite(dev):
        return dev, None
    phi, su, _ = _gradient_terms(problem, f)
    c = (problem.n - problem.p if problem.reml else problem.n) / f.r2
    return dev, _collect(problem, 2.0 * (phi.T - c * su))


def grad_pieces(problem, theta):
    """:func:`mlm.engine.varpar._grad_pieces` for this layout: ``(R_X'R_X)^{-1}``, r2,
    ``d f1 / d theta`` and ``d r2 / d theta`` from one factorisation."""
    f, _ = _factor(problem, theta)
    phi, su, _ = _gradient_terms(problem, f)
    Linv = _tri(f.LX, np.eye(f.LX.shape[0]), lower=True)
    return (Linv.T @ Linv, float(f.r2), _collect(problem, 2.0 * phi.T),
            _collect(problem, -2.0 * su))


def solve(problem, theta, cond_var=False):
    """:meth:`mlm.engine.pls.PLSProblem.solve` for this layout: the same estimates from the
    closed forms (``u = L^{-T}(cu - R_ZX beta)``, ``b = T u``, postVar
    ``sigma^2 T A^{-1} T'`` per level)."""
    from mlm.engine.pls import PLSSolution

    theta = np.asarray(theta, dtype=float)
    f, Ts = _factor(problem, theta)
    t0, t1, t2 = f.t
    dev = _deviance(problem, f)
    beta = _tri(f.LX, f.cbeta, lower=True, trans=True)
    sigma2 = f.r2 / (problem.n - problem.p if problem.reml else problem.n)
    Linv = _tri(f.LX, np.eye(f.LX.shape[0]), lower=True)
    u0, u1 = f.back(f.cu - beta @ f.R)
    b1 = np.column_stack([t0 * u0, t1 * u0 + t2 * u1])           # (G, 2)
    cv1 = None
    if cond_var:
        # T A^{-1} T' per level, T = [[t0, 0], [t1, t2]]
        i00, i01, i11 = f.i00, f.i01, f.i11
        c00 = t0 * t0 * i00
        c01 = t0 * (t1 * i00 + t2 * i01)
        c11 = t1 * t1 * i00 + 2.0 * t1 * t2 * i01 + t2 * t2 * i11
        cv1 = np.empty((problem.G1, 2, 2))
        cv1[:, 0, 0] = c00
        cv1[:, 0, 1] = cv1[:, 1, 0] = c01
        cv1[:, 1, 1] = c11
        cv1 *= sigma2
    b = [None] * len(Ts)
    cv = [None] * len(Ts) if cond_var else None
    col = 0
    for i in problem.primary:
        k = problem.ks[i]
        b[i] = b1[:, col:col + k]
        if cond_var:
            cv[i] = cv1[:, col:col + k, col:col + k]
        col += k
    return PLSSolution(theta=theta, beta=beta + problem.beta_shift, sigma2=float(sigma2),
                       deviance=dev, vcov_beta=sigma2 * (Linv.T @ Linv), b=b, cond_var=cv,
                       templates=Ts)
