"""Drivers written against the family protocol: EM, initialization, restarts, gradient fitting, the ELBO, model selection, comparison."""
