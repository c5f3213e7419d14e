"""What exists once per process, below every other server layer: settings, the lifecycle
(readiness, drain, exit code), admission counting, metrics, logging, and running uvicorn."""
