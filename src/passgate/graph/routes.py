"""Graph routers, mounted under /v1.0 and /beta."""

from fastapi import APIRouter

router = APIRouter()
