"""HTML pages (Jinja2)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from ..core.errors import ErrorCode

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def error_page(request: Request, code: ErrorCode, message: str, request_id: str, status: int | None = None) -> Response:
    return templates.TemplateResponse(
        request, "error.html",
        {"code": code, "message": message, "request_id": request_id},
        status_code=status or code.status,
    )
