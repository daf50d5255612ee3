"""EndpointSettings: the server side every API judge shares, built and checked once from a stage's flat keys.

The API judges keep their store keys (`config()`, pinned below as they were before the settings existed), their
YAML keys (the signature the cascade reads) and their messages.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

import pytest

from hardneg.errors import ConfigError
from hardneg.judging import build_judge, parse_config
from hardneg.judging.backends.endpoint_settings import (
    AUTO_TIMEOUT_CEILING,
    CONNECTION_OPTIONS,
    LOCAL_PLACEHOLDER_KEY,
    EndpointSettings,
    flat_options,
)
from hardneg.judging.backends.openai_answer import OpenAIAnswerJudge
from hardneg.judging.backends.openai_batch import BatchJudge
from hardneg.judging.backends.openai_chat import OpenAIJudge
from hardneg.judging.backends.openai_pointwise import OpenAIPointwiseJudge
from hardneg.judging.base import config_hash
from hardneg.judging.registry import resolve_backend

API_BACKENDS = ("openai", "openai-pointwise", "openai-answer", "openai-batch")
SETTINGS_KEYS = [
    "model", "base_url", "base_urls", "api_key_env", "azure", "api_version", "timeout", "max_retries", "concurrency",
    "rpm", "tpm", "endpoint_cooldown", "backoff_base", "backoff_max", "retry_after_max", "max_timeouts", "seed",
]  # fmt: skip

# (backend, stage params, config_hash (the store key), sha256 of the config's JSON in its key order): computed with
# the constructors of before EndpointSettings. Endpoint keys given here must not change any of them.
# fmt: off
PINNED_KEYS: list[tuple[str, dict[str, Any], str, str]] = [
    ("openai", {"model": "gpt-4o-mini"}, "7fac5b62fd6a8593", "dd8ad32fc1afd3ca"),
    ("openai", {"model": "gpt-4o", "template": "stage2", "temperature": 0.0, "max_tokens": 512, "json_schema": True,
                "max_negatives_per_call": 10, "permutations": 3, "base_urls": ["http://a/v1", "http://b/v1"],
                "concurrency": 3, "rpm": 100, "tpm": 1000, "timeout": 30, "max_retries": 2, "seed": 7,
                "backoff_base": 0.1, "backoff_max": 2, "retry_after_max": 9, "endpoint_cooldown": 5,
                "max_timeouts": 4},
     "f334dcb038c27ff1", "7999fd8a1d0c87d9"),
    ("openai", {"model": "m", "json_schema": "json_object", "azure": True, "base_url": "https://x.openai.azure.com",
                "api_version": "2024-01-01"},
     "3d26115d307520d3", "7b9dfcfd5a436587"),
    ("openai-pointwise", {"model": "m"}, "6a4a6aab7a97f32e", "9b14e88fecc20158"),
    ("openai-pointwise", {"model": "m", "scale": "graded", "max_passage_chars": 900, "top_logprobs": 5,
                          "base_url": "http://a/v1", "timeout": 12},
     "fbf2b489a01218f7", "2e1a316462cd2a52"),
    ("openai-answer", {"model": "m"}, "183dd673d229d616", "d3f06ec9b0e586af"),
    ("openai-answer", {"model": "m", "max_tokens": 64, "max_passage_chars": 700, "base_urls": ["http://a/v1"]},
     "b6c9b0d7091c0698", "b4ac71fb8dbd2990"),
    ("openai-batch", {"model": "gpt-4o-mini"}, "7c58da9bfd7a9400", "c7ee6809e64ae378"),
    ("openai-batch", {"model": "gpt-4o", "template": "compact", "temperature": 0.0, "max_tokens": 100,
                      "json_schema": "json_schema", "max_negatives_per_call": 5, "timeout": 100.0},
     "54f186f16e0646de", "3e5ba37a1e9fcda4"),
]
# fmt: on


def ordered_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config).encode("utf-8")).hexdigest()[:16]


@pytest.mark.parametrize(("backend", "params", "key", "digest"), PINNED_KEYS)
def test_the_store_keys_are_those_of_before(backend: str, params: dict[str, Any], key: str, digest: str) -> None:
    config = build_judge(backend, **params).config()
    assert config_hash(config) == key
    assert ordered_digest(config) == digest  # the same dict, key for key, in the same order


def test_the_endpoint_is_not_part_of_the_key() -> None:
    base = build_judge("openai", model="m").config()
    for endpoint in (
        {"base_url": "http://127.0.0.1:1/v1", "concurrency": 1, "timeout": 5, "max_retries": 0, "seed": 3},
        {"base_urls": ["http://a/v1", "http://b/v1"], "rpm": 10, "tpm": 100, "endpoint_cooldown": 1.0},
        {"api_key_env": "OTHER_KEY", "backoff_base": 0.1, "backoff_max": 1, "retry_after_max": 2, "max_timeouts": 5},
    ):
        assert build_judge("openai", model="m", **endpoint).config() == base, endpoint


def test_the_flat_keys_build_the_settings_once() -> None:
    judge = OpenAIJudge("m", base_url="http://h/v1", concurrency=3, timeout=20, template="compact", json_schema=True)
    settings = judge.settings
    assert settings == EndpointSettings(model="m", base_url="http://h/v1", concurrency=3, timeout=20.0)
    assert (judge.model, judge.base_urls, judge.template.name, judge.json_mode) == (
        "m", ["http://h/v1"], "compact", "json_schema",
    )  # fmt: skip
    # a built settings object is taken as it is, by every API judge
    for cls in (OpenAIJudge, OpenAIPointwiseJudge, OpenAIAnswerJudge, BatchJudge):
        assert cls(settings).settings is settings
    assert OpenAIJudge(settings, template="compact").config() == judge.config() | {"json_schema": False}
    with pytest.raises(TypeError, match="not both"):
        OpenAIJudge(settings, concurrency=2)
    with pytest.raises(TypeError, match="model twice"):
        OpenAIJudge("m", model="n")
    with pytest.raises(TypeError, match="needs a model"):
        OpenAIJudge(base_url="http://h/v1")
    with pytest.raises(TypeError, match="keywords"):
        OpenAIJudge("m", "http://h/v1")  # no more positional endpoint keys: they would bind silently elsewhere
    with pytest.raises(TypeError, match="concurency"):
        OpenAIJudge("m", concurency=2)


def test_checks_name_the_key() -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"base_urls": "http://a/v1"}, "base_urls must be a non-empty list of URLs, not 'http://a/v1'"),
        ({"base_urls": []}, "base_urls must be a non-empty list"),
        ({"base_urls": ["http://a/v1", ""]}, "base_urls must be a non-empty list"),
        ({"base_url": "http://a/v1", "base_urls": ["http://b/v1"]}, "give base_url (one server) or base_urls"),
        ({"concurrency": 0}, "concurrency must be >= 1, got 0"),
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
        ({"azure": True}, "azure: set base_url to the resource endpoint"),
        ({"timeout": "soon"}, "timeout must be 'auto' or a number of seconds > 0, not 'soon'"),
        ({"timeout": 0}, "timeout must be 'auto' or a number of seconds > 0, not 0"),
        ({"max_timeouts": 0}, "max_timeouts must be >= 1, got 0"),
    ]
    for options, message in bad:
        with pytest.raises(ConfigError) as caught:
            EndpointSettings(model="m", **options)
        assert message in str(caught.value), options
        for backend in API_BACKENDS:
            if backend == "openai-batch" and not set(options) <= set(CONNECTION_OPTIONS):
                continue
            with pytest.raises(ConfigError) as caught:
                build_judge(backend, model="m", **options)
            assert message in str(caught.value), (backend, options)


def test_yaml_forms_are_stored_in_one_form() -> None:
    settings = EndpointSettings(model="m", base_urls=["http://a/v1", "http://b/v1"], timeout=30, backoff_max=2)
    assert settings.base_urls == ("http://a/v1", "http://b/v1") and settings.url == "http://a/v1"
    assert settings.urls == ["http://a/v1", "http://b/v1"]
    assert settings.timeout == 30.0 and isinstance(settings.timeout, float) and not settings.auto_timeout
    assert isinstance(settings.backoff_max, float) and settings.timeout_s == 30.0
    auto = EndpointSettings(model="m")
    assert auto.auto_timeout and auto.timeout_s == AUTO_TIMEOUT_CEILING and auto.urls == [None]
    assert auto.replace(max_timeouts=3).max_timeouts == 3 and auto.max_timeouts == 2
    with pytest.raises(ConfigError, match="max_timeouts"):
        auto.replace(max_timeouts=0)
    with pytest.raises(AttributeError):
        auto.concurrency = 2  # type: ignore[misc]  # frozen: built and checked once


def test_the_signature_shows_every_yaml_key() -> None:
    """The cascade checks a stage's keys against the backend's signature, and forwards the key `api_key_env` names."""
    for backend in ("openai", "openai-pointwise", "openai-answer"):
        names = list(inspect.signature(resolve_backend(backend)).parameters)
        assert names[: len(SETTINGS_KEYS)] == SETTINGS_KEYS and "budget" in names, backend
        assert not any(p.kind is p.VAR_KEYWORD for p in inspect.signature(resolve_backend(backend)).parameters.values())
    assert set(inspect.signature(OpenAIJudge).parameters) >= {"template", "json_schema", "permutations"}
    assert set(inspect.signature(OpenAIPointwiseJudge).parameters) >= {"scale", "top_logprobs", "max_passage_chars"}
    batch = inspect.signature(BatchJudge).parameters
    assert [n for n in batch if n in SETTINGS_KEYS] == list(CONNECTION_OPTIONS)  # no pool, limits or retry policy
    assert batch["timeout"].default == 600.0 and "budget" not in batch and "state_db" in batch
    # a typo in a stage is refused when the config is read, naming the key
    stage = {"name": "s", "backend": "openai-pointwise", "params": {"model": "m", "concurency": 2}, "t_better": 0.5}
    with pytest.raises(ConfigError, match="openai-pointwise takes no parameter 'concurency'"):
        parse_config({"stages": [stage]})
    stage = {"name": "s", "backend": "openai-batch", "params": {"model": "m", "concurrency": 2}}
    with pytest.raises(ConfigError, match="openai-batch takes no parameter 'concurrency'"):
        parse_config({"stages": [stage]})
    # keys of the online judges' retry policy are taken by every online judge, not only the listwise one
    for backend in ("openai-pointwise", "openai-answer"):
        params = {"model": "m", "backoff_base": 0.1, "max_timeouts": 3, "retry_after_max": 5}
        parse_config({"stages": [{"name": "s", "backend": backend, "params": params, "t_better": 0.5}]})
        assert build_judge(backend, **params).settings.max_timeouts == 3


def test_flat_options_refuses_what_it_cannot_flatten() -> None:
    with pytest.raises(TypeError, match="no field colour"):
        flat_options(["model", "colour"])

    with pytest.raises(TypeError, match="keyword-only"):

        @flat_options()
        def __init__(self: Any, settings: EndpointSettings, template: str = "x") -> None: ...


def test_the_cascade_bound_on_timeouts_replaces_the_stage_one() -> None:
    judge = build_judge("openai", model="m", max_timeouts=4)
    assert judge.max_timeouts == 4 and judge._timeouts_of("q") == {"seen": 0, "left": 4}
    judge.max_timeouts = 2  # what the cascade runner does with its own `max_timeouts`
    assert judge.settings.max_timeouts == 2 and judge._timeouts_of("q") == {"seen": 0, "left": 2}
    with pytest.raises(ConfigError, match="max_timeouts"):
        judge.max_timeouts = 0


def test_the_key_comes_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-settings-0123456789"
    monkeypatch.setenv("HARDNEG_SETTINGS_KEY", secret)
    settings = EndpointSettings(model="m", api_key_env="HARDNEG_SETTINGS_KEY", base_url="http://127.0.0.1:9/v1")
    assert settings.api_key() == secret
    # the settings hold the variable's name, never its value
    assert secret not in repr(settings) and "key" not in {f for f in SETTINGS_KEYS if f != "api_key_env"}
    judge = OpenAIJudge(settings)
    assert secret not in json.dumps(judge.config()) and judge._key is None  # read when a client is made
    client = judge.make_client(asynchronous=False, max_retries=2)
    try:
        assert judge._key == secret and client.api_key == secret and client.max_retries == 2
        assert str(client.base_url).rstrip("/") == "http://127.0.0.1:9/v1" and client.timeout == AUTO_TIMEOUT_CEILING
    finally:
        client.close()
    assert judge._scrub(f"server said {secret}") == "server said ***"
    monkeypatch.delenv("HARDNEG_SETTINGS_KEY")
    assert settings.api_key() == LOCAL_PLACEHOLDER_KEY  # a local server goes without
    remote = {"model": "m", "api_key_env": "HARDNEG_SETTINGS_KEY"}
    for settings in (EndpointSettings(**remote), EndpointSettings(**remote, azure=True, base_url="https://x")):
        with pytest.raises(ConfigError, match="set the environment variable HARDNEG_SETTINGS_KEY"):
            settings.api_key()


def test_azure_and_pool_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARDNEG_SETTINGS_KEY", "sk-azure-test")
    azure = EndpointSettings(
        model="m", api_key_env="HARDNEG_SETTINGS_KEY", azure=True, base_url="https://x.openai.azure.com", timeout=9
    )
    client = azure.client(azure.api_key(), asynchronous=False)
    try:
        assert type(client).__name__ == "AzureOpenAI" and client.timeout == 9.0 and client.max_retries == 0
        assert "2024-10-21" in str(client._custom_query)  # the default api_version
    finally:
        client.close()
    judge = OpenAIJudge("m", base_urls=["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"], concurrency=2)

    async def pool_urls() -> tuple[list[str], int]:
        pool = judge._pool()
        try:
            return [str(e.client.base_url).rstrip("/") for e in pool.endpoints], pool.slots
        finally:
            await pool.close()

    import asyncio

    assert asyncio.run(pool_urls()) == (["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"], 4)
