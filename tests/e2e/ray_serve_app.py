"""Ray Serve LLM's OpenAI app on one local model, on loopback, until SIGTERM: the upstream of
tests/e2e/test_ray_serve.py. Run by an interpreter with ray[serve] and vLLM (not the project's
venv: ray[llm] pins a CUDA vLLM; README "Ray Serve LLM"), so it imports nothing of Quorum.

    python tests/e2e/ray_serve_app.py MODEL_DIR SERVED_NAME PORT MAX_MODEL_LEN TEMP_DIR
"""

from __future__ import annotations

import signal
import sys
import threading

import ray
from ray import serve
from ray.serve.llm import LLMConfig, build_openai_app


def main(model: str, name: str, port: int, max_model_len: int, temp_dir: str) -> None:
    """Start Ray, deploy one LLM server and the OpenAI ingress, wait for SIGTERM, shut down."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Logical CPUs: the engine's placement group takes two, the ingress and proxy need more.
    ray.init(num_cpus=8, include_dashboard=False, _temp_dir=temp_dir)
    config = LLMConfig(
        model_loading_config={"model_id": name, "model_source": model},
        deployment_config={"autoscaling_config": {"min_replicas": 1, "max_replicas": 1}},
        # CPUs, not the default GPU bundle (no accelerator here).
        placement_group_config={"bundles": [{"CPU": 1}]},
        engine_kwargs={
            "dtype": "float32",
            "enforce_eager": True,
            "max_model_len": max_model_len,
            "max_num_seqs": 16,
            # Per-request seeds with chunked prefill kill vLLM's CPU engine (0.32).
            "enable_chunked_prefill": False,
        },
    )
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_openai_app({"llm_configs": [config]}), blocking=False)
    print("ray serve: deployed", flush=True)
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    model, name, port, max_model_len, temp_dir = sys.argv[1:6]
    main(model, name, int(port), int(max_model_len), temp_dir)
