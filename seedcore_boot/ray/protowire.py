"""Protocol buffers' wire format, just enough for the GCS calls of gcsprobe.py: decode a message's top-level fields,
encode a varint or a length-delimited field. Hand-written so that the supervisor never imports ray or protobuf
(https://protobuf.dev/programming-guides/encoding/)."""


def fields(buf):
    """Top-level (field number, value) pairs of a protobuf message; ValueError for anything that is not one
    (a GCS reply is read from whatever answers on the port: a field cut short, or a number where a message
    should be, must not pass as data)."""
    if not isinstance(buf, bytes):
        raise ValueError("a number where a message was expected")
    i, out = 0, []
    while i < len(buf):
        key, i = varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, i = varint(buf, i)
        elif wire in (1, 2, 5):
            n, i = (varint(buf, i) if wire == 2 else ({1: 8, 5: 4}[wire], i))
            if i + n > len(buf):
                raise ValueError("a field runs past the end of the message")
            val, i = buf[i:i + n], i + n
        else:
            raise ValueError("unsupported wire type")
        out.append((num, val))
    return out


def varint(buf, i):
    """(value, index after it) of the varint at buf[i]."""
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("a varint runs past the end of the message, or past 64 bits")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def bytes_of(fields, num):
    """Field `num` of a decoded message as bytes (absent: empty); ValueError when it is a number."""
    value = fields.get(num, b"")
    if not isinstance(value, bytes):
        raise ValueError(f"field {num} is a number where bytes were expected")
    return value


def number_of(fields, num):
    """Field `num` of a decoded message as a number (absent: 0); ValueError when it is bytes."""
    value = fields.get(num, 0)
    if not isinstance(value, int):
        raise ValueError(f"field {num} is bytes where a number was expected")
    return value


def bytes_field(num, value):
    """Field `num` (length-delimited) holding `value`, encoded."""
    return bytes([num << 3 | 2]) + encode_varint(len(value)) + value


def varint_field(num, value):
    """Field `num` (varint) holding `value`, encoded."""
    return bytes([num << 3]) + encode_varint(value)


def encode_varint(n):
    out = b""
    while True:
        out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
        n >>= 7
        if not n:
            return out
