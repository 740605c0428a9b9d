"""hasession: a Python reference implementation of the hasession store's client side.

It reads and writes hasession's on-Redis format (FORMAT.md, version 1) through the
repository's own Lua scripts (store/lua/*.lua), on redis-py's Redis and RedisCluster.
"""

from .store import (
    CodecError,
    ConflictError,
    CorruptError,
    Error,
    FormatVersionError,
    NotFoundError,
    Session,
    SessionInfo,
    Store,
    build_save_args,
    decode_value,
    encode_value,
    parse_fields,
    ref_of,
)

__all__ = [
    "CodecError",
    "ConflictError",
    "CorruptError",
    "Error",
    "FormatVersionError",
    "NotFoundError",
    "Session",
    "SessionInfo",
    "Store",
    "build_save_args",
    "decode_value",
    "encode_value",
    "parse_fields",
    "ref_of",
]
