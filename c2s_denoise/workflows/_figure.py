"""The demo's before/after figure: labelled panels (name and PSNR) over a 2x zoom of their centre.

Grayscale, NumPy only: the figure is an array in the display range ``[0, 1]`` that
:func:`c2s_denoise.io.png.write_png` writes with ``vmin=0, vmax=1``. Text is drawn with a tiny
5 x 7 bitmap font (the characters of :data:`GLYPHS`), so the package needs no plotting library.

Layout, top to bottom: a white strip with each panel's label, the panels (with a white frame
around the region shown below), a strip saying ``2x zoom``, then the centre of each panel at twice
its size. Panels are enlarged by a whole factor to at least :data:`MIN_PANEL_WIDTH` pixels, so
that small phantoms and their labels stay legible.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GLYPHS", "MIN_PANEL_WIDTH", "before_after_figure", "text_mask"]

#: 5 x 7 glyphs, one string of five 0/1 columns per row.
GLYPHS: dict[str, tuple[str, ...]] = {
    " ": ("00000",) * 7,
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "a": ("00000", "00000", "01110", "00001", "01111", "10001", "01111"),
    "c": ("00000", "00000", "01110", "10000", "10000", "10001", "01110"),
    "d": ("00001", "00001", "01101", "10011", "10001", "10001", "01111"),
    "e": ("00000", "00000", "01110", "10001", "11111", "10000", "01110"),
    "i": ("00100", "00000", "01100", "00100", "00100", "00100", "01110"),
    "l": ("01100", "00100", "00100", "00100", "00100", "00100", "01110"),
    "m": ("00000", "00000", "11010", "10101", "10101", "10001", "10001"),
    "n": ("00000", "00000", "10110", "11001", "10001", "10001", "10001"),
    "o": ("00000", "00000", "01110", "10001", "10001", "10001", "01110"),
    "s": ("00000", "00000", "01110", "10000", "01110", "00001", "11110"),
    "x": ("00000", "00000", "10001", "01010", "00100", "01010", "10001"),
    "y": ("00000", "00000", "10001", "10001", "01111", "00001", "01110"),
    "z": ("00000", "00000", "11111", "00010", "00100", "01000", "11111"),
}
#: Panels are enlarged by a whole factor to at least this width (the demo's 96-pixel phantom: twice).
MIN_PANEL_WIDTH = 192
_PAPER, _INK, _FRAME = 1.0, 0.0, 1.0
_GAP = 4


def text_mask(text: str, scale: int = 1) -> np.ndarray:
    """The pixels of ``text`` in the 5 x 7 font, ``scale`` times enlarged: a boolean ``(7 s, (6 n - 1) s)`` array.

    Raises
    ------
    ValueError
        For a character the font does not have.
    """
    missing = sorted(set(text) - set(GLYPHS))
    if missing:
        raise ValueError(f"the figure font has no glyph for {''.join(missing)!r}")
    columns = []
    for index, char in enumerate(text):
        if index:
            columns.append(np.zeros((7, 1), dtype=bool))
        columns.append(np.array([[bit == "1" for bit in row] for row in GLYPHS[char]]))
    mask = np.concatenate(columns, axis=1) if columns else np.zeros((7, 0), dtype=bool)
    return np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)


def _strip(texts: list[str], width: int, gap: int, scale: int) -> np.ndarray:
    """A white strip holding each text centred over its column (shortened from the end to fit)."""
    pad = 2 * scale
    strip = np.full((7 * scale + 2 * pad, len(texts) * (width + gap) - gap), _PAPER)
    for column, text in enumerate(texts):
        while text and text_mask(text, scale).shape[1] > width:
            text = text[:-1].rstrip()
        mask = text_mask(text, scale)
        left = column * (width + gap) + (width - mask.shape[1]) // 2
        strip[pad : pad + mask.shape[0], left : left + mask.shape[1]][mask] = _INK
    return strip


def _row(panels: list[np.ndarray], gap: int) -> np.ndarray:
    height = panels[0].shape[0]
    parts: list[np.ndarray] = []
    for index, panel in enumerate(panels):
        if index:
            parts.append(np.full((height, gap), _PAPER))
        parts.append(panel)
    return np.concatenate(parts, axis=1)


def before_after_figure(images: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """The figure of equal-shape 2-D ``images`` with their ``labels``, as a float array for ``write_png(vmin=0,
    vmax=1)``.

    Each image is enlarged ``f = ceil(192 / width)`` times (nearest neighbour; 1 from 192 pixels on); under
    it, its central half (both ways) at ``2 f`` times, framed in the image above.

    Parameters
    ----------
    images : list of ndarray, each (H, W)
        The panels, in the display range [0, 1] (values outside show as black or white).
    labels : list of str
        One label per panel, in the characters of :data:`GLYPHS`.

    Returns
    -------
    ndarray, float64
    """
    height, width = images[0].shape
    factor = max(1, math.ceil(MIN_PANEL_WIDTH / width))
    scale = max(2, factor * width // 192)  # the font's enlargement: 10 x 14 pixels a glyph at least
    crop_h, crop_w = max(1, height // 2), max(1, width // 2)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2

    def enlarged(image: np.ndarray, times: int) -> np.ndarray:
        return np.repeat(np.repeat(np.asarray(image, dtype=np.float64), times, axis=0), times, axis=1)

    panels, zooms = [], []
    for image in images:
        panel = enlarged(image, factor)
        y0, y1, x0, x1 = top * factor, (top + crop_h) * factor - 1, left * factor, (left + crop_w) * factor - 1
        panel[[y0, y1], x0 : x1 + 1] = _FRAME
        panel[y0 : y1 + 1, [x0, x1]] = _FRAME
        panels.append(panel)
        zoom = np.full(panel.shape, _PAPER)
        centre = enlarged(image[top : top + crop_h, left : left + crop_w], 2 * factor)
        zoom[: centre.shape[0], : centre.shape[1]] = centre
        zooms.append(zoom)
    panel_width = panels[0].shape[1]
    rows = [
        _strip(labels, panel_width, _GAP, scale),
        _row(panels, _GAP),
        _strip(["2x zoom"] + [""] * (len(images) - 1), panel_width, _GAP, scale),
        _row(zooms, _GAP),
    ]
    return np.concatenate(rows, axis=0)
