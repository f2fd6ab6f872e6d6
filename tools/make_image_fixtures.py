#!/usr/bin/python3
"""Writes the small image fixtures of tests/image into tests/data/image/.

Run with Debian's Python (it has PIL and numpy): /usr/bin/python3 tools/make_image_fixtures.py

PNGs are written by the small encoder below, not by PIL, because PIL cannot write 1/2/4-bit
gray, tRNS on gray, or Adam7 interlacing. The expected pixels of a PNG are the array the
encoder was given, and PIL decodes each PNG to confirm it (PIL reduces 16-bit RGB to 8 bits,
so there it confirms the high bytes). JPEGs are written by PIL and the expected pixels are
PIL's own decode, which uses the same libjpeg-turbo as kiln.

For each fixture NAME.png / NAME.jpg there is NAME.expected.npy, shaped (height, width,
channels) as kiln decodes it: uint8 for 8-bit results, float32 holding the integer values
for 16-bit results. Output is deterministic (fixed seeds).
"""
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "image"

GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6
CHANNELS = {GRAY: 1, RGB: 3, PALETTE: 1, GRAY_ALPHA: 2, RGBA: 4}
# Adam7 passes: (x start, y start, x step, y step).
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_pack_rows(samples: np.ndarray, bit_depth: int) -> bytes:
    """samples: (h, w, c) integers -> filter-type-0 scanlines."""
    out = bytearray()
    for row in samples.reshape(samples.shape[0], -1):
        out.append(0)
        if bit_depth == 16:
            out += row.astype(">u2").tobytes()
        elif bit_depth == 8:
            out += row.astype(np.uint8).tobytes()
        else:
            per_byte = 8 // bit_depth
            padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.uint32)
            padded[: len(row)] = row
            for group in padded.reshape(-1, per_byte):
                byte = 0
                for value in group:
                    byte = (byte << bit_depth) | int(value)
                out.append(byte)
    return bytes(out)


def png_encode(samples, color_type, bit_depth, *, palette=None, trns=None, interlace=False):
    samples = np.asarray(samples)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    height, width, channels = samples.shape
    assert channels == CHANNELS[color_type]
    if interlace:
        raw = b"".join(
            png_pack_rows(samples[y0::dy, x0::dx], bit_depth)
            for x0, y0, dx, dy in ADAM7
            if samples[y0::dy, x0::dx].size)
    else:
        raw = png_pack_rows(samples, bit_depth)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace))
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr)
    if palette is not None:
        data += png_chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).ravel()))
    if trns is not None:
        data += png_chunk(b"tRNS", trns)
    return data + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def save(name: str, data: bytes, expected: np.ndarray, pil_view: np.ndarray, wide=False):
    """wide: a 16-bit result, stored as float32."""
    expected = np.asarray(expected)
    if expected.ndim == 2:
        expected = expected[:, :, None]
    pil_view = np.asarray(pil_view)
    if pil_view.ndim == 2:
        pil_view = pil_view[:, :, None]
    if pil_view.shape != expected.shape or not np.array_equal(pil_view, expected):
        sys.exit(f"{name}: PIL's decode disagrees with the expected pixels")
    (OUT / name).write_bytes(data)
    stem = name.rsplit(".", 1)[0]
    dtype = np.float32 if wide else np.uint8
    np.save(OUT / f"{stem}.expected.npy", expected.astype(dtype))
    print(f"{name:28s} {len(data):6d} bytes  expected {expected.shape} {np.dtype(dtype).name}")


def pil_open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pil_high_bytes(data: bytes, samples: np.ndarray) -> np.ndarray:
    """PIL decodes 16-bit RGB(A) to 8 bits: rebuild the 16-bit view from its high bytes."""
    return np.asarray(pil_open(data)).astype(np.int64) * 256 + samples % 256


def make_pngs(rng: np.random.Generator):
    # 4-bit palette with partial transparency -> RGBA.
    palette = rng.integers(0, 256, (12, 3))
    alpha = np.array([0, 64, 128, 200, 255], dtype=np.uint8)  # entries 5.. are opaque
    index = rng.integers(0, 12, (7, 11))
    rgba = np.concatenate([palette[index], np.full((7, 11, 1), 255)], axis=2)
    rgba[..., 3] = np.where(index < 5, alpha[np.minimum(index, 4)], 255)
    data = png_encode(index, PALETTE, 4, palette=palette, trns=alpha.tobytes())
    save("palette4_trns.png", data, rgba, pil_open(data).convert("RGBA"))

    # 8-bit palette, opaque -> RGB.
    palette = rng.integers(0, 256, (200, 3))
    index = rng.integers(0, 200, (6, 9))
    data = png_encode(index, PALETTE, 8, palette=palette)
    save("palette8.png", data, palette[index], pil_open(data).convert("RGB"))

    # 1/2/4-bit gray: kiln expands to 8 bits by bit replication (v * 255 / (2^bits - 1)).
    for bits in (1, 2, 4):
        levels = rng.integers(0, 1 << bits, (5, 13))
        data = png_encode(levels, GRAY, bits)
        save(f"gray{bits}.png", data, levels * 255 // ((1 << bits) - 1),
             pil_open(data).convert("L"))

    # 8-bit gray with a tRNS gray value -> gray + alpha.
    gray = rng.integers(0, 256, (6, 7))
    gray[::2, ::3] = 77
    data = png_encode(gray, GRAY, 8, trns=struct.pack(">H", 77))
    expected = np.stack([gray, np.where(gray == 77, 0, 255)], axis=2)
    save("gray8_trns.png", data, expected, pil_open(data).convert("LA"))

    ga = rng.integers(0, 256, (5, 8, 2))
    data = png_encode(ga, GRAY_ALPHA, 8)
    save("gray_alpha8.png", data, ga, pil_open(data))

    gray16 = rng.integers(0, 65536, (5, 6))
    data = png_encode(gray16, GRAY, 16)
    save("gray16.png", data, gray16, pil_open(data), wide=True)

    rgb16 = rng.integers(0, 65536, (4, 7, 3))
    data = png_encode(rgb16, RGB, 16)
    save("rgb16.png", data, rgb16, pil_high_bytes(data, rgb16), wide=True)

    rgba16 = rng.integers(0, 65536, (3, 5, 4))
    data = png_encode(rgba16, RGBA, 16)
    save("rgba16.png", data, rgba16, pil_high_bytes(data, rgba16), wide=True)

    # Adam7: sizes that leave some passes partial or empty.
    rgb = rng.integers(0, 256, (11, 13, 3))
    data = png_encode(rgb, RGB, 8, interlace=True)
    save("interlaced_rgb8.png", data, rgb, pil_open(data))

    levels = rng.integers(0, 4, (9, 10))
    data = png_encode(levels, GRAY, 2, interlace=True)
    save("interlaced_gray2.png", data, levels * 85, pil_open(data).convert("L"))

    rgba = rng.integers(0, 65536, (6, 9, 4))
    data = png_encode(rgba, RGBA, 16, interlace=True)
    save("interlaced_rgba16.png", data, rgba, pil_high_bytes(data, rgba), wide=True)


def make_jpegs(rng: np.random.Generator):
    # A smooth gradient plus noise, with sides that are not multiples of the 16-pixel MCU.
    y, x = np.mgrid[0:17, 0:33]
    base = np.stack([x * 7, y * 13, (x + y) * 5], axis=2) + rng.integers(0, 40, (17, 33, 3))
    rgb = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    for name, options in (("baseline.jpg", {}), ("progressive.jpg", {"progressive": True})):
        buffer = io.BytesIO()
        rgb.save(buffer, "JPEG", quality=90, **options)
        decoded = pil_open(buffer.getvalue())
        save(name, buffer.getvalue(), np.asarray(decoded), np.asarray(decoded))

    buffer = io.BytesIO()
    rgb.convert("L").save(buffer, "JPEG", quality=90)
    decoded = pil_open(buffer.getvalue())
    assert decoded.mode == "L"
    save("gray.jpg", buffer.getvalue(), np.asarray(decoded), np.asarray(decoded))

    # CMYK is refused by kiln; only the file is needed.
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(buffer, "JPEG")
    (OUT / "cmyk.jpg").write_bytes(buffer.getvalue())
    print(f"{'cmyk.jpg':28s} {len(buffer.getvalue()):6d} bytes")


def make_hostile():
    # IHDR claims 100000 x 100000 RGB with valid CRCs; the IDAT holds one row only.
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, RGB, 0, 0, 0)
    idat = zlib.compress(b"\x00" + bytes(3 * 100000), 9)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) +
            png_chunk(b"IEND", b""))
    (OUT / "huge_ihdr.png").write_bytes(data)
    print(f"{'huge_ihdr.png':28s} {len(data):6d} bytes")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240601)
    make_pngs(rng)
    make_jpegs(rng)
    make_hostile()
    total = sum(f.stat().st_size for f in OUT.iterdir())
    print(f"total {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
