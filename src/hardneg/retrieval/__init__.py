"""Retrieval: encoders, embeddings, BM25, dense search and rank fusion, shared by mining and evaluation."""

from hardneg.retrieval.bm25 import BM25Index, bm25_search
from hardneg.retrieval.dense import dense_search
from hardneg.retrieval.embed import embedding_cache_path, encode_texts
from hardneg.retrieval.encoders import BACKENDS, EncoderBackend, check_backend, load_encoder, resolve_backend
from hardneg.retrieval.fusion import rank_average, rrf_fuse
from hardneg.retrieval.keys import model_key
from hardneg.retrieval.retriever import METHODS, Method, Retriever, search

__all__ = [
    "BACKENDS",
    "METHODS",
    "BM25Index",
    "EncoderBackend",
    "Method",
    "Retriever",
    "bm25_search",
    "check_backend",
    "dense_search",
    "embedding_cache_path",
    "encode_texts",
    "load_encoder",
    "model_key",
    "rank_average",
    "resolve_backend",
    "rrf_fuse",
    "search",
]
