"""Graph routers, mounted under /v1.0 and /beta."""

from fastapi import APIRouter

from . import authentication, groups, policies, roles, users

router = APIRouter()
for module in (users, authentication, groups, roles, policies):
    router.include_router(module.router)
