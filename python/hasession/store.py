"""The store: load, save, touch, destroy and list sessions in hasession's format (FORMAT.md).

Every write goes through the repository's Lua scripts (store/lua/*.lua), read from disk
when a Store is made and run with redis-py's register_script (EVALSHA, and SCRIPT LOAD
then EVALSHA again on NOSCRIPT), on a redis.Redis or a redis.cluster.RedisCluster. The
client must be made with decode_responses=False (the default): attribute values are bytes.

Not covered (the Go store has them): hashed IDs (store.WithHashedIDs: the tag is then an
HMAC of the ID, not the ID), the JSON codec, rotation, revoke, a session's own idle
timeout, lifetime and cookie persistence as setters (a stored '_i' is honoured), the cap on
a user's sessions, write acknowledgement (WAIT) and the retry policy.
"""

import hashlib
import os
import re
import secrets
import time
import uuid

import msgpack

# What the Go store uses (store/index.go, store/store.go).
PENDING_MS = 30_000
TOMBSTONE_MS = 90_000
CLOCK_MARGIN_MS = 60_000
MAX_HOPS = 4
MAX_INDEX_RACES = 3
CODEC = "msgpack"

_SCRIPTS = ("save", "touch", "destroy", "index_add", "index_read", "index_remove", "member")
_LUA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "store", "lua")

_UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_INT = re.compile(r"^-?\d+$")
_VERSION = re.compile(r"^[1-9]\d*$")
_KNOWN = frozenset(["_v", "_c", "_a", "_t", "_k", "_u", "_s", "_i", "_p", "_n", "_f", "_r", "_F"])


class Error(Exception):
    """The base of this module's errors."""


class NotFoundError(Error):
    """The session is missing, expired, destroyed, revoked or rotated away."""


class ConflictError(Error):
    """A version-checked save found another version, or a new session's key exists."""


class CorruptError(Error):
    """The key holds data that is not hasession's (left untouched)."""

    def __init__(self, key, reason):
        super().__init__("hasession: corrupt session data at %s: %s" % (_s(key), reason))
        self.key, self.reason = key, reason


class FormatVersionError(Error):
    """The key is of a newer format ('_F' > 1): refused whole, left untouched."""

    def __init__(self, key, version, known=1):
        super().__init__("hasession: %s is of format version %s, this reader knows %d" % (_s(key), version, known))
        self.key, self.version, self.known = key, version, known


class CodecError(Error):
    """The session's attributes are encoded by another codec than msgpack."""


def _s(v):
    """A reply value as str (bytes are decoded as UTF-8, invalid bytes kept escaped)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v


def _b(v):
    if isinstance(v, str):
        return v.encode("utf-8", "surrogateescape")
    return v


def valid_id(sid):
    """Whether sid is a canonical lowercase UUIDv4, the only ID the store accepts."""
    return isinstance(sid, str) and _UUID4.match(sid) is not None


def new_id():
    """A new session ID: a UUIDv4 (122 random bits from os.urandom), canonical lowercase."""
    return str(uuid.uuid4())


def new_save_id():
    """A save ID: 16 hex digits."""
    return secrets.token_hex(8)


def ref_of(tag):
    """The public reference of a session tag, as Go's refOf computes it."""
    return hashlib.sha256(b"hasession ref\x00" + _b(tag)).hexdigest()[:24]


def forward_mask(old_id):
    return hashlib.sha256(b"hasession/forward\x00" + _b(old_id)).digest()[:16]


def forward_target(old_id, token):
    """The ID a forward token leads to from old_id, or None when it unmasks to no UUIDv4."""
    try:
        raw = bytes.fromhex(_s(token))
    except ValueError:
        return None
    if len(raw) != 16:
        return None
    h = bytes(a ^ b for a, b in zip(raw, forward_mask(old_id))).hex()
    sid = "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
    return sid if valid_id(sid) else None


def encode_value(value):
    """An attribute value as Go's msgpack codec reads it (str as msgpack str, bytes as bin)."""
    return msgpack.packb(value, use_bin_type=True)


def decode_value(data):
    """An attribute value Go's msgpack codec wrote (a time.Time becomes a datetime)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False, timestamp=3)


def reserved(name):
    """Whether a field name is reserved for a newer writer: '_' and an uppercase ASCII letter."""
    return len(name) >= 2 and name[0] == "_" and "A" <= name[1] <= "Z"


def parse_fields(key, pairs):
    """Reads a session hash (field, value pairs, as HGETALL returns them, str or bytes).

    Returns ('missing',) for no fields (no key); ('session', meta, attrs) with meta the metadata fields (str) and attrs the
    attribute name -> encoded value (bytes); ('forward', token) for a forward pointer;
    ('tombstone',) for a tombstone. Raises FormatVersionError for a key of a newer
    format, CorruptError for anything that is not hasession's, CodecError for a session of
    another codec.
    """
    meta, attrs = {}, {}
    unknown = None
    pairs = list(pairs)
    if not pairs:
        return ("missing",)
    for name, value in pairs:
        name = _s(name)
        if name.startswith("."):
            attrs[name[1:]] = _b(value)
        elif name in _KNOWN:
            meta[name] = _s(value)
        elif not reserved(name) and unknown is None:
            unknown = name
    if "_F" in meta and meta["_F"] != "1":
        if _VERSION.match(meta["_F"]) and len(meta["_F"]) < 19:
            raise FormatVersionError(key, int(meta["_F"]))
        raise CorruptError(key, "malformed format version %r" % meta["_F"])
    if unknown is not None:
        raise CorruptError(key, "unknown field %r" % unknown)
    if "_f" in meta:
        return ("forward", meta["_f"])
    if "_r" in meta:
        return ("tombstone",)
    for f, what in (("_v", "version"), ("_c", "created-at"), ("_a", "deadline"), ("_t", "last touch")):
        if f not in meta:
            raise CorruptError(key, "missing " + what)
        if not _INT.match(meta[f]):
            raise CorruptError(key, "malformed session metadata: %s %r" % (what, meta[f]))
    if "_k" not in meta:
        raise CorruptError(key, "missing codec")
    if "_i" in meta and not (_INT.match(meta["_i"]) and int(meta["_i"]) > 0):
        raise CorruptError(key, "malformed session metadata: idle timeout %r" % meta["_i"])
    if meta.get("_p", "1") not in ("1", "0"):
        raise CorruptError(key, "malformed session metadata: persistence %r" % meta["_p"])
    if meta["_k"] != CODEC:
        raise CodecError("hasession: session encoded with %r, this store reads %r" % (meta["_k"], CODEC))
    return ("session", meta, attrs)


def touch_reply(flat):
    """Reads touch.lua's reply, the hash as a flat list with a last pair '!' 'touched' when
    the script touched it: returns the field/value pairs without that pair, and whether it
    was there."""
    touched = len(flat) >= 2 and _s(flat[-2]) == "!" and _s(flat[-1]) == "touched"
    if touched:
        flat = flat[:-2]
    return list(zip(flat[0::2], flat[1::2])), touched


def build_save_args(
    save_id, mode, idle_ms, lifetime_ms, user_arg="", expect="", until="", attrs_set=None, attrs_deleted=()
):
    """save.lua's ARGV, in the order Go's saveArgs sends it (store/save.go).

    ARGV[1..14]: save id, expected version ('' none), mode ('n' new, 'u' update), the
    store's idle timeout (ms), the lifetime (ms) for 'n' or 0 for 'u', the codec, the user
    ('' unchanged, '+name' set, '-' clear), created-at (0), old version (0), until ('' or
    the index entry's trust time), '' '' '' (no own idle timeout, lifetime or
    persistence) and '' (not a retry: this client does not retry a save); then the number of deleted attributes, their fields, then field/value
    pairs of the set ones.
    """
    if mode not in ("n", "u"):
        raise ValueError("mode must be 'n' or 'u'")
    args = [
        save_id,
        expect,
        mode,
        idle_ms,
        lifetime_ms if mode == "n" else 0,
        CODEC,
        user_arg,
        0,
        0,
        until,
        "",
        "",
        "",
        "",
    ]
    deleted = list(attrs_deleted)
    args.append(len(deleted))
    args.extend("." + n for n in deleted)
    for n, v in (attrs_set or {}).items():
        args.extend(("." + n, v))
    return args


class Session:
    """A session: its ID, version, user, times (ms since epoch, Redis time) and attributes."""

    def __init__(self, sid, is_new=True):
        self.id = sid
        self.version = 0
        self.created = 0
        self.deadline = 0
        self.touched = 0
        self.idle = 0  # its own idle timeout (ms), 0 for the store's
        self.just_touched = False
        self._user, self._stored_user, self._user_set = "", "", False
        self._attrs = {}  # name -> encoded value
        self._changes = {}  # name -> encoded value, or None for a deletion
        self.is_new = is_new

    @property
    def user(self):
        return self._user

    def set_user(self, user):
        """Gives the session a user ('' clears it); saved with the next save."""
        self._user, self._user_set = user, True

    def names(self):
        """The attribute names."""
        return sorted(self._attrs)

    def has(self, name):
        return name in self._attrs

    def get(self, name, default=None):
        """The decoded attribute, or default when the session has none of that name."""
        raw = self._attrs.get(name)
        return default if raw is None else decode_value(raw)

    def raw(self, name):
        """The attribute's encoded bytes (msgpack), or None."""
        return self._attrs.get(name)

    def set(self, name, value):
        raw = encode_value(value)
        self._attrs[name] = raw
        self._changes[name] = raw

    def delete(self, name):
        self._attrs.pop(name, None)
        if self.is_new:
            self._changes.pop(name, None)
        else:
            self._changes[name] = None

    def modified(self):
        return self.is_new or bool(self._changes) or (self._user_set and self._user != self._stored_user)

    def __repr__(self):
        return "Session(id=%r, version=%d, user=%r, attrs=%r)" % (self.id, self.version, self._user, self.names())


class SessionInfo:
    """One live session of a user, as Store.sessions lists it (times in ms, Redis time)."""

    def __init__(self, ref, created, touched, deadline, expires, attrs):
        self.ref, self.created, self.last_touch, self.deadline, self.expires = ref, created, touched, deadline, expires
        self._attrs = attrs

    def has(self, name):
        return name in self._attrs

    def get(self, name, default=None):
        raw = self._attrs.get(name)
        return default if raw is None else decode_value(raw)

    def __repr__(self):
        return "SessionInfo(ref=%r, created=%d, last_touch=%d)" % (self.ref, self.created, self.last_touch)


class Store:
    """A session store on a redis.Redis or redis.cluster.RedisCluster (decode_responses=False).

    The defaults are the Go store's: 30 min idle timeout, 24 h lifetime, a touch at most
    once a minute, prefix 'hs:'. check_version makes saves of loaded sessions apply only
    if the version is still the one loaded (Go's WithVersionCheck). The scripts are read
    from lua_dir (the repository's store/lua by default) and, with preload, loaded into
    Redis (every primary of a Cluster) when the Store is made.
    """

    def __init__(
        self,
        client,
        prefix="hs:",
        idle_timeout=30 * 60,
        lifetime=24 * 3600,
        touch_interval=60,
        grace=30,
        check_version=False,
        lua_dir=None,
        preload=True,
    ):
        if "{" in prefix or "}" in prefix:
            raise ValueError("prefix must not contain braces")
        self.client = client
        self.prefix = prefix
        self.idle_ms = int(idle_timeout * 1000)
        self.life_ms = int(lifetime * 1000)
        self.touch_ms = int(touch_interval * 1000)
        self.grace_ms = int(grace * 1000)  # (used by rotations, which this module does not do)
        self.check_version = check_version
        d = lua_dir or _LUA_DIR
        self._scripts = {}
        for name in _SCRIPTS:
            with open(os.path.join(d, name + ".lua"), "rb") as f:
                # As bytes: redis-py hashes them as they are (a RedisCluster has no encoder).
                self._scripts[name] = client.register_script(f.read())
        if preload:
            # SCRIPT LOAD (on a RedisCluster: on every primary), so that the first EVALSHA
            # finds the script; a node that lost it (a restart, a failover) answers NOSCRIPT
            # and the script is loaded again there (RedisCluster logs that NoScriptError).
            for script in self._scripts.values():
                client.script_load(script.script)

    # keys

    def key(self, sid):
        """The session's key: <prefix>{<id>} (IDs are not hashed at rest here)."""
        return self.prefix + "{" + sid + "}"

    def index_key(self, user):
        tag = hashlib.sha256(b"hasession user\x00" + _b(user)).hexdigest()[:32]
        return self.prefix + "u:{" + tag + "}"

    def _run(self, name, keys, args):
        return self._scripts[name](keys=keys, args=args)

    def _index(self, name, user, args):
        idx = self.index_key(user)
        return self._run(name, [idx, idx + ":l"], args)

    def touch_ms_for(self, idle_ms):
        if idle_ms <= 0 or idle_ms >= self.idle_ms:
            return self.touch_ms
        return self.touch_ms * idle_ms // self.idle_ms

    # sessions

    def new_session(self):
        """A new, empty session with a fresh ID; nothing is written until it is saved."""
        return Session(new_id())

    def _session(self, sid, meta, attrs, touched=False):
        s = Session(sid, is_new=False)
        s.version, s.created = int(meta["_v"]), int(meta["_c"])
        s.deadline, s.touched = int(meta["_a"]), int(meta["_t"])
        s.idle = int(meta.get("_i", "0"))
        s._user = s._stored_user = meta.get("_u", "")
        s._attrs = attrs
        s.just_touched = touched
        return s

    def load(self, sid):
        """The session with ID sid, or None when there is none (missing, expired, destroyed).

        One HGETALL; when the last touch is older than the touch interval, touch.lua
        extends the TTL and returns the session it touched. A rotated session's old ID
        leads to the new one (at most 4 keys). Raises ValueError for a malformed ID,
        FormatVersionError, CorruptError, CodecError.
        """
        if not valid_id(sid):
            raise ValueError("hasession: invalid session ID")
        for _ in range(MAX_HOPS):
            key = self.key(sid)
            shape = parse_fields(key, self.client.hgetall(key).items())
            if shape[0] == "session" and time.time() * 1000 - int(shape[1]["_t"]) >= self.touch_ms_for(
                int(shape[1].get("_i", "0"))
            ):
                pairs, touched = touch_reply(self._run("touch", [key], [self.idle_ms, self.touch_ms]))
                shape = parse_fields(key, pairs)
                if shape[0] == "session":
                    return self._session(sid, shape[1], shape[2], touched)
            elif shape[0] == "session":
                return self._session(sid, shape[1], shape[2])
            if shape[0] != "forward":
                return None  # no key (an empty hash), or a tombstone
            nxt = forward_target(sid, shape[1])
            if nxt is None:
                raise CorruptError(key, "malformed forward pointer")
            sid = nxt
        return None

    def touch(self, sid):
        """Runs touch.lua on the session: True when it extended the TTL (the touch was due
        by Redis time and the touch interval)."""
        if not valid_id(sid):
            raise ValueError("hasession: invalid session ID")
        return touch_reply(self._run("touch", [self.key(sid)], [self.idle_ms, self.touch_ms]))[1]

    def save(self, s):
        """Saves the attributes set and deleted since the load (or all of a new session) and
        the user, with save.lua, as Go's Store.Save does: a session given a user is listed
        in the user's index first (index_add.lua). Raises NotFoundError, ConflictError,
        CorruptError, CodecError, FormatVersionError."""
        if not s.modified():
            return
        save_id = new_save_id()
        expect = str(s.version) if (self.check_version and not s.is_new) else ""
        user_arg = "" if not s._user_set else ("+" + s._user if s._user else "-")
        for attempt in range(MAX_INDEX_RACES + 1):
            until = ""
            listed = s._user_set and s._user != "" and (s._user != s._stored_user or attempt > 0)
            if listed:
                deadline = "" if s.is_new else s.deadline
                now = self._index("index_add", s._user, [s.id, deadline, self.life_ms + PENDING_MS,
                                                         CLOCK_MARGIN_MS, PENDING_MS, "", 0])
                if int(now) < 0:
                    raise Error("hasession: login refused by the cap on the user's sessions")
                until = int(now) + PENDING_MS
            deleted = [n for n, v in s._changes.items() if v is None]
            changed = {n: v for n, v in s._changes.items() if v is not None}
            if s.is_new:
                changed = dict(s._attrs)
                deleted = []
            args = build_save_args(save_id, "n" if s.is_new else "u", self.idle_ms, self.life_ms, user_arg,
                                   expect, until, changed, deleted)
            reply = _s(self._run("save", [self.key(s.id), self.key(s.id) + ":s"], args))
            if reply != "stale":
                break
            if attempt == MAX_INDEX_RACES:
                raise NotFoundError("hasession: save: not found (lost a race with a revoke)")
            if s.is_new:
                if until != "":
                    self._index("index_remove", s._user, ["r", s.id])
                s.id = new_id()
        kind, _, rest = reply.partition(":")
        if kind in ("ok", "dup"):
            version, now, deadline, created = (int(x) for x in rest.split(":"))
            if kind == "dup" and not s.is_new and deadline == 0:
                deadline, created = s.deadline, s.created
            s.version, s.touched, s.deadline, s.created = version, now, deadline, created
            s.is_new, s._changes = False, {}
            s._stored_user, s._user_set = s._user, False
            return
        key = self.key(s.id)
        if kind in ("notfound", "revoked"):
            raise NotFoundError("hasession: save: not found")
        if kind == "conflict":
            raise ConflictError("hasession: save: version conflict (stored version %s)" % rest)
        if kind == "exists":
            raise ConflictError("hasession: save: a new session's key exists")
        if kind == "corrupt":
            raise CorruptError(key, rest)
        if kind == "codec":
            raise CodecError("hasession: session encoded with %r" % rest)
        if kind == "format":
            raise FormatVersionError(key, int(rest))
        raise CorruptError(key, "unexpected save reply %r" % reply)

    # destroy

    def _destroy_key(self, tag, tomb, keep_pointer):
        """destroy.lua on one key, with the arguments Go's destroyKey sends: tomb is '' (none),
        'plain' or 'logout'. Returns (deleted, forward token, user, pending tag)."""
        key = self.key(tag)
        res = self._run("destroy", [key], [TOMBSTONE_MS if tomb else "", "d" if tomb == "logout" else "",
                                           "k" if keep_pointer else ""])
        if not isinstance(res, list) or len(res) != 4:
            raise CorruptError(key, "unexpected destroy reply %r" % (res,))
        n = res[0]
        if n == -2:
            raise FormatVersionError(key, _s(res[1]))
        if n < 0:
            reason = _s(res[1])
            if res[2]:
                reason += " %r" % _s(res[2])
            raise CorruptError(key, reason)
        return n == 1, _s(res[1]) or "", _s(res[2]) or "", _s(res[3]) or ""

    def destroy(self, sid):
        """Destroys the session (a logout), as Go's Store.Destroy does: a rotated session's old
        ID ends the session its chain leads to (at most 4 keys), the session first and the
        forward pointers after it; the session leaves its user's index. A missing session is
        not an error."""
        if not valid_id(sid):
            raise ValueError("hasession: invalid session ID")
        tag, tomb, pointers, cut = sid, "logout", [], None
        for hop in range(MAX_HOPS):
            deleted, fwd, user, pending = self._destroy_key(tag, tomb, True)
            if not deleted and fwd:
                pointers.append(tag)
                if hop == MAX_HOPS - 1:
                    cut = tag
            if user:
                self._index_remove(user, tag)
            nxt = forward_target(sid, fwd) if (fwd and sid) else None
            if nxt is not None and pending and nxt != pending:
                _, _, puser, _ = self._destroy_key(pending, "plain", False)
                if puser:
                    self._index_remove(puser, pending)
            if nxt is not None:
                sid = tag = nxt
            elif pending:
                sid = tag = pending
                if deleted and not fwd:
                    tomb = "plain"
            else:
                break
        for p in reversed(pointers):
            self._destroy_key(p, "plain" if p == cut else "logout", False)

    def _index_remove(self, user, *tags):
        """index_remove.lua 'r': drops tags from the user's index, best effort."""
        try:
            self._index("index_remove", user, ["r", *tags])
        except Exception:  # noqa: BLE001 - an entry left behind is pruned when found
            pass

    # users

    def sessions(self, user, *attrs):
        """The user's live sessions, most recently touched first, with the attributes named
        (SessionInfo.get): index_read.lua, then member.lua 'l' on each listed session;
        entries whose session is gone are dropped from the index, as Go's Sessions does."""
        if not user:
            raise ValueError("hasession: no user")
        tags = [_s(t) for t in self._index("index_read", user, [CLOCK_MARGIN_MS, ""])]
        infos, prune = [], []
        now = int(time.time() * 1000)
        for tag in tags:
            key = self.key(tag)
            r = self._run("member", [key], [user, "l", TOMBSTONE_MS, *("." + a for a in attrs)])
            status = _s(r[0]) if isinstance(r, list) and r else None
            if status in ("gone", "dead"):
                prune.append(tag)
            elif status == "live":
                if len(r) != 5 + len(attrs):
                    continue  # unreadable: left out, as Go does
                got = {a: _b(v) for a, v in zip(attrs, r[5:]) if v is not None}
                infos.append(SessionInfo(ref_of(tag), int(r[1]), int(r[2]), int(r[3]), now + int(r[4]), got))
            elif status == "format":
                raise FormatVersionError(key, _s(r[1]))
        if prune:
            self._index_remove(user, *prune)
        infos.sort(key=lambda i: i.last_touch, reverse=True)
        return infos
