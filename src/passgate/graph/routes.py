"""Graph routers, mounted under /v1.0 and /beta."""

from fastapi import APIRouter

from . import applications, authentication, fido2_methods, groups, legacy_methods, policies, roles, users

router = APIRouter()
for module in (users, authentication, legacy_methods, fido2_methods, groups, roles, policies, applications):
    router.include_router(module.router)
