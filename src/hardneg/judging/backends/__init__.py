"""Judge backends, one module each, all behind `hardneg.judging.base.Judge`; the registry imports them by name
(`hardneg.judging.registry`), so a backend's heavy dependencies load only when it is used.

- `embedding`: cosine of MiniLM (or any sentence-transformers model) embeddings, pointwise.
- `llama_pointwise`: P(yes) of a local GGUF (llama-cpp-python), pointwise.
- `llama_listwise`: a generated `<verdict>` of a local GGUF.
- `openai_chat`: any OpenAI-compatible chat server, listwise, concurrent, with retries, limits and a budget.
- `openai_batch`: the OpenAI Batch API.
"""
