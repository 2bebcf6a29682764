"""resyn.memory."""
