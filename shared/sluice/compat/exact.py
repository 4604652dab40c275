"""The exact cache of the drop-ins: sluice's `LLMCache` that also finds entries migrated from a
hashed layout (`sluice.migrate.legacy`).

A lookup reads the sluice entry and the migrated one in one round trip and prefers the first.
A hit on a migrated entry is copied into sluice's own form in the background (one enqueue), so
later lookups, ``clear(llm_string=...)`` and refresh-ahead see an ordinary entry.

As the peers: ``ttl=0`` is accepted (they EXPIRE each entry after 0 seconds, so nothing is ever
found: no fill is sent), ``_key(prompt, llm_string)`` names the Redis key of an entry (after
this object's pending fill of it is applied), and ``clear`` ignores ``asynchronous=``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE

from sluice.errors import SluiceError
from sluice.facade.client import Client
from sluice.facade.llm_cache import LLMCache, member_of

log = logging.getLogger(__name__)


class DigestFallbackCache(LLMCache):
    """`LLMCache` plus the entries a migration stored under `marker` and `digest(prompt, llm_string)`."""

    def __init__(
        self,
        client: Client,
        *,
        name: str,
        ttl: float | None,
        marker: str,
        digest: Callable[[str, str], str],
    ) -> None:
        self._expire_at_once = ttl == 0
        super().__init__(client, name=name, ttl=None if self._expire_at_once else ttl)
        self._marker = marker
        self._digest = digest

    def _key(self, prompt: str, llm_string: str) -> str:
        """The Redis key of the entry (this object's pending fill of it applied first)."""
        member = member_of(llm_string, prompt)
        self._consistency.settle([self._pending_key(member)])
        return self.client.keys.cache_entry_of(self.name, member)

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if not self._expire_at_once:
            super().update(prompt, llm_string, return_val)

    async def aupdate(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        if not self._expire_at_once:
            await super().aupdate(prompt, llm_string, return_val)

    def clear(self, **kwargs: Any) -> None:
        kwargs.pop("asynchronous", None)
        super().clear(**kwargs)

    async def aclear(self, **kwargs: Any) -> None:
        kwargs.pop("asynchronous", None)
        await super().aclear(**kwargs)

    def _keys(self, prompt: str, llm_string: str) -> list[str]:
        keys = self.client.keys
        return [
            keys.cache_entry_of(self.name, member_of(llm_string, prompt)),
            keys.cache_entry(self.name, self._marker, self._digest(prompt, llm_string)),
        ]

    def _found(
        self, found: list[RETURN_VAL_TYPE | None], prompt: str, llm_string: str
    ) -> RETURN_VAL_TYPE | None:
        ours, migrated = found
        if ours is not None:
            if self._hits is not None and self._hits.add(member_of(llm_string, prompt), llm_string, prompt):
                self.flush_hits()
            return ours
        if migrated is not None and not self._expire_at_once:
            try:  # promote: an ordinary entry from now on (not waited for; the migrated one still answers)
                self.client.producer.enqueue_many([self._payload(prompt, llm_string, migrated)])
            except SluiceError as e:
                log.warning("cache: could not copy a migrated entry into sluice's form (%s)", e)
        return migrated

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        self._consistency.settle([self._pending_key(member_of(llm_string, prompt))])
        found = self._sync_store().lookup_keys(self._keys(prompt, llm_string))
        return self._found(list(found), prompt, llm_string)

    async def alookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        await self._consistency.asettle([self._pending_key(member_of(llm_string, prompt))])
        store = await self._async_store()
        found = await store.lookup_keys(self._keys(prompt, llm_string))
        ours, migrated = found
        if ours is None and migrated is not None and not self._expire_at_once:
            try:
                await self.client.aproducer.enqueue_many([self._payload(prompt, llm_string, migrated)])
            except SluiceError as e:
                log.warning("cache: could not copy a migrated entry into sluice's form (%s)", e)
        return ours if ours is not None else migrated
