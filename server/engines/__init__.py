"""Concrete engines behind ``decoding.ManagedEngine``: vLLM in-process, remote upstreams,
scripted and paced ones for tests, and the factory that picks one from the settings."""
