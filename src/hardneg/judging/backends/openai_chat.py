"""Listwise judging through any OpenAI-compatible chat server: OpenAI, Azure OpenAI, vLLM, llama.cpp, Ollama.

`OpenAIJudge` renders one prompt per instance (chunks of `max_negatives_per_call` negatives, merged after),
sends the calls concurrently with asyncio under a concurrency cap and optional requests/tokens-per-minute
limits, retries transient failures (429, 5xx, timeouts, dropped connections, unreadable responses) with
exponential backoff and jitter, honouring Retry-After, and yields each instance's `JudgeOutput` as soon as it
is complete, so that the caller stores it at once (a killed run loses only the calls in flight).

A call that still fails after its retries gives status "failed" with the reason; a truncated or unreadable
answer gives "parse_error". Neither is ever read as "no false negatives".

Where the server is and how hard to push it (pool, key variable, timeout, retries, limits) is one
`EndpointSettings`, shared with the other API judges; a stage's flat keys build it (`flat_options`).

The API key is read from an environment variable (name configurable) when a run starts. It is never part
of `config()`, of outputs, of log lines or of error reasons (it is masked in any server message).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hardneg.data.records import Instance
from hardneg.errors import ConfigError
from hardneg.judging.backends.endpoint_settings import AUTO_TIMEOUT_CEILING as AUTO_TIMEOUT_CEILING
from hardneg.judging.backends.endpoint_settings import LOCAL_PLACEHOLDER_KEY, EndpointSettings, flat_options
from hardneg.judging.backends.endpoints import Endpoint, EndpointPool
from hardneg.judging.backends.ratelimit import RateLimiter
from hardneg.judging.base import Judge, JudgeStopped
from hardneg.judging.cost import Budget, BudgetExceeded, Reservation, prompt_tokens
from hardneg.judging.prompts.parse import verdict_output
from hardneg.judging.prompts.templates import chunk_docids, load_template, permuted
from hardneg.judging.verdicts import JudgeOutput, merge_outputs, vote_outputs

log = logging.getLogger("hardneg.judging.openai")

# Structured output for the compact template: the candidate numbers (1-based) in two lists.
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "better": {"type": "array", "items": {"type": "integer"}},
        "worse": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["better", "worse"],
    "additionalProperties": False,
}
JSON_INSTRUCTION = (
    '\n\nReply with a JSON object only: {"better": [...], "worse": [...]}, each a list of candidate numbers i '
    "(integers; [] when none), instead of the tagged verdict."
)
RETRYABLE_STATUS = {408, 409, 429}
FATAL_STATUS = {401, 403}  # the credentials: every other call would fail the same way
# timeout "auto": until AUTO_TIMEOUT_AFTER answers arrived the ceiling (AUTO_TIMEOUT_CEILING) applies; then
# AUTO_TIMEOUT_FACTOR x the slowest answer seen, at least AUTO_TIMEOUT_FLOOR. A request cut short by the client may
# still run (and be billed) on the server, so the bound is generous: it should only catch calls that hang.
AUTO_TIMEOUT_FLOOR = 60.0
AUTO_TIMEOUT_FACTOR = 4.0
AUTO_TIMEOUT_AFTER = 5
# After a timeout the next request of the same instance waits twice as long (also in a later run: the cascade
# hands each instance's earlier timeouts in `timeout_plan`), up to this (or the configured timeout, when longer).
TIMEOUT_GROWTH_CAP_S = 600.0


@dataclass(slots=True)
class _Prepared:
    """An instance with its rendered prompts, ready to send."""

    instance: Instance
    chunks: list[list[str]]
    prompts: list[Any]  # a user message's text, or a list of chat messages, per call
    tokens_in: int  # estimated prompt tokens of all calls
    reservation: Reservation | None = None


def parse_json_verdict(
    text: str | None, docids: Sequence[str], finish_reason: str | None = None, **fields: Any
) -> JudgeOutput:
    """Strictly read a structured-output verdict `{"better": [int], "worse": [int]}` (1-based candidates)."""

    def fail(reason: str) -> JudgeOutput:
        return JudgeOutput(
            docids=list(docids),
            status="parse_error",
            reason=reason,
            raw_response=text,
            finish_reason=finish_reason,
            **fields,
        )

    if finish_reason == "length":
        return fail("truncated response (finish_reason=length)")
    if text is None or not text.strip():
        return fail("empty response")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return fail(f"not JSON: {exc.msg} at char {exc.pos}")
    if not isinstance(data, dict) or set(data) != {"better", "worse"}:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        return fail(f"expected exactly the keys better and worse, got {keys}")
    lists: dict[str, list[int]] = {}
    for key in ("better", "worse"):
        value = data[key]
        # bool is an int subclass in Python: reject it explicitly
        if not isinstance(value, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
            return fail(f"{key} must be a list of integers, got {value!r:.80}")
        bad = [i for i in value if i < 1 or i > len(docids)]
        if bad:
            return fail(f"{key} refers to candidate {bad[0]} but only 1..{len(docids)} were shown")
        lists[key] = value
    better = sorted(set(lists["better"]))
    worse = sorted(set(lists["worse"]) - set(better))
    return JudgeOutput(
        docids=list(docids),
        better=[docids[i - 1] for i in better],
        worse=[docids[i - 1] for i in worse],
        raw_response=text,
        finish_reason=finish_reason,
        **fields,
    )


def completion_data(completion: Any) -> dict[str, Any]:
    """A chat completion as its JSON dict (from the SDK's object, or a Batch API line's body as it is)."""
    return completion if isinstance(completion, dict) else completion.model_dump()


def usage_tokens(data: dict[str, Any]) -> dict[str, int]:
    """`tokens_in` and `tokens_out` of a completion's usage (0 where the server left them out)."""
    usage = data.get("usage") or {}
    return {"tokens_in": int(usage.get("prompt_tokens") or 0), "tokens_out": int(usage.get("completion_tokens") or 0)}


def reply_text(data: dict[str, Any]) -> str:
    """The first choice's message text ("" when there is none)."""
    choices = data.get("choices") or []
    return ((choices[0].get("message") or {}).get("content") if choices else None) or ""


def _retry_after(exc: Exception) -> float | None:
    """Seconds the server asked us to wait (retry-after-ms, or Retry-After as seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAIJudge(Judge):
    """A listwise LLM judge behind an OpenAI-compatible chat-completions endpoint."""

    kind = "openai"

    @flat_options()
    def __init__(
        self,
        settings: EndpointSettings,
        *,
        template: str = "stage1",
        temperature: float = 0.1,
        max_tokens: int = 2048,
        json_schema: bool | str = False,
        max_negatives_per_call: int = 25,
        permutations: int = 1,
        budget: Budget | None = None,
    ) -> None:
        # The server(s), key variable, timeout, retries and limits; a pool of servers (`base_urls`,
        # `hardneg.judging.backends.endpoints`) has `concurrency` in flight per endpoint, an endpoint that fails
        # taken out for `endpoint_cooldown` seconds. Not part of config(): the same model anywhere.
        self.settings = settings
        self.model = settings.model
        self.endpoints: list[dict[str, Any]] = []  # per endpoint after a run: requests, failures, taken_out
        self.template = load_template(template)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self._latencies: list[float] = []  # of the answers so far ("auto" timeout, see `_request_timeout`)
        self._fatal = ""  # set by a call the server refused for good (401/403): the run stops
        # A timed-out request was sent and may have been billed: an instance's call gives up (failed: timeout)
        # after `max_timeouts` of them, counting those of earlier runs that the cascade hands in `timeout_plan`
        # ({query_id: (earlier timeouts, timeouts allowed now)}); each timeout doubles the next request's timeout.
        self.timeout_plan: dict[str, tuple[int, int]] = {}
        # True / "json_schema": OpenAI's structured output (OpenAI, Azure, vLLM, llama-server, Ollama);
        # "json_object": the {"type": "json_object", "schema": ...} form of llama-cpp-python's server.
        if json_schema not in (True, False, "json_schema", "json_object"):
            raise ConfigError(f"json_schema must be true, false, 'json_schema' or 'json_object', not {json_schema!r}")
        self.json_mode = "json_schema" if json_schema is True else (json_schema or None)
        self.json_schema = self.json_mode is not None
        self.max_negatives_per_call = int(max_negatives_per_call)
        if int(permutations) < 1:
            raise ConfigError(f"permutations must be >= 1, got {permutations}")
        # K > 1: each chunk is judged in K seeded orders and a docid kept when a majority flags it (position bias)
        self.permutations = int(permutations)
        self.budget = budget
        self._rng = random.Random(settings.seed)
        self._key: str | None = None
        # Filled by each run: instances the budget did not allow (left unjudged, not failed) and counters.
        self.unjudged: list[str] = []
        self.stats: dict[str, float] = {}

    @property
    def base_urls(self) -> list[str | None]:
        return self.settings.urls

    @property
    def max_timeouts(self) -> int:
        return self.settings.max_timeouts

    @max_timeouts.setter
    def max_timeouts(self, value: int) -> None:
        # the cascade's bound (`max_timeouts` of its config) replaces the stage's
        self.settings = self.settings.replace(max_timeouts=value)

    # ------------------------------------------------------------------------------------------ config

    def config(self) -> dict[str, Any]:
        # Only what changes the answers: the endpoint, key, concurrency and limits do not (the same model
        # behind a proxy, the Batch API or another region gives judgments that are reused).
        return {
            "kind": self.kind,
            "model": self.model,
            "template": self.template.name,
            "template_sha256": self.template.sha256,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "json_schema": self.json_mode or False,
            "max_negatives_per_call": self.max_negatives_per_call,
            **({"permutations": self.permutations} if self.permutations > 1 else {}),
        }

    def render(self, instance: Instance, docids: Sequence[str]) -> str:
        prompt = self.template.render(instance, list(docids))
        return prompt + JSON_INSTRUCTION if self.json_schema else prompt

    def request_body(self, prompt: str | list[dict[str, str]]) -> dict[str, Any]:
        """The chat-completions request for one prompt, a user message or a list of messages (also the body of a
        Batch API line)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.json_mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "strict": True, "schema": VERDICT_SCHEMA},
            }
        elif self.json_mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": VERDICT_SCHEMA}
        return body

    def output_from_completion(
        self, completion: Any, docids: Sequence[str], *, latency_s: float = 0.0, attempts: int = 1
    ) -> JudgeOutput:
        """A JudgeOutput from a chat completion (an SDK object or its JSON dict)."""
        data = completion_data(completion)
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return JudgeOutput(
                docids=list(docids), status="failed", reason="response has no choices", template_hash=self.sha
            )
        choice = choices[0]
        text = (choice.get("message") or {}).get("content")
        finish = choice.get("finish_reason")
        fields: dict[str, Any] = {
            **usage_tokens(data),
            "latency_s": latency_s,
            "template_hash": self.sha,
            "extra": {"attempts": attempts, "served_model": data.get("model")},
        }
        if self.json_schema:
            return parse_json_verdict(text, docids, finish, **fields)
        return verdict_output(text, docids, finish, **fields)

    @property
    def sha(self) -> str:
        return self.template.sha256

    # ------------------------------------------------------------------------------------------ client

    def _api_key(self) -> str:
        return self.settings.api_key()

    def make_client(self, *, asynchronous: bool = True, max_retries: int = 0, base_url: str | None = None) -> Any:
        """An OpenAI (or Azure) client for this judge's endpoint (or `base_url`, one of its pool); the key comes
        from the environment only.

        The online judge retries by itself (bounded, with Retry-After and failure records), so it asks for
        max_retries=0; the Batch API path lets the SDK retry its few file and batch calls.
        """
        self._key = self._api_key()
        return self.settings.client(self._key, asynchronous=asynchronous, max_retries=max_retries, url=base_url)

    def _pool(self) -> EndpointPool:
        """The endpoints of this run, one async client each."""
        urls = self.settings.urls
        endpoints = [Endpoint(url, self.make_client(asynchronous=True, max_retries=0, base_url=url)) for url in urls]
        return EndpointPool(endpoints, self.settings.concurrency, self.settings.endpoint_cooldown)

    def _endpoint_failure(self, exc: Exception) -> bool:
        """A failure that says the server is unwell (connection refused, dropped, timed out, 5xx), not the call."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            return exc.status_code >= 500
        return isinstance(exc, openai.APIConnectionError)

    def _scrub(self, text: str) -> str:
        key = self._key
        if key and len(key) >= 4 and key != LOCAL_PLACEHOLDER_KEY:
            text = text.replace(key, "***")
        return text

    def _describe(self, exc: Exception) -> str:
        status = getattr(exc, "status_code", None)
        message = str(exc).splitlines()[0] if str(exc) else ""
        label = f"{type(exc).__name__}" + (f" HTTP {status}" if status else "")
        return self._scrub(f"{label}: {message[:300]}" if message else label)

    def _retryable(self, exc: Exception) -> bool:
        import openai

        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
        # timeouts, refused / dropped connections, unreadable bodies (invalid JSON, no choices)
        return isinstance(
            exc, openai.APIConnectionError | openai.APIResponseValidationError | json.JSONDecodeError | _BadResponse
        )

    def _request_timeout(self) -> float:
        """The client timeout of the next request (see `timeout`)."""
        ceiling = self.settings.timeout_s
        if not self.settings.auto_timeout or len(self._latencies) < AUTO_TIMEOUT_AFTER:
            return ceiling
        slowest = max(self._latencies[-200:])
        return min(ceiling, max(AUTO_TIMEOUT_FLOOR, AUTO_TIMEOUT_FACTOR * slowest))

    def _delay(self, exc: Exception, attempt: int) -> float:
        asked = _retry_after(exc)
        if asked is not None:
            return min(max(asked, 0.0), self.settings.retry_after_max)
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * (2**attempt))
        return ceiling * (0.5 + 0.5 * self._rng.random())  # jitter, so clients do not retry in lockstep

    # ------------------------------------------------------------------------------------------ calls

    def _timeouts_of(self, query_id: str) -> dict[str, int]:
        """An instance's timeout account for this run: `seen` (earlier runs' and this run's timeouts, which set
        the next request's timeout) and `left` (how many more this run may pay before the call is given up)."""
        seen, allowed = self.timeout_plan.get(query_id, (0, self.max_timeouts))
        return {"seen": int(seen), "left": max(1, int(allowed))}

    def _grown_timeout(self, seen: int) -> float:
        """The request timeout after `seen` timeouts of the same instance: x2 each, capped."""
        base = self._request_timeout()
        if seen <= 0:
            return base
        return min(base * 2.0 ** min(seen, 30), max(base, TIMEOUT_GROWTH_CAP_S))

    async def _call(
        self,
        pool: EndpointPool,
        limiter: RateLimiter,
        prompt: str,
        docids: list[str],
        account: dict[str, int] | None = None,
    ):
        import openai

        body = self.request_body(prompt)
        n_prompt = prompt_tokens(prompt, self.model)
        estimate = n_prompt + self.max_tokens
        last = ""
        account = account if account is not None else {"seen": 0, "left": self.max_timeouts}
        timeouts = 0  # this call's requests that timed out (possibly billed)
        max_retries = self.settings.max_retries
        for attempt in range(max_retries + 1):
            endpoint = await pool.acquire()
            client = endpoint.client
            try:
                if self._fatal:  # never sent: not an attempt, so it is not stored (see the runner)
                    return JudgeOutput(
                        docids=docids, status="failed", reason=f"not sent: {self._fatal}", template_hash=self.sha,
                        extra={"not_sent": True},
                    )  # fmt: skip
                await limiter.acquire(estimate)
                started = time.perf_counter()
                self.stats["requests"] = self.stats.get("requests", 0) + 1
                try:
                    completion = await client.chat.completions.create(
                        **body, timeout=self._grown_timeout(account["seen"])
                    )
                    if not getattr(completion, "choices", None):
                        # a 200 whose body is not a chat completion (proxies, overloaded servers)
                        raise _BadResponse(f"unreadable response body: {str(completion)[:120]!r}")
                except Exception as exc:
                    last = self._describe(exc)
                    timed_out = isinstance(exc, openai.APITimeoutError)
                    if timed_out:
                        # sent, and perhaps answered and billed after the client gave up: count it, charge it
                        self.stats["possibly_billed"] = self.stats.get("possibly_billed", 0) + 1
                        if self.budget is not None:
                            self.budget.charge_possibly_billed(self.model, n_prompt, self.max_tokens)
                        timeouts += 1
                        account["seen"] += 1
                        account["left"] -= 1
                    if getattr(exc, "status_code", None) in FATAL_STATUS:
                        self._fatal = last
                    can_pay = self.budget is None or self.budget.within_cap()
                    spent = timed_out and account["left"] <= 0  # no more possibly billed timeouts for it
                    if not self._retryable(exc) or attempt == max_retries or not can_pay or spent:
                        self.stats["failed_calls"] = self.stats.get("failed_calls", 0) + 1
                        log.warning("call failed for good after %d attempt(s): %s", attempt + 1, last)
                        tries = f"after {attempt + 1} attempt(s)"
                        if timeouts:
                            tries += f", {timeouts} timed out (possibly billed)"
                        return JudgeOutput(
                            docids=docids,
                            status="failed",
                            reason=f"{last} ({tries})",
                            template_hash=self.sha,
                            extra={"attempts": attempt + 1, "timeouts": timeouts},
                        )
                    delay = self._delay(exc, attempt)
                    if self._endpoint_failure(exc):
                        pool.failed(endpoint)
                        if pool.others_up(endpoint):
                            delay = 0.0  # another server takes it at once
                    self.stats["retries"] = self.stats.get("retries", 0) + 1
                    log.info("retrying in %.2fs (attempt %d): %s", delay, attempt + 1, last)
                else:
                    pool.succeeded(endpoint)
                    latency = time.perf_counter() - started
                    self._latencies.append(latency)
                    out = self.output_from_completion(completion, docids, latency_s=latency, attempts=attempt + 1)
                    if timeouts:
                        out.extra["timeouts"] = timeouts
                    self.stats["tokens_in"] = self.stats.get("tokens_in", 0) + out.tokens_in
                    self.stats["tokens_out"] = self.stats.get("tokens_out", 0) + out.tokens_out
                    return out
            finally:
                await pool.release(endpoint)
            await asyncio.sleep(delay)  # outside the pool: a waiting retry does not hold a slot
        raise AssertionError(f"unreachable: {last}")

    async def _judge_prepared(self, pool: EndpointPool, limiter: RateLimiter, item: _Prepared) -> JudgeOutput:
        started = time.perf_counter()
        out: JudgeOutput | None = None
        account = self._timeouts_of(item.instance.query_id)  # shared by the instance's calls
        try:
            parts = await asyncio.gather(
                *(self._call(pool, limiter, p, c, account) for p, c in zip(item.prompts, item.chunks, strict=True))
            )
            k = self.permutations
            voted = [vote_outputs(parts[i : i + k]) for i in range(0, len(parts), k)]
            out = merge_outputs(voted)
            timeouts = sum(int(p.extra.get("timeouts", 0)) for p in parts)
            out.extra.pop("timeouts", None)
            if timeouts:
                out.extra["timeouts"] = timeouts
        finally:
            # the real cost replaces the upper bound (nothing billed when cancelled before an answer)
            if item.reservation is not None and self.budget is not None:
                used = (out.tokens_in, out.tokens_out) if out is not None else (0, 0)
                self.budget.settle(item.reservation, *used)
        if len(parts) > 1:
            out.latency_s = time.perf_counter() - started
        return out

    def _prepare(self, instance: Instance, docids: Sequence[str]) -> _Prepared:
        chunks = [
            order
            for n, chunk in enumerate(chunk_docids(list(docids), self.max_negatives_per_call))
            for order in permuted(chunk, self.permutations, key=f"{instance.query_id}:{n}")
        ]
        return self._prepared(instance, chunks, [self.render(instance, chunk) for chunk in chunks])

    def _prepared(self, instance: Instance, chunks: list[list[str]], prompts: list[Any]) -> _Prepared:
        """The calls of an instance, one per chunk of docids, with their estimated prompt tokens."""
        return _Prepared(instance, chunks, prompts, sum(prompt_tokens(p, self.model) for p in prompts))

    async def ajudge_many(
        self, items: Iterable[tuple[Instance, Sequence[str]]]
    ) -> AsyncIterator[tuple[Instance, JudgeOutput]]:
        """Async version of `judge_many` (for callers that already run an event loop)."""
        self.unjudged = []
        self.stats = {
            "requests": 0, "retries": 0, "failed_calls": 0, "tokens_in": 0, "tokens_out": 0, "possibly_billed": 0
        }  # fmt: skip
        self._fatal = ""
        limiter = RateLimiter(self.settings.rpm, self.settings.tpm)
        pool = self._pool()
        # Instances prepared ahead so that no slot idles; under a budget only as many as can run,
        # so that each reservation is made as late as possible (after earlier calls have settled).
        window = pool.slots if self.budget is not None else pool.slots * 2
        source = iter(items)
        pending: set[asyncio.Task[JudgeOutput]] = set()
        owner: dict[asyncio.Task[JudgeOutput], Instance] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < window:
                    try:
                        instance, docids = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    if not docids:
                        # nothing to judge: an empty verdict is true here, and no call is made
                        yield instance, JudgeOutput(docids=[], better=[], worse=[], template_hash=self.sha)
                        continue
                    item = self._prepare(instance, docids)
                    if self.budget is not None:
                        item.reservation = self.budget.reserve(
                            self.model, item.tokens_in, self.max_tokens * len(item.prompts)
                        )
                        while item.reservation is None and pending:
                            # in-flight upper bounds may settle lower: wait for them before giving up
                            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                            for task in finished:
                                yield owner.pop(task), task.result()
                            item.reservation = self.budget.reserve(
                                self.model, item.tokens_in, self.max_tokens * len(item.prompts)
                            )
                        if item.reservation is None:
                            self.unjudged.append(instance.query_id)
                            self.unjudged.extend(inst.query_id for inst, _ in source)
                            log.warning("budget reached: %d instance(s) left unjudged", len(self.unjudged))
                            exhausted = True
                            break
                    task = asyncio.ensure_future(self._judge_prepared(pool, limiter, item))
                    pending.add(task)
                    owner[task] = instance
                if not pending:
                    break
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    yield owner.pop(task), task.result()
                if self._fatal:
                    # the server refused the credentials: every other call would fail the same way
                    raise JudgeStopped(f"{self._fatal}; check the key in ${self.settings.api_key_env} and the base_url")
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            self.stats["rate_limit_wait_s"] = round(limiter.waited_s, 3)
            self.endpoints = pool.report()
            self.stats["endpoints_taken_out"] = sum(e["taken_out"] for e in self.endpoints)
            await pool.close()

    def judge_many(self, items: Iterable[tuple[Instance, Sequence[str]]]) -> Iterator[tuple[Instance, JudgeOutput]]:
        """Judge instances concurrently; yields (instance, output) as each completes (any order).

        Instances the budget does not allow are not yielded; their ids are in `self.unjudged` afterwards.
        Runs its own event loop (use `ajudge_many` inside a running loop).
        """
        loop = asyncio.new_event_loop()
        agen = self.ajudge_many(items)
        try:
            while True:
                try:
                    yield loop.run_until_complete(agen.__anext__())
                except StopAsyncIteration:
                    break
        finally:
            # an early stop by the caller cancels the calls in flight (they are not stored)
            loop.run_until_complete(agen.aclose())  # type: ignore[attr-defined]  # an async generator
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def judge(self, instance: Instance, docids: Sequence[str]) -> JudgeOutput:
        for _, output in self.judge_many([(instance, docids)]):
            return output
        budget = self.budget.report() if self.budget is not None else "no budget"
        raise BudgetExceeded(f"{instance.query_id}: the budget does not allow this call ({budget})")


class PerNegativeJudge(OpenAIJudge):
    """An API judge that asks about one negative per request: the chat messages of `messages`, a greedy answer of
    at most `max_tokens` tokens, read by the subclass's `output_from_completion`."""

    def __init__(self, settings: EndpointSettings, *, max_tokens: int, budget: Budget | None = None) -> None:
        super().__init__(
            settings, template="compact", temperature=0.0, max_tokens=max_tokens, max_negatives_per_call=1,
            budget=budget,
        )  # fmt: skip

    def messages(self, instance: Instance, docid: str) -> list[dict[str, str]]:
        raise NotImplementedError

    def _prepare(self, instance: Instance, docids: Sequence[str]) -> _Prepared:
        return self._prepared(instance, [[docid] for docid in docids], [self.messages(instance, d) for d in docids])


class _BadResponse(Exception):
    """A 200 response whose body is not a chat completion."""
