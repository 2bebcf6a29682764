"""Test doubles that benchmarks use too: never real model output, and named as fakes."""
