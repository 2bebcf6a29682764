"""resyn.tools."""
