"""The Redis edge: what is sent and how replies and errors are read, once for sync and asyncio.

- `call`: a `Call` (one command or script call, routed by its key) — what plans yield.
- `runner`: sans-I/O *plans* (generators of `Call` batches) and the two thin shells that run them,
  `Runner` / `drive` (sync) and `AsyncRunner` / `adrive` (asyncio): one round trip per node.
- `cluster_batch`: a batch on a Cluster, one pipeline per primary, following MOVED / ASK /
  TRYAGAIN / CLUSTERDOWN while slots move.
- `translate`: the one table that turns redis-py exceptions and server error replies into sluice
  errors (retryable or permanent).

Nothing here knows about jobs, caches or indexes. The producer, the exact cache, history and
checkpoint reads, the stores and both vector backends run their plans through `runner`.
"""
