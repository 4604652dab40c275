"""Render `users.acl`: least-privilege Redis users for one sluice namespace.

    python deploy/redis/acl.py                      > deploy/redis/users.acl   # namespace "sluice"
    python deploy/redis/acl.py --namespace shop     > users.acl
    SLUICE_ACL_APP_PASSWORD=... SLUICE_ACL_WORKER_PASSWORD=... SLUICE_ACL_OPS_PASSWORD=... \
    SLUICE_ACL_KEDA_PASSWORD=... SLUICE_ACL_BEAT_PASSWORD=... python deploy/redis/acl.py > users.acl

Redis ACL files cannot hold comments, so the reasons for every rule live here. The committed
`users.acl` is this script's output with the example passwords (`change-me-<user>`, the ones in
docker-compose.yml and deploy/k8s/secret.yaml); a unit test keeps the two equal.

How the rules work (Redis >= 7 ACL, checked on Redis 8.2):
- Every user starts from `reset` (no commands, no keys, no channels) and gets commands by name,
  never by category: on Redis 8 `@read`/`@write` also cover module commands (FT.*, JSON.*, V*)
  and `@read` holds KEYS and SCAN, which list keys outside any pattern.
- Key patterns follow the namespace: `~ns:jobs:*` read-write, `%R~ns:*` read-only.
- Lua scripts run with the caller's permissions, command by command and key by key, and
  EVAL/EVALSHA declare their keys read-write: an app that may EVALSHA still cannot run
  `history_write.lua` (its keys are read-only for the app) nor `ack.lua` (no XACK/SET for it).
  Read-only scripts must use EVALSHA_RO, which the app may run on `%R~` keys.
- Module commands (FT.*, JSON.*, V*) declare their keys read-write even when they only read, so
  `%R~` patterns refuse them. They sit in selectors `( ... )` that pair a read-write pattern
  with read-only commands only, which is what keeps the app from writing vectors or documents.
- Nobody gets FLUSHALL, FLUSHDB, KEYS, SCAN, CONFIG, DEBUG, SHUTDOWN, MONITOR, ACL, MODULE,
  EVAL, SCRIPT FLUSH, FUNCTION or SAVE. Add an admin user of your own for those. (SCRIPT LOAD +
  EVALSHA can still run any Lua, but only with the caller's own command and key rights.)
- FT.CREATE checks only the index *name* against the patterns, and an index's PREFIX may point
  outside them: an index lets its creator read any key it covers. So index life cycle (the
  `ns:vindex:*` metadata, FT.CREATE, FT.ALTER, FT.ALIAS*, FT.DROPINDEX, whose DD option deletes
  documents) belongs to ops: create vector indexes and semantic caches as ops (`sluice index
  create`, or open them once with the ops credentials) before apps use them. Workers only write
  documents into indexes that exist; apps only query them.
- Besides the streams (their enqueue dedupe buckets and pending sets) the app writes only TTLs
  (a checkpointer read refreshes its thread's: PEXPIRE on `ns:cp:*`) and counters: the exact
  cache's hit counters (`ns:cache-meta:<c>:hits` / `:src`, ZINCRBY / HSET), which feed
  refresh-ahead warming, and per-minute lookup counters (`ns:cache-meta:<c>:lookups:*`).
- SCAN lists key names outside any pattern, so only ops has it (`sluice index migrate` reads the
  old generation with it; dropping an index on a Cluster deletes leftovers with it).
  `LLMCache.clear()` uses it too: run clear() as ops or an admin user of your own.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

USERS = ("app", "worker", "ops", "keda", "beat")
EXAMPLE_PASSWORD = "change-me-{user}"  # noqa: S105 - the documented example, to be replaced

# Connection set-up every client does: redis-py sends CLIENT SETINFO on connect (errors are
# ignored, but granted to keep server logs quiet); HELLO for RESP3 and capability probes.
CONNECT = ("ping", "hello", "client|setname", "client|setinfo", "client|id")
# Redis Cluster clients: slot discovery and redirections.
CLUSTER = ("cluster|slots", "cluster|shards", "asking", "readonly")
# reserve_versions.lua (cache-warm enqueues, write="sync" cache updates, clear marks; a worker
# for a warm job enqueued by an older sluice) takes versions from a job stream: EXISTS, XINFO
# STREAM, XSETID (and XADD MAXLEN 0 to create a missing one); versions never read a clock.
RESERVE = ("exists", "xinfo|stream", "xsetid")
# reclaim.lua reads TIME to measure how long claimed entries were idle, the governor's scripts to
# refill its bucket, `sluice status` to read it (never for versions).
CLOCK = ("time",)
# Capability probe (sluice.connection.capabilities): INFO + MODULE LIST, else COMMAND INFO + HELLO.
PROBE = ("info", "module|list", "command|info", "command|docs")
# redis-py's Script: EVALSHA, SCRIPT LOAD on NOSCRIPT, SCRIPT EXISTS before a pipeline.
SCRIPTS = ("evalsha", "evalsha_ro", "script|load", "script|exists")

READ_PLAIN = (
    "get", "mget", "exists", "type", "ttl", "pttl",
    "hget", "hmget", "hgetall", "hlen",
    "zrange", "zcard", "zscore", "zrangebyscore",
    "lrange", "llen",
    "smembers", "sismember", "hexists",
)  # fmt: skip
# Waiting for jobs and following their progress runs job_state.lua, a read-only script (EVALSHA_RO:
# XINFO GROUPS, XPENDING and the dead markers' GET, with the caller's own key rights).
READ_STREAMS = (
    "xlen", "xinfo|groups", "xinfo|consumers", "xinfo|stream", "xpending", "xrange", "xrevrange", "evalsha_ro",
)  # fmt: skip
# Module reads: read-only commands that declare read-write keys (so only in selectors).
READ_MODULES = (
    "ft.search", "ft.aggregate", "ft.info", "ft.explain", "ft._list",
    "vsim", "vcard", "vdim", "vinfo", "vemb", "vgetattr", "vismember", "vrandmember",
    "json.get", "json.mget", "json.type", "json.objkeys", "json.arrlen", "json.strlen",
)  # fmt: skip

WORKER_STREAMS = (
    "xreadgroup", "xack", "xackdel", "xdel", "xadd", "xautoclaim", "xclaim", "xsetid",
    "xgroup|create", "xgroup|createconsumer", "xgroup|delconsumer",
)  # fmt: skip
WORKER_WRITES = (
    "set", "del", "unlink", "expire", "pexpire", "persist",
    "hset", "hdel", "hincrby", "hincrbyfloat", "hpexpire",
    "zadd", "zrem", "zincrby", "zremrangebyrank", "zremrangebylex", "zremrangebyscore",
    "sadd", "srem",
    "rpush", "ltrim",
    "multi", "exec", "discard",
)  # fmt: skip
WORKER_MODULE_WRITES = (
    "vadd", "vrem", "vsetattr",
    "json.set", "json.mset", "json.merge", "json.del",
)  # fmt: skip
OPS_SEARCH_ADMIN = ("ft.create", "ft.alter", "ft.dropindex", "ft.aliasadd", "ft.aliasupdate", "ft.aliasdel")
# SCAN/HSCAN: a migration reads the old generation's documents, and drop deletes what
# FT.DROPINDEX DD leaves on a Cluster; ops only (it lists key names outside any pattern).
OPS_DIAGNOSTICS = ("slowlog|get", "latency|latest", "memory|usage", "memory|stats", "zcount", "scan", "hscan")

# The app's own commands: COMMAND INFO/DOCS and HELLO stand in for INFO and MODULE LIST in the
# probe; CLIENT TRACKING for the client-side cache; WAIT/WAITAOF for durable enqueues.
# No CLIENT TRACKING: Redis does not check BCAST prefixes against key patterns, so a tracking app
# user could watch another namespace's key names. `local_cache=` (client-side caching) needs it:
# add `+client|tracking` to the app user in a single-tenant deployment.
APP_OWN = ("command|info", "command|docs", "xadd", "xsetid", "blpop", "wait", "waitaof")
APP_COMMANDS = (*CONNECT, *CLUSTER, *SCRIPTS, *APP_OWN, *READ_STREAMS, *READ_PLAIN)
WORKER_COMMANDS = (
    *CONNECT, *CLUSTER, *PROBE, *CLOCK, *SCRIPTS, *WORKER_STREAMS, *READ_STREAMS, *READ_PLAIN,
    *WORKER_WRITES, *READ_MODULES, *WORKER_MODULE_WRITES,
)  # fmt: skip
# `sluice status` reads the governor's bucket against the server's clock (TIME).
OPS_COMMANDS = (*CONNECT, *CLUSTER, *PROBE, *CLOCK, *OPS_DIAGNOSTICS, *READ_STREAMS, *READ_PLAIN)

# Celery's Redis transport (kombu), with its keys under `ns:celery:` (transport option
# global_keyprefix) and remote control off (no pidbox pub/sub): queue lists, bindings,
# the unacked hash/index/mutex, and its Lua scripts.
KOMBU = (
    "lpush", "rpush", "brpop", "llen", "lrange",
    "sadd", "srem", "smembers", "sismember",
    "hset", "hget", "hdel", "hgetall",
    "zadd", "zrem", "zrange", "zrangebyscore", "zrevrangebyscore",
    "set", "get", "del", "exists", "expire", "pexpire",
    "multi", "exec", "discard", "watch", "unwatch",
    "time", *SCRIPTS,
)  # fmt: skip
# The refresh-ahead task: read hit counters and entry TTLs, age the counters, claim a refresh.
REFRESH_WRITES = ("set", "zunionstore", "zrem", "hdel")
ENQUEUE = ("evalsha", "script|load", "script|exists", "xadd", "xlen", *RESERVE)
# enqueue.lua remembers job ids in `ns:jobs:{kind:p}:enq:<bucket>` (HGET/HSET/PEXPIRE) so that a
# resent enqueue adds nothing twice; app and beat may write those keys and no others.
ENQUEUE_DEDUPE = ("hget", "hset", "pexpire")
# The governor (`ns:governor`): facades publish their lookup p99 with governor_report.lua (TIME,
# HMGET, HSET, PEXPIRE on that one hash); workers take server-time tokens with governor_take.lua.
GOVERNOR_REPORT = (*SCRIPTS, *CLOCK, "hmget", "hset", "pexpire")
# A tracked enqueue (checkpointer writes) also adds each job's entry id to its target key's pending
# set `ns:jobs:{kind:p}:pend:<digest>` (SADD + PEXPIRE), which readers in every process check.
ENQUEUE_PENDING = ("sadd", "pexpire")


@dataclass(frozen=True)
class Grant:
    """Commands allowed on keys matching `keys` (read-write `~p`, read-only `%R~p`)."""

    keys: tuple[str, ...]
    commands: tuple[str, ...]

    def rules(self) -> list[str]:
        return [*self.keys, *(f"+{c}" for c in self.commands)]


@dataclass(frozen=True)
class User:
    name: str
    root: Grant
    selectors: tuple[Grant, ...] = ()

    def line(self, password_sha256: str) -> str:
        rules = ["user", self.name, "reset", "on", f"#{password_sha256}", *self.root.rules()]
        rules += [f"({' '.join(s.rules())})" for s in self.selectors]
        return " ".join(rules)


def users(namespace: str) -> dict[str, User]:
    """The users for `namespace`, derived from its key schema (`sluice.keys.Keys`)."""
    ns = namespace
    everything = f"{ns}:*"
    jobs = f"{ns}:jobs:*"  # partition streams ns:jobs:{kind:p} and their :done:/:dead:/:dlq keys
    streams_only = f"{ns}:jobs:{{*}}"  # the partition streams themselves
    return {
        # The app enqueues (enqueue.lua: XLEN + XADD on a stream), waits for its jobs (XINFO
        # GROUPS, XPENDING, MGET of dead markers, BLPOP of done signals, WAIT/WAITAOF for
        # durability) and reads every store, but cannot write one.
        "app": User(
            "app",
            Grant((f"~{jobs}", f"%R~{everything}"), APP_COMMANDS),
            (
                Grant((f"~{everything}",), READ_MODULES),
                Grant((f"~{ns}:cache-meta:*:hits", f"~{ns}:cache-meta:*:src"), ("zincrby", "hset")),
                # lookup counters per minute (hit rates on the dashboard)
                Grant((f"~{ns}:cache-meta:*:lookups:*",), ("hincrby", "expire")),
                Grant((f"~{streams_only}:enq:*",), ENQUEUE_DEDUPE),
                Grant((f"~{streams_only}:pend:*",), ENQUEUE_PENDING),
                # a checkpointer read refreshes its thread's TTL (refresh_on_read): PEXPIRE, no write
                Grant((f"~{ns}:cp:*",), ("pexpire",)),
                # a store read (store_read.lua: EVALSHA declares its keys read-write) refreshes the
                # TTLs of the items it returns (HPEXPIRE); it writes nothing else
                Grant((f"~{ns}:st:*",), ("evalsha", "script|load", "script|exists", "hpexpire")),
                # the foreground latency report the workers' governor adapts to
                Grant((f"~{ns}:governor",), GOVERNOR_REPORT),
            ),
        ),
        # Workers read and acknowledge streams, dead-letter, heartbeat, and write every store
        # in the namespace; no admin, keyspace-wide or index life-cycle command.
        "worker": User(
            "worker",
            Grant((f"~{everything}",), WORKER_COMMANDS),
        ),
        # `sluice status` and `sluice dlq`: read everything; write only what they change (re-enqueue
        # a dead letter, delete dead letters, prune stale heartbeats); index life cycle.
        "ops": User(
            "ops",
            Grant((f"%R~{everything}",), OPS_COMMANDS),
            (
                # `sluice dlq retry` and `sluice index load|migrate` enqueue jobs (enqueue.lua on a stream and its
                # dedupe buckets) and swap index metadata (vector_meta_swap.lua)
                Grant((f"~{streams_only}", f"~{streams_only}:enq:*"), (*ENQUEUE, *ENQUEUE_DEDUPE)),
                Grant((f"~{ns}:vindex:*",), ("evalsha", "script|load", "script|exists", "get", "set")),
                # dead letters: each stream's `ns:jobs:{kind:p}:dlq`, and `ns:dead` of earlier releases
                Grant((f"~{streams_only}:dlq", f"~{ns}:dead"), ("xdel",)),
                Grant((f"~{ns}:workers",), ("zrem",)),
                # `sluice partitions --set N` records the new count
                Grant((f"~{ns}:partitions",), ("set",)),
                Grant((f"~{ns}:vindex:*",), ("set", "del")),
                Grant((f"~{ns}:vset:*", f"~{ns}:vec:*", f"~{ns}:vtomb:*"), ("del", "unlink")),
                Grant((f"~{everything}",), (*READ_MODULES, *OPS_SEARCH_ADMIN)),
            ),
        ),
        # KEDA's redis-streams scaler: lag (XINFO GROUPS), pending (XPENDING) or length (XLEN).
        "keda": User(
            "keda",
            Grant((f"%R~{jobs}",), (*CONNECT, "info", "xinfo|groups", "xpending", "xlen")),
        ),
        # The Celery beat (with its one embedded worker running the refresh-ahead task): Celery's
        # broker keys, the cache hit counters it ages and claims, and enqueueing `cache-warm` jobs.
        "beat": User(
            "beat",
            Grant((f"%R~{everything}",), (*CONNECT, "time", "zrevrange", *READ_PLAIN)),
            (
                Grant((f"~{ns}:celery:*",), KOMBU),
                Grant((f"~{ns}:cache-meta:*",), REFRESH_WRITES),
                # EVALSHA of enqueue.lua declares the stream and its dedupe buckets: one selector
                # must allow the script on all of them.
                Grant((f"~{streams_only}", f"~{streams_only}:enq:*"), (*ENQUEUE, *ENQUEUE_DEDUPE)),
            ),
        ),
    }


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def example_passwords() -> dict[str, str]:
    return {u: EXAMPLE_PASSWORD.format(user=u) for u in USERS}


def render(namespace: str, passwords: Mapping[str, str]) -> str:
    """The ACL file text: the default user switched off, then one line per sluice user."""
    lines = ["user default reset off"]
    lines += [user.line(password_hash(passwords[name])) for name, user in users(namespace).items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--namespace", default="sluice", help="sluice key namespace (SLUICE_NAMESPACE)")
    args = parser.parse_args(argv)
    passwords = example_passwords()
    for name in USERS:
        given = os.environ.get(f"SLUICE_ACL_{name.upper()}_PASSWORD")
        if given:
            passwords[name] = given
    sys.stdout.write(render(args.namespace, passwords))
    return 0


if __name__ == "__main__":
    sys.exit(main())
