"""Second derivatives of the deviance in lmerTest's variance parameters ``(theta, sigma)``.

lmerTest (Kuznetsova, Brockhoff & Christensen 2017, JSS 82(13)) writes the deviance with
the fixed effects profiled out as

    D(theta, sigma) = f1(theta) + m log(2 pi sigma^2) + r2(theta) / sigma^2

(``f1 = log|A|``, plus ``log|R_X'R_X|`` under REML; ``m = n - p`` under REML, ``n`` under
ML; :meth:`mlm.engine.pls.PLSProblem.deviance_varpar`). Satterthwaite's df need its
Hessian ``H`` (whose halved inverse is the asymptotic covariance of the variance
parameters, also used for delta-method intervals) and the Jacobian of
``vcov(beta) = sigma^2 (R_X'R_X)^{-1}``. The sigma rows of ``H`` are analytic; the theta
block is the Hessian of ``g = f1 + r2 / sigma^2``, the cross terms need ``d r2 / d theta``.

Two ways, one result (:func:`varpar_derivatives`):

* Layouts with the exact gradient (:attr:`PLSProblem.has_gradient`): one factorisation
  gives ``d f1 / d theta`` and ``d r2 / d theta`` separately
  (:func:`mlm.engine.gradient.gradient_from_factor` with ``pieces=True``), so the theta
  block is a central difference of the exact gradient of ``g``, and the Jacobian of
  ``(R_X'R_X)^{-1}`` a central difference of the same factorisations: ``2 k + 1``
  factorisations for ``k`` theta parameters (7 for a random slope), against
  ``4 k (k + 1)`` (48) for the genD scheme below (issue 16).
* Otherwise numDeriv's ``genD`` as lmerTest calls it: central second differences of the
  deviance at four step levels with Richardson extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlm.engine.pls import _rx_inverse

__all__ = ["VarparDerivatives", "varpar_derivatives"]

#: Relative step of the central differences of the exact gradient. Error analysis: for a
#: step h in theta_i, (grad(theta + h e_i) - grad(theta - h e_i)) / 2h errs by
#: h^2 |d3 g| / 6 (truncation) plus eps_g / h (rounding), eps_g the absolute rounding
#: error of the gradient. The gradient's terms (2 tr(...) and c s'Du, each growing with
#: theta) come after a Cholesky factorisation and r2 = y'y - |c_u|^2 - |c_beta|^2 (on the
#: shifted outcome), so eps_g ~ 1e-13 |H| |theta|; the deviance varies on the scale of
#: theta itself (log|A| grows like 2 G log theta), so |d3 g| ~ |H| / theta^2. Relative
#: to |H| the error is then h^2 / (6 theta^2) + 1e-13 theta / h, smallest at
#: h = (3e-13)^(1/3) theta ~ 7e-5 theta with both terms ~1e-9. Measured against genD
#: with Richardson extrapolation on nine layouts, REML and ML (tests/test_engine_varpar.py):
#: from 1e-4 to 3e-5 the Hessian agrees to 1e-7 of its largest entry and the Jacobian
#: of (R_X'R_X)^{-1} to 1e-8, genD's own floor (genD moves by 1e-7 when its step does);
#: at 1e-3 truncation shows (2e-6), at 1e-6 rounding in the Jacobian (1e-6). The same
#: step serves that Jacobian: truncation ~1e-9, rounding ~1e-16 cond(R_X'R_X) / 5e-5.
REL_STEP = 5e-5
#: The scale below which theta_i's own size does not set the step. An entry at or near 0
#: (a variance on the boundary, a small correlation's off-diagonal entry) does not make
#: the deviance vary on the scale |theta_i|: a lone diagonal entry at 0 enters as
#: theta_i^2 (the deviance is even there, so grad_i(h) / h = H_ii + O(h^2 / s^2), with s
#: about 1 / sqrt(observations per level)), an off-diagonal entry through products with
#: the diagonal. Steps of 5e-5 * 1e-2 = 5e-7 keep that O(h^2 / s^2) term near 1e-8 for
#: s ~ 0.01, and, every other term of the gradient scaling with h there too, lose
#: nothing to rounding (at 1e-4 absolute, genD's step at 0, the lone-diagonal term of
#: ScotsSec's boundary fit was 7e-5 off). The step crosses 0, as genD's does.
THETA_FLOOR = 1e-2


@dataclass(frozen=True)
class VarparDerivatives:
    """Derivatives of the deviance and of ``(R_X'R_X)^{-1}`` at ``(theta, sigma)``.

    Attributes
    ----------
    hessian : ndarray, shape (k + 1, k + 1)
        Hessian of :meth:`PLSProblem.deviance_varpar` in ``(theta..., sigma)``.
    unsc : ndarray, shape (p, p)
        ``(R_X'R_X)^{-1}`` (``vcov(beta) / sigma^2``).
    d_unsc : ndarray, shape (k, p, p)
        Its derivatives in theta.
    grad_r2 : ndarray, shape (k,)
        ``d r2 / d theta``.
    r2 : float
        The penalised residual sum of squares at theta.
    method : str
        ``"gradient"`` or ``"genD"``.
    """

    hessian: np.ndarray
    unsc: np.ndarray
    d_unsc: np.ndarray
    grad_r2: np.ndarray
    r2: float
    method: str


def _pieces(problem, theta):
    """(R_X'R_X)^{-1}, f1 and r2 at ``theta``: what genD differences."""
    parts = problem._factor(theta)
    LX, r2, logdet = parts[5], parts[7], parts[8]
    f1 = logdet + (2.0 * np.sum(np.log(np.diag(LX))) if problem.reml else 0.0)
    return _rx_inverse(LX), float(f1), float(r2)


def _grad_pieces(problem, theta):
    """(R_X'R_X)^{-1}, r2, d f1 / d theta and d r2 / d theta from one factorisation."""
    from mlm.engine.gradient import gradient_from_factor

    fast = getattr(problem._closed_form, "grad_pieces", None)  # closed forms where they exist
    if fast is not None:
        return fast(problem, theta)
    parts = problem._factor(theta)
    g_f1, g_r2 = gradient_from_factor(problem, parts, pieces=True)
    return _rx_inverse(parts[5]), float(parts[7]), g_f1, g_r2


def gradient_steps(theta):
    """The step of each theta entry for the differences of the exact gradient."""
    return REL_STEP * np.maximum(np.abs(np.asarray(theta, dtype=float)), THETA_FLOOR)


def _by_gradient(problem, theta, s2, steps=None):
    k = theta.size
    unsc0, r0, _, g_r2 = _grad_pieces(problem, theta)
    h = gradient_steps(theta) if steps is None else np.asarray(steps, dtype=float)
    H = np.empty((k, k))
    d_unsc = np.empty((k,) + unsc0.shape)
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        u_up, _, f_up, r_up = _grad_pieces(problem, theta + e)
        u_dn, _, f_dn, r_dn = _grad_pieces(problem, theta - e)
        H[:, i] = (f_up - f_dn + (r_up - r_dn) / s2) / (2.0 * h[i])
        d_unsc[i] = (u_up - u_dn) / (2.0 * h[i])
    return 0.5 * (H + H.T), g_r2, d_unsc, unsc0, r0


def varpar_derivatives(problem, theta, sigma, method=None) -> VarparDerivatives:
    """The Hessian of the deviance in ``(theta, sigma)`` and the Jacobian of ``(R_X'R_X)^{-1}``.

    ``method`` ``"gradient"`` (central differences of the exact gradient; the default where
    :attr:`PLSProblem.has_gradient`) or ``"genD"`` (numDeriv's scheme, as lmerTest; the
    default elsewhere). May raise ``numpy.linalg.LinAlgError`` where the deviance cannot be
    evaluated near ``theta``.

    Examples
    --------
    >>> import mlm
    >>> fit = mlm.lmer("Reaction ~ Days + (Days | Subject)", mlm.load_dataset("sleepstudy"))
    >>> der = varpar_derivatives(fit.problem, fit.theta, fit.sigma)
    >>> der.method, der.hessian.shape, der.d_unsc.shape
    ('gradient', (4, 4), (3, 2, 2))
    """
    theta = np.asarray(theta, dtype=float)
    sigma = float(sigma)
    s2 = sigma * sigma
    k = theta.size
    m = problem.n - problem.p if problem.reml else problem.n
    if method is None:
        method = "gradient" if problem.has_gradient else "genD"
    if method == "gradient":
        H_t, g_r2, d_unsc, unsc0, r0 = _by_gradient(problem, theta, s2)
    else:
        center = _pieces(problem, theta)
        unsc0, r0 = center[0], center[2]
        H_t, g_r2, d_unsc = gen_d(lambda t: _pieces(problem, t), theta, s2, center)
    H = np.empty((k + 1, k + 1))
    H[:k, :k] = H_t
    H[:k, k] = H[k, :k] = -2.0 * g_r2 / sigma ** 3
    H[k, k] = -2.0 * m / s2 + 6.0 * r0 / s2 ** 2
    return VarparDerivatives(hessian=H, unsc=unsc0, d_unsc=d_unsc, grad_r2=np.asarray(g_r2),
                             r2=float(r0), method=method)


def _richardson(estimates, v=2):
    """Richardson extrapolation of central differences at steps h, h/v, h/v^2, ..."""
    vals = list(estimates)
    for lvl in range(1, len(vals)):
        fac = float(v) ** (2 * lvl)
        vals = [(fac * vals[a + 1] - vals[a]) / (fac - 1) for a in range(len(vals) - 1)]
    return vals[0]


def gen_d(pieces, theta, s2, center, d=0.1, r=4, v=2, eps=1e-4, zero_tol=1.781029e-05):
    """numDeriv's ``genD`` for g = f1 + r2 / s2 (Hessian), r2 (gradient) and unsc (Jacobian).

    ``pieces(theta)`` returns ``(unsc, f1, r2)``. Steps ``h = d |theta_i|`` (``eps`` where
    ``|theta_i| < zero_tol``), halved ``r - 1`` times; the off-diagonal second differences
    use the extrapolated diagonal, as genD. Large steps (0.1 to 0.0125 relative) because r2
    is a difference of sums of squares, good to about 1e-10 relative: a step of 1e-5
    already loses the second derivative of the deviance itself. ``4 k (k + 1)``
    factorisations.
    """
    k = theta.size
    unsc0, f0, r0 = center
    g0 = f0 + r0 / s2
    h0 = d * np.abs(theta) + eps * (np.abs(theta) < zero_tol)
    diag, grad_r2, grad_u = [], [], []
    cache = []
    for lvl in range(r):
        h = h0 / v ** lvl
        dg, gr, gu = np.empty(k), np.empty(k), np.empty((k,) + unsc0.shape)
        for i in range(k):
            e = np.zeros(k)
            e[i] = h[i]
            up, dn = pieces(theta + e), pieces(theta - e)
            dg[i] = (up[1] + up[2] / s2 - 2.0 * g0 + dn[1] + dn[2] / s2) / (h[i] * h[i])
            gr[i] = (up[2] - dn[2]) / (2.0 * h[i])
            gu[i] = (up[0] - dn[0]) / (2.0 * h[i])
        diag.append(dg)
        grad_r2.append(gr)
        grad_u.append(gu)
        cache.append(h)
    Hd = _richardson(diag, v)
    H = np.diag(Hd)
    for i in range(k):
        for j in range(i + 1, k):
            est = []
            for h in cache:
                e = np.zeros(k)
                e[i], e[j] = h[i], h[j]
                up, dn = pieces(theta + e), pieces(theta - e)
                second = up[1] + up[2] / s2 - 2.0 * g0 + dn[1] + dn[2] / s2
                est.append((second - Hd[i] * h[i] ** 2 - Hd[j] * h[j] ** 2) / (2.0 * h[i] * h[j]))
            H[i, j] = H[j, i] = _richardson(est, v)
    return H, _richardson(grad_r2, v), _richardson(grad_u, v)
