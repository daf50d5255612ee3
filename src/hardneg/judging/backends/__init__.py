"""Judge backends, one module each, all behind `hardneg.judging.base.Judge`; the registry imports them by name
(`hardneg.judging.registry`), so a backend's heavy dependencies load only when it is used.

- `embedding`: cosine of MiniLM (or any sentence-transformers model) embeddings, pointwise.
- `llama_pointwise`: P(yes) of a local GGUF (llama-cpp-python), pointwise.
- `llama_listwise`: a generated `<verdict>` of a local GGUF; `llama_answer`: its answer span per negative.
- `transformers_pointwise`: the llama.cpp pointwise judge's prompts and scores in torch (GPU).
- `openai_chat`: any OpenAI-compatible chat server, listwise, concurrent, with retries, limits and a budget.
- `openai_pointwise`, `openai_answer`: the same server, one request per negative (scores, answer spans).
- `openai_batch`: the OpenAI Batch API.

What they share lives beside them: `endpoint_settings` (the server side of every API judge, one object built from
a stage's flat keys), `endpoints` (a pool of servers), `ratelimit`, `llama_base` (the llama.cpp judges' model) and
`pointwise_scoring` (the local pointwise judges' prompts and scores).
"""
