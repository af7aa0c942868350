"""Evaluating policies on environments: the lockstep rollout, task scores and early stops, and the backends."""
