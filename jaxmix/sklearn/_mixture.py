"""The methods the scikit-learn mixture estimators share, on a jaxmix mixture family.

A subclass supplies ``_family`` (the jaxmix family class), ``_model()`` (the family of its constructor
arguments), ``_params()`` (the family's parameters from the fitted attributes), ``_restore(params)`` (the
reverse), and for
user-given initial values ``_given()`` (the ``*_init`` arguments) and ``_user_params(initial)``
(those values over ``initial``, jaxmix's initialization, or None when every one is given).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils.validation import check_is_fitted

from jaxmix import _validation as v
from jaxmix.inference import initialize
from jaxmix.mixtures import Mixture
from jaxmix.sklearn._base import check_data, check_weights, fit_key, to_numpy
from jaxmix.sklearn._fitting import INIT_PARAMS, fit_restarts, warn_unconverged
from jaxmix.sklearn._persistence import Persistent
from jaxmix.sklearn._rows import rowwise


class MixtureEstimator(Persistent, DensityMixin, BaseEstimator):
    """fit, predict, predict_proba, score_samples, score, sample, bic and aic of a jaxmix mixture family."""

    def fit(self, X, y=None, sample_weight=None):
        """Fit by EM from ``n_init`` starts and keep the best (``jaxmix.fit``; ``jaxmix.fit_em`` from
        user-given initial values or, with ``warm_start``, from the previous fit, run once).

        ``sample_weight`` (n_samples,): non-negative weights, a weight of 2 counting a point twice (only
        their ratios matter). ``lower_bounds_`` holds the mean log-likelihood L_t of the parameters each
        iteration started from and ``lower_bound_`` the last of them, as scikit-learn records them;
        ``n_iter_`` counts the iterations and ``converged_`` says whether |L_t - L_{t-1}| < tol was met.
        """
        warm = self.warm_start and hasattr(self, "converged_")
        X = self._validate(X, reset=not warm)
        weights = check_weights(sample_weight, X)
        model = self._model()
        init = INIT_PARAMS[v.check_choice("init_params", self.init_params, INIT_PARAMS)]
        n_init = v.check_positive_int("n_init", self.n_init)
        if warm:
            start, n_init = (lambda key, x, w: self._params()), 1
        elif any(value is not None for value in self._given()):
            every = all(value is not None for value in self._given())
            start = lambda key, x, w: self._user_params(None if every else initialize(key, model, x, init, w))
            n_init = 1 if every else n_init
        else:
            start = None
        best, finals = fit_restarts(model, X, weights, random_state=self.random_state, n_init=n_init, init=init,
                                    max_iter=self.max_iter, tol=self.tol, start=start)
        self._restore(to_numpy(best.params))
        self.n_iter_ = int(best.n_iter)
        self.converged_ = bool(best.converged)
        self.lower_bounds_ = np.asarray(best.history)[: self.n_iter_]
        self.lower_bound_ = float(self.lower_bounds_[-1])
        self._report(finals)
        warn_unconverged(self)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """``fit(X)``, then the most probable component of each point of X."""
        return self.fit(X, y, sample_weight).predict(X)

    def predict(self, X):
        """The most probable component argmax_k p(z = k | x_i) of each point, (n_samples,)."""
        return rowwise(Mixture.predict, *self._fitted(X))

    def predict_proba(self, X):
        """Responsibilities p(z = k | x_i), (n_samples, n_components); rows sum to one."""
        return rowwise(Mixture.posterior, *self._fitted(X))

    def score_samples(self, X):
        """log p(x_i) = logsumexp_k (log w_k + log p_k(x_i)), (n_samples,)."""
        return rowwise(Mixture.log_prob, *self._fitted(X))

    def score(self, X, y=None):
        """The mean log-likelihood (1/N) sum_i log p(x_i)."""
        return float(np.mean(self.score_samples(X)))

    def bic(self, X):
        """Bayesian information criterion -2 N score(X) + p log N, p free parameters (lower is better)."""
        model, params, X = self._fitted(X)
        return float(model.bic(params, X))

    def aic(self, X):
        """Akaike information criterion -2 N score(X) + 2 p (lower is better)."""
        model, params, X = self._fitted(X)
        return float(model.aic(params, X))

    def sample(self, n_samples=1):
        """Draw ``n_samples`` points from the fitted mixture: ``(X (n_samples, n_features), labels (n_samples,))``,
        with a key from ``random_state`` (``fit_key``)."""
        check_is_fitted(self)
        x, z = self._model().sample(fit_key(self.random_state), self._params(), n_samples)
        return np.asarray(x).reshape(n_samples, -1), np.asarray(z)

    def _saved(self):
        return self._model(), self._params()

    def _validate(self, X, *, reset):
        return check_data(self, X, reset=reset)

    def _fitted(self, X):
        check_is_fitted(self)
        return self._model(), self._params(), self._validate(X, reset=False)

    def _report(self, finals):
        """With ``verbose``: each start's final mean log-likelihood, the kept fit, and at 2 its L_t."""
        if not self.verbose:
            return
        for i, final in enumerate(finals):
            print(f"Initialization {i}: final mean log-likelihood {final:.8g}")
        state = "converged" if self.converged_ else "did not converge"
        print(f"Kept the best: {state} after {self.n_iter_} iterations, lower bound {self.lower_bound_:.8g}")
        if self.verbose >= 2:
            for t, value in enumerate(self.lower_bounds_):
                print(f"  Iteration {t + 1}: lower bound {value:.8g}")
