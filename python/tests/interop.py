"""The Python side of the Go <-> Python tests (tests/python): one step per run.

Environment: HASESSION_KIND ('standalone' or 'cluster') and HASESSION_ADDRS (host:port,
comma-separated: the node addresses the topology announces). Usage:

    interop.py read ID            load ID, print its user and attributes as JSON (exit 3:
                                  not found; 5: a newer format)
    interop.py write USER         save a new session of USER with attributes, print its ID
    interop.py save-loop ID NAME MIN MAX WANT   load and save ID with NAME = round, MIN to
                                  MAX times, until WANT rounds saw another writer's save
    interop.py touch ID           load and touch ID (always due), print the TTL before and after
    interop.py destroy ID         destroy ID, print whether a load finds it after
    interop.py sessions USER ID…  print the user's sessions; fail unless each ID's ref is listed
    interop.py legacy-write KEY FORM DATA   store DATA (JSON) as a session of the hash KEY the
                                  way a redis-py application does (HSET KEY ID DATA, no
                                  TTL), under a new ID of FORM ('uuid4' or 'token'); print it
"""

import json
import os
import secrets
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import redis  # noqa: E402
from redis.cluster import ClusterNode, RedisCluster  # noqa: E402

import hasession  # noqa: E402


def client():
    kind = os.environ["HASESSION_KIND"]
    addrs = [a.rsplit(":", 1) for a in os.environ["HASESSION_ADDRS"].split(",")]
    if kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(h, int(p)) for h, p in addrs],
            require_full_coverage=True,
            socket_timeout=5,
            socket_connect_timeout=5,
            cluster_error_retry_attempts=3,
        )
    h, p = addrs[0]
    return redis.Redis(host=h, port=int(p), socket_timeout=5, socket_connect_timeout=5)


def out(what, **kw):
    print(what, json.dumps(kw, sort_keys=True, default=str), flush=True)


def main(argv):
    rdb = client()
    st = hasession.Store(rdb)
    cmd = argv[0]
    if cmd == "read":
        try:
            s = st.load(argv[1])
        except hasession.FormatVersionError as e:
            out("python: read: newer format", id=argv[1], version=e.version, error=str(e))
            return 5
        if s is None:
            out("python: read: not found", id=argv[1])
            return 3
        out("python: read", id=s.id, version=s.version, user=s.user,
            attrs={n: s.get(n) for n in s.names()})
    elif cmd == "legacy-write":
        key, form, data = argv[1], argv[2], json.loads(argv[3])
        sid = str(uuid.uuid4()) if form == "uuid4" else secrets.token_urlsafe(32)
        rdb.hset(key, sid, json.dumps(data))
        out("python: legacy-write", key=key, id=sid, fields=rdb.hlen(key))
    elif cmd == "write":
        s = st.new_session()
        s.set("name", "Zoë from Python")
        s.set("count", 42)
        s.set("neg", -7)
        s.set("big", 1 << 40)
        s.set("ratio", 0.5)
        s.set("admin", True)
        s.set("nothing", None)
        s.set("tags", ["a", "b", "ç"])
        s.set("prefs", {"theme": "dark", "size": 3})
        s.set("gone", "deleted before the save")
        s.delete("gone")
        s.set_user(argv[1])
        st.save(s)
        out("python: wrote", id=s.id, version=s.version, user=s.user, attrs=s.names())
    elif cmd == "save-loop":
        # At least MIN rounds, at most MAX, until WANT rounds found another writer's save
        # between this loop's save and its next load.
        sid, name, least, most, want = argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5])
        interleaved, last, rounds = 0, None, 0
        for i in range(1, most + 1):
            if i > least and interleaved >= want:
                break
            s = st.load(sid)
            if s is None:
                out("python: save-loop: not found", round=i)
                return 3
            if last is not None and s.version != last:
                interleaved += 1
            s.set(name, i)
            st.save(s)
            last, rounds = s.version, i
        out("python: save-loop done", name=name, rounds=rounds, interleaved=interleaved)
    elif cmd == "touch":
        # A store whose touch is always due: its load runs touch.lua (and strips the pair
        # '!' 'touched' from the reply), then an explicit touch runs it again.
        key = st.key(argv[1])
        before = rdb.pttl(key)
        always = hasession.Store(rdb, touch_interval=0)
        s = always.load(argv[1])
        after_load = rdb.pttl(key)
        touched = always.touch(argv[1])
        out("python: touch", touched_by_load=s.just_touched, attrs=s.names(), touched=touched,
            pttl_before=before, pttl_after_load=after_load, pttl_after=rdb.pttl(key))
    elif cmd == "destroy":
        st.destroy(argv[1])
        out("python: destroy", id=argv[1], found_after=st.load(argv[1]) is not None)
    elif cmd == "sessions":
        infos = st.sessions(argv[1], "name")
        refs = [i.ref for i in infos]
        out("python: sessions", user=argv[1], refs=refs, names=[i.get("name") for i in infos])
        missing = [sid for sid in argv[2:] if hasession.ref_of(sid) not in refs]
        if missing:
            out("python: sessions: missing", ids=missing)
            return 4
    else:
        print("unknown command", cmd, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
