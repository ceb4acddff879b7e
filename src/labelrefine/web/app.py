"""The relabeling web app: one queued item at a time, answers committed before the page moves on.

Pages are rendered on the server (Jinja2, autoescaped); a small vanilla script adds keyboard
shortcuts and posts answers to the JSON API, retrying with the same submission id until the
server acknowledges it. Everything except the static assets needs the campaign's token: as
``?token=`` once (it is then kept in an HttpOnly cookie), or as ``Authorization: Bearer <token>``
/ ``X-Token`` header for scripts.

JSON API (all need the token):

- ``GET /api/next`` -> the next unanswered queued item for this annotator (or ``item: null``).
- ``GET /api/item/{idx}`` -> one item with its model top-3 and queue reason.
- ``POST /api/answer`` ``{item | idx, label, submission_id, seconds?, annotator?}`` where
  ``label`` is a class name, ``keep`` (the given label) or ``unsure``.
- ``POST /api/undo`` ``{submission_id, annotator?}`` -> retracts this annotator's last answer.
- ``GET /api/status`` -> campaign status (labels bought, per-class counts, query precision).
"""

from __future__ import annotations

import hmac
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from labelrefine.campaign.ledger import UNSURE, CampaignError, Ledger
from labelrefine.campaign.status import campaign_status

HERE = Path(__file__).parent
TOKEN_COOKIE = "labelrefine_token"
ANNOTATOR_COOKIE = "labelrefine_annotator"
KEEP = "keep"


class AnswerIn(BaseModel):
    """One answer posted by the page or a script."""

    item: str | None = Field(None, description="item id (the image id); or give idx")
    idx: int | None = Field(None, description="item index in the campaign; or give item")
    label: str = Field(..., description="a class name, 'keep' (the given label) or 'unsure'")
    submission_id: str = Field(..., min_length=1, max_length=128)
    seconds: float | None = Field(None, ge=0)
    annotator: str | None = None


class UndoIn(BaseModel):
    """Undo this annotator's last answer."""

    submission_id: str = Field(..., min_length=1, max_length=128)
    annotator: str | None = None


class _Leases:
    """Which annotator is looking at which item (in memory), so two people get different items."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._held: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def others(self, annotator: str) -> list[int]:
        now = time.monotonic()
        with self._lock:
            return [i for i, (who, t) in self._held.items() if who != annotator and t > now]

    def take(self, item: int, annotator: str) -> None:
        with self._lock:
            self._held = {i: v for i, v in self._held.items() if v[0] != annotator}
            self._held[item] = (annotator, time.monotonic() + self.seconds)


def create_app(
    campaign: str | Path,
    *,
    token: str,
    annotator: str = "expert",
    lease_seconds: float = 300.0,
) -> FastAPI:
    """Build the app for one campaign file. ``token`` guards every page and API call."""
    if not token:
        raise ValueError("a non-empty token is required")
    ledger = Ledger(campaign)
    default_annotator = annotator
    leases = _Leases(lease_seconds)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every value is HTML-escaped: ids and reasons are never markup
    )
    templates = Jinja2Templates(env=env)
    names = ledger.class_names
    app = FastAPI(title="labelrefine relabeling", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # -- auth ----------------------------------------------------------------------------------

    def supplied_token(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return (
            request.headers.get("x-token")
            or request.query_params.get("token")
            or request.cookies.get(TOKEN_COOKIE)
        )

    def authorised(request: Request) -> bool:
        given = supplied_token(request)
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    def require(request: Request) -> None:
        if not authorised(request):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def who(request: Request, explicit: str | None = None) -> str:
        name = (
            explicit or request.headers.get("x-annotator") or request.cookies.get(ANNOTATOR_COOKIE)
        )
        return (name or default_annotator).strip() or default_annotator

    @app.exception_handler(CampaignError)
    async def _campaign_error(_: Request, err: CampaignError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    # -- helpers -------------------------------------------------------------------------------

    def item_view(idx: int) -> dict[str, Any]:
        item = ledger.item(idx)
        entry = ledger.queue_entry(idx)
        top3: list[dict[str, Any]] = []
        if entry is not None and entry.probs is not None:
            order = np.argsort(-entry.probs, kind="stable")[:3]
            top3 = [{"label": names[k], "prob": round(float(entry.probs[k]), 4)} for k in order]
        return {
            "idx": int(item["idx"]),
            "item": item["key"],
            "given_label": names[int(item["given_label"])],
            "current_label": names[int(item["current_label"])],
            "source": item["source"],
            "reason": None if entry is None else entry.reason,
            "rank": None if entry is None else entry.rank,
            "top3": top3,
            "image_url": f"/image/{int(item['idx'])}",
        }

    def next_for(annotator_name: str) -> int | None:
        idx = ledger.next_item(skip=leases.others(annotator_name))
        if idx is not None:
            leases.take(idx, annotator_name)
        return idx

    def progress() -> dict[str, Any]:
        done, total = ledger.progress()
        return {"round": ledger.current_round(), "answered": done, "total": total}

    def panel_context(request: Request, idx: int | None, annotator_name: str) -> dict[str, Any]:
        return {
            "request": request,
            "item": None if idx is None else item_view(idx),
            "classes": list(names),
            "progress": progress(),
            "annotator": annotator_name,
            "unsure": UNSURE,
        }

    # -- pages ---------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, item: int | None = None) -> Response:
        if not authorised(request):
            return templates.TemplateResponse(
                request, "unauthorised.html", {"request": request}, status_code=401
            )
        qp = request.query_params
        if "token" in qp or "annotator" in qp:
            # Keep the token in a cookie and drop it from the address bar.
            rest = {k: v for k, v in qp.items() if k not in ("token", "annotator")}
            resp = RedirectResponse("/" + ("?" + urlencode(rest) if rest else ""), 303)
            if "token" in qp:
                resp.set_cookie(TOKEN_COOKIE, qp["token"], httponly=True, samesite="strict")
            if "annotator" in qp and qp["annotator"].strip():
                resp.set_cookie(
                    ANNOTATOR_COOKIE,
                    qp["annotator"].strip()[:64],
                    httponly=True,
                    samesite="strict",
                )
            return resp
        name = who(request)
        idx = item if item is not None else next_for(name)
        ctx = panel_context(request, idx, name)
        ctx["campaign"] = ledger.path.stem
        return templates.TemplateResponse(request, "label.html", ctx)

    @app.get("/partials/item", response_class=HTMLResponse)
    def panel(request: Request, item: int | None = None) -> Response:
        require(request)
        name = who(request)
        idx = item if item is not None else next_for(name)
        return templates.TemplateResponse(request, "_item.html", panel_context(request, idx, name))

    @app.get("/image/{idx}")
    def image(request: Request, idx: int) -> FileResponse:
        require(request)
        try:
            path = ledger.resolve_image(idx)
        except CampaignError:
            raise HTTPException(status_code=404, detail="image not found") from None
        return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})

    # -- JSON API ------------------------------------------------------------------------------

    @app.get("/api/next")
    def api_next(request: Request, annotator: str | None = None) -> dict[str, Any]:
        require(request)
        idx = next_for(who(request, annotator))
        return {"item": None if idx is None else item_view(idx), "progress": progress()}

    @app.get("/api/item/{idx}")
    def api_item(request: Request, idx: int) -> dict[str, Any]:
        require(request)
        try:
            return item_view(idx)
        except CampaignError:
            raise HTTPException(status_code=404, detail=f"unknown item index {idx}") from None

    @app.post("/api/answer")
    def api_answer(request: Request, body: AnswerIn) -> dict[str, Any]:
        require(request)
        if (body.item is None) == (body.idx is None):
            raise HTTPException(status_code=422, detail="give exactly one of 'item' or 'idx'")
        idx = ledger.item_index(body.item) if body.item is not None else int(body.idx or 0)
        item = ledger.item(idx)
        if body.label == KEEP:
            label: int | None = int(item["given_label"])
        elif body.label == UNSURE:
            label = None
        else:
            label = ledger.class_index(body.label)
        res = ledger.submit(
            idx,
            label,
            annotator=who(request, body.annotator),
            submission_id=body.submission_id,
            seconds=body.seconds,
            origin="web",
        )
        return {
            "annotation_id": res.annotation_id,
            "item": item["key"],
            "idx": idx,
            "duplicate": res.duplicate,
            "progress": progress(),
        }

    @app.post("/api/undo")
    def api_undo(request: Request, body: UndoIn) -> dict[str, Any]:
        require(request)
        name = who(request, body.annotator)
        res = ledger.undo_last(name, body.submission_id)
        if res.item is not None:
            leases.take(res.item, name)
        return {
            "retracted": res.retracted_id,
            "idx": res.item,
            "item": None if res.item is None else ledger.item(res.item)["key"],
            "duplicate": res.duplicate,
            "progress": progress(),
        }

    @app.get("/api/status")
    def api_status(request: Request) -> dict[str, Any]:
        require(request)
        return _jsonable(campaign_status(ledger).as_dict())

    return app


def _jsonable(obj: Any) -> Any:
    """Replace numpy scalars and NaN by plain JSON values."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
