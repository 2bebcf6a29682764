"""resyn: autonomously synthesized, code-verified reasoning environments."""

__version__ = "0.1.0"
