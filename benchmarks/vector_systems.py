"""The vector suite's systems, one adapter each: ingest N documents, answer k-NN queries (same server).

Every index has the same layout: HNSW (M 16, EF_CONSTRUCTION 200, EF_RUNTIME = the suite's EF),
cosine, float32, 384 dims, a text field and a ``category`` tag. Peers are used as their docs
show: langchain-redis `RedisVectorStore.add_texts` / `similarity_search_by_vector` (its schema
as it builds it by default, only the HNSW attributes set), redisvl `SearchIndex.load` /
`query(VectorQuery)`. The raw writer pipelines HSETs of precomputed vectors: the server's own
limit. Raw FT.SEARCH queries sluice's index with the query sluice sends, through redis-py.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis as redis_py
from pydantic import SecretStr

from benchmarks.vectordata import FILTER_CATEGORY, ClusteredEmbeddings

NAMESPACE = "vbench"
INDEX = "bench"
M, EF_CONSTRUCTION = 16, 200
PIPELINE = 200  # HSETs per round trip in the raw writer


@dataclass(frozen=True)
class Data:
    ids: list[str]
    texts: list[str]
    metas: list[dict[str, Any]]
    vectors: np.ndarray  # float32, one row per document (for the raw writer and the exact answers)


def doc_number(doc_id: Any) -> int:
    text = doc_id.decode() if isinstance(doc_id, bytes) else str(doc_id)
    return int(text.rsplit("d", 1)[-1])


def used_memory(r: Any) -> int:
    return int(r.info("memory")["used_memory"])


FT_NAMES = {"sluice": f"{NAMESPACE}:vidx:{INDEX}:g1", "redisvl": "vrvl", "langchain": "vlc"}


def count(r: Any, system: str) -> int | None:
    """Documents in a system's index (a check that every system indexed everything)."""
    name = FT_NAMES.get(system)
    if name is None:
        return None
    info = r.execute_command("FT.INFO", name)
    if isinstance(info, dict):
        return int(info.get(b"num_docs", info.get("num_docs", 0)))
    fields = dict(zip(info[::2], info[1::2], strict=False))
    return int(fields.get(b"num_docs", fields.get("num_docs", 0)))


def embedder_kwargs(opts: Any) -> dict[str, Any]:
    return {"dims": opts.dims, "centres": opts.centres, "spread": opts.spread}


# --- sluice ---------------------------------------------------------------------------------------
def sluice_settings(url: str, opts: Any, budget_ms: float | None = None) -> Any:
    """`budget_ms`: the workers' `write_budget_ms` (None: sluice's default)."""
    from sluice.settings import ComponentSpec, RedisSettings, Settings, WorkerSettings

    spec = ComponentSpec(
        import_path="benchmarks.vectordata:ClusteredEmbeddings", kwargs=embedder_kwargs(opts)
    )
    return Settings(
        namespace=NAMESPACE,
        redis=RedisSettings(url=SecretStr(url)),
        worker=WorkerSettings(
            batch_size=opts.worker_batch,
            concurrency=opts.concurrency,
            block_ms=50,
            kinds=["index"],
            **({} if budget_ms is None else {"write_budget_ms": budget_ms}),
        ),
        embedders={"bench": spec},
    )


def sluice_schema(opts: Any, backend_dtype: str = "float32") -> Any:
    from sluice.vectors import IndexSchema, MetadataField

    return IndexSchema.for_dims(
        opts.dims, MetadataField(name="category", type="tag"),
        m=M, ef_construction=EF_CONSTRUCTION, ef_runtime=opts.ef, dtype=backend_dtype,
    )  # fmt: skip


def sluice_worker(url: str, index: int, stop: Any, opts: Any, budget_ms: float | None) -> None:
    from sluice_workers.runtime.process import run_process

    run_process(sluice_settings(url, opts, budget_ms), index, stop)


class SluiceWorkers:
    """`opts.workers` spawned `sluice worker` processes (run_process with sluice's own handlers)."""

    def __init__(self, url: str, opts: Any, budget_ms: float | None = None) -> None:
        ctx = mp.get_context("spawn")
        self.stop = ctx.Event()
        self.procs = [
            ctx.Process(target=sluice_worker, args=(url, i, self.stop, opts, budget_ms))
            for i in range(opts.workers)
        ]

    def __enter__(self) -> SluiceWorkers:
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
                p.join(10)


class Sluice:
    name = "sluice"

    def __init__(
        self, url: str, opts: Any, *, index: str = INDEX, backend: str = "search", dtype: str = "float32",
        app_vectors: bool = False,
    ) -> None:  # fmt: skip
        """`app_vectors`: the app embeds and jobs carry vectors (the memory case); else the workers embed."""
        from sluice.facade.client import Client

        self.client = Client(sluice_settings(url, opts))
        self.opts = opts
        embedder = None if app_vectors else "bench"
        self.store = self.client.vectorstore(
            index, "bench" if embedder else ClusteredEmbeddings(**embedder_kwargs(opts)),
            schema=sluice_schema(opts, dtype), backend=backend, embedder=embedder,  # type: ignore[arg-type]
            batch_size=opts.job_docs, wait_timeout=600.0,
        )  # fmt: skip

    def warm_up(self) -> None:
        """Workers started and the index opened before any timing."""
        self.store.add_texts(["warm up"], [{"category": "warm"}], ids=["warm"], wait=True)
        self.store.delete(["warm"], wait=True)

    def ingest(self, data: Data, chunk: int) -> tuple[float, float]:
        """(seconds in add_texts, seconds until every document is applied)."""
        app = 0.0
        t0 = time.perf_counter()
        for s in range(0, len(data.ids), chunk):
            a = time.perf_counter()
            self.store.add_texts(
                data.texts[s : s + chunk], data.metas[s : s + chunk], ids=data.ids[s : s + chunk]
            )
            app += time.perf_counter() - a
        self.store.flush()  # read-your-writes: returns once the workers applied every job
        return app, time.perf_counter() - t0

    def reset(self) -> None:
        """Drop the index and forget the embeddings (a next round must embed again)."""
        from sluice.vectors.backfill import scan_keys

        self.store.session.drop()
        for keys in scan_keys(self.client.redis, False, f"{NAMESPACE}:emb:*"):
            self.client.redis.delete(*keys)
        self.close()

    def enqueue_only(self, data: Data, chunk: int) -> float:
        """Seconds `add_texts` takes for every document while no worker runs (jobs then removed)."""
        store = self.client.vectorstore(
            "appcost", "bench", schema=sluice_schema(self.opts), backend="search",
            batch_size=self.opts.job_docs, read_your_writes=False,
        )  # fmt: skip
        store.session.open(lambda: self.opts.dims)
        t0 = time.perf_counter()
        for s in range(0, len(data.ids), chunk):
            store.add_texts(data.texts[s : s + chunk], data.metas[s : s + chunk], ids=data.ids[s : s + chunk])
        seconds = time.perf_counter() - t0
        self.client.redis.delete(*self.client.keys.streams("index"))
        store.session.drop()
        return seconds

    def query(self, vector: np.ndarray, k: int, filtered: bool) -> list[int]:
        from sluice.vectors import Tag

        flt = Tag("category") == FILTER_CATEGORY if filtered else None
        return [
            # langchain-redis returns no ids here: the number is in the text (`document 0000042`)
            int(d.page_content.rsplit(" ", 1)[-1])
            for d in self.store.similarity_search_by_vector(vector.tolist(), k=k, filter=flt)
        ]

    def close(self) -> None:
        self.client.close()


class RawSearch:
    """FT.SEARCH on sluice's index, as sluice sends it, through redis-py directly (the floor)."""

    name = "raw"

    def __init__(self, url: str, opts: Any) -> None:
        from sluice.keys import Keys

        self.r = redis_py.Redis.from_url(url, protocol=2)
        self.index = Keys(NAMESPACE).vector_index(INDEX, 1)
        self.ef = opts.ef

    def query(self, vector: np.ndarray, k: int, filtered: bool) -> list[int]:
        flt = f"@category:{{{FILTER_CATEGORY}}}" if filtered else "*"
        reply = self.r.execute_command(
            "FT.SEARCH", self.index, f"({flt})=>[KNN {k} @embedding $vec EF_RUNTIME $ef AS __dist]",
            "PARAMS", 4, "vec", vector.tobytes(), "ef", self.ef, "SORTBY", "__dist", "ASC",
            "RETURN", 4, "_id", "text", "_meta", "__dist", "LIMIT", 0, k, "DIALECT", 2,
        )  # fmt: skip
        return [doc_number(dict(zip(f[::2], f[1::2], strict=True))[b"_id"]) for f in reply[2::2]]

    def close(self) -> None:
        self.r.close()


class RawWriter:
    """Pipelined HSETs of precomputed vectors into an index like sluice's: the server's limit."""

    name = "raw"

    def __init__(self, url: str, opts: Any) -> None:
        from sluice.vectors.search import schema_args

        self.r = redis_py.Redis.from_url(url, protocol=2)
        args = schema_args(sluice_schema(opts))
        self.r.execute_command("FT.CREATE", "vraw", "ON", "HASH", "PREFIX", 1, "vraw:", "SCHEMA", *args)

    def ingest(self, data: Data, chunk: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        for s in range(0, len(data.ids), PIPELINE):
            pipe = self.r.pipeline(transaction=False)
            for i in range(s, min(len(data.ids), s + PIPELINE)):
                fields = {"_id": data.ids[i], "text": data.texts[i], "category": data.metas[i]["category"]}
                pipe.hset(f"vraw:{data.ids[i]}", mapping={**fields, "embedding": data.vectors[i].tobytes()})
            pipe.execute()
        seconds = time.perf_counter() - t0
        return seconds, seconds

    def drop(self) -> None:
        self.r.execute_command("FT.DROPINDEX", "vraw", "DD")

    def close(self) -> None:
        self.r.close()


# --- peers ----------------------------------------------------------------------------------------
def _fields(opts: Any, extra: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    vector = {
        "dims": opts.dims, "distance_metric": "cosine", "algorithm": "hnsw", "datatype": "float32",
        "m": M, "ef_construction": EF_CONSTRUCTION, "ef_runtime": opts.ef,
    }  # fmt: skip
    return [
        {"name": "text", "type": "text"},
        {"name": "embedding", "type": "vector", "attrs": vector},
        *extra,
    ]


class RedisVL:
    name = "redisvl"

    def __init__(self, url: str, opts: Any, *, ef: int | None = None) -> None:
        from redisvl.index import SearchIndex

        self.r = redis_py.Redis.from_url(url)
        schema = {
            "index": {"name": "vrvl", "prefix": "vrvl", "storage_type": "hash"},
            "fields": _fields(opts, [{"name": "id", "type": "tag"}, {"name": "category", "type": "tag"}]),
        }
        self.index = SearchIndex.from_dict(schema, redis_client=self.r)
        self.embedder = ClusteredEmbeddings(**embedder_kwargs(opts))
        self.ef = opts.ef if ef is None else ef

    def ingest(self, data: Data, chunk: int) -> tuple[float, float]:
        self.index.create(overwrite=True, drop=True)
        t0 = time.perf_counter()
        for s in range(0, len(data.ids), chunk):
            vectors = self.embedder.matrix(data.texts[s : s + chunk])  # users embed before load()
            records = [
                {"id": data.ids[i], "text": data.texts[i], "category": data.metas[i]["category"],
                 "embedding": vectors[i - s].tobytes()}
                for i in range(s, min(len(data.ids), s + chunk))
            ]  # fmt: skip
            self.index.load(records, id_field="id")
        seconds = time.perf_counter() - t0
        return seconds, seconds

    def query(self, vector: np.ndarray, k: int, filtered: bool) -> list[int]:
        from redisvl.query import VectorQuery
        from redisvl.query.filter import Tag

        q = VectorQuery(
            vector.tolist(), "embedding", return_fields=["id", "text", "category"], num_results=k,
            ef_runtime=self.ef, filter_expression=(Tag("category") == FILTER_CATEGORY) if filtered else None,
        )  # fmt: skip
        return [doc_number(hit["id"]) for hit in self.index.query(q)]

    def close(self) -> None:
        self.r.close()


class LangchainRedis:
    name = "langchain"

    def __init__(self, url: str, opts: Any) -> None:
        from langchain_redis import RedisConfig, RedisVectorStore
        from redisvl.schema import IndexSchema

        self.r = redis_py.Redis.from_url(url)
        # the schema langchain-redis builds by default (with _index_name, which it then filters on),
        # with the suite's HNSW attributes: RedisConfig has no setting for M / EF
        extra = [
            {"name": "_index_name", "type": "text"},
            {"name": "_metadata_json", "type": "text"},
            {"name": "category", "type": "tag", "attrs": {"separator": "|"}},
        ]
        schema = IndexSchema.from_dict(
            {
                "index": {"name": "vlc", "prefix": "vlc:", "storage_type": "hash"},
                "fields": _fields(opts, extra),
            }
        )
        config = RedisConfig(schema=schema, redis_client=self.r, embedding_dimensions=opts.dims)
        self.store = RedisVectorStore(ClusteredEmbeddings(**embedder_kwargs(opts)), config=config)

    def ingest(self, data: Data, chunk: int) -> tuple[float, float]:
        t0 = time.perf_counter()
        for s in range(0, len(data.ids), chunk):
            self.store.add_texts(
                data.texts[s : s + chunk], data.metas[s : s + chunk], keys=data.ids[s : s + chunk]
            )
        seconds = time.perf_counter() - t0
        return seconds, seconds

    def query(self, vector: np.ndarray, k: int, filtered: bool) -> list[int]:
        from redisvl.query.filter import Tag

        flt = (Tag("category") == FILTER_CATEGORY) if filtered else None
        return [
            # langchain-redis returns no ids here: the number is in the text (`document 0000042`)
            int(d.page_content.rsplit(" ", 1)[-1])
            for d in self.store.similarity_search_by_vector(vector.tolist(), k=k, filter=flt)
        ]

    def close(self) -> None:
        self.r.close()
