"""Graph routers, mounted under /v1.0 and /beta."""

from fastapi import APIRouter

from . import (
    applications,
    audit_logs,
    authentication,
    authentication_strengths,
    conditional_access,
    fido2_methods,
    groups,
    legacy_methods,
    policies,
    roles,
    users,
)

router = APIRouter()
for module in (users, authentication, legacy_methods, fido2_methods, groups, roles, policies, applications, audit_logs,
               authentication_strengths, conditional_access):
    router.include_router(module.router)
