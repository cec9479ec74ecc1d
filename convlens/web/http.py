"""Request helpers: bodies read with a size cap, JSON objects, images from multipart forms or data URLs,
and errors answered as ``{"error": "..."}``."""

from __future__ import annotations

import json
import math
import re

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse as _StarletteJSON

from convlens.web.images import HTTPError, Limits, decode_data_url, decode_image

__all__ = ["JSONResponse", "error_response", "read_body", "read_json", "parse_json", "loads", "read_image_request", "threaded",
           "finite", "dumps"]

JSON_LIMIT = 256 * 1024  # settings and coordinates; a body with an image gets the image limit


def finite(value):
    """``value`` with every NaN or infinite float replaced by None (JSON has no NaN: a bare ``NaN`` in a
    response or server-sent event is a parse error in the browser). Tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def dumps(value) -> str:
    """Strict JSON text (never NaN or Infinity): the fast path first, the cleaned copy when it fails."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(finite(value), separators=(",", ":"), allow_nan=False)


class JSONResponse(_StarletteJSON):
    """Starlette's JSONResponse, but strict: non-finite numbers are sent as null."""

    def render(self, content) -> bytes:
        return dumps(content).encode("utf-8")


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it exceeds ``limit`` bytes (checked on the declared
    Content-Length first, then on what actually arrives, for chunked uploads)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise HTTPError(413, f"request too large: {int(declared):,} bytes, at most {limit:,}")
        except ValueError:
            raise HTTPError(400, "invalid Content-Length header") from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"request too large: more than {limit:,} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # so that request.form() parses what was read (Starlette reuses _body)
    return body


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_json(request: Request, limit: int = JSON_LIMIT) -> dict:
    """The body as a JSON object; 415 for another content type, 400 for bad JSON."""
    if _media_type(request) != "application/json":
        raise HTTPError(415, "expected a JSON body (Content-Type: application/json)")
    return parse_json(await read_body(request, limit))


MAX_DEPTH = 32  # settings are flat; a spec nests a few levels
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text} is out of range (at most about 1.8e308)")
    return v


def _depth_ok(raw: bytes) -> bool:
    """Whether brackets nest at most MAX_DEPTH deep (checked before parsing, so that ``[`` × 100,000
    is a 400, not a RecursionError deep inside the parser). String literals are removed first (one
    regular expression, then one translate: C speed), so brackets inside strings do not count."""
    depth = 0
    bare = _STRINGS.sub(b"", raw)
    for b in bare.translate(None, delete=_NOT_BRACKETS):
        depth += 1 if b in b"[{" else -1
        if depth > MAX_DEPTH:
            return False
    return True


def loads(raw: bytes | str, what: str = "invalid JSON:", status: int = 400):
    """Any JSON value from text, strictly: ``status`` for bad JSON, NaN / Infinity / 1e400, or nesting
    deeper than MAX_DEPTH."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if not _depth_ok(data):
        raise HTTPError(status, f"{what} nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise HTTPError(status, f"{what} nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPError(status, f"{what} {e}") from None


def parse_json(raw: bytes | str) -> dict:
    """A JSON object from text, strictly (see `loads`); 400 when it is not an object."""
    body = loads(raw)
    if not isinstance(body, dict):
        raise HTTPError(400, f"expected a JSON object, got {type(body).__name__}")
    return body


async def read_image_request(request: Request, limits: Limits) -> tuple[dict, object | None]:
    """``(fields, image or None)`` from a multipart form (file field ``image``, other fields as strings)
    or a JSON object (``"image"``: a data URL; other keys as given)."""
    media = _media_type(request)
    # base64 inflates by 4/3; the rest of the form or object gets 64 KB
    limit = limits.max_bytes * 4 // 3 + 64 * 1024
    if media == "multipart/form-data":
        await read_body(request, limits.max_bytes + 64 * 1024)
        try:
            form = await request.form(max_files=1, max_fields=32)
        except Exception as e:  # MultiPartException and friends: a malformed form
            raise HTTPError(400, f"malformed multipart form: {e}") from None
        fields, image = {}, None
        try:
            for key, value in form.multi_items():
                if hasattr(value, "read"):
                    if key != "image":
                        raise HTTPError(400, f"unexpected file field {key!r}: send the image as 'image'")
                    raw = await value.read(limits.max_bytes + 1)
                    image = await run_in_threadpool(decode_image, raw, value.content_type, limits)
                else:
                    fields[key] = value
        finally:
            await form.close()
        return fields, image
    if media == "application/json":
        body = await read_json(request, limit)
        url = body.pop("image", None)
        image = await run_in_threadpool(decode_data_url, url, limits) if url is not None else None
        return body, image
    if media.startswith("image/") or media == "application/octet-stream":
        raw = await read_body(request, limits.max_bytes)
        return {}, await run_in_threadpool(decode_image, raw, media, limits)
    raise HTTPError(415, f"unsupported content type {media or '(none)'!r}: send JSON, a multipart form with an "
                         "'image' file, or the image itself")


async def threaded(fn, *args, **kwargs):
    """Run blocking work (NumPy, Pillow, the training thread's answers) off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)
