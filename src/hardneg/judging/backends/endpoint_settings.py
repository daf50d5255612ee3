"""What every judge behind an OpenAI-compatible server shares: which model on which server(s), how to reach them,
and how hard to push them.

`EndpointSettings` is built and checked once and handed to a backend (`OpenAIJudge`, `OpenAIPointwiseJudge`,
`OpenAIAnswerJudge`, `BatchJudge`), which adds only its own options. A cascade stage keeps its flat YAML keys
(`model`, `base_url`, `concurrency`, `template`, ...): `flat_options` lets such a backend be called with them,
builds the settings from the endpoint keys and passes the rest on, and shows every key in the backend's signature,
so that the cascade checks a stage's keys when it reads the config.

The API key is never held here: only the name of the environment variable it is read from (`api_key`), when a
client is made. None of these settings is part of a judge's `config()`: the same model behind another server, a
proxy or another region gives judgments that are reused.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import Callable, Collection
from typing import Any

from hardneg.errors import ConfigError
from hardneg.judging.backends.endpoints import DEFAULT_COOLDOWN_S
from hardneg.judging.store import DEFAULT_MAX_TIMEOUTS

# Key used in place of a missing one for local servers (vLLM / llama.cpp / Ollama ignore it).
LOCAL_PLACEHOLDER_KEY = "not-needed"
DEFAULT_AZURE_API_VERSION = "2024-10-21"
# timeout "auto": the client's timeout until answers arrive (the judge then bounds each request by the answers
# seen, `OpenAIJudge._request_timeout`).
AUTO_TIMEOUT_CEILING = 600.0

# The keys of a judge that sends few calls to one server (the Batch API's): no pool, no rate limits, no retry
# policy (its SDK retries each call `max_retries` times).
CONNECTION_OPTIONS = ("model", "base_url", "api_key_env", "azure", "api_version", "timeout", "max_retries")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EndpointSettings:
    """The server side of an API judge: built once, checked once (errors name the key, as a stage writes it)."""

    model: str
    base_url: str | None = None  # one server; None: OpenAI itself
    base_urls: tuple[str, ...] | None = None  # a pool of servers serving the same model (`endpoints`)
    api_key_env: str = "OPENAI_API_KEY"  # the environment variable the key is read from
    azure: bool = False
    api_version: str | None = None  # Azure only
    timeout: float | str = "auto"  # seconds per request, or "auto" (see `AUTO_TIMEOUT_CEILING`)
    max_retries: int = 5  # retries of a failed call (the Batch API: of each files / batches call)
    concurrency: int = 8  # calls in flight per server
    rpm: float | None = None  # client-side requests per minute
    tpm: float | None = None  # client-side tokens per minute
    endpoint_cooldown: float = DEFAULT_COOLDOWN_S  # seconds a failing server of a pool is left out
    backoff_base: float = 1.0  # retry delays: base x 2^attempt, jittered, at most backoff_max
    backoff_max: float = 60.0
    retry_after_max: float = 300.0  # the longest Retry-After honoured
    max_timeouts: int = DEFAULT_MAX_TIMEOUTS  # possibly billed timeouts per instance before its call is given up
    seed: int | None = None  # of the retry jitter

    def __post_init__(self) -> None:
        base_urls = self.base_urls
        if base_urls is not None:
            if isinstance(base_urls, str) or not base_urls or not all(isinstance(u, str) and u for u in base_urls):
                raise ConfigError(f"base_urls must be a non-empty list of URLs, not {base_urls!r}")
            if self.base_url is not None:
                raise ConfigError("give base_url (one server) or base_urls (a pool), not both")
        if self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.azure and not self.url:
            raise ConfigError("azure: set base_url to the resource endpoint (https://NAME.openai.azure.com)")
        timeout = self.timeout
        if timeout != "auto" and not (isinstance(timeout, int | float) and timeout > 0):
            raise ConfigError(f"timeout must be 'auto' or a number of seconds > 0, not {timeout!r}")
        if int(self.max_timeouts) < 1:
            raise ConfigError(f"max_timeouts must be >= 1, got {self.max_timeouts}")
        # YAML gives lists and ints where floats are meant: stored in one form
        normal = {
            "base_urls": tuple(base_urls) if base_urls is not None else None,
            "azure": bool(self.azure),
            "timeout": timeout if timeout == "auto" else float(timeout),
            "max_retries": int(self.max_retries),
            "concurrency": int(self.concurrency),
            "endpoint_cooldown": float(self.endpoint_cooldown),
            "backoff_base": float(self.backoff_base),
            "backoff_max": float(self.backoff_max),
            "retry_after_max": float(self.retry_after_max),
            "max_timeouts": int(self.max_timeouts),
        }
        for name, value in normal.items():
            object.__setattr__(self, name, value)

    @property
    def urls(self) -> list[str | None]:
        """The servers, one entry (None: OpenAI itself) unless `base_urls` names a pool."""
        return list(self.base_urls) if self.base_urls is not None else [self.base_url]

    @property
    def url(self) -> str | None:
        """The first (or only) server."""
        return self.urls[0]

    @property
    def auto_timeout(self) -> bool:
        return self.timeout == "auto"

    @property
    def timeout_s(self) -> float:
        """The client's timeout: the configured one, or the ceiling of "auto"."""
        return AUTO_TIMEOUT_CEILING if self.timeout == "auto" else float(self.timeout)

    def replace(self, **changes: Any) -> EndpointSettings:
        """A copy with `changes`, checked again."""
        return dataclasses.replace(self, **changes)

    def api_key(self) -> str:
        """The key from the environment; a local server (a base_url, not Azure) may go without one."""
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if self.url is None or self.azure:
            raise ConfigError(f"no API key: set the environment variable {self.api_key_env}")
        return LOCAL_PLACEHOLDER_KEY

    def client(self, api_key: str, *, asynchronous: bool = True, max_retries: int = 0, url: str | None = None) -> Any:
        """An OpenAI (or Azure) SDK client for `url` (default: the first server) with the client timeout."""
        import openai

        url = url or self.url
        if self.azure:
            azure_class = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
            return azure_class(
                azure_endpoint=str(url),
                api_key=api_key,
                api_version=self.api_version or DEFAULT_AZURE_API_VERSION,
                max_retries=max_retries,
                timeout=self.timeout_s,
            )
        client_class = openai.OpenAI if not asynchronous else openai.AsyncOpenAI
        return client_class(base_url=url, api_key=api_key, max_retries=max_retries, timeout=self.timeout_s)


_FIELDS = {f.name: f for f in dataclasses.fields(EndpointSettings)}


def _default(name: str) -> Any:
    default = _FIELDS[name].default
    return inspect.Parameter.empty if default is dataclasses.MISSING else default


def flat_options(
    only: Collection[str] | None = None, **defaults: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorates `__init__(self, settings: EndpointSettings, *, <own options>)` so that the backend can also be
    called as a stage calls it, `Backend(model, base_url=..., concurrency=..., <own options>)`: the endpoint keys
    build the settings (checked once), the rest go to `__init__`. `only`: the endpoint keys the backend takes
    (every field by default; the others keep their defaults); `defaults`: the backend's own defaults for some of
    them. The signature lists the flat keys (the cascade reads it to check a stage's keys and to forward the key
    named by `api_key_env`)."""
    names = [name for name in _FIELDS if only is None or name in only]
    unknown = (set(only or ()) | set(defaults)) - set(_FIELDS)
    if unknown:
        raise TypeError(f"EndpointSettings has no field {', '.join(sorted(unknown))}")

    def decorate(init: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(init).parameters.values())
        if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in own[2:]):
            raise TypeError(f"{init.__qualname__}: the options after the settings must be keyword-only")
        endpoint = [
            inspect.Parameter(
                name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD if name == "model" else inspect.Parameter.KEYWORD_ONLY,
                default=defaults.get(name, _default(name)),
                annotation=_FIELDS[name].type,
            )
            for name in names
        ]

        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            if len(args) > 1:
                raise TypeError(f"{type(self).__name__}() takes the model or an EndpointSettings, then keywords")
            given = {name: kwargs.pop(name) for name in names if name in kwargs}
            if args and isinstance(args[0], EndpointSettings):
                if given:
                    raise TypeError(f"give an EndpointSettings or {', '.join(given)}, not both")
                settings = args[0]
            else:
                if args:
                    if "model" in given:
                        raise TypeError(f"{type(self).__name__}() got the model twice")
                    given["model"] = args[0]
                if "model" not in given:
                    raise TypeError(f"{type(self).__name__}() needs a model")
                settings = EndpointSettings(**{**defaults, **given})
            init(self, settings, **kwargs)

        wrapper.__signature__ = inspect.Signature([own[0], *endpoint, *own[2:]])  # type: ignore[attr-defined]
        return wrapper

    return decorate
