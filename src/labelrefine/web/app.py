"""The relabeling web app: one queued item at a time, answers committed before the page moves on.

Pages are rendered on the server (Jinja2, autoescaped); a small vanilla script adds keyboard
shortcuts and posts answers to the JSON API, retrying with the same submission id until the
server acknowledges it.

Who is who: every request carries a token -- as ``?token=`` once on any page (it is then kept in
an HttpOnly cookie; a browser already signed in as someone else is asked before it switches), or
as ``Authorization: Bearer <token>`` / ``X-Token`` header for scripts. The token decides the name
answers are recorded under; a request never names its own reader, and a submission id belongs to
the reader who sent it (another reader's id is a 409).

Independence: a reader sees their own answer only, never another reader's answer or the item's
decision; ``/api/next`` hands out items through :meth:`Ledger.assign_next` (one transaction, one
reader per reading slot). Every response carries :data:`SECURITY_HEADERS`.

- the **admin token** (given to :func:`create_app`, printed by ``labelrefine serve``) answers as
  the default annotator, may adjudicate, and may create reader accounts;
- a **reader token** (``labelrefine campaign reader add NAME``, or ``POST /api/readers``) answers
  as that reader; an ``adjudicator`` reader may also adjudicate.

JSON API (all need a token):

- ``GET /api/next`` -> the next queued item this reader should read (or ``item: null``).
- ``GET /api/item/{idx}`` -> one item with its model top-3 and queue reason (hidden in blind mode).
  Both carry ``lookalikes``: the nearest confirmed items of the given label and of the model's
  top suggestion (:mod:`labelrefine.web.lookalikes`; none in blind mode).
- ``POST /api/answer`` ``{item | idx, label, keep?, submission_id, seconds?}``: ``label`` is a class
  name or ``unsure``; ``"keep": true`` keeps the given label. Only items of the current queue.
- ``POST /api/undo`` ``{submission_id}`` -> retracts this reader's last answer of this round.
- ``GET /api/conflicts`` / ``POST /api/adjudicate`` ``{idx, label, submission_id}``: adjudicators
  (with the class display names: ``display_names`` / ``display_name``).
- ``POST /api/readers`` ``{name, role?}`` -> a new reader's token (admin only).
- ``GET /api/status`` -> campaign status (readers, agreement, conflicts, expert time, advice).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import jinja2
import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, Strict

from labelrefine.campaign.create import campaign_class_names, campaign_intensity
from labelrefine.campaign.ledger import (
    NOTE_MAX_CHARS,
    UNSURE,
    CampaignError,
    Ledger,
    NotAllowed,
    SubmissionIdTaken,
    SubmissionRetracted,
)
from labelrefine.campaign.status import campaign_status, estimate_line, headline
from labelrefine.data.images import UnsupportedImageError, browser_png
from labelrefine.io import to_jsonable
from labelrefine.web import lookalikes as looks

HERE = Path(__file__).parent
TOKEN_COOKIE = "labelrefine_token"
KEEP = "keep"
MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (answers are a few hundred bytes)."""

SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
)
"""Sent with every response: no framing (clickjacking), no content sniffing, no referrer (page
addresses may carry a token), and scripts only from the app itself."""

Index = Annotated[int, Strict()]  # JSON true / "3" are not item indices
Seconds = Annotated[float, Strict()]


class AnswerIn(BaseModel):
    """One answer posted by the page or a script."""

    item: str | None = Field(None, max_length=512, description="item id; or give idx")
    idx: Index | None = Field(None, ge=0, lt=2**62, description="item index; or give item")
    label: str | None = Field(
        None, max_length=256, description="a class name or 'unsure' (or give keep)"
    )
    keep: Annotated[bool, Strict()] = Field(False, description="true: keep the given label")
    submission_id: str = Field(..., min_length=1, max_length=128)
    seconds: Seconds | None = Field(None, ge=0, lt=1e7, allow_inf_nan=False)
    annotator: str | None = Field(
        None, max_length=64, description="ignored unless it names the token's reader"
    )
    note: Annotated[str, Strict()] | None = Field(
        None, description="the reader's free-text note on this answer (checked by the ledger)"
    )


class UndoIn(BaseModel):
    """Undo this reader's last answer of the current round."""

    submission_id: str = Field(..., min_length=1, max_length=128)
    annotator: str | None = Field(None, max_length=64)


class AdjudicateIn(BaseModel):
    """An adjudicator's final label for a conflicting item."""

    idx: Index = Field(..., ge=0, lt=2**62)
    label: str = Field(..., max_length=256)
    submission_id: str = Field(..., min_length=1, max_length=128)
    seconds: Seconds | None = Field(None, ge=0, lt=1e7, allow_inf_nan=False)
    note: str = Field("", max_length=1000)


class ReaderIn(BaseModel):
    """A new reader account."""

    name: str = Field(..., min_length=1, max_length=64)
    role: str = Field("reader", max_length=32)


@dataclass(frozen=True)
class Principal:
    """Who a request is: the name answers are recorded under and what they may do."""

    name: str
    role: str  # admin | adjudicator | reader

    @property
    def can_adjudicate(self) -> bool:
        return self.role in ("admin", "adjudicator")


class _SecurityHeaders:
    """ASGI middleware: add :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413 (nothing echoed)."""

    def __init__(self, app: Any, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await _too_large(send, self.limit)
                    return
        # Read the whole (small) body first, counting; replay it to the app when within limits.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _too_large(send, self.limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _replay(messages: list[dict], then: Any = None) -> Any:
    """An ASGI ``receive`` that returns ``messages`` first, then defers to ``then``."""
    queue = list(messages)

    async def receive() -> dict:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _too_large(send: Any, limit: int) -> None:
    body = f'{{"detail": "request body larger than {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    campaign: str | Path,
    *,
    token: str,
    annotator: str = "expert",
    lease_seconds: float = 300.0,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Any:
    """Build the app for one campaign file.

    ``token`` is the admin token: it answers as ``annotator``, may adjudicate and may create
    reader accounts. Reader tokens come from the campaign file (``campaign reader add``).
    """
    if not token:
        raise ValueError("a non-empty token is required")
    ledger = Ledger(campaign)
    admin = Principal(ledger.claim_admin_name(annotator), "admin")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,  # every value is HTML-escaped: ids and reasons are never markup
    )
    templates = Jinja2Templates(env=env)
    names = ledger.class_names
    lookalikes = looks.Lookalikes(ledger)  # features read once per process (background)
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

    def principal(request: Request) -> Principal | None:
        return principal_of(supplied_token(request))

    def principal_of(given: str | None) -> Principal | None:
        if not given or len(given) > 256:
            return None
        if hmac.compare_digest(given.encode(), token.encode()):
            return admin
        reader = ledger.reader_for_token(given)
        return None if reader is None else Principal(reader.name, reader.role)

    def require(request: Request) -> Principal:
        who = principal(request)
        if who is None:
            raise HTTPException(
                status_code=401,
                detail="missing or wrong token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return who

    def same_reader(who: Principal, claimed: str | None) -> None:
        if claimed is not None and claimed.strip() and claimed.strip() != who.name:
            raise HTTPException(
                status_code=403,
                detail=f"this token answers as {who.name!r}; it cannot act as {claimed.strip()!r}",
            )

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, err: RequestValidationError) -> JSONResponse:
        # Say what is wrong without echoing the input back (it may be huge or not JSON-safe).
        problems = [
            {"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in err.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(NotAllowed)
    async def _not_allowed(_: Request, err: NotAllowed) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=403)

    @app.exception_handler(SubmissionRetracted)
    async def _retracted(_: Request, err: SubmissionRetracted) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=409)

    @app.exception_handler(SubmissionIdTaken)
    async def _taken(_: Request, err: SubmissionIdTaken) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=409)

    @app.exception_handler(CampaignError)
    async def _campaign_error(_: Request, err: CampaignError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    # -- helpers -------------------------------------------------------------------------------

    def item_view(idx: int, reader: str | None = None) -> dict[str, Any]:
        """What a page shows of item ``idx``: to a ``reader``, only their own answer -- never
        another reader's answer or the item's decision -- and, in blind mode, neither the given
        label nor the model's suggestions; without ``reader`` (adjudication) everything."""
        item = ledger.item(idx)
        entry = ledger.queue_entry(idx)
        blind = ledger.blind and reader is not None
        top3: list[dict[str, Any]] = []
        if entry is not None and entry.probs is not None and not blind:
            order = np.argsort(-entry.probs, kind="stable")[:3]
            top3 = [{"label": names[k], "prob": round(float(entry.probs[k]), 4)} for k in order]
        current, source = names[int(item["current_label"])], item["source"]
        if reader is not None:
            own = ledger.live_answer(idx, reader)
            current = None if own is None or own[1] is None else names[own[1]]
            source = "given" if own is None else "expert" if own[1] is not None else UNSURE
        return {
            "idx": int(item["idx"]),
            "item": item["key"],
            "given_label": None if blind else names[int(item["given_label"])],
            "current_label": None if blind else current,
            "source": None if blind else source,
            "reason": None if entry is None or blind else entry.reason,
            "rank": None if entry is None else entry.rank,
            "top3": top3,
            "blind": blind,
            "image_url": f"/image/{int(item['idx'])}",
            # the reader's note on their own live answer (shown for editing); never another's
            "note": "" if reader is None else ledger.live_note(idx, reader),
            "lookalikes": None if reader is None else lookalike_rows(item, entry, blind),
        }

    def lookalike_rows(item: dict[str, Any], entry: Any, blind: bool) -> dict[str, Any]:
        """The nearest confirmed items of the given label and of the model's top suggestion
        (:mod:`labelrefine.web.lookalikes`); in blind mode none (they would name both)."""
        if blind:
            return looks.blind()
        top = None if entry is None or entry.probs is None else int(np.argmax(entry.probs))
        return lookalikes.rows(int(item["idx"]), int(item["given_label"]), top)

    def next_for(name: str) -> int | None:
        return ledger.assign_next(name, lease_seconds=lease_seconds)

    def progress(reader: str | None = None) -> dict[str, Any]:
        """The team's progress on the current queue (items decided / queued) and, for a
        reader, their own live answers in this round (``mine``)."""
        done, total = ledger.progress()
        rnd = ledger.current_round()
        out: dict[str, Any] = {"round": rnd, "answered": done, "total": total}
        if reader is not None:
            out["mine"] = ledger.count_answers(reader, rnd)
        return out

    def panel_context(request: Request, idx: int | None, who: Principal) -> dict[str, Any]:
        p = progress(who.name)
        return {
            "request": request,
            "item": None if idx is None else item_view(idx, who.name),
            "classes": list(names),
            "display": campaign_class_names(ledger),  # class code -> name shown beside it
            "progress": p,
            # the queue is done: both estimates of the wrong labels left (observed, model)
            "estimates": _estimates(campaign_status(ledger))
            if idx is None and p["round"] is not None
            else "",
            "annotator": who.name,
            "can_adjudicate": who.can_adjudicate,
            "open_conflicts": len(ledger.conflicts()) if who.can_adjudicate else 0,
            "unsure": UNSURE,
            "note_max": NOTE_MAX_CHARS,
        }

    def parse_index(value: str | None) -> int | None:
        if value is None or value == "":
            return None
        try:
            idx = int(value)
        except ValueError:
            raise HTTPException(status_code=422, detail="item must be an integer") from None
        if not 0 <= idx < 2**62:
            raise HTTPException(status_code=404, detail=f"unknown item index {value}")
        return idx

    # -- pages ---------------------------------------------------------------------------------

    def token_landing(request: Request, who: Principal) -> Response | None:
        """A page opened with ``?token=`` (``who`` is its reader): keep the token in a cookie
        and drop it from the address bar -- but when this browser is signed in as someone else,
        ask first instead of switching silently. None: no token in the address."""
        qp = request.query_params
        if "token" not in qp:
            return None
        rest = {k: v for k, v in qp.items() if k not in ("token", "annotator", "switch")}
        here = request.url.path
        current = principal_of(request.cookies.get(TOKEN_COOKIE))
        if current is not None and current != who and qp.get("switch") != "1":
            switch = urlencode({**rest, "token": qp["token"], "switch": "1"})
            stay = here + ("?" + urlencode(rest) if rest else "")
            ctx = {"request": request, "current": current.name, "new": who.name,
                   "switch_url": f"{here}?{switch}", "stay_url": stay}
            return templates.TemplateResponse(request, "switch.html", ctx)
        resp = RedirectResponse(here + ("?" + urlencode(rest) if rest else ""), 303)
        resp.set_cookie(TOKEN_COOKIE, qp["token"], httponly=True, samesite="strict")
        return resp

    def item_context(request: Request, item: str | None, who: Any) -> dict[str, Any]:
        """The item panel's context: ``item`` (an index) or this reader's next item; 404 when
        the index names no item."""
        idx = parse_index(item)
        if idx is None:
            idx = next_for(who.name)
        try:
            return panel_context(request, idx, who)
        except CampaignError:
            raise HTTPException(status_code=404, detail=f"unknown item index {idx}") from None

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, item: str | None = None) -> Response:
        who = principal(request)
        if who is None:
            return templates.TemplateResponse(
                request, "unauthorised.html", {"request": request}, status_code=401
            )
        landing = token_landing(request, who)
        if landing is not None:
            return landing
        ctx = item_context(request, item, who)
        ctx["campaign"] = ledger.path.stem
        return templates.TemplateResponse(request, "label.html", ctx)

    @app.get("/partials/item", response_class=HTMLResponse)
    def panel(request: Request, item: str | None = None) -> Response:
        who = require(request)
        ctx = item_context(request, item, who)
        return templates.TemplateResponse(request, "_item.html", ctx)

    @app.get("/adjudicate", response_class=HTMLResponse)
    def adjudicate_page(request: Request) -> Response:
        who = principal(request)
        if who is None:
            return templates.TemplateResponse(
                request, "unauthorised.html", {"request": request}, status_code=401
            )
        landing = token_landing(request, who)
        if landing is not None:
            return landing
        if not who.can_adjudicate:
            raise HTTPException(status_code=403, detail="only adjudicators can adjudicate")
        rows = []
        for c in ledger.conflicts().to_dict("records"):
            view = item_view(int(c["item"]))
            view["answers"] = _reader_answers(names, c)
            rows.append(view)
        return templates.TemplateResponse(
            request,
            "adjudicate.html",
            {
                "request": request,
                "conflicts": rows,
                "classes": list(names),
                "display": campaign_class_names(ledger),  # class code -> name shown beside it
                "annotator": who.name,
                "campaign": ledger.path.stem,
            },
        )

    @app.get("/image/{idx}")
    def image(request: Request, idx: str) -> Response:
        require(request)
        try:
            path = ledger.resolve_image(parse_index(idx) or 0)
        except (CampaignError, HTTPException):
            raise HTTPException(status_code=404, detail="image not found") from None
        headers = {"Cache-Control": "private, max-age=3600"}
        try:  # DICOM, high-bit and other non-browser files: rendered as the model sees them
            png = browser_png(path, campaign_intensity(ledger))
        except (OSError, UnsupportedImageError):
            raise HTTPException(status_code=404, detail="image not readable") from None
        if png is not None:
            return Response(png, media_type="image/png", headers=headers)
        return FileResponse(path, headers=headers)

    # -- JSON API ------------------------------------------------------------------------------

    @app.get("/api/next")
    def api_next(request: Request, annotator: str | None = None) -> dict[str, Any]:
        who = require(request)
        same_reader(who, annotator)
        idx = next_for(who.name)
        return {
            "item": None if idx is None else item_view(idx, who.name),
            "progress": progress(who.name),
        }

    @app.get("/api/item/{idx}")
    def api_item(request: Request, idx: str) -> dict[str, Any]:
        who = require(request)
        try:
            return item_view(parse_index(idx) or 0, who.name)
        except CampaignError:
            raise HTTPException(status_code=404, detail=f"unknown item index {idx}") from None

    @app.post("/api/answer")
    def api_answer(request: Request, body: AnswerIn) -> dict[str, Any]:
        who = require(request)
        same_reader(who, body.annotator)
        if (body.item is None) == (body.idx is None):
            raise HTTPException(status_code=422, detail="give exactly one of 'item' or 'idx'")
        idx = ledger.item_index(body.item) if body.item is not None else int(body.idx or 0)
        item = ledger.item(idx)
        if not ledger.is_queued(idx):
            raise HTTPException(
                status_code=409,
                detail=f"item {item['key']!r} is not in the current round's queue",
            )
        label = _answer_label(ledger, body, item)
        res = ledger.submit(
            idx,
            label,
            annotator=who.name,
            submission_id=body.submission_id,
            seconds=body.seconds,
            origin="web",
            note=body.note or "",
        )
        return {
            "annotation_id": res.annotation_id,
            "item": item["key"],
            "idx": idx,
            "duplicate": res.duplicate,
            "conflict": res.conflict,
            "progress": progress(who.name),
        }

    @app.post("/api/undo")
    def api_undo(request: Request, body: UndoIn) -> dict[str, Any]:
        who = require(request)
        same_reader(who, body.annotator)
        current = ledger.current_round()
        res = ledger.undo_last(who.name, body.submission_id, round=current)
        if res.item is not None:
            ledger.lease(res.item, who.name, lease_seconds=lease_seconds)
        return {
            "retracted": res.retracted_id,
            "idx": res.item,
            "item": None if res.item is None else ledger.item(res.item)["key"],
            "duplicate": res.duplicate,
            "progress": progress(who.name),
        }

    @app.get("/api/conflicts")
    def api_conflicts(request: Request) -> dict[str, Any]:
        who = require(request)
        if not who.can_adjudicate:
            raise HTTPException(status_code=403, detail="only adjudicators see conflicts")
        out = []
        for c in ledger.conflicts().to_dict("records"):
            out.append(
                {
                    "idx": int(c["item"]),
                    "item": c["key"],
                    "given_label": names[int(c["given_label"])],
                    "answers": _reader_answers(names, c),
                }
            )
        return {"conflicts": out, "display_names": campaign_class_names(ledger)}

    @app.post("/api/adjudicate")
    def api_adjudicate(request: Request, body: AdjudicateIn) -> dict[str, Any]:
        who = require(request)
        if not who.can_adjudicate:
            raise HTTPException(status_code=403, detail="only adjudicators can adjudicate")
        res = ledger.adjudicate(
            body.idx,
            ledger.class_index(body.label),
            adjudicator=who.name,
            submission_id=body.submission_id,
            seconds=body.seconds,
            note=body.note,
        )
        return {
            "adjudication_id": res.adjudication_id,
            "idx": res.item,
            "label": names[res.label],
            "display_name": campaign_class_names(ledger).get(names[res.label]),
            "duplicate": res.duplicate,
            "open_conflicts": len(ledger.conflicts()),
        }

    @app.post("/api/readers")
    def api_readers(request: Request, body: ReaderIn) -> dict[str, Any]:
        who = require(request)
        if who.role != "admin":
            raise HTTPException(status_code=403, detail="only the admin token creates readers")
        new_token = ledger.add_reader(body.name, role=body.role)
        return {"name": body.name.strip(), "role": body.role, "token": new_token}

    @app.get("/api/status")
    def api_status(request: Request) -> dict[str, Any]:
        require(request)
        return to_jsonable(campaign_status(ledger).as_dict())

    return _SecurityHeaders(_BodyLimit(app, max_body_bytes))


def _reader_answers(names: tuple[str, ...], conflict: dict[str, Any]) -> list[dict[str, str]]:
    """Each reader's answer on a conflicting item and their note (empty when none)."""
    return [
        {"reader": a, "answer": UNSURE if lab is None else names[int(lab)], "note": note}
        for (a, lab, _), note in zip(conflict["answers"], conflict["notes"], strict=True)
    ]


def _answer_label(ledger: Ledger, body: AnswerIn, item: dict[str, Any]) -> int | None:
    """The class index an answer stands for (None: unsure).

    ``keep: true`` keeps the given label. For old clients, ``label: "keep"`` also means that --
    unless the campaign has a class named ``keep``, which then always wins.
    """
    names = ledger.class_names
    keep = body.keep or (body.label == KEEP and KEEP not in names)
    if keep:
        if ledger.blind:
            raise CampaignError("blind mode: the given label is hidden; choose a class")
        if body.label not in (None, KEEP):
            raise CampaignError("give either keep or a label, not both")
        return int(item["given_label"])
    if body.label is None:
        raise CampaignError("give a label (a class name or 'unsure') or keep: true")
    if body.label == UNSURE:
        return None
    return ledger.class_index(body.label)


def _estimates(st: Any) -> str:
    """The status page's estimates: the whole-set headline, then the pool's."""
    return f"{headline(st)}. {estimate_line(st)}"
