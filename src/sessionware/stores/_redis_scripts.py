"""What the Redis store keeps where, and the Lua scripts that change it (no Redis client here).

Every write is one script: it runs on the server as one atomic step, so a
request's changes are applied to the session as it is at that moment, and
only one round trip is paid for it.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from typing import Any

from ..typing import Change

__all__ = [
    "CREATE_SCRIPT",
    "DELETE_ALL_SCRIPT",
    "DELETE_SCRIPT",
    "HEAD",
    "LIST_SCRIPT",
    "UPDATE_SCRIPT",
    "USER",
    "Keys",
    "Script",
    "split",
]

# A session is a hash under <prefix>{<group>}:s:<member>: one entry per data
# field under the field's own name, plus two reserved entries whose names start
# with NUL (which a field name never holds): the head, and the registry key of
# the user the session is filed under (absent for an anonymous one). A user's
# registry is a sorted set of session members scored by expiry (ms) under
# <prefix>{<group>}:u:<user>. The {group} hash tag puts a user's sessions and
# registry in one Cluster slot, so every script below touches a single slot.
# Times come from the Redis server's clock, read only when a registry is written.
HEAD = b"\x00h"
USER = b"\x00u"

# Registry bookkeeping and chunked hash writes, shared by the scripts. ARGV[1]
# is always the prefix. Argument lists are sent to HSET / HDEL 1000 at a time:
# Lua's unpack() fails on a few thousand.
_COMMON = """
local function index_key(user)
    local slash = string.find(user, '/', 1, true)
    return ARGV[1] .. '{' .. string.sub(user, 1, slash - 1) .. '}:u:' .. string.sub(user, slash + 1)
end
local function unfile(user, member)
    if user then redis.call('ZREM', index_key(user), member) end
end
local function file(user, member, ttl)
    local t = redis.call('TIME')
    local now = t[1] * 1000 + math.floor(t[2] / 1000)
    local index = index_key(user)
    redis.call('ZADD', index, now + ttl, member)
    redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
    if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
local function chunked(command, key, first, last)
    for i = first, last, 1000 do
        redis.call(command, key, unpack(ARGV, i, math.min(i + 999, last)))
    end
end
"""

# KEYS[1] session; ARGV: prefix, member, ttl (ms), head, user ('' for none), then name, value, ...
_CREATE = (
    _COMMON
    + """
redis.call('DEL', KEYS[1])
if ARGV[5] == '' then
    redis.call('HSET', KEYS[1], '\\0h', ARGV[4])
else
    redis.call('HSET', KEYS[1], '\\0h', ARGV[4], '\\0u', ARGV[5])
end
chunked('HSET', KEYS[1], 6, #ARGV)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] ~= '' then file(ARGV[5], ARGV[2], tonumber(ARGV[3])) end
return 1
"""
)

# KEYS[1] session; ARGV: prefix, member, ttl (ms), head, user ('' for none),
# n, then the n arguments name, value, ... of the fields set, then the names removed.
_UPDATE = (
    _COMMON
    + """
local current = redis.call('HMGET', KEYS[1], '\\0h', '\\0u')
if not current[1] then return 0 end
local old_user, user, ttl = current[2], ARGV[5], tonumber(ARGV[3])
if user == '' then
    redis.call('HSET', KEYS[1], '\\0h', ARGV[4])
    if old_user then redis.call('HDEL', KEYS[1], '\\0u') end
else
    redis.call('HSET', KEYS[1], '\\0h', ARGV[4], '\\0u', user)
end
local last_set = 6 + tonumber(ARGV[6])
chunked('HSET', KEYS[1], 7, last_set)
chunked('HDEL', KEYS[1], last_set + 1, #ARGV)
redis.call('PEXPIRE', KEYS[1], ttl)
if old_user and old_user ~= user then unfile(old_user, ARGV[2]) end
if user ~= '' then file(user, ARGV[2], ttl) end
return 1
"""
)

# The deletes are sent again if their reply is lost (redis-py's Retry, _direct):
# a repeat of a delete that did happen would find nothing and report a log-out
# or revocation as not done. So each call carries an ID of its own, and a
# delete that removed something leaves a short-lived receipt under KEYS[2]
# (same hash tag): a repeat with the same ID answers what the first attempt did.
_RECEIPT = """
local receipt = redis.call('GET', KEYS[2])
if receipt then
    local sep = string.find(receipt, ' ', 1, true)
    if string.sub(receipt, 1, sep - 1) == ARGV[#ARGV] then return tonumber(string.sub(receipt, sep + 1)) end
end
local function done(result)
    if result > 0 then redis.call('SET', KEYS[2], ARGV[#ARGV] .. ' ' .. result, 'PX', 60000) end
    return result
end
"""

# KEYS[1] session, KEYS[2] receipt; ARGV: prefix, member, call ID
_DELETE = (
    _COMMON
    + _RECEIPT
    + """
local user = redis.call('HGET', KEYS[1], '\\0u')
local existed = redis.call('DEL', KEYS[1])
unfile(user, ARGV[2])
return done(existed)
"""
)

# KEYS[1] index; ARGV: prefix, group -> flat [member, head, member, head, ...]
_LIST = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local out = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
    local head = redis.call('HGET', ARGV[1] .. '{' .. ARGV[2] .. '}:s:' .. member, '\\0h')
    if head then
        out[#out + 1] = member
        out[#out + 1] = head
    end
end
return out
"""

# KEYS[1] index, KEYS[2] receipt; ARGV: prefix, group, kept member ('' for none), call ID
_DELETE_ALL = (
    _RECEIPT
    + """
local deleted = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if member ~= ARGV[3] then
        deleted = deleted + redis.call('DEL', ARGV[1] .. '{' .. ARGV[2] .. '}:s:' .. member)
        redis.call('ZREM', KEYS[1], member)
    end
end
return done(deleted)
"""
)


class Script:
    """A Lua script, called by its SHA1 (one round trip) and sent whole on a miss."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


CREATE_SCRIPT = Script(_CREATE)
UPDATE_SCRIPT = Script(_UPDATE)
DELETE_SCRIPT = Script(_DELETE)
LIST_SCRIPT = Script(_LIST)
DELETE_ALL_SCRIPT = Script(_DELETE_ALL)


def split(key: str) -> tuple[str, str]:
    group, _, rest = key.partition("/")
    return group, rest


class Keys:
    """Key names and script arguments, shared by both faces."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def session(self, key: str) -> tuple[str, str]:
        group, member = split(key)
        return f"{self.prefix}{{{group}}}:s:{member}", member

    def index(self, user: str) -> tuple[str, str]:
        group, name = split(user)
        return f"{self.prefix}{{{group}}}:u:{name}", group

    def receipt(self, name: str) -> str:
        """Where a delete of the session or index ``name`` leaves its receipt (same slot)."""
        head, _, tail = name.partition("}:")
        return f"{head}}}:r:{tail}"

    def create(
        self, member: str, head: bytes, fields: Mapping[str, str], ttl: int, user: str | None
    ) -> list[Any]:
        return [
            self.prefix,
            member,
            ttl * 1000,
            head,
            user or "",
            *itertools.chain.from_iterable(fields.items()),
        ]

    def update(self, member: str, change: Change) -> list[Any]:
        return [
            self.prefix,
            member,
            change.ttl * 1000,
            change.head,
            change.user or "",
            2 * len(change.fields),
            *itertools.chain.from_iterable(change.fields.items()),
            *change.removed,
        ]
