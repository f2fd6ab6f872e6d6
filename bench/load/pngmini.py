"""Minimal PNG reading and writing with the standard library only (zlib, struct).

Reads 8-bit, non-interlaced grey, grey+alpha, RGB and RGBA images (the load runner's inputs
and kiln's outputs); writes 8-bit RGB. Pixels are a flat list of bytes, row-major, RGB.
"""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def header(data):
    """(width, height) from the IHDR chunk; raises ValueError for a non-PNG."""
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", data[16:24])


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data):
    """(width, height, rgb bytes). Raises ValueError for what it does not read."""
    width, height = header(data)
    pos, idat, depth, color, interlace = 8, [], 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            depth, color, interlace = body[8], body[9], body[12]
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if depth != 8 or interlace or color not in CHANNELS:
        raise ValueError(f"unsupported PNG: depth {depth} colour {color} interlace {interlace}")
    ch = CHANNELS[color]
    raw = zlib.decompress(b"".join(idat))
    stride = width * ch
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif f == 4:
                line[x] = (line[x] + _paeth(a, b, c)) & 255
        rows.append(line)
        prev = line
    rgb = bytearray()
    for line in rows:
        for x in range(width):
            px = line[x * ch:(x + 1) * ch]
            if ch in (1, 2):
                rgb += bytes((px[0], px[0], px[0]))
            else:
                rgb += px[:3]
    return width, height, bytes(rgb)


def encode(width, height, rgb):
    """8-bit RGB PNG bytes (filter 0 on every row)."""
    def chunk(kind, body):
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride:(y + 1) * stride] for y in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(
        b"IEND", b"")


def crop(width, rgb, top, left, size):
    """A size x size RGB crop at (top, left) of an image `width` pixels wide."""
    out = bytearray()
    for y in range(top, top + size):
        out += rgb[(y * width + left) * 3:(y * width + left + size) * 3]
    return bytes(out)


def box_down(width, height, rgb, factor):
    """Averages factor x factor blocks: (w / factor, h / factor, list of floats)."""
    w, h = width // factor, height // factor
    out = [0.0] * (w * h * 3)
    inv = 1.0 / (factor * factor)
    for y in range(h * factor):
        row = y * width * 3
        base = (y // factor) * w * 3
        for x in range(w * factor):
            o = base + (x // factor) * 3
            i = row + x * 3
            out[o] += rgb[i]
            out[o + 1] += rgb[i + 1]
            out[o + 2] += rgb[i + 2]
    return w, h, [v * inv for v in out]


def mean_abs_diff(a, b):
    return sum(abs(x - y) for x, y in zip(a, b)) / max(1, len(a))
