"""Real local HTTP services for testing and benchmarking API judges without a paid API.

- `FaultProxy` (`support.proxy`): sits between a client and an OpenAI-compatible server and fails a
  chosen, seeded fraction of chat calls (500, 429 + Retry-After, hangs, dropped connections, truncated and
  garbage completions), counting every request.
- `BatchStandIn` (`support.batch_server`): the OpenAI files + batches endpoints, executing each batch
  against a real chat server.
- `LlamaServer` (`support.llama_server`): starts llama-cpp-python's OpenAI-compatible server on a free
  port and waits until it answers.

All bind to 127.0.0.1 only.

Test helpers that several test modules share (imported by module, never re-exported here):
`support.lexical_judges` (fast deterministic judges for cascade tests, registered on import),
`support.judged_sample` (the shipped sample judged in the reference implementation's layout),
`support.api_judge` (the served model's name, small real instances), `support.relabel_cases` (hand-built
instances and verdicts) and `support.tiny_beir` (a tiny hand-made BEIR folder).
"""

from __future__ import annotations

from support.batch_server import BatchStandIn
from support.http import LocalServer
from support.llama_server import LlamaServer, free_port
from support.proxy import FaultPlan, FaultProxy

__all__ = ["BatchStandIn", "FaultPlan", "FaultProxy", "LlamaServer", "LocalServer", "free_port"]
