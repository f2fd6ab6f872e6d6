"""PNG helpers for the soak runner: tagged inputs and a strict check of served outputs.

Every input the runner submits carries a tEXt chunk naming the submission ("kiln-soak" key),
so a job found on the server can be traced back to the request that made it even when the
answer to that request never arrived (the server keeps the submitted bytes as they were).
"""

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
TAG_KEYWORD = b"kiln-soak"
# Samples per pixel of each colour type (PNG spec, IHDR).
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _chunk(kind, body):
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def add_tag(png, tag):
    """`png` with a tEXt chunk "kiln-soak: <tag>" right after its IHDR."""
    if png[:8] != SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    text = _chunk(b"tEXt", TAG_KEYWORD + b"\x00" + tag.encode("ascii"))
    return png[:ihdr_end] + text + png[ihdr_end:]


def read_tag(png):
    """The tag `add_tag` put in `png`, or None."""
    pos = 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        if kind == b"tEXt":
            keyword, _, text = png[pos + 8:pos + 8 + length].partition(b"\x00")
            if keyword == TAG_KEYWORD:
                return text.decode("ascii", "replace")
        if kind in (b"IDAT", b"IEND"):
            return None
        pos += 12 + length
    return None


def check_png(data):
    """(width, height) of a complete, well-formed PNG; raises ValueError naming the defect.

    Checks the signature, every chunk's length and CRC, IHDR first, at least one IDAT, IEND
    last with nothing after it, and that the IDAT stream inflates completely to exactly the
    bytes the header calls for, with a valid filter type on every row (non-interlaced).
    """
    if data[:8] != SIGNATURE:
        raise ValueError(f"bad signature {data[:8]!r} ({len(data)} bytes)")
    pos, chunks, idat = 8, [], []
    width = height = depth = color = interlace = None
    while True:
        if pos + 12 > len(data):
            raise ValueError(f"truncated at byte {pos} of {len(data)} (no IEND)")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError(f"chunk {kind!r} at {pos} runs past the end ({end} > {len(data)})")
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in chunk {kind!r} at byte {pos}")
        if not chunks and kind != b"IHDR":
            raise ValueError(f"first chunk is {kind!r}, not IHDR")
        chunks.append(kind)
        if kind == b"IHDR":
            if length != 13:
                raise ValueError(f"IHDR of {length} bytes")
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos = end
        if kind == b"IEND":
            break
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes after IEND")
    if not idat:
        raise ValueError("no IDAT chunk")
    if color not in CHANNELS or depth not in (1, 2, 4, 8, 16) or width == 0 or height == 0:
        raise ValueError(f"bad IHDR: {width}x{height} depth {depth} colour {color}")
    if interlace:
        raise ValueError("interlaced output (kiln writes non-interlaced PNGs)")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat)) + inflater.flush()
    except zlib.error as e:
        raise ValueError(f"IDAT does not inflate: {e}")
    if not inflater.eof:
        raise ValueError("IDAT stream ends before its end marker")
    stride = (width * CHANNELS[color] * depth + 7) // 8
    if len(raw) != height * (stride + 1):
        raise ValueError(f"IDAT inflates to {len(raw)} bytes, expected {height * (stride + 1)}")
    bad_rows = [y for y in range(height) if raw[y * (stride + 1)] > 4]
    if bad_rows:
        raise ValueError(f"invalid filter type on {len(bad_rows)} row(s), first row {bad_rows[0]}")
    return width, height
