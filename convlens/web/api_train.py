"""The JSON API of the Train page: start / pause / resume / stop, status, server-sent events, save, and
"use this model" (hands the job's current weights to the Explain and Draw pages)."""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from convlens.web.http import JSONResponse, dumps, read_json, threaded

__all__ = ["routes", "sse"]

HEARTBEAT_S = 15.0


def sse(event: str, data) -> str:
    """One server-sent event (``data`` as one line of JSON)."""
    return f"event: {event}\ndata: {dumps(data)}\n\n"  # strict JSON: a diverged loss is null, never NaN


def _jobs(request: Request):
    return request.app.state.web.jobs


async def start(request: Request):
    body = await read_json(request)
    job = await threaded(_jobs(request).start, body)
    return JSONResponse(job.status(), status_code=201)


async def _action(request: Request, name: str):
    job = _jobs(request).current(name)
    await threaded(getattr(job, name))
    return JSONResponse(job.status())


async def pause(request: Request):
    return await _action(request, "pause")


async def resume(request: Request):
    return await _action(request, "resume")


async def stop(request: Request):
    return await _action(request, "stop")


async def hyper(request: Request):
    """Change lr / momentum / weight_decay / batch_size of the running job (see `TrainJob.set_hyper`)."""
    body = await read_json(request)
    job = _jobs(request).current("change settings")
    return JSONResponse(await threaded(job.set_hyper, body))


async def params(request: Request):
    """``?layer=NAME``: every layer's weight and gradient sizes, and one layer's weights and gradients."""
    job = _jobs(request).current("show the weights")
    layer = request.query_params.get("layer")
    return JSONResponse(await threaded(job.params, layer))


async def status(request: Request):
    return JSONResponse(_jobs(request).status())


async def save(request: Request):
    job = _jobs(request).current("save")
    path = await threaded(job.save)
    web = request.app.state.web
    return JSONResponse({"path": web.display_path(path), "run": job.run_name, "epoch": len(job.history)})


async def use(request: Request):
    """Let the Explain and Draw pages run the job's current weights."""
    web = request.app.state.web
    job = _jobs(request).current("use the model")
    model = await threaded(job.copy_model)
    web.use_model(model, job.info(), f"training job {job.id}: {job.label} on {job.dataset}")
    return JSONResponse({"model": web.handle.label, "source": web.source})


async def events(request: Request):
    """Server-sent events: ``state`` (everything so far) first, then ``progress``, ``epoch``, ``status``,
    ``saved`` and ``snapshot`` as they happen; ``end`` once the job is over (or when there is none)."""
    manager = _jobs(request)
    job = manager.job

    async def stream():
        if job is None:
            yield sse("state", manager.status())
            yield sse("end", {"state": "idle"})
            return
        state, cursor = job.full_state()
        yield sse("state", state)
        version, last_sent = 0, time.monotonic()
        while True:
            over = job.terminal
            for seq, kind, data in job.events_after(cursor):
                cursor = seq
                yield sse(kind, data)
                last_sent = time.monotonic()
            snap, version = job.snapshot_after(version)
            if snap is not None:
                yield sse("snapshot", snap)
                last_sent = time.monotonic()
            if over:
                yield sse("end", {"state": job.state})
                return
            if time.monotonic() - last_sent > HEARTBEAT_S:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
            if await request.is_disconnected() or request.app.state.web.closing:
                return
            await asyncio.sleep(0.2)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


routes = [
    Route("/api/train/start", start, methods=["POST"]),
    Route("/api/train/pause", pause, methods=["POST"]),
    Route("/api/train/resume", resume, methods=["POST"]),
    Route("/api/train/stop", stop, methods=["POST"]),
    Route("/api/train/save", save, methods=["POST"]),
    Route("/api/train/use", use, methods=["POST"]),
    Route("/api/train/status", status, methods=["GET"]),
    Route("/api/train/hyper", hyper, methods=["POST"]),
    Route("/api/train/params", params, methods=["GET"]),
    Route("/api/train/events", events, methods=["GET"]),
]
