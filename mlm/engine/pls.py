"""lme4's profiled deviance, computed by penalised least squares on per-group sums.

This module holds the package's own estimator of linear mixed models. It evaluates
exactly the objective lme4 optimises (Bates, Maechler, Bolker & Walker 2015, "Fitting
linear mixed-effects models using lme4", JSS 67(1), sections 3.1-3.6): the fixed
effects and the residual variance are profiled out, leaving a function of the relative
covariance factors ``theta`` only.

Notation (lme4's). Each random-effects term ``t`` has a ``k_t x k_t`` lower-triangular
template ``T_t`` filled column by column from its slice of ``theta``; the random effects
are ``b = Lambda u`` with ``Lambda`` block-diagonal (``T_t`` repeated for every level),
``u ~ N(0, sigma^2 I)``, so the covariance of one level's effects is
``sigma^2 T_t T_t'``. For a given ``theta`` the sparse Cholesky factor of
``Lambda' Z' Z Lambda + I`` gives the penalised residual sum of squares ``r2``, the
fixed effects and the log-determinants from which the deviance follows:

* ML:   ``log|L|^2 + n (1 + log(2 pi r2 / n))``
* REML: ``log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r2 / (n - p)))``

Why it is fast. The grouping factor with the most random effects ("primary") has a
block-diagonal ``Z'Z`` (each row belongs to one level), so its part of the Cholesky
factor is a batch of ``k x k`` factorisations computed on arrays of per-level sums that
are formed once; an evaluation never touches the rows. The remaining factors (a higher
nesting level, or the smaller of two crossed factors) are eliminated densely through
the Schur complement. This is lme4's block structure with a fill-reducing order chosen
for nested and crossed designs (field notes, "How fast a fit can be in numpy").

The statsmodels engine (:mod:`mlm.mixedlm`) reports its optimum as ``theta`` too, so
every number the results show is computed here from one set of formulas, whichever
engine found the optimum.
"""

from __future__ import annotations

import contextlib
import copy
import functools
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from mlm.engine import kernels as kern
from mlm.engine.crossed import cholesky_lower
from mlm.engine.optimize_free import check_differences, optimize_differences

__all__ = ["PLSProblem", "PLSSolution", "theta_layout", "theta_scale"]

_LOG2PI = np.log(2.0 * np.pi)

_BLAS = []
_DEPTH = [0]  # open single_threaded_blas blocks: inner ones cost nothing


@contextlib.contextmanager
def single_threaded_blas():
    """Run BLAS and LAPACK on one thread inside the block.

    The matrices here are small (a few hundred rows at most, usually 1 x 1 or 2 x 2
    batches): OpenBLAS's threads cost more than they save, 10-15 times over on a
    two-core machine (0.11 ms against 1.8 ms for one 167 x 167 Cholesky factor, measured
    on ScotsSec), and far more when other processes compete for the cores.
    """
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS.append(ThreadpoolController())
        except Exception:  # noqa: BLE001 - without it we only lose speed
            _BLAS.append(None)
    if _BLAS[0] is None or _DEPTH[0]:  # no threadpoolctl, or limited already (a loop of refits)
        yield
        return
    _DEPTH[0] += 1
    try:
        with _BLAS[0].limit(limits=1, user_api="blas"):
            yield
    finally:
        _DEPTH[0] -= 1


def _one_blas_thread(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with single_threaded_blas():
            return method(*args, **kwargs)
    return wrapper


def theta_layout(ks):
    """Return, for templates of sizes ``ks``, the (row, col) indices of each theta entry.

    lme4 fills the lower triangle column by column: for ``k = 2`` the order is
    ``T[0,0], T[1,0], T[1,1]``.
    """
    out = []
    for k in ks:
        out.append([(i, j) for j in range(k) for i in range(j, k)])
    return out


def theta_start(idx):
    """lme4's start: identity templates (diagonal 1, off-diagonal 0)."""
    return np.concatenate([[1.0 if i == j else 0.0 for (i, j) in ix] for ix in idx])


def theta_lower(idx):
    """Lower bounds: 0 on the diagonal of each template, none elsewhere (lme4's ``lower``)."""
    return np.concatenate([[0.0 if i == j else -np.inf for (i, j) in ix] for ix in idx])


def templates(theta, slices, ks, idx):
    """The ``T_t`` factors for ``theta``, one per term."""
    theta = np.asarray(theta, dtype=float)
    return [_template(theta[s], k, ix) for s, k, ix in zip(slices, ks, idx)]


def theta_scale(terms, idx):
    """The natural unit of every theta entry: 1 / (spread of its row's Z column).

    Row ``i`` of a template maps ``u`` to the coefficient of the term's column ``i``;
    multiplying that column by ``c`` divides the row by ``c``. Optimisers work in
    ``theta / scale``, where the column's standard deviation (its root mean square for a
    constant column such as the intercept) is divided out, so that rescaling a predictor
    rescales the answer exactly instead of sending the optimiser down another path
    (issue 11: ``Days * 1000`` stopped 14 log-likelihood units short). ``idx`` is
    :func:`theta_layout`'s output for the terms.
    """
    out = []
    for (Z, _, _, _), rows in zip(terms, idx):
        Z = np.asarray(Z, dtype=float)
        # column by column: one temporary column at a time, not two of the whole Z
        rms = np.array([np.sqrt(np.mean(z * z)) for z in Z.T])
        sd = np.array([z.std() for z in Z.T])
        spread = np.where(sd > 1e-8 * rms, sd, rms)
        spread = np.where(spread > 0, spread, 1.0)
        out.extend(1.0 / spread[i] for (i, _) in rows)
    return np.asarray(out, dtype=float)


_dtrtrs = sla.get_lapack_funcs("trtrs", (np.empty(1),))
_dpotrf = sla.get_lapack_funcs("potrf", (np.empty(1),))


def _tri(L, b, lower=True, trans=False):
    """Solve L x = b (or L' x = b) for triangular L, calling LAPACK directly.

    scipy.linalg.solve_triangular's argument handling costs more than the solve itself
    for the small systems met here, and it runs hundreds of times per fit.
    """
    x, info = _dtrtrs(L, b, lower=int(lower), trans=int(trans))
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return x


def _rx_inverse(LX):
    """``(R_X'R_X)^{-1} = LX^{-T} LX^{-1}`` from the lower factor ``LX`` of the fixed-effects
    block: ``vcov(beta) / sigma^2``, and the ``Q`` of the REML gradient."""
    inv = _tri(np.ascontiguousarray(LX), np.eye(LX.shape[0]), lower=True)
    return inv.T @ inv


def _chol(A):
    """Lower Cholesky factor of a small symmetric matrix (LAPACK directly: np.linalg's
    checks cost more than the factorisation at the sizes of R_X)."""
    L, info = _dpotrf(A, lower=1, clean=1)
    if info != 0:
        raise np.linalg.LinAlgError("matrix is not positive definite")
    return L


def _template(theta_slice, k, idx):
    T = np.zeros((k, k))
    for v, (i, j) in zip(theta_slice, idx):
        T[i, j] = v
    return T


def _all_ones(z: np.ndarray) -> bool:
    """True for a column of ones (the intercept's), found without a temporary array."""
    return bool(z.size) and z[0] == 1.0 and z.min() == 1.0 and z.max() == 1.0


def _product(Z1, a, v, ones, overwrite=False):
    """``Z1[:, a] * v`` as the weights of a per-level sum, without a new array when it can.

    Times an intercept's ones it is ``v`` itself (``1.0 * v == v`` exactly); with
    ``overwrite`` the product is written over ``v``, which the caller no longer needs.
    """
    if ones[a]:
        return v
    if overwrite:
        return np.multiply(Z1[:, a], v, out=v)
    return Z1[:, a] * v


# --- batched small Cholesky factors and triangular solves -------------------------------
# Closed forms for k = 1 and 2 avoid the per-call overhead of batched LAPACK, which
# dominates when there are tens of thousands of 2 x 2 blocks (field notes: 5.9 ms ->
# 0.54 ms per evaluation at 20,000 groups).

def _chol_batched(A):
    k = A.shape[-1]
    if k == 1:
        return np.sqrt(A)
    if k == 2:
        L = np.zeros_like(A)
        l11 = np.sqrt(A[:, 0, 0])
        l21 = A[:, 1, 0] / l11
        L[:, 0, 0] = l11
        L[:, 1, 0] = l21
        L[:, 1, 1] = np.sqrt(A[:, 1, 1] - l21 * l21)
        return L
    return np.linalg.cholesky(A)


def _fwd_batched(L, B):
    """Solve L X = B for every batch member (L lower triangular, B of shape (G, k, m))."""
    k = L.shape[-1]
    if k == 1:
        return B / L
    if k == 2:
        X = np.empty_like(B)
        X[:, 0, :] = B[:, 0, :] / L[:, 0, 0, None]
        X[:, 1, :] = (B[:, 1, :] - L[:, 1, 0, None] * X[:, 0, :]) / L[:, 1, 1, None]
        return X
    return np.linalg.solve(L, B)


def _bwd_batched(L, B):
    """Solve L' X = B for every batch member."""
    k = L.shape[-1]
    if k == 1:
        return B / L
    if k == 2:
        X = np.empty_like(B)
        X[:, 1, :] = B[:, 1, :] / L[:, 1, 1, None]
        X[:, 0, :] = (B[:, 0, :] - L[:, 1, 0, None] * X[:, 1, :]) / L[:, 0, 0, None]
        return X
    return np.linalg.solve(np.swapaxes(L, -1, -2), B)


@dataclass(frozen=True)
class PLSSolution:
    """Everything the results need at one value of theta.

    Attributes
    ----------
    theta : ndarray
        Relative covariance factors (lme4's ``getME(m, "theta")``).
    beta : ndarray
        Fixed effects.
    sigma2 : float
        Residual variance (REML or ML estimate, as fitted).
    deviance : float
        The REML criterion (REML fits) or the deviance (ML fits), i.e. -2 log-likelihood.
    vcov_beta : ndarray
        Covariance of the fixed effects, ``sigma2 * (R_X' R_X)^{-1}`` (lme4's ``vcov``).
    b : list of ndarray
        Conditional modes of the random effects, one ``(levels, k)`` array per term.
    cond_var : list of ndarray or None
        Conditional covariances of the random effects, ``(levels, k, k)`` per term
        (lme4's ``postVar``); computed only when asked for.
    templates : list of ndarray
        The ``T_t`` factors; ``sigma2 * T_t T_t'`` is the covariance of term ``t``.
    """

    theta: np.ndarray
    beta: np.ndarray
    sigma2: float
    deviance: float
    vcov_beta: np.ndarray
    b: list
    cond_var: list | None
    templates: list

    def covariances(self):
        """Covariance matrix of each term's random effects (absolute scale)."""
        return [self.sigma2 * T @ T.T for T in self.templates]


class _Remainder:
    """The random effects outside the primary factor, and their coupling to it.

    ``W = L1^{-1} Lambda1' Z1'Z2 Lambda2`` couples the two parts of the Cholesky factor.
    It is held in one of three forms, chosen once from the design, so that an
    evaluation avoids scipy.sparse's per-call overhead where it can:

    * ``nested``: every primary level lies in one level of each other factor (a
      three-level model: schools in areas). Row block ``l`` of W then has nonzeros only
      in its parents' columns: W is stored as ``(G1, k1, K2)`` with ``K2`` the total
      number of columns of the other terms, and products scatter by parent. With a
      single such factor (``block_diag``) S is block-diagonal and W is held implicitly,
      as below, by :class:`mlm.engine.blocks.BlockCoupling`.
    * ``dense`` and ``sparse``: crossed designs (ScotsSec, InstEval). W is never formed:
      it is ``blockdiag(C_l) N Lambda2`` with ``N = Z1'Z2`` fixed, held by
      :class:`mlm.engine.crossed.CrossedCoupling` (dense arrays for small designs, a fixed
      sparsity pattern for large ones), and an evaluation's W is the :class:`CrossedW`
      of per-level ``C_l = L1_l^{-1} T1'``.
    """

    #: Largest G1 k1 q2^2 (the multiply-adds of a dense N'DN) held densely: above it the
    #: fixed pattern costs less (issue 16, measured on random crossed designs: at 148 x 19
    #: dense 0.27 ms against 0.32 ms per evaluation with gradient, at 500 x 50 0.56 against
    #: 0.41, at 2,000 x 200 12.5 against 1.5)
    DENSE_MAX = 500_000
    BLOCK_DIAG = True    # batch-factor a single enclosing factor (tests switch it off)

    def __init__(self, terms, Z1, codes1, G1, Z1s, X, y):
        self.ks = [Z.shape[1] for Z, _, _ in terms]
        self.Gs = [G for _, _, G in terms]
        sizes = [k * G for k, G in zip(self.ks, self.Gs)]
        self.offsets = np.cumsum([0] + sizes)
        self.q2 = int(self.offsets[-1])
        self.G1, self.k1 = G1, Z1.shape[1]
        self._one_column = all(k == 1 for k in self.ks)
        self.block_diag = False
        Z2s = sp.hstack([PLSProblem._sparse_z(Z, codes, G) for Z, codes, G in terms]).tocsr()
        self._Z2s = Z2s
        self.Z2tX = np.asarray(Z2s.T @ X)
        self.Z2ty = np.asarray(Z2s.T @ y)
        parents = []
        for _, codes, G in terms:
            # distinct (primary level, level) pairs, lexicographic, through integer keys
            # (np.unique(axis=0) sorts rows as structured records: 16 ms on chem97)
            keys = np.unique(codes1.astype(np.int64) * G + codes)
            pairs = np.stack([keys // G, keys % G], axis=1)
            if len(pairs) != G1:
                parents = None
                break
            parent = np.empty(G1, dtype=np.intp)
            parent[pairs[:, 0]] = pairs[:, 1]
            parents.append(parent)
        if parents is not None:
            self.mode = "nested"
            self.Z2tZ2 = (Z2s.T @ Z2s).toarray()
            cols, zc = [], []
            for t, (Z, _, _) in enumerate(terms):
                k = self.ks[t]
                for a in range(k):
                    cols.append(self.offsets[t] + parents[t] * k + a)
                    zc.append(np.stack([np.bincount(codes1, weights=Z1[:, i] * Z[:, a], minlength=G1)
                                        for i in range(self.k1)], axis=1))
            self.colidx = np.stack(cols, axis=1)                 # (G1, K2)
            self.Zc = np.stack(zc, axis=2)                       # (G1, k1, K2)
            self.K2 = self.colidx.shape[1]
            seg = np.cumsum([0] + self.ks)
            self.kseg = [slice(seg[t], seg[t + 1]) for t in range(len(terms))]
            pos = self.colidx[:, :, None] * self.q2 + self.colidx[:, None, :]
            self._pair_index = pos.ravel()
            # One other factor (a three-level model): its part of the system is block-
            # diagonal by its own levels, so it is factored as a batch of small blocks
            # (a dense factor of 2,000 schools took 4 times lme4's time).
            self.block_diag = self.BLOCK_DIAG and len(terms) == 1
            if self.block_diag:
                from mlm.engine.blocks import BlockCoupling

                k2, G2 = self.ks[0], self.Gs[0]
                idx = np.arange(G2)[:, None] * k2 + np.arange(k2)[None, :]
                self.coupling = BlockCoupling(self.Zc, parents[0],
                                              self.Z2tZ2[idx[:, :, None], idx[:, None, :]])
        else:
            from mlm.engine.crossed import CrossedCoupling

            self.mode = "dense" if G1 * self.k1 * self.q2 ** 2 <= self.DENSE_MAX else "sparse"
            self.coupling = CrossedCoupling(Z1s.T @ Z2s, Z2s.T @ Z2s, G1, self.k1,
                                            dense=self.mode == "dense")
        self._diag = np.arange(self.q2)
        # each term's per-level blocks of Z2'Z2 (its diagonal blocks), for start values
        self._term_gram = [np.stack([np.stack([np.bincount(codes, weights=Z[:, a] * Z[:, b], minlength=G)
                                               for b in range(Z.shape[1])], axis=1)
                                     for a in range(Z.shape[1])], axis=1)
                           for Z, codes, G in terms]
        self._block_index = [self.offsets[t] + np.arange(G)[:, None] * k + np.arange(k)[None, :]
                             for t, (k, G) in enumerate(zip(self.ks, self.Gs))]

    def term_gram(self, t):
        """Term ``t``'s per-level blocks of ``Z2'Z2``, (G_t, k_t, k_t)."""
        return self._term_gram[t]

    def block_index(self, t):
        """(G_t, k_t) positions of term ``t``'s columns, level by level."""
        return self._block_index[t]

    @property
    def gradient_ready(self):
        """Whether the exact gradient covers this layout (:mod:`mlm.engine.gradient_rem`
        for nested remainders, :mod:`mlm.engine.gradient_crossed` for crossed ones): all do."""
        return True

    def ragged_coupling(self):
        """Z1'Z2 on its pattern for the gradient (built once, on first use)."""
        if getattr(self, "_ragged", None) is None:
            from mlm.engine.gradient_rem import RaggedCoupling

            self._ragged = RaggedCoupling(self)
        return self._ragged

    # Lambda2 and its transpose applied to (q2, m) arrays, term by term.
    def _apply(self, Ts, M, transpose):
        M = np.asarray(M, dtype=float)
        scale = self.diagonal(Ts)
        if scale is not None:
            return scale[:, None] * M
        out = np.empty_like(M)
        for t, T in enumerate(Ts):
            k, G = self.ks[t], self.Gs[t]
            seg = slice(self.offsets[t], self.offsets[t + 1])
            block = M[seg].reshape(G, k, -1)
            out[seg] = (np.swapaxes(T, 0, 1) @ block if transpose else T @ block).reshape(G * k, -1)
        return out

    def diagonal(self, Ts):
        """Lambda2's diagonal when every term has one column (it is then diagonal), else None."""
        if not self._one_column:
            return None
        return np.repeat([float(T[0, 0]) for T in Ts], self.Gs)

    def lam(self, Ts, M):
        """Lambda2 @ M."""
        return self._apply(Ts, M, transpose=False)

    def lam_t(self, Ts, M):
        """Lambda2' @ M."""
        return self._apply(Ts, M, transpose=True)

    def W(self, C, Ts):
        """W for C = blockdiag(L1^{-1} T1') and the other terms' templates Ts (nested)."""
        Wc = C @ self.Zc
        for t, T in enumerate(Ts):
            Wc[:, :, self.kseg[t]] = Wc[:, :, self.kseg[t]] @ T
        return Wc

    def schur_nested(self, W, T2, RZX1f, cu1):
        """S = Lambda2'Z2'Z2 Lambda2 + I - W'W and the right-hand sides of the remainder's
        rows, for a nested remainder (dense W on its parents' columns)."""
        lam2 = self.diagonal(T2)
        if lam2 is not None:  # one-column terms: Lambda2 is a diagonal scaling
            S = self.Z2tZ2 * np.outer(lam2, lam2)
            rX2 = lam2[:, None] * self.Z2tX
            rc2 = lam2 * self.Z2ty
        else:
            S = self.lam_t(T2, self.lam_t(T2, self.Z2tZ2).T)  # Lam2' Z2tZ2 Lam2 (symmetric)
            rX2 = self.lam_t(T2, self.Z2tX)
            rc2 = self.lam_t(T2, self.Z2ty[:, None])[:, 0]
        S -= self.WtW(W)
        S[self._diag, self._diag] += 1.0
        rX2 = rX2 - self.Wt_dot(W, RZX1f)
        rc2 = rc2 - self.Wt_dot(W, cu1.reshape(-1, 1))[:, 0]
        return S, rX2, rc2

    @property
    def coupled(self):
        """Whether W is held implicitly (:class:`CrossedW`) through :attr:`coupling`: crossed
        remainders and one enclosing factor (:mod:`mlm.engine.crossed`, :mod:`mlm.engine.blocks`)."""
        return self.mode != "nested" or self.block_diag

    def schur_coupled(self, W):
        """S = Lambda2' (Z2'Z2 - N' D N) Lambda2 + I (``D_l = C_l'C_l``) in the coupling's form,
        and the remainder's right-hand sides ``Lambda2' (Z2'X - N' C' R_ZX1)`` and
        ``Lambda2' (Z2'y - N' C' c_u1)``. Sets ``W.X = Z2'Z2 - N'DN`` for the gradient."""
        cc, C, T2 = self.coupling, W.C, W.T2
        if self.k1 == 1:
            c = C[0, 0]
            Dc = (c * c)[None, None, :]
            CR = (c * W.RZX1c[0]).T
            Ccu = c * W.cu1c[0]
        else:
            Dc = np.einsum("cag,cbg->abg", C, C)
            CR = np.einsum("cag,cpg->gap", C, W.RZX1c).reshape(-1, W.RZX1c.shape[1])
            Ccu = np.einsum("cag,cg->ga", C, W.cu1c).ravel()
        W.X = cc.base - cc.ntdn(Dc)
        rX = self.Z2tX - cc.nt_dot(CR)
        rc = self.Z2ty - cc.nt_dot(Ccu)
        lam2 = self.diagonal(T2)
        S = cc.schur(self, W.X, lam2, T2)
        if lam2 is not None:
            return S, lam2[:, None] * rX, lam2 * rc
        return S, self.lam_t(T2, rX), self.lam_t(T2, rc[:, None])[:, 0]

    def WtW(self, W):
        """W'W as a dense (q2, q2) array (nested)."""
        outer = np.einsum("lia,lib->lab", W, W)
        return np.bincount(self._pair_index, weights=outer.ravel(),
                           minlength=self.q2 * self.q2).reshape(self.q2, self.q2)

    def Wt_dot(self, W, M):
        """W' @ M for M of shape (G1 * k1, m)."""
        if isinstance(W, CrossedW):
            G1, k1 = self.G1, self.k1
            CtM = np.einsum("cag,gcm->gam", W.C, M.reshape(G1, k1, -1)).reshape(G1 * k1, -1)
            return self.lam_t(W.T2, self.coupling.nt_dot(CtM))
        m = M.shape[1]
        per = np.einsum("lia,lim->lam", W, M.reshape(self.G1, self.k1, m))
        idx = self.colidx.ravel()
        per = per.reshape(-1, m)
        return np.stack([np.bincount(idx, weights=per[:, j], minlength=self.q2)
                         for j in range(m)], axis=1)

    def W_dot(self, W, v):
        """W @ v for v of shape (q2,), flattened to (G1 * k1,)."""
        if isinstance(W, CrossedW):
            Nv = self.coupling.n_dot(self.lam(W.T2, v[:, None])[:, 0]).reshape(self.G1, self.k1)
            return np.einsum("acg,gc->ga", W.C, Nv).ravel()
        return np.einsum("lia,la->li", W, v[self.colidx]).ravel()


@dataclass
class CrossedW:
    """W of a crossed (or enclosing, :mod:`mlm.engine.blocks`) remainder at one theta:
    ``blockdiag(C_l) N Lambda2`` with ``C_l = L1_l^{-1} T1'`` (k1, k1, G1), and the primary
    block's arrays component-major (:mod:`mlm.engine.kernels`) for the gradient. ``X = Z2'Z2 - N' D N`` (set by
    :meth:`_Remainder.schur_coupled`) is reused by the gradient, where ``D_l = C_l'C_l``
    appears again as ``T1 A11_l^{-1} T1'``."""

    C: np.ndarray
    T2: list
    L1c: np.ndarray
    RZX1c: np.ndarray
    cu1c: np.ndarray
    X: np.ndarray | None = None


class PLSProblem:
    """The profiled deviance of one model's design, as a function of theta.

    Parameters
    ----------
    y : ndarray, shape (n,)
        Outcome.
    X : ndarray, shape (n, p)
        Fixed-effects design (full column rank).
    terms : sequence of (Z, codes, n_levels, group_name)
        One entry per random-effects term: its ``(n, k)`` columns, the 0-based level
        of every row in its grouping factor, the number of levels, and the factor's
        name (terms with the same name share a factor).
    reml : bool
        REML criterion (lme4's default) or ML deviance.
    primary : str, optional
        The grouping factor eliminated first. By default the one holding the most random
        effects. The deviance and its gradient do not depend on the choice.

    Notes
    -----
    The per-level sums are formed once here. ``deviance(theta)`` then costs
    O(levels x k^3 + q2^3), with ``q2`` the number of random effects outside the
    primary factor, independently of the number of rows.
    """

    def __init__(self, y, X, terms, reml=True, *, primary=None):
        X = np.asarray(X, dtype=float)
        self.n, self.p = X.shape
        self.reml = bool(reml)
        self.ks = [int(np.asarray(Z).shape[1]) for Z, _, _, _ in terms]
        self.n_levels = [int(G) for _, _, G, _ in terms]
        self.group_names = [g for _, _, _, g in terms]
        self._idx = theta_layout(self.ks)
        starts = np.cumsum([0] + [len(i) for i in self._idx])
        self._slices = [slice(starts[i], starts[i + 1]) for i in range(len(terms))]
        self.n_theta = int(starts[-1])
        self.theta_scale = self._theta_scale(terms)

        # The primary factor: the one holding the most random effects.
        size = {}
        for k, G, g in zip(self.ks, self.n_levels, self.group_names):
            size[g] = size.get(g, 0) + k * G
        if primary is None:
            primary = max(size, key=lambda g: (size[g], -self.group_names.index(g)))
        self.primary = [i for i, g in enumerate(self.group_names) if g == primary]
        self.rest = [i for i, g in enumerate(self.group_names) if g != primary]
        codes1 = np.asarray(terms[self.primary[0]][1], dtype=np.intp)
        G1 = self.n_levels[self.primary[0]]
        # One term: its own columns (a view of X's for (x | g) beside y ~ x), not a copy of
        # the rows that would be kept for the life of the fit (16 MB at a million rows, issue 16).
        Z1 = (np.asarray(terms[self.primary[0]][0], dtype=float) if len(self.primary) == 1 else
              np.column_stack([np.asarray(terms[i][0], dtype=float) for i in self.primary]))
        self.k1 = k1 = Z1.shape[1]
        self.G1 = G1

        self.XtX = X.T @ X
        # Per-level sums, component-major (mlm.engine.kernels): Mc[a, c] is the array over
        # levels of sum Z1[:, a] Z1[:, c]; ZXc (k1, p, G1); Zyc (k1, G1). Those without y
        # come first, before the shifted outcome exists, so that at most one temporary
        # array of the rows is alive beside it (issue 16: the peak of a million-row fit).
        ones = [_all_ones(Z1[:, a]) for a in range(k1)]
        Mc = np.empty((k1, k1, G1))
        for a in range(k1):
            for c in range(a, k1):
                s = np.bincount(codes1, weights=_product(Z1, a, Z1[:, c], ones), minlength=G1)
                Mc[a, c] = s
                Mc[c, a] = s
        self.Mc = Mc
        self.ZXc = np.stack([np.stack([np.bincount(codes1, weights=_product(Z1, a, X[:, j], ones),
                                                   minlength=G1)
                                       for j in range(self.p)]) for a in range(k1)])
        y = self._shift_response(y, X)
        self.Xty = X.T @ y
        self.yty = float(y @ y)
        self.Zyc = np.empty((k1, G1))
        for a in range(k1):
            # one factor (no dense setup, no _Remainder): nothing reads y after its last
            # product, which may overwrite it
            last = a == k1 - 1 and not self.rest
            self.Zyc[a] = np.bincount(codes1, weights=_product(Z1, a, y, ones, overwrite=last),
                                      minlength=G1)
        self._codes1, self._Z1 = codes1, Z1
        self._X = X  # kept for with_response()

        self.q = sum(k * G for k, G in zip(self.ks, self.n_levels))
        # (one factor: the batched per-level path is already cheaper)
        self.dense = self.q <= self.DENSE_Q and len(set(self.group_names)) > 1
        if self.dense:
            self._setup_dense(terms, X, y)
        self.q2 = sum(self.ks[i] * self.n_levels[i] for i in self.rest)
        self.rem = None
        if self.q2 and not self.dense:
            self.rem = _Remainder([(np.asarray(terms[i][0], dtype=float),
                                    np.asarray(terms[i][1], dtype=np.intp), self.n_levels[i])
                                   for i in self.rest], Z1, codes1, G1,
                                  self._sparse_z(Z1, codes1, G1), X, y)

    # Up to this many random effects in all, the whole system is factored densely: a few
    # LAPACK calls on small matrices cost less than the Python overhead of the blocked
    # path (sleepstudy, Penicillin, Pastes: about 1.5x faster fits).
    DENSE_Q = 100

    def _setup_dense(self, terms, X, y):
        self.offsets = np.cumsum([0] + [k * G for k, G in zip(self.ks, self.n_levels)])
        # Z'Z, Z'X and Z'y by bincount over each random-effect column's (position, value)
        # pairs: building sparse matrices and their products cost 0.4 ms of a 4 ms fit of
        # Penicillin in scipy.sparse's bookkeeping (issue 16)
        q = self.q
        cols = []
        for t, (Z, c, _, _) in enumerate(terms):
            Z, c = np.asarray(Z, dtype=float), np.asarray(c, dtype=np.intp)
            k = Z.shape[1]
            cols.extend((c * k + (self.offsets[t] + a), Z[:, a]) for a in range(k))
        self._zcols = cols
        ZtZ = np.zeros((q, q))
        for i, (ia, wa) in enumerate(cols):
            ZtZ.flat[::q + 1] += np.bincount(ia, weights=wa * wa, minlength=q)
            for ib, wb in cols[i + 1:]:
                B = np.bincount(ia * q + ib, weights=wa * wb, minlength=q * q).reshape(q, q)
                ZtZ += B
                ZtZ += B.T
        self.ZtZ = ZtZ
        self.ZtX = self._z_dot(X)
        self.Zty = self._z_dot(y)
        # positions in Lambda of every theta entry, for every level
        rows, cols, src = [], [], []
        for t, (k, G, idx) in enumerate(zip(self.ks, self.n_levels, self._idx)):
            base = self.offsets[t] + np.arange(G) * k
            for j, (a, c) in enumerate(idx):
                rows.append(base + a)
                cols.append(base + c)
                src.append(np.full(G, self._slices[t].start + j))
        self._lam_rows = np.concatenate(rows)
        self._lam_cols = np.concatenate(cols)
        self._lam_src = np.concatenate(src)
        self._diag_only = all(k == 1 for k in self.ks)

    def _z_dot(self, M):
        """``Z'M`` for a vector or matrix ``M`` of rows (dense designs), by bincount."""
        q = self.q
        if M.ndim == 1:
            return sum(np.bincount(ia, weights=wa * M, minlength=q) for ia, wa in self._zcols)
        return np.stack([self._z_dot(np.ascontiguousarray(m)) for m in M.T], axis=1)

    def _lambda_dense(self, theta):
        """Lambda as a vector (all terms one-column: it is diagonal) or a dense matrix."""
        if self._diag_only:
            return np.asarray(theta, dtype=float)[self._lam_src]
        lam = np.zeros((self.q, self.q))
        lam[self._lam_rows, self._lam_cols] = np.asarray(theta, dtype=float)[self._lam_src]
        return lam

    def _factor_dense(self, theta):
        lam = self._lambda_dense(theta)
        if lam.ndim == 1:
            A = self.ZtZ * np.outer(lam, lam)
            lzx = lam[:, None] * self.ZtX
            lzy = lam * self.Zty
        else:
            A = lam.T @ self.ZtZ @ lam
            lzx = lam.T @ self.ZtX
            lzy = lam.T @ self.Zty
        A.flat[::A.shape[0] + 1] += 1.0
        L = _chol(A)
        RZX = _tri(L, lzx)
        cu = _tri(L, lzy)
        logdet = 2.0 * np.sum(np.log(np.diagonal(L)))
        LX = _chol(self.XtX - RZX.T @ RZX)
        cbeta = _tri(LX, self.Xty - RZX.T @ cu)
        r2 = self.yty - float(cu @ cu) - float(cbeta @ cbeta)
        return lam, None, L, RZX, cu, LX, cbeta, r2, logdet, "dense"

    def _solve_dense(self, lam, L, RZX, cu, beta, sigma2, cond_var):
        u = sla.solve_triangular(L.T, cu - RZX @ beta, lower=False, check_finite=False)
        lam_m = np.diag(lam) if lam.ndim == 1 else lam
        bvec = lam_m @ u
        b, cv = [], ([] if cond_var else None)
        if cond_var:
            Linv = sla.solve_triangular(L, np.eye(self.q), lower=True, check_finite=False)
            full = sigma2 * (lam_m @ (Linv.T @ Linv) @ lam_m.T)
        for t, (k, G) in enumerate(zip(self.ks, self.n_levels)):
            seg = slice(self.offsets[t], self.offsets[t + 1])
            b.append(bvec[seg].reshape(G, k))
            if cond_var:
                idx = self.offsets[t] + np.arange(G)[:, None] * k + np.arange(k)[None, :]
                cv.append(full[idx[:, :, None], idx[:, None, :]])
        return b, cv

    def _shift_response(self, y, X):
        """The outcome less its least-squares fit on X; sets ``beta_shift`` to that fit.

        ``r2 = y'y - |cu|^2 - |cbeta|^2`` is a difference of large numbers when y is far
        from 0 (Pastes: strength near 60), which put noise of 1e-10 into the deviance and
        1e-7 into estimates from re-sorted rows. Moving y by ``X beta0`` changes no
        variance parameter, the deviance or the random effects, only shifts the fixed
        effects by ``beta0`` (added back in :meth:`solve`), and leaves y residual-sized.
        """
        y = np.asarray(y, dtype=float)
        try:  # (numpy's solve: scipy's cho_factor costs more than the solve at this size)
            self.beta_shift = np.linalg.solve(self.XtX, X.T @ y)
        except (np.linalg.LinAlgError, ValueError):  # rank is checked elsewhere; no shift
            self.beta_shift = np.zeros(X.shape[1])
        fitted = X @ self.beta_shift
        return np.subtract(y, fitted, out=fitted)  # one array of the rows, not two

    def with_response(self, y):
        """The same design with another outcome: only the sums involving y are recomputed.

        Refits in a parametric bootstrap or a simulation study cost O(n) here plus the
        optimisation, not a new design (issue 3).
        """
        new = copy.copy(self)
        new._checked = None
        y = new._shift_response(y, self._X)
        new.Xty = self._X.T @ y
        new.yty = float(y @ y)
        new.Zyc = np.stack([np.bincount(self._codes1, weights=self._Z1[:, a] * y, minlength=self.G1)
                            for a in range(self.k1)])
        if self.dense:
            new.Zty = self._z_dot(y)
        if self.rem is not None:
            new.rem = copy.copy(self.rem)
            new.rem.Z2ty = np.asarray(self.rem._Z2s.T @ y)
        return new

    @staticmethod
    def _sparse_z(Z, codes, G):
        """Z expanded to one block of columns per level: shape (n, G * k)."""
        n, k = Z.shape
        cols = (codes[:, None] * k + np.arange(k)[None, :]).ravel()
        rows = np.repeat(np.arange(n), k)
        return sp.csr_matrix((Z.ravel(), (rows, cols)), shape=(n, G * k))

    # --- theta ------------------------------------------------------------------------
    def _theta_scale(self, terms):
        """The optimiser's unit for every theta entry: see :func:`theta_scale`."""
        return theta_scale(terms, self._idx)

    def templates(self, theta):
        """The ``T_t`` factors for ``theta``, one per term."""
        return templates(theta, self._slices, self.ks, self._idx)

    def theta_start(self):
        """lme4's start: identity templates (diagonal 1, off-diagonal 0)."""
        return theta_start(self._idx)

    def theta_lower(self):
        """Lower bounds: 0 on the diagonal of each template, none elsewhere (lme4's ``lower``)."""
        return theta_lower(self._idx)

    def theta_from_covariances(self, covs, sigma2):
        """Theta from absolute covariance matrices of the terms and the residual variance."""
        out = []
        for cov, idx in zip(covs, self._idx):
            T = psd_cholesky(np.asarray(cov, dtype=float) / sigma2)
            out.extend(T[i, j] for (i, j) in idx)
        return np.asarray(out)

    # --- the factorisation --------------------------------------------------------------
    def _factor(self, theta):
        if self.dense:
            return self._factor_dense(theta)
        Ts = self.templates(theta)
        T1 = Ts[self.primary[0]] if len(self.primary) == 1 else sla.block_diag(
            *[Ts[i] for i in self.primary])
        # the primary factor's blocks, entry by entry over flat arrays (mlm.engine.kernels)
        A11 = kern.sandwich(T1, self.Mc)
        for a in range(self.k1):
            A11[a, a] += 1.0
        L1c = kern.chol(A11)
        RZX1c = kern.fwd(L1c, kern.left_t(T1, self.ZXc))
        cu1c = kern.fwd(L1c, kern.left_t(T1, self.Zyc))
        logdet = kern.logdet(L1c)
        XtX = self.XtX - np.einsum("apg,aqg->pq", RZX1c, RZX1c)
        Xty = self.Xty - np.einsum("apg,ag->p", RZX1c, cu1c)
        cu_sq = float(cu1c.ravel() @ cu1c.ravel())
        # level-major views for the remainder and solve(): (G1, k1, k1), (G1, k1, p), (G1, k1)
        L1, RZX1, cu1 = kern.to_batch(L1c), kern.to_batch(RZX1c), cu1c.T
        extra = None
        if self.q2:
            rem = self.rem
            T2 = [Ts[i] for i in self.rest]
            if rem.coupled:  # W = blockdiag(C_l) N Lambda2, never formed
                T1t = np.broadcast_to(T1.T[:, :, None], (self.k1, self.k1, self.G1))
                W = CrossedW(kern.fwd(L1c, np.ascontiguousarray(T1t)), T2, L1c, RZX1c, cu1c)
                S, rX2, rc2 = rem.schur_coupled(W)
                L2, ld2 = rem.coupling.cholesky(S)
                RZX2 = rem.coupling.solve(L2, rX2)
                cu2 = rem.coupling.solve(L2, rc2)
            else:
                T1t = np.broadcast_to(T1.T, (self.G1, self.k1, self.k1))
                RZX1f = RZX1.reshape(-1, self.p)
                C = _fwd_batched(L1, np.ascontiguousarray(T1t))  # L1^{-1} T1'
                W = rem.W(C, T2)
                S, rX2, rc2 = rem.schur_nested(W, T2, RZX1f, cu1)
                L2 = cholesky_lower(S)
                ld2 = 2.0 * np.sum(np.log(np.diagonal(L2)))
                RZX2 = _tri(L2, rX2)
                cu2 = _tri(L2, rc2)
            logdet += ld2
            XtX = XtX - RZX2.T @ RZX2
            Xty = Xty - RZX2.T @ cu2
            cu_sq += float(cu2 @ cu2)
            extra = (W, L2, RZX2, cu2, T2)
        LX = _chol(XtX)
        cbeta = _tri(LX, Xty)
        r2 = self.yty - cu_sq - float(cbeta @ cbeta)
        return Ts, T1, L1, RZX1, cu1, LX, cbeta, r2, logdet, extra

    def _deviance_from(self, r2, logdet, LX):
        n, p = self.n, self.p
        if r2 <= 0:
            return np.inf
        if self.reml:
            ldx = 2.0 * np.sum(np.log(np.diag(LX)))
            return logdet + ldx + (n - p) * (1.0 + _LOG2PI + np.log(r2 / (n - p)))
        return logdet + n * (1.0 + _LOG2PI + np.log(r2 / n))

    def deviance(self, theta):
        """The REML criterion (``reml=True``) or ML deviance at ``theta``: -2 log-likelihood."""
        try:
            _, _, _, _, _, LX, _, r2, logdet, _ = self._factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        return float(self._deviance_from(r2, logdet, LX))

    __call__ = deviance

    @functools.cached_property
    def _scalar(self):
        from mlm.engine.scalar import applies

        return applies(self)

    @functools.cached_property
    def _slope(self):
        from mlm.engine.slope import applies

        return applies(self)

    @functools.cached_property
    def _augmented(self):
        from mlm.engine.augmented import applies

        return applies(self)

    @property
    def _closed_form(self):
        """The module with closed forms for this layout, or None for the general kernels:
        :mod:`mlm.engine.scalar` (``(1 | g)``), :mod:`mlm.engine.slope` (``(x | g)``),
        :mod:`mlm.engine.augmented` (one-column terms, few levels beside the primary
        factor). Each offers ``deviance_and_gradient``; ``solve``, ``grad_pieces`` and
        ``penalised_rss`` where it has them. The three flags are cached per problem (tests
        switch them off to compare with the general kernels)."""
        if self._scalar:
            from mlm.engine import scalar

            return scalar
        if self._slope:
            from mlm.engine import slope

            return slope
        if self._augmented:
            from mlm.engine import augmented

            return augmented
        return None

    @property
    def has_gradient(self):
        """Whether :meth:`deviance_and_gradient` is exact for this layout (else None)."""
        return self.dense or self.rem is None or self.rem.gradient_ready

    def deviance_and_gradient(self, theta):
        """The deviance and its exact gradient in theta from one factorisation
        (:mod:`mlm.engine.gradient`). The gradient is None where the layout has none."""
        from mlm.engine.gradient import gradient_from_factor

        fast = self._closed_form
        if fast is not None:
            return fast.deviance_and_gradient(self, np.asarray(theta, dtype=float))
        try:
            parts = self._factor(np.asarray(theta, dtype=float))
        except (np.linalg.LinAlgError, ValueError):
            return np.inf, None
        dev = float(self._deviance_from(parts[7], parts[8], parts[5]))
        if not np.isfinite(dev):
            return dev, None
        return dev, gradient_from_factor(self, parts)

    def deviance_varpar(self, varpar):
        """-2 log-likelihood as a function of ``(theta..., sigma)``, fixed effects profiled out.

        This is lmerTest's parametrisation of the variance parameters (Kuznetsova,
        Brockhoff & Christensen 2017, JSS 82(13)): its Hessian at the optimum, halved and
        inverted, is their asymptotic covariance, the input to delta-method intervals
        (ICC) and Satterthwaite's degrees of freedom. At ``sigma`` equal to its estimate
        it equals :meth:`deviance`.
        """
        varpar = np.asarray(varpar, dtype=float)
        theta, sigma = varpar[:-1], float(varpar[-1])
        try:
            _, _, _, _, _, LX, _, r2, logdet, _ = self._factor(theta)
        except (np.linalg.LinAlgError, ValueError):
            return np.inf
        s2 = sigma * sigma
        m = self.n - self.p if self.reml else self.n
        dev = logdet + m * (_LOG2PI + np.log(s2)) + r2 / s2
        if self.reml:
            dev += 2.0 * np.sum(np.log(np.diag(LX)))
        return float(dev)

    @_one_blas_thread
    def varpar_covariance(self, theta, sigma, step=1e-4):
        """Asymptotic covariance of ``(theta..., sigma)``: inverse of half the Hessian of
        :meth:`deviance_varpar`. Where the layout has the exact gradient, the Hessian that
        Satterthwaite's df use (:func:`mlm.engine.varpar.varpar_derivatives`: differences
        of the gradient, sigma rows analytic); else central second differences of the
        deviance (relative step ``step``)."""
        if self.has_gradient:
            from mlm.engine.varpar import varpar_derivatives

            return np.linalg.inv(varpar_derivatives(self, theta, sigma).hessian / 2.0)
        x0 = np.append(np.asarray(theta, dtype=float), float(sigma))
        k = x0.size
        h = step * np.maximum(np.abs(x0), 1e-2)
        H = np.empty((k, k))
        f = self.deviance_varpar
        for i in range(k):
            for j in range(i, k):
                ei = np.zeros(k)
                ej = np.zeros(k)
                ei[i] = h[i]
                ej[j] = h[j]
                val = (f(x0 + ei + ej) - f(x0 + ei - ej) - f(x0 - ei + ej) + f(x0 - ei - ej)) / (4 * h[i] * h[j])
                H[i, j] = H[j, i] = val
        return np.linalg.inv(H / 2.0)

    @_one_blas_thread
    def solve(self, theta, cond_var=False):
        """All estimates at ``theta``: see :class:`PLSSolution`."""
        theta = np.asarray(theta, dtype=float)
        fast = getattr(self._closed_form, "solve", None)
        if fast is not None:
            return fast(self, theta, cond_var)
        Ts, T1, L1, RZX1, cu1, LX, cbeta, r2, logdet, extra = self._factor(theta)
        dev = float(self._deviance_from(r2, logdet, LX))
        beta = sla.solve_triangular(LX.T, cbeta, lower=False, check_finite=False)
        sigma2 = r2 / (self.n - self.p if self.reml else self.n)
        # conditional modes below use the shifted outcome's beta; report the original's
        beta_out = beta + self.beta_shift
        vcov = sigma2 * _rx_inverse(LX)
        if extra == "dense":
            b, cv = self._solve_dense(Ts, L1, RZX1, cu1, beta, sigma2, cond_var)
            return PLSSolution(theta=theta, beta=beta_out, sigma2=float(sigma2), deviance=dev,
                               vcov_beta=vcov, b=b, cond_var=cv, templates=self.templates(theta))
        # Spherical effects u solve L' u = cu - RZX beta (blockwise back substitution).
        v1 = cu1 - RZX1 @ beta
        if extra is not None:
            W, L2, RZX2, cu2, T2 = extra
            if L2.ndim == 3:  # block-diagonal remainder
                u2 = _bwd_batched(L2, (cu2 - RZX2 @ beta).reshape(L2.shape[0], -1, 1)).reshape(-1)
            else:
                u2 = sla.solve_triangular(L2.T, cu2 - RZX2 @ beta, lower=False, check_finite=False)
            v1 = v1 - self.rem.W_dot(W, u2).reshape(self.G1, self.k1)
        u1 = _bwd_batched(L1, v1[:, :, None])[:, :, 0]
        b1 = u1 @ T1.T  # b = Lambda u, level by level
        b = [None] * len(Ts)
        col = 0
        for i in self.primary:
            b[i] = b1[:, col:col + self.ks[i]]
            col += self.ks[i]
        if extra is not None:
            b2 = self.rem.lam(T2, u2[:, None])[:, 0]
            off = 0
            for i in self.rest:
                size = self.ks[i] * self.n_levels[i]
                b[i] = b2[off:off + size].reshape(self.n_levels[i], self.ks[i])
                off += size
        cv = self._cond_var(Ts, T1, L1, extra, sigma2) if cond_var else None
        return PLSSolution(theta=theta, beta=beta_out, sigma2=float(sigma2), deviance=dev,
                           vcov_beta=vcov, b=b, cond_var=cv, templates=Ts)

    def _cond_var(self, Ts, T1, L1, extra, sigma2):
        """Diagonal blocks of sigma2 * Lambda (Lambda'Z'Z Lambda + I)^{-1} Lambda' (lme4's postVar)."""
        eye = np.broadcast_to(np.eye(self.k1), (self.G1, self.k1, self.k1))
        L1inv = _fwd_batched(L1, np.ascontiguousarray(eye))  # L1^{-1}
        inner = np.broadcast_to(np.eye(self.k1), L1inv.shape).copy()
        out = [None] * len(Ts)
        if extra is not None:
            W, L2, _, _, T2 = extra
            if self.rem.coupled:  # S^{-1} through the coupling (issue 16)
                from mlm.engine.gradient_crossed import crossed_inner_blocks

                inner, Sinv = crossed_inner_blocks(self, W, L2, T2)
            else:  # S^{-1} on the coupling's pattern
                from mlm.engine.gradient_rem import inner_blocks

                inner, Sinv = inner_blocks(self, T1, L1, W, L2, T2)
            if L2.ndim == 3:  # block-diagonal remainder: T S_g^{-1} T' per level g
                T = T2[0]
                (i,) = self.rest
                out[i] = sigma2 * (T @ Sinv @ T.T)
            if L2.ndim == 2:
                full = self.rem.lam(T2, self.rem.lam(T2, Sinv).T)  # Lam2 Sinv Lam2'
                off = 0
                for i in self.rest:
                    k, G = self.ks[i], self.n_levels[i]
                    idx = off + np.arange(G)[:, None] * k + np.arange(k)[None, :]
                    out[i] = sigma2 * full[idx[:, :, None], idx[:, None, :]]
                    off += k * G
        Ainv = np.swapaxes(L1inv, 1, 2) @ inner @ L1inv
        cv1 = sigma2 * (T1 @ Ainv @ T1.T)
        col = 0
        for i in self.primary:
            k = self.ks[i]
            out[i] = cv1[:, col:col + k, col:col + k]
            col += k
        return out

    # --- optimisation -------------------------------------------------------------------
    # The optimiser works in x = theta / theta_scale (see _theta_scale): every column's
    # spread divided out, so the search is the same whatever units the predictors are in.
    @_one_blas_thread
    def optimize(self, theta0=None):
        """Minimise the deviance over theta within lme4's bounds.

        Works in units where every random-effect column has unit spread. Where the layout
        has an exact gradient (:attr:`has_gradient`: every layout, since issue 16's crossed
        remainders with several columns), :func:`mlm.engine.optimize.optimize` first takes
        Newton steps from a warm start (``theta0``, or moment estimates from
        :func:`mlm.engine.start.moment_start`), with a test on the bound for variances
        heading to zero; when those do not converge it runs L-BFGS-B from lme4's start,
        restarts off any variance left on its bound (a stationary point of the
        deviance), falls back to a short derivative-free search from the start when a
        bound persists, and ends with Newton steps on the exact gradient (issue 16).

        Otherwise (kept for a layout without a gradient), three phases. A short bounded Nelder-Mead search with a small simplex
        (like lme4's derivative-free BOBYQA, it moves in small steps) finds the basin: a
        gradient method started at lme4's start value takes a unit first step that can
        land on a zero variance, a stationary point of the deviance, and stall there.
        L-BFGS-B with forward-difference gradients then converges quickly (the search is
        skipped when ``theta0`` is given: a warm start, as in bootstrap refits). A
        parameter that ends on its bound is pushed off it and the fit restarted, and the
        better answer kept (scipy's Nelder-Mead alone stopped on a boundary short of the
        optimum: field notes). Last, Newton steps on central differences
        (:func:`mlm.engine.optimize_free.newton_differences`) take the answer to the
        precision of the arithmetic, so that shuffled rows or relabelled groups give the same
        estimates to about 1e-9 (issue 11). That path is :mod:`mlm.engine.optimize_free`.

        Returns
        -------
        theta : ndarray
        info : dict
            ``deviance``, ``evaluations`` and :meth:`check_convergence`'s
            ``gradient``, ``decrement`` and ``converged``.
        """
        if self.has_gradient:  # the exact gradient: mlm.engine.optimize (issue 16)
            from mlm.engine.optimize import optimize

            return optimize(self, theta0)
        return optimize_differences(self, theta0)

    @_one_blas_thread
    def check_convergence(self, theta):
        """Judge an optimum by the criterion itself, not by an optimizer's flag.

        For each free coordinate (one on its lower bound with the gradient pointing out
        of the region is not free), central differences give the slope ``g`` and the
        curvature ``h`` of the deviance; ``g^2 / (2 h)`` is how much a Newton step
        along it would still lower the deviance. That is scale-free, as lme4's check of
        the scaled gradient (``solve(Hessian, gradient)``) is: a slope that looks large
        in a parameter with large curvature may promise almost nothing. The differences
        are taken in the optimiser's units (:meth:`_theta_scale`).

        Returns
        -------
        dict
            ``gradient`` (largest absolute free slope, in those units), ``decrement``
            (largest possible decrease of the deviance) and ``converged`` (decrement
            below :data:`mlm.engine.optimize_free.DECREMENT_TOL`, every free curvature positive or the slope
            negligible).
        """
        if self.has_gradient:
            from mlm.engine.optimize import Objective, check

            theta = np.asarray(theta, dtype=float)
            done = getattr(self, "_checked", None)
            if done is not None and done[0] == theta.tobytes():  # judged by optimize()
                return dict(done[1])
            obj = Objective(self)
            return check(obj, np.asarray(theta, dtype=float) / obj.scale, self.theta_lower())
        scale = self.theta_scale
        return check_differences(lambda x: self.deviance(np.asarray(x, dtype=float) * scale),
                                 np.asarray(theta, dtype=float) / scale, self.theta_lower())



def psd_cholesky(S):
    """Lower-triangular L with L L' = S for a positive semi-definite S (zeros allowed).

    Falls back from LAPACK's Cholesky (which refuses singular matrices, e.g. a
    correlation of exactly +-1 or a zero variance) to a pivot-free outer-product
    factorisation that keeps zero columns at zero.
    """
    S = np.asarray(S, dtype=float)
    try:
        return np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        k = S.shape[0]
        L = np.zeros_like(S)
        A = S.copy()
        for j in range(k):
            d = A[j, j] - L[j, :j] @ L[j, :j]
            if d <= 1e-14 * max(1.0, abs(S[j, j])):
                L[j, j] = 0.0
                for i in range(j + 1, k):
                    L[i, j] = 0.0
                continue
            L[j, j] = np.sqrt(d)
            for i in range(j + 1, k):
                L[i, j] = (A[i, j] - L[i, :j] @ L[j, :j]) / L[j, j]
        return L
