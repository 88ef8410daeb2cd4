"""The demo's before/after picture: labelled panels with their PSNR over a 2x zoom of the centre."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from c2s_denoise.workflows import DemoSettings, run_demo
from c2s_denoise.workflows._figure import GLYPHS, MIN_PANEL_WIDTH, before_after_figure, text_mask

STRIP = 7 * 2 + 2 * 2 * 2  # glyphs 7 pixels high at scale 2, 2 x 2 pixels of paper above and below
GAP = 4


def read_png(path: Path) -> np.ndarray:
    """Decode the package's grayscale 8-bit PNGs (filter 0 on every row)."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        chunks[kind] = chunks.get(kind, b"") + data[position + 8 : position + 8 + length]
        position += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 0)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, width + 1)
    assert not rows[:, 0].any()
    return rows[:, 1:]


def test_text_mask() -> None:
    mask = text_mask("C2S 1.5 dB", scale=2)
    assert mask.shape == (14, (6 * 10 - 1) * 2) and mask.any()
    assert not text_mask(" ").any()
    assert set("noisy C2S clean dB 0123456789.-2x zoom") <= set(GLYPHS)
    with pytest.raises(ValueError, match="no glyph"):
        text_mask("PSNR")


def test_figure_layout() -> None:
    images = [np.full((96, 96), value) for value in (0.2, 0.5, 0.8)]
    figure = before_after_figure(images, ["noisy 21.97 dB", "C2S 28.04 dB", "clean"])
    panel = MIN_PANEL_WIDTH  # 96 pixels, twice
    assert figure.shape == (STRIP + panel + STRIP + panel, 3 * panel + 2 * GAP)
    strip = figure[:STRIP]
    for column in range(3):
        cells = strip[:, column * (panel + GAP) : column * (panel + GAP) + panel]
        assert (cells == 0).any() and (cells == 1).any(), f"column {column}: a blank label"
    top = figure[STRIP : STRIP + panel, :panel]
    assert (top == 1).sum() > 0 and np.isclose(top[0, 0], 0.2)  # the frame of the zoomed region, in white
    zoom = figure[2 * STRIP + panel :, :panel]
    assert np.allclose(zoom, 0.2)  # the centre of a flat panel is flat


def test_labels_that_do_not_fit_are_shortened() -> None:
    figure = before_after_figure([np.zeros((200, 200))], ["noisy 21.97 dB " * 3])
    assert figure.shape[1] == 200 and (figure[:STRIP] == 0).any()


def test_the_demo_picture(tmp_path: Path) -> None:
    summary = run_demo(tmp_path / "demo", DemoSettings(size=32, max_iter=3, device="cpu"))
    picture = read_png(Path(summary["files"]["before_after.png"]))
    panel = 32 * 6  # enlarged to 192 pixels
    assert picture.shape == (STRIP + panel + STRIP + panel, 3 * panel + 2 * GAP)
    strip = picture[:STRIP]
    for column in range(3):
        cells = strip[:, column * (panel + GAP) : column * (panel + GAP) + panel]
        assert (cells == 0).sum() > 50 and (cells == 255).any(), f"column {column}: a blank label"
    labels = [f"noisy {summary['figure']['psnr_noisy']:.2f} dB", f"C2S {summary['figure']['psnr_denoised']:.2f} dB"]
    for column, label in enumerate(labels):
        mask = text_mask(label, 2)
        left = column * (panel + GAP) + (panel - mask.shape[1]) // 2
        np.testing.assert_array_equal(strip[4 : 4 + 14, left : left + mask.shape[1]] == 0, mask)
    assert summary["figure"]["slice"] == 2
