"""resyn.graph."""
