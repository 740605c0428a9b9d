"""Pure tests of the reference module (no Redis): the save arguments, the field parsing,
the codec, refs and forward tokens. Run: python3 -m unittest discover -s python/tests."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import hasession  # noqa: E402
from hasession import store  # noqa: E402


class SaveArgs(unittest.TestCase):
    def test_new(self):
        a = hasession.build_save_args("0123456789abcdef", "n", 1800000, 86400000, "+ann", "", 123,
                                      {"x": b"\x01"}, [])
        self.assertEqual(a, ["0123456789abcdef", "", "n", 1800000, 86400000, "msgpack", "+ann", 0, 0, 123,
                             "", "", "", "", 0, ".x", b"\x01"])

    def test_update(self):
        a = hasession.build_save_args("0123456789abcdef", "u", 1800000, 86400000, "", "7", "",
                                      {"b": b"\xc3"}, ["a"])
        self.assertEqual(a[:14], ["0123456789abcdef", "7", "u", 1800000, 0, "msgpack", "", 0, 0, "", "", "", "", ""])
        self.assertEqual(a[14:], [1, ".a", ".b", b"\xc3"])

    def test_ids(self):
        self.assertRegex(store.new_save_id(), r"^[0-9a-f]{16}$")
        self.assertTrue(store.valid_id(store.new_id()))
        self.assertFalse(store.valid_id("6BA7B810-9DAD-41D1-80B4-00C04FD430C8"))


class Fields(unittest.TestCase):
    base = [("_v", "3"), ("_c", "1"), ("_a", "2"), ("_t", "1"), ("_k", "msgpack")]

    def test_session(self):
        kind, meta, attrs = hasession.parse_fields("k", self.base + [(b".n", b"\x01"), ("_u", "ann"), ("_Xnew", "?")])
        self.assertEqual(kind, "session")
        self.assertEqual(meta["_u"], "ann")
        self.assertEqual(attrs, {"n": b"\x01"})

    def test_shapes(self):
        self.assertEqual(hasession.parse_fields("k", []), ("missing",))
        self.assertEqual(hasession.parse_fields("k", [("_r", "1"), ("_s", "")]), ("tombstone",))
        self.assertEqual(hasession.parse_fields("k", [("_f", "00" * 16)]), ("forward", "00" * 16))

    def test_refused(self):
        with self.assertRaises(hasession.FormatVersionError):
            hasession.parse_fields("k", self.base + [("_F", "2")])
        self.assertEqual(hasession.parse_fields("k", self.base + [("_F", "1")])[0], "session")
        for bad in ([("_x", "1")], [("foo", "1")], [("_F", "02")]):
            with self.assertRaises(hasession.CorruptError):
                hasession.parse_fields("k", self.base + bad)
        with self.assertRaises(hasession.CorruptError):
            hasession.parse_fields("k", self.base[1:])
        with self.assertRaises(hasession.CodecError):
            hasession.parse_fields("k", self.base[:4] + [("_k", "json")])


class Touch(unittest.TestCase):
    def test_reply(self):
        base = [b"_v", b"1", b".x", b"\x01"]
        self.assertEqual(store.touch_reply(base + [b"!", b"touched"]), ([(b"_v", b"1"), (b".x", b"\x01")], True))
        self.assertEqual(store.touch_reply(base), ([(b"_v", b"1"), (b".x", b"\x01")], False))
        self.assertEqual(store.touch_reply([]), ([], False))
        # The pair is only the touch's mark in last place; a '!' field elsewhere stays (corrupt).
        kind = store.touch_reply([b"!", b"touched"] + base)[0][0]
        self.assertEqual(kind, (b"!", b"touched"))


class Codec(unittest.TestCase):
    def test_round_trip(self):
        for v in ["", "Zoë", 0, -1, 127, 128, -33, 1 << 40, -(1 << 40), 0.5, True, False, None, [1, "a"], {"k": [1]}]:
            self.assertEqual(hasession.decode_value(hasession.encode_value(v)), v)

    def test_go_bytes(self):
        # As vmihailenco/msgpack v5 writes them: int64 as 0xd3 + 8 bytes, a string as str.
        self.assertEqual(hasession.decode_value(bytes.fromhex("d3000000000000002a")), 42)
        self.assertEqual(hasession.decode_value(bytes.fromhex("a3616263")), "abc")
        self.assertEqual(hasession.encode_value("abc"), bytes.fromhex("a3616263"))


class Refs(unittest.TestCase):
    def test_ref_and_forward(self):
        self.assertEqual(len(hasession.ref_of("x")), 24)
        old, new = store.new_id(), store.new_id()
        token = bytes(a ^ b for a, b in zip(bytes.fromhex(new.replace("-", "")), store.forward_mask(old))).hex()
        self.assertEqual(store.forward_target(old, token), new)
        self.assertIsNone(store.forward_target(old, "zz"))


if __name__ == "__main__":
    unittest.main()
