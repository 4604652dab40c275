"""LangGraph `BaseStore` over sluice: puts return at once, workers embed and index.

A put or delete is a ``store`` job routed by namespace (a namespace's writes apply in order, once).
With ``index={"dims": ..., "embed": ...}`` the item's indexed fields (``fields``, or the put's
``index=[...]``; ``index=False`` for none) are embedded: by the workers, in batches through the
embeddings cache, when ``embed`` names a settings embedder; in the app when it is an `Embeddings`
instance or a function. A search with ``query`` is a Vector Sets query (Redis 8) per namespace under
the prefix, with ``filter`` inside it (VSIM ... FILTER), so a filtered search finds ``limit`` items
whenever that many match; without ``query`` it lists the matching items, newest update first
(``updated_at`` is the write's stream entry time, in milliseconds: puts to different namespaces
within one millisecond tie and are listed in (namespace, key) order).
``ttl={"default_ttl": minutes, "refresh_on_read": True}`` follows LangGraph's `TTLConfig` (item
TTLs need Redis >= 7.4). Reads wait for every write to the namespaces they read that Redis
accepted, from any process (`sluice.facade.consistency`); ``read_your_writes=False`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
)

from sluice.errors import CapabilityMissing, ConfigError, InvalidArgument
from sluice.facade import store_codec as codec
from sluice.facade.consistency import ReplicaReads
from sluice.jobs.models import StorePayload
from sluice.stores import items as store
from sluice.transport.runner import AsyncRunner, Call, Runner

if TYPE_CHECKING:
    from sluice.core import Core

PAGE = 1000  # namespaces per index read
EF = 100


class SluiceStore(BaseStore):
    """Use `client.store(index=..., ttl=...)`; pass it to `StateGraph.compile(store=...)`."""

    supports_ttl = True

    def __init__(
        self,
        client: Core,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        read_your_writes: bool = True,
        wait_timeout: float | None = None,
        ef_runtime: int = EF,
    ) -> None:
        self.client = client
        self.ttl_config = ttl
        self.index_config = index
        self.ef_runtime = ef_runtime
        self.embedder: str | None = None  # a settings name: the workers embed
        self.embeddings: Embeddings | None = None  # the app embeds puts; queries always
        self.fields = codec.Fields.of(None)
        if index is not None:
            dims = index.get("dims")
            if not isinstance(dims, int) or dims < 1:
                raise ConfigError("index needs 'dims': the number of dimensions of the embeddings")
            embed = index.get("embed")
            if isinstance(embed, str):
                from sluice.embeddings.registry import EmbedderRegistry

                registry = EmbedderRegistry(client.settings.embedders)
                registry.spec(embed)  # a settings name, or a ConfigError naming the known ones
                self.embedder = embed
                self.embeddings = registry.get(embed)
            elif embed is None:
                raise ConfigError("index needs 'embed': a settings embedder name, or an Embeddings instance")
            else:
                self.embeddings = ensure_embeddings(embed)
            self.fields = codec.Fields.of(index.get("fields"))
        self.reads = ReplicaReads(client, "store", enabled=read_your_writes, timeout=wait_timeout)
        self._runner: Runner | None = None
        self._arunner: AsyncRunner | None = None

    # --- plumbing ----------------------------------------------------------------------------
    def _sync_runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.client.redis, cluster=self.client.capabilities.cluster)
        return self._runner

    async def _async_runner(self) -> AsyncRunner:
        """The running event loop's runner (each loop has its own connections)."""
        redis = self.client.async_redis
        if self._arunner is None or self._arunner.redis is not redis:
            caps = await self.client.acapabilities()
            self._arunner = AsyncRunner(redis, cluster=caps.cluster)
        return self._arunner

    def _refresh(self, asked: bool | None) -> bool:
        if asked is not None:
            return asked
        return bool((self.ttl_config or {}).get("refresh_on_read", True))

    def _check_ttl(self, ops: Sequence[PutOp]) -> None:
        if any(op.ttl for op in ops if op.value is not None):
            caps = self.client.capabilities
            if caps.version < (7, 4):
                raise CapabilityMissing(
                    "store item TTLs need hash field expiry (Redis >= 7.4); this server is Redis "
                    f"{'.'.join(map(str, caps.version))}: upgrade it or put without ttl"
                )

    def _texts(self, op: PutOp, value: dict[str, Any]) -> list[tuple[str, str]]:
        if self.index_config is None or op.index is False:
            return []
        fields = self.fields if op.index is None else codec.Fields.of(op.index)
        return fields.texts(value)

    def _search_plan(self, op: SearchOp, vector: list[float] | None) -> tuple[str, int]:
        """(VSIM filter expression, how many items per namespace) of a search."""
        dims = (self.index_config or {}).get("dims")
        if vector is not None and len(vector) != dims:
            raise ConfigError(
                f"the query embedding has {len(vector)} dimensions, the store's index {dims}; "
                "embed queries with the embedder the items were indexed with"
            )
        try:
            expression = store.vector_filter(op.filter) if vector is not None else ""
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return expression, max(0, op.offset) + max(0, op.limit)

    def _read_call(self, op: SearchOp, namespace: tuple[str, ...], vector: list[float] | None) -> Call:
        expression, count = self._search_plan(op, vector)
        keys, refresh = self.client.keys, self._refresh(op.refresh_ttl)
        if vector is None:
            return store.list_call(keys, namespace, op.filter, count, refresh)
        return store.knn_call(keys, namespace, vector, count, expression, self.ef_runtime, refresh)

    @staticmethod
    def _page(op: SearchOp, found: list[store.StoredItem], vector: bool) -> list[SearchItem]:
        ordered = codec.best_first(found) if vector else codec.newest_first(found)
        start = max(0, op.offset)
        return [codec.to_search_item(s) for s in ordered[start : start + max(0, op.limit)]]

    # --- sync --------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        todo = list(ops)
        results: list[Result] = [None] * len(todo)
        for i, op in enumerate(todo):  # reads first: a batch's reads do not see its own puts
            if isinstance(op, GetOp):
                results[i] = self._get(op)
            elif isinstance(op, SearchOp):
                results[i] = self._search(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = self._list_namespaces(op)
            elif not isinstance(op, PutOp):
                raise InvalidArgument(f"unknown store operation: {type(op).__name__}")
        puts = _last_puts(todo)
        if puts:
            self._check_ttl(puts)
            payloads = [self._payload(op) for op in puts]
            handles = self.client.producer.enqueue_many(
                payloads, notify=self.reads.enabled, track=self.reads.enabled
            )
            for p, h in zip(payloads, handles, strict=True):
                self.reads.wrote(p.target_key(), [h])
        return results

    def _payload(self, op: PutOp) -> StorePayload:
        if op.value is None:
            return codec.delete_payload(op)
        value = codec.checked_value(op)
        texts = self._texts(op, value)
        vectors = None
        if texts and self.embedder is None:
            assert self.embeddings is not None
            vectors = self.embeddings.embed_documents([t for _, t in texts])
        return codec.put_payload(op, value, texts, vectors, self.embedder)

    def _get(self, op: GetOp) -> Item | None:
        call = store.get_call(self.client.keys, op.namespace, [op.key], self._refresh(op.refresh_ttl))
        (reply,) = self.reads.read(self._sync_runner(), codec.target(op.namespace), [call])
        (found,) = store.parse_items(reply, op.namespace)
        return codec.to_item(found) if found else None

    def _namespaces(self, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        after = ""
        while True:
            call = store.namespaces_call(self.client.keys, prefix, after, PAGE)
            (reply,) = self._sync_runner().run([call])
            names = [bytes(n).decode() for n in reply]
            out += [store.decode_namespace(n) for n in names]
            if len(names) < PAGE:
                return out
            after = names[-1]

    def _search(self, op: SearchOp) -> list[SearchItem]:
        vector = None
        if op.query and self.embeddings is not None:
            vector = self.embeddings.embed_query(op.query)
        if self.reads.enabled:
            self.reads.settle_own()  # a namespace this object just created may not be indexed yet
        namespaces = self._namespaces(op.namespace_prefix)
        calls = [self._read_call(op, ns, vector) for ns in namespaces]
        targets = [codec.target(ns) for ns in namespaces]
        replies = self.reads.read_all(self._sync_runner(), targets, calls)
        found = [s for ns, r in zip(namespaces, replies, strict=True) for s in store.parse_items(r, ns) if s]
        return self._page(op, found, vector is not None)

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        if self.reads.enabled:
            self.reads.settle_own()
        listed: list[tuple[str, ...]] = []
        after = ""
        want = max(0, op.offset) + max(0, op.limit)
        prefix = codec.literal_prefix(op.match_conditions)
        while len(listed) < want:
            (reply,) = self._sync_runner().run([store.namespaces_call(self.client.keys, prefix, after, PAGE)])
            names = [bytes(n).decode() for n in reply]
            candidates = _matching(names, op)
            alive = self._sync_runner().run(store.exists_calls(self.client.keys, [e for e, _ in candidates]))
            _extend(
                listed, [ns for (_, ns), a in zip(candidates, alive, strict=True) if int(a)], op.max_depth
            )
            if len(names) < PAGE:
                break
            after = names[-1]
        return listed[max(0, op.offset) : want]

    # --- asyncio -----------------------------------------------------------------------------
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        todo = list(ops)
        results: list[Result] = [None] * len(todo)
        for i, op in enumerate(todo):
            if isinstance(op, GetOp):
                results[i] = await self._aget(op)
            elif isinstance(op, SearchOp):
                results[i] = await self._asearch(op)
            elif isinstance(op, ListNamespacesOp):
                results[i] = await self._alist_namespaces(op)
            elif not isinstance(op, PutOp):
                raise InvalidArgument(f"unknown store operation: {type(op).__name__}")
        puts = _last_puts(todo)
        if puts:
            if any(op.ttl for op in puts if op.value is not None):
                await self.client.acapabilities()
                self._check_ttl(puts)
            payloads = [await self._apayload(op) for op in puts]
            handles = await self.client.aproducer.enqueue_many(
                payloads, notify=self.reads.enabled, track=self.reads.enabled
            )
            for p, h in zip(payloads, handles, strict=True):
                self.reads.wrote(p.target_key(), [h])
        return results

    async def _apayload(self, op: PutOp) -> StorePayload:
        if op.value is None:
            return codec.delete_payload(op)
        value = codec.checked_value(op)
        texts = self._texts(op, value)
        vectors = None
        if texts and self.embedder is None:
            assert self.embeddings is not None
            vectors = await self.embeddings.aembed_documents([t for _, t in texts])
        return codec.put_payload(op, value, texts, vectors, self.embedder)

    async def _aget(self, op: GetOp) -> Item | None:
        call = store.get_call(self.client.keys, op.namespace, [op.key], self._refresh(op.refresh_ttl))
        (reply,) = await self.reads.aread(await self._async_runner(), codec.target(op.namespace), [call])
        (found,) = store.parse_items(reply, op.namespace)
        return codec.to_item(found) if found else None

    async def _anamespaces(self, prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = []
        after = ""
        runner = await self._async_runner()
        while True:
            (reply,) = await runner.run([store.namespaces_call(self.client.keys, prefix, after, PAGE)])
            names = [bytes(n).decode() for n in reply]
            out += [store.decode_namespace(n) for n in names]
            if len(names) < PAGE:
                return out
            after = names[-1]

    async def _asearch(self, op: SearchOp) -> list[SearchItem]:
        vector = None
        if op.query and self.embeddings is not None:
            vector = await self.embeddings.aembed_query(op.query)
        if self.reads.enabled:
            await self.reads.asettle_own()
        namespaces = await self._anamespaces(op.namespace_prefix)
        calls = [self._read_call(op, ns, vector) for ns in namespaces]
        targets = [codec.target(ns) for ns in namespaces]
        replies = await self.reads.aread_all(await self._async_runner(), targets, calls)
        found = [s for ns, r in zip(namespaces, replies, strict=True) for s in store.parse_items(r, ns) if s]
        return self._page(op, found, vector is not None)

    async def _alist_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        if self.reads.enabled:
            await self.reads.asettle_own()
        runner = await self._async_runner()
        listed: list[tuple[str, ...]] = []
        after = ""
        want = max(0, op.offset) + max(0, op.limit)
        prefix = codec.literal_prefix(op.match_conditions)
        while len(listed) < want:
            (reply,) = await runner.run([store.namespaces_call(self.client.keys, prefix, after, PAGE)])
            names = [bytes(n).decode() for n in reply]
            candidates = _matching(names, op)
            alive = await runner.run(store.exists_calls(self.client.keys, [e for e, _ in candidates]))
            _extend(
                listed, [ns for (_, ns), a in zip(candidates, alive, strict=True) if int(a)], op.max_depth
            )
            if len(names) < PAGE:
                break
            after = names[-1]
        return listed[max(0, op.offset) : want]


def _last_puts(ops: Sequence[Op]) -> list[PutOp]:
    """The batch's puts, the last one per item (as LangGraph's stores apply them)."""
    last: dict[tuple[tuple[str, ...], str], PutOp] = {}
    for op in ops:
        if isinstance(op, PutOp):
            codec.encoded(op.namespace)
            last[(op.namespace, op.key)] = op
    return list(last.values())


def _matching(names: Sequence[str], op: ListNamespacesOp) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for name in names:
        ns = store.decode_namespace(name)
        if all(codec.matches(c, ns) for c in op.match_conditions or ()):
            out.append((name, ns))
    return out


def _extend(listed: list[tuple[str, ...]], found: Sequence[tuple[str, ...]], depth: int | None) -> None:
    """Append in order; with `max_depth`, namespaces cut to that depth, each once (the index is
    sorted, so equal cuts are neighbours)."""
    for ns in found:
        cut = ns[:depth] if depth is not None else ns
        if not listed or listed[-1] != cut:
            listed.append(cut)
