"""Concrete engines behind ``decoding.Engine``."""
