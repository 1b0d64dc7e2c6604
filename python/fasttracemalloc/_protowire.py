"""Protocol Buffers wire format, encoding side only, for the pprof export.

Owns: turning field numbers and values into protobuf bytes (varints and
length-delimited fields).  Nothing else: no schema, no decoding.

Why by hand and not a library: pprof's ``Profile`` message
(github.com/google/pprof/proto/profile.proto) uses only two of the wire
types -- varint (every int64/uint64/bool field) and length-delimited
(strings and embedded messages) -- so an encoder is a few lines.  The
``protobuf`` package would need code generated from profile.proto checked in
(or a runtime descriptor build) and a compiled dependency for this one
message; no pprof-writing package on PyPI is kept up.  The test suite
decodes the output with its own independent decoder and has the real
``go tool pprof`` read it.

Rules followed (protobuf encoding spec): a field key is
``(field_number << 3) | wire_type``; negative int64 values are varints of
their two's complement on 64 bits (10 bytes); proto3 scalar fields equal to
their default (0, "", false) are omitted; repeated scalar fields are
written packed (one length-delimited field), which every proto3 parser
reads.

Threads: pure functions on local data.
"""

__all__ = ["varint", "field_varint", "field_bytes", "field_packed"]

VARINT = 0
LEN = 2
_MASK64 = (1 << 64) - 1


def varint(value):
    """Encode an int as a base-128 varint (negative: 64-bit two's
    complement, as int64 fields are encoded)."""
    value &= _MASK64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number, wire_type):
    return varint((number << 3) | wire_type)


def field_varint(number, value):
    """A varint field (int64, uint64, bool); empty when value is 0."""
    if not value:
        return b""
    return _key(number, VARINT) + varint(int(value))


def field_bytes(number, data, keep_empty=False):
    """A length-delimited field (bytes, str as UTF-8, embedded message).
    Empty data is omitted unless *keep_empty* (a repeated string's "" entry
    or an embedded message present with all-default fields)."""
    if isinstance(data, str):
        # backslashreplace: file names that are not valid UTF-8 (surrogates)
        # still give valid UTF-8, which proto3 string fields require
        data = data.encode("utf-8", "backslashreplace")
    if not data and not keep_empty:
        return b""
    return _key(number, LEN) + varint(len(data)) + bytes(data)


def field_packed(number, values):
    """A packed repeated varint field; empty when there are no values."""
    if not values:
        return b""
    return field_bytes(number, b"".join(varint(v) for v in values))
