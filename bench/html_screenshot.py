"""Render an HTML report from a generated ledger and screenshot it with headless Chromium.

Usage: python bench/html_screenshot.py [OUT.png] [--records 20000]

Checks, stdlib only, that the PNG is non-trivial: a reasonable size and more than one colour
among sampled pixels (decoded with zlib + struct, PNG filters undone). Without /usr/bin/chromium
it writes the HTML only and says so.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gen_ledger import generate  # noqa: E402

from llmroute.config.model import Limits  # noqa: E402
from llmroute.report import build_report, local_today, make_window, resolve_tz  # noqa: E402
from llmroute.report.html import render_html  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of raw pixel bytes, bytes per pixel) of an 8-bit RGB/RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6), "expects 8-bit RGB or RGBA"
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def check_png(path: Path) -> str:
    data = path.read_bytes()
    width, height, rows, bpp = png_pixels(data)
    samples = {rows[y][x * bpp:x * bpp + 3] for y in range(0, height, 37) for x in range(0, width, 23)}
    if len(data) < 20_000 or len(samples) < 4:
        raise SystemExit(f"screenshot looks empty: {len(data)} bytes, {len(samples)} colours")
    return f"{width}x{height}, {len(data):,} bytes, {len(samples)} distinct colours sampled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path,
                        default=Path(tempfile.gettempdir()) / "llmroute-report-screenshot.png")
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ledger, page = Path(tmp) / "ledger.jsonl", Path(tmp) / "report.html"
        generate(args.records, ledger, days=30)
        tz = resolve_tz("UTC")
        window = make_window(today=local_today(datetime.now(timezone.utc), tz), kind="days", days=30)
        report = build_report(ledger, window, "provider", tz=tz, index_path=None, warn=print,
                              limits=Limits(daily=50.0, monthly=1000.0))
        page.write_text(render_html(report), encoding="utf-8")
        shutil.copy(page, args.out.with_suffix(".html"))
        if not Path(CHROMIUM).exists():
            print(f"no {CHROMIUM}: wrote {args.out.with_suffix('.html')} only")
            return
        profile = Path(tmp) / "profile"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                        f"--screenshot={args.out.resolve()}", "--window-size=1200,1600",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
        print(f"screenshot {args.out}: {check_png(args.out)}")


if __name__ == "__main__":
    main()
