"""The scale-out engine: OpenAI-compatible upstream servers (vLLM replicas) over httpx.

One engine request of ``n`` samples is one upstream request to one replica, so the samples share
that replica's prefix cache. Only a replica that could not be reached is retried elsewhere: once a
request was sent, a failure is reported (502/504), never replayed, so a request that kills an
engine cannot kill the next replica too. Closing the generation closes the upstream connection,
which makes vLLM abort the request. An upstream may be a router over many replicas (vllm-router):
its health path is configurable, and the last usable upstream never leaves rotation because one
request failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from decoding.engine import EngineInfo, Prompt, SamplingSpec
from decoding.samples import GenerationChunk
from server import __version__
from server.engines.upstream_context import ContextCounts, digest, probe, shape, upper_bound
from server.engines.upstream_errors import (
    Verdict,
    response_json,
    status_error,
    transport_error,
)
from server.engines.upstream_pool import Replica, ReplicaPool, redact
from server.engines.upstream_wire import (
    StreamBroken,
    UpstreamCall,
    build_call,
    parse_response,
    sse_lines,
    stream_chunks,
    tokenize_body,
)
from server.errors import EngineUnavailable, QuorumError, UpstreamFailed, context_overflow
from server.runtime.settings import Settings

log = logging.getLogger(__name__)
PROBE_READ_TIMEOUT_S = 10.0
# Below uvicorn's 5 s keep-alive (vLLM's server), so a pooled connection is never reused just
# as the upstream closes it.
KEEPALIVE_EXPIRY_S = 4.0


class _Unreached(Exception):
    """The replica was not reached: the request can go to another one."""


class UpstreamEngine:
    """Implements ``decoding.Engine`` over replicas; the app lifespan calls start and stop."""

    def __init__(
        self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport
        self.pool = ReplicaPool(settings.upstreams)
        self._client: httpx.AsyncClient | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._model: str | None = None
        self._counts: dict[str, ContextCounts] = {}  # by replica URL
        self._info = EngineInfo(
            model=settings.model_name,
            max_model_len=settings.max_model_len,
            engine="upstream",
            version="unknown",
        )

    @property
    def info(self) -> EngineInfo:
        """The upstream model and server version, learned at start."""
        return self._info

    @property
    def errored(self) -> bool:
        """Never: a failed replica leaves the rotation, the gateway itself stays alive."""
        return False

    @property
    def ready(self) -> bool:
        """Whether some replica can take a request now (``/ready`` is 503 while none can)."""
        return any(r.usable for r in self.pool.replicas)

    @property
    def active(self) -> int:
        """Upstream requests open now, over every replica."""
        return sum(r.in_flight for r in self.pool.replicas)

    async def start(self) -> None:
        """Open the pooled client, wait for a first healthy replica, start health checks."""
        settings = self._settings
        if logging.getLogger("httpx").level == logging.NOTSET:
            # httpx logs every request at INFO: one line per health probe would flood the log.
            logging.getLogger("httpx").setLevel(logging.WARNING)
        headers = {"user-agent": f"quorum/{__version__}"}
        if settings.upstream_api_key is not None:
            headers["authorization"] = f"Bearer {settings.upstream_api_key.get_secret_value()}"
        self._client = httpx.AsyncClient(
            transport=self._transport,
            headers=headers,
            timeout=httpx.Timeout(
                connect=settings.upstream_connect_timeout_s,
                read=settings.upstream_read_timeout_s,
                write=settings.upstream_read_timeout_s,
                pool=None,  # admission control bounds concurrency, not the pool
            ),
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=256,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.upstream_start_timeout_s
        while not await self.probe_all():
            if loop.time() >= deadline:
                await self.stop()
                raise EngineUnavailable("no upstream answered: " + self.pool.describe())
            await asyncio.sleep(min(settings.upstream_health_interval_s, 1.0))
        self._health_task = asyncio.create_task(self._health_loop(), name="upstream-health")

    async def stop(self) -> None:
        """Stop health checks and close every pooled connection."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def probe_all(self) -> bool:
        """Probe every replica once, concurrently; True if any can serve."""
        await asyncio.gather(*(self.probe(r) for r in self.pool.replicas))
        return any(r.usable for r in self.pool.replicas)

    async def probe(self, replica: Replica) -> None:
        """The health path (``/health``), then (if not known yet) the model from ``/v1/models``."""
        client = self._require_client()
        limit = httpx.Timeout(self._settings.upstream_connect_timeout_s, read=PROBE_READ_TIMEOUT_S)
        try:
            path = self._settings.upstream_health_path
            health = await client.get(f"{replica.url}{path}", timeout=limit)
            if health.status_code != 200:
                self._fail(replica, f"{path} answered {health.status_code}")
                return
            if replica.model is None:
                await self._discover(client, replica, limit)
        except (httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
            self._fail(replica, f"probe failed: {type(exc).__name__}: {exc}"[:300])
            return
        if replica.model is not None:
            self.pool.mark_healthy(replica)

    async def _discover(
        self, client: httpx.AsyncClient, replica: Replica, limit: httpx.Timeout
    ) -> None:
        """Learn the replica's model and context; the first one found is the engine's."""
        models = await client.get(f"{replica.url}/v1/models", timeout=limit)
        models.raise_for_status()
        card = models.json()["data"][0]
        model = str(card["id"])
        if self._model is None:
            self._model = model
            version = "unknown"
            with contextlib.suppress(httpx.HTTPError, ValueError, LookupError, TypeError):
                found = await client.get(f"{replica.url}/version", timeout=limit)
                version = str(found.json()["version"]) if found.status_code == 200 else version
            self._info = EngineInfo(
                model=model,
                max_model_len=int(card.get("max_model_len") or self._settings.max_model_len),
                engine="upstream",
                version=f"{card.get('owned_by') or 'openai'} {version}",
            )
        if model != self._model:
            self._fail(replica, f"serves {model!r}, not {self._model!r}")
            return
        replica.model = model
        replica.max_model_len = card.get("max_model_len")

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.upstream_health_interval_s)
            try:
                await self.probe_all()
            except Exception:  # a bug here must not end health checking
                log.exception("upstream health check failed")

    def _require_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineUnavailable("the upstream engine is not running")
        return self._client

    def _fail(self, replica: Replica, reason: str) -> None:
        self.pool.mark_failed(replica, reason)
        replica.model = None  # re-learned when it recovers (it may have been redeployed)
        self._counts.pop(replica.url, None)  # and so are its token counts

    def _blame(self, replica: Replica, verdict: Verdict) -> QuorumError:
        """The error to raise; the replica leaves rotation if it is to blame and another one
        can take its requests. The last usable one stays: a router's failure is one worker's
        behind it, and leaving nothing in rotation would only turn one failed request into
        503s for everyone until the next probe, which decides instead."""
        error, replica_failed = verdict
        if replica_failed:
            if any(r.usable and r is not replica for r in self.pool.replicas):
                self._fail(replica, error.message[:200])
            else:
                log.warning(
                    "upstream %s failed a request (%s); kept: no other upstream is usable",
                    redact(replica.url),
                    error.message[:200],
                )
        return error

    async def generate(
        self, prompt: Prompt, spec: SamplingSpec, *, stream: bool
    ) -> AsyncGenerator[GenerationChunk, None]:
        """One upstream request of ``spec.n`` samples on one replica; closing it aborts."""
        client = self._require_client()
        call = build_call(prompt, spec, stream=stream)
        tried: set[str] = set()
        while True:
            replica = self.pool.pick(tried)  # 503 once no replica is left
            replica.in_flight += 1
            try:
                response = await self._send(client, replica, prompt, spec, call)
            except _Unreached as exc:
                replica.in_flight -= 1
                self._fail(replica, str(exc))
                tried.add(replica.url)
                continue
            except BaseException:
                replica.in_flight -= 1
                raise
            break
        try:
            if stream:
                chunks = stream_chunks(sse_lines(response.aiter_bytes()), spec, chat=call.chat)
                async with contextlib.aclosing(chunks):
                    async for chunk in chunks:
                        yield chunk
            else:
                await response.aread()
                yield self._whole(replica, response, spec, call)
        except httpx.HTTPError as exc:
            raise self._blame(replica, transport_error(exc)) from exc
        except StreamBroken as exc:
            raise self._blame(replica, status_error(exc.status, exc.payload)) from exc
        finally:
            replica.in_flight -= 1
            await response.aclose()

    async def _send(
        self,
        client: httpx.AsyncClient,
        replica: Replica,
        prompt: Prompt,
        spec: SamplingSpec,
        call: UpstreamCall,
    ) -> httpx.Response:
        """Check the context, send the request, and return the response once its head came."""
        model = replica.model or ""
        try:
            await self._check_context(client, replica, prompt, spec, model)
            request = client.build_request(
                "POST", replica.url + call.path, json={"model": model, **call.body}
            )
            response = await client.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                retry_after = response.headers.get("retry-after")
                verdict = status_error(response.status_code, response_json(response), retry_after)
                raise self._blame(replica, verdict)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Unreached(f"unreachable: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise self._blame(replica, transport_error(exc)) from exc
        return response

    async def _check_context(
        self,
        client: httpx.AsyncClient,
        replica: Replica,
        prompt: Prompt,
        spec: SamplingSpec,
        model: str,
    ) -> None:
        """Count the prompt with vLLM's ``/tokenize``: vLLM's server silently shortens
        ``max_tokens`` to fit, where the in-process engine and OpenAI answer 400. Skipped when
        the prompt cannot reach the limit, and counted once per prompt (``upstream_context``)."""
        if replica.tokenize is False or not self._settings.upstream_tokenize:
            return
        counts = self._counts.setdefault(replica.url, ContextCounts())
        limit = replica.max_model_len or self._info.max_model_len
        template = counts.template(shape(prompt))
        if template is not None and upper_bound(template, prompt) + spec.max_tokens <= limit:
            return
        key = digest(prompt)
        count = counts.exact(key)
        if count is None:
            count, told = await self._tokenize(client, replica, prompt, model)
            if count is None:
                return
            limit = told or limit
            counts.remember(key, count)
            if template is None:
                measured, _ = await self._tokenize(client, replica, probe(prompt), model)
                if measured is not None:
                    counts.learn_template(shape(prompt), measured)
        if limit and count + spec.max_tokens > limit:
            raise context_overflow(int(limit), count, spec.max_tokens)

    async def _tokenize(
        self, client: httpx.AsyncClient, replica: Replica, prompt: Prompt, model: str
    ) -> tuple[int | None, int | None]:
        """vLLM's count of the prompt and its context length; None where there is no
        ``/tokenize`` (not vLLM: the upstream enforces its own limits)."""
        response = await client.post(f"{replica.url}/tokenize", json=tokenize_body(prompt, model))
        if response.status_code in (404, 405):
            replica.tokenize = False
            return None, None
        if response.status_code >= 400:
            raise self._blame(replica, status_error(response.status_code, response_json(response)))
        counted = response_json(response)
        count = counted.get("count") if isinstance(counted, dict) else None
        replica.tokenize = isinstance(count, int)
        if not isinstance(counted, dict) or not isinstance(count, int):
            return None, None  # not vLLM's /tokenize after all
        told = counted.get("max_model_len")
        return count, told if isinstance(told, int) else None

    def _whole(
        self, replica: Replica, response: httpx.Response, spec: SamplingSpec, call: UpstreamCall
    ) -> GenerationChunk:
        """A whole response as one chunk holding every sample."""
        payload = response_json(response)
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            raise self._blame(replica, (UpstreamFailed("the upstream answered no choices"), True))
        return parse_response(payload, spec, chat=call.chat)


async def resolve_upstream_settings(settings: Settings) -> Settings:
    """Settings with the served name and context length taken from the upstreams when the
    user set neither; waits for a first replica like ``start``."""
    update: dict[str, Any] = {}
    if settings.served_name is None or "max_model_len" not in settings.model_fields_set:
        engine = UpstreamEngine(settings)
        await engine.start()
        await engine.stop()
        info = engine.info
        if settings.served_name is None:
            if ":" in info.model:
                raise ValueError(
                    f"the upstream model {info.model!r} contains ':'; name it with --served-name"
                )
            update["served_name"] = info.model
        if "max_model_len" not in settings.model_fields_set:
            update["max_model_len"] = info.max_model_len
    resolved = settings.model_copy(update=update)
    if resolved.max_tokens_cap is not None and resolved.max_tokens_cap >= resolved.max_model_len:
        raise ValueError("max_tokens_cap must be smaller than the upstream's max_model_len")
    return resolved
