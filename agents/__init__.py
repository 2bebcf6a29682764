"""resyn.agents."""
