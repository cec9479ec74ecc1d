"""Images in and out of the web app: checked decoding of uploads, and arrays encoded for the browser.

Uploads are limited before anything is decoded: at most ``max_bytes`` of data, one of a few raster
formats (sniffed from the bytes, not trusted from the name), and at most ``max_side`` pixels per side,
read from the header before the pixels are decompressed. Pillow's decompression-bomb warning is turned
into an error. Every refusal is an `HTTPError` with the status the API answers: 413 (too large),
415 (not a supported image type) or 400 (unreadable content).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["HTTPError", "Limits", "decode_image", "decode_data_url", "png_data_url", "float_map"]

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "BMP": "image/bmp", "WEBP": "image/webp"}
MIME_TYPES = frozenset(FORMATS.values()) | {"image/jpg", "image/x-ms-bmp", "image/x-png"}


class HTTPError(Exception):
    """An error the API answers as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = int(status), message


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 5 * 1024 * 1024
    max_side: int = 4096


def _check_type(content_type: str | None) -> None:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime and mime != "application/octet-stream" and mime not in MIME_TYPES:
        raise HTTPError(415, f"unsupported upload type {mime!r}: expected an image "
                             f"({', '.join(sorted(FORMATS))})")


def decode_image(raw: bytes, content_type: str | None = None, limits: Limits = Limits()):
    """Bytes of an uploaded file → a decoded Pillow image (first frame), or an `HTTPError`."""
    from PIL import Image, UnidentifiedImageError

    _check_type(content_type)
    if len(raw) > limits.max_bytes:
        raise HTTPError(413, f"image too large: {len(raw):,} bytes, at most {limits.max_bytes:,}")
    if not raw:
        raise HTTPError(400, "empty upload: expected an image file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(raw))  # lazy: reads the header only
        except UnidentifiedImageError:
            raise HTTPError(400 if (content_type or "").lower().startswith("image/") else 415,
                            "not a readable image: expected a PNG, JPEG, GIF, BMP or WebP file") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise HTTPError(413, "image rejected as a decompression bomb (too many pixels)") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise HTTPError(400, f"not a readable image ({type(e).__name__})") from None
        if im.format not in FORMATS:
            raise HTTPError(415, f"unsupported image format {im.format}: expected {', '.join(sorted(FORMATS))}")
        w, h = im.size
        if w > limits.max_side or h > limits.max_side:
            raise HTTPError(413, f"image too large: {w}×{h} pixels, at most {limits.max_side}×{limits.max_side}")
        if w < 1 or h < 1:
            raise HTTPError(400, f"image has no pixels ({w}×{h})")
        try:
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise HTTPError(413, "image rejected as a decompression bomb (too many pixels)") from None
        except (OSError, ValueError, SyntaxError, EOFError) as e:
            raise HTTPError(400, f"corrupt image data ({type(e).__name__}: {str(e)[:80]})") from None
    return im


def decode_data_url(url, limits: Limits = Limits()):
    """A ``data:image/png;base64,...`` URL (what ``canvas.toDataURL`` gives) → a Pillow image."""
    if not isinstance(url, str) or not url.startswith("data:"):
        raise HTTPError(400, "image must be a data URL like 'data:image/png;base64,...'")
    head, _, payload = url.partition(",")
    mime = head[5:].split(";")[0]
    if ";base64" not in head:
        raise HTTPError(400, "image data URL must be base64-encoded")
    _check_type(mime or "text/plain")
    if len(payload) > (limits.max_bytes * 4) // 3 + 4:
        raise HTTPError(413, f"image too large: more than {limits.max_bytes:,} bytes")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, "image data URL is not valid base64") from None
    return decode_image(raw, mime, limits)


def png_data_url(pixels: np.ndarray) -> str:
    """uint8 (H, W), (1, H, W), (3, H, W) or (H, W, 3) → a PNG data URL."""
    from PIL import Image

    a = np.asarray(pixels, dtype=np.uint8)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else np.moveaxis(a, 0, -1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def float_map(a: np.ndarray, max_channels: int | None = None) -> dict:
    """An array for the browser: ``{"shape", "data"}`` with data the float32 values, little-endian,
    base64 (exact, and ~4/3 of the raw size: half of JSON's decimal text). ``max_channels`` keeps the
    first ones along axis 0 (``"channels"`` keeps the original count)."""
    a = np.asarray(a, dtype=np.float32)
    channels = int(a.shape[0]) if a.ndim else 1
    if max_channels is not None and a.ndim and a.shape[0] > max_channels:
        a = a[:max_channels]
    a = np.nan_to_num(a, nan=0.0, posinf=3.4e38, neginf=-3.4e38)
    data = base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")
    return {"shape": list(a.shape), "channels": channels, "data": data,
            "min": float(a.min()) if a.size else 0.0, "max": float(a.max()) if a.size else 0.0}
