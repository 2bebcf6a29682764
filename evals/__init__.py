"""resyn.evals."""
