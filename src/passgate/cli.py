"""The `passgate` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import typer
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from . import directory
from .config import ConfigurationError, Settings, load_settings
from .context import RequestContext
from .core import roles
from .core.errors import PassgateError
from .graph.base import iso
from .oidc import clients, keys
from .oidc.keys import DEFAULT_ACTIVATE_IN, ensure_keys
from .passkeys import enforcement, mds, trust
from .signin import taps
from .store.db import Database
from .store.tables import RoleAssignment, User

app = typer.Typer(help="Passgate: a passkey identity provider.", no_args_is_help=True, add_completion=False)
users_app = typer.Typer(help="Manage users.", no_args_is_help=True)
groups_app = typer.Typer(help="Manage security groups.", no_args_is_help=True)
roles_app = typer.Typer(help="Assign directory roles.", no_args_is_help=True)
tap_app = typer.Typer(help="Temporary Access Passes.", no_args_is_help=True)
apps_app = typer.Typer(help="App registrations (automation and OpenID Connect clients).", no_args_is_help=True)
mds_app = typer.Typer(help="FIDO Metadata Service (MDS3) BLOB: the makers' attestation roots and statuses.",
                      no_args_is_help=True)
trust_app = typer.Typer(help="Custom attestation trust anchors (roots of in-house authenticators).",
                        no_args_is_help=True)
keys_app = typer.Typer(help="Token signing keys (published at /oauth2/jwks).", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(groups_app, name="groups")
app.add_typer(roles_app, name="roles")
app.add_typer(tap_app, name="tap")
app.add_typer(apps_app, name="apps")
app.add_typer(mds_app, name="mds")
app.add_typer(trust_app, name="trust")
app.add_typer(keys_app, name="keys")

DEFAULT_ADMIN = "admin@passgate.localhost"
ROLE_NAMES = {r.display_name.lower().replace(" ", "-"): r.template_id for r in roles.ROLES.values()}


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings(port: int | None = None) -> Settings:
    try:
        return load_settings(**({"port": port} if port else {}))
    except ConfigurationError as exc:
        fail(str(exc), 2)


def database(cfg: Settings) -> Database:
    db = Database(cfg.database_url)
    try:
        db.migrate()
    except Exception as exc:  # the URL parsed but the database cannot be reached or migrated
        fail(f"PASSGATE_DATABASE_URL: cannot open or migrate the database ({type(exc).__name__}: {exc})", 2)
    return db


def emit(data: dict[str, Any] | list[Any], as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


def bootstrap_admin(db: Database, cfg: Settings, upn: str) -> dict[str, Any] | None:
    """Create the first Global Administrator with a pass, unless one already exists."""
    ctx = RequestContext()
    with db.transaction() as session:
        ensure_keys(session, ctx)
        exists = session.scalar(
            select(RoleAssignment.id).where(RoleAssignment.role_definition_id == roles.GLOBAL_ADMINISTRATOR).limit(1)
        )
        if exists is not None:
            return None
        user = directory.find_user(session, upn) or directory.create_user(
            session, ctx, {"userPrincipalName": upn, "displayName": "Administrator"}
        )
        directory.assign_role(session, ctx, roles.GLOBAL_ADMINISTRATOR, user)
        issued = taps.issue(session, ctx, user)
        return {
            "userId": user.id,
            "userPrincipalName": user.user_principal_name,
            "temporaryAccessPass": issued.secret,
            "temporaryAccessPassExpiresDateTime": iso(taps.expiry(issued.row)),
            "signInUrl": f"{cfg.origins[0]}/",
        }


def print_bootstrap(result: dict[str, Any]) -> None:
    typer.echo(
        "\nFirst run: created the Global Administrator "
        f"{result['userPrincipalName']}.\n"
        f"  Sign in at:             {result['signInUrl']}\n"
        f"  Temporary Access Pass:  {result['temporaryAccessPass']}  "
        f"(valid until {result['temporaryAccessPassExpiresDateTime']}; shown only now)\n"
        "  Then add a passkey on the Security info page.\n"
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    admin_upn: Annotated[str, typer.Option(help="UPN of the first Global Administrator.")] = DEFAULT_ADMIN,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only; one per core).")] = 1,
) -> None:
    """Run Passgate (migrates the database first; bootstraps an administrator on first run)."""
    import os

    import uvicorn

    os.environ.setdefault("PASSGATE_PORT", str(port))
    cfg = settings(port)
    db = database(cfg)
    result = bootstrap_admin(db, cfg, admin_upn)
    if result:
        print_bootstrap(result)
    db.dispose()
    typer.echo(f"Passgate is listening on http://{host}:{port} (issuer {cfg.issuer}, RP ID {cfg.rp_id})")
    if workers > 1 and cfg.database_url.startswith("sqlite"):
        fail("--workers above 1 needs PostgreSQL (PASSGATE_DATABASE_URL=postgresql://...)", 2)
    from .web.server import HTTP_PROTOCOL

    # At level warning the access log prints nothing, yet each response still built its arguments. The protocol
    # is uvicorn's httptools one sending a response's head and body in one write (web/server.py).
    uvicorn.run("passgate.asgi:app", host=host, port=port, workers=workers, log_level="warning",
                access_log=False, proxy_headers=False, http=HTTP_PROTOCOL)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    database(settings())
    typer.echo("database is up to date")


@app.command()
def bootstrap(
    admin_upn: Annotated[str, typer.Option(help="UPN of the first Global Administrator.")] = DEFAULT_ADMIN,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create the first Global Administrator and print a Temporary Access Pass (only once)."""
    cfg = settings()
    result = bootstrap_admin(database(cfg), cfg, admin_upn)
    if result is None:
        fail("already bootstrapped: a Global Administrator exists (use 'passgate tap issue UPN' for a new pass)")
    if as_json:
        emit(result, True, "")
    else:
        print_bootstrap(result)


def _run(fn: Any) -> Any:
    cfg = settings()
    db = database(cfg)
    try:
        with db.transaction() as session:
            return fn(session, RequestContext())
    except PassgateError as exc:
        fail(f"{exc.code.name} ({exc.code.number}): {exc.message}")


def _user_json(u: User) -> dict[str, Any]:
    return {"id": u.id, "userPrincipalName": u.user_principal_name, "displayName": u.display_name,
            "mail": u.mail, "accountEnabled": u.account_enabled}


@users_app.command("add")
def users_add(
    upn: str,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Defaults to the UPN's name.")] = None,
    mail: Annotated[str | None, typer.Option(help="Mail address.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Add a user."""
    values = {"userPrincipalName": upn, "displayName": display_name or upn.split("@")[0], "mail": mail}
    user = _run(lambda s, ctx: _user_json(directory.create_user(s, ctx, values)))
    emit(user, as_json, f"added {user['userPrincipalName']} ({user['id']})")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List users."""
    rows = _run(lambda s, ctx: [_user_json(u) for u in s.scalars(select(User).order_by(User.user_principal_name))])
    text = "\n".join(f"{u['userPrincipalName']}\t{u['displayName']}\t"
                     f"{'enabled' if u['accountEnabled'] else 'disabled'}\t{u['id']}" for u in rows)
    emit(rows, as_json, text or "no users")


@users_app.command("disable")
def users_disable(upn: str) -> None:
    """Disable a user (their sessions stop working at once)."""
    _run(lambda s, ctx: directory.update_user(s, ctx, directory.get_user(s, upn), {"accountEnabled": False}))
    typer.echo(f"disabled {upn}")


@groups_app.command("add")
def groups_add(name: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Add a security group."""
    group = _run(lambda s, ctx: directory.create_group(s, ctx, {"displayName": name}))
    emit({"id": group.id, "displayName": group.display_name}, as_json, f"added group {name} ({group.id})")


@groups_app.command("add-member")
def groups_add_member(group: str, upn: str) -> None:
    """Add a user to a group (group id or display name)."""
    from .store.tables import Group

    def add(s: Any, ctx: RequestContext) -> None:
        found = s.scalar(select(Group).where(Group.display_name == group)) if not directory.is_guid(group) else None
        directory.add_member(s, ctx, found or directory.get_group(s, group), directory.get_user(s, upn))

    _run(add)
    typer.echo(f"added {upn} to {group}")


@roles_app.command("assign")
def roles_assign(
    upn: str,
    role: Annotated[str, typer.Argument(help="Role template id or name, e.g. global-administrator.")],
) -> None:
    """Assign a directory role to a user."""
    role_id = ROLE_NAMES.get(role.lower().replace(" ", "-"), role)
    _run(lambda s, ctx: directory.assign_role(s, ctx, role_id, directory.get_user(s, upn)))
    typer.echo(f"assigned {roles.ROLES[role_id.lower()].display_name} to {upn}")


@tap_app.command("issue")
def tap_issue(
    upn: str,
    lifetime: Annotated[int | None, typer.Option("--lifetime", help="Minutes (policy bounds apply).")] = None,
    one_time: Annotated[bool, typer.Option("--one-time", help="Usable for one sign-in only.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Issue a Temporary Access Pass (replaces the user's previous one)."""
    def issue(s: Any, ctx: RequestContext) -> dict[str, Any]:
        issued = taps.issue(s, ctx, directory.get_user(s, upn), None, lifetime, True if one_time else None)
        row = issued.row
        return {"id": row.id, "userPrincipalName": upn.lower(), "temporaryAccessPass": issued.secret,
                "startDateTime": iso(row.start_at), "lifetimeInMinutes": row.lifetime_minutes,
                "isUsableOnce": row.is_usable_once,
                "expiresDateTime": iso(taps.expiry(row))}

    out = _run(issue)
    emit(out, as_json, f"Temporary Access Pass for {upn}: {out['temporaryAccessPass']} "
                       f"(until {out['expiresDateTime']}{', one-time' if out['isUsableOnce'] else ''})")


@apps_app.command("add")
def apps_add(
    name: Annotated[str, typer.Option("--name", help="Display name of the app.")],
    permission: Annotated[list[str] | None, typer.Option("--permission", help="Graph permission (repeat).")] = None,
    redirect_uri: Annotated[list[str] | None, typer.Option(
        "--redirect-uri", help="OpenID Connect redirect URI, matched exactly (repeat).")] = None,
    public: Annotated[bool, typer.Option(
        "--public", help="A public client (SPA, native): PKCE without a client secret.")] = False,
    logout_url: Annotated[str | None, typer.Option(
        "--logout-url", help="Front-channel logout URI (Graph's web.logoutUrl): framed, with iss and sid, "
                             "when a session the app signed in from ends.")] = None,
    backchannel_logout_uri: Annotated[str | None, typer.Option(
        "--backchannel-logout-uri", help="Back-channel logout URI: receives a signed logout token when a "
                                         "session the app signed in from ends.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register an app; prints its appId and a client secret (shown only now; none for --public)."""

    def add(s: Any, ctx: RequestContext) -> dict[str, Any]:
        uris = redirect_uri or []
        new = clients.create_app_registration(
            s, ctx, name, permission or [], web_redirect_uris=[] if public else uris,
            public_redirect_uris=uris if public else [], is_public=public, with_secret=not public,
            logout_url=logout_url, backchannel_logout_uri=backchannel_logout_uri,
        )
        out = {"id": new.app.id, "appId": new.app.app_id, "displayName": new.app.display_name,
               "permissions": new.app.permissions, "redirectUris": clients.redirect_uris(new.app),
               "logoutUrl": new.app.logout_url, "backchannelLogoutUri": new.app.backchannel_logout_uri,
               "isFallbackPublicClient": new.app.is_fallback_public_client}
        if new.client_secret:
            out["clientSecret"] = new.client_secret
        return out

    out = _run(add)
    secret = f"{out['clientSecret']}  (shown only now)" if "clientSecret" in out else "(none: public client)"
    emit(out, as_json, f"appId:        {out['appId']}\nclientSecret: {secret}\n"
                       f"permissions:  {', '.join(out['permissions']) or '(none)'}\n"
                       f"redirectUris: {', '.join(out['redirectUris']) or '(none)'}")


@keys_app.command("rotate")
def keys_rotate(
    activate_in: Annotated[int, typer.Option(
        help="Seconds until the new keys sign; until then they are only published, so caches of the JWKS "
             "learn them first.")] = DEFAULT_ACTIVATE_IN,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Publish new signing keys; they sign after --activate-in, and the old ones stay published until the
    tokens they signed have expired."""
    if activate_in < 0:
        fail("--activate-in must be 0 or more seconds")
    cfg = settings()

    def rotate(s: Any, ctx: RequestContext) -> list[dict[str, Any]]:
        ensure_keys(s, ctx)
        s.flush()
        rows = keys.rotate(s, ctx, activate_in, cfg.access_token_minutes * 60)
        return [{"kid": r.kid, "alg": r.alg, "activatesDateTime": iso(r.activates_at)} for r in rows]

    out = _run(rotate)
    emit(out, as_json, "\n".join(f"{k['alg']} key {k['kid']} signs from {k['activatesDateTime']}" for k in out))


MDS_DOWNLOAD_SECONDS = 60
MDS_MAX_BYTES = 64 * 1024 * 1024


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {what} {path}: {exc.strerror or exc}")


def _download(url: str) -> bytes:
    import urllib.error
    import urllib.request

    if urlsplit(url).scheme not in ("https", "http"):
        fail(f"--url must be an https:// (or http://) address, not {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "passgate-mds-refresh"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=MDS_DOWNLOAD_SECONDS) as response:  # noqa: S310
            data: bytes = response.read(MDS_MAX_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        fail(f"cannot download the BLOB from {url}: {getattr(exc, 'reason', None) or exc}")
    if len(data) > MDS_MAX_BYTES:
        fail(f"the BLOB at {url} is larger than {MDS_MAX_BYTES // (1024 * 1024)} MB")
    return data


@mds_app.command("refresh")
def mds_refresh(
    file: Annotated[Path | None, typer.Option("--file", help="A BLOB downloaded before (the JWT).")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Where to download the BLOB, e.g. "
                                            "https://mds3.fidoalliance.org/.")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Trust anchor the BLOB must chain to (PEM or "
                                              "DER); default: GlobalSign Root CA - R3, as the FIDO "
                                              "Alliance signs it.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Verify a FIDO MDS3 BLOB and put it in force; a stale or tampered one is refused and the previous stays."""
    if (file is None) == (url is None):
        fail("give exactly one of --file and --url")
    root_der = None
    if root is not None:
        try:
            root_der = trust.load_certificate(_read_file(root, "--root")).public_bytes(Encoding.DER)
        except PassgateError as exc:
            fail(f"--root {root}: {exc.detail}")
    raw = _read_file(file, "--file") if file is not None else _download(str(url))
    source = str(file.resolve()) if file is not None else str(url)
    cfg = settings()
    db = database(cfg)
    try:
        with db.transaction(write=True) as session:
            ctx = RequestContext()
            row = trust.refresh_mds(session, ctx, raw, source, root_der)
            out = trust.blob_json(row, trust.current_payload(session))
            # Every stored passkey is held to what the new BLOB says of its model, in the same transaction.
            outcome = enforcement.reevaluate(session, ctx)
            out["passkeysMarkedUnusable"], out["passkeysUsableAgain"] = outcome.marked, outcome.restored
    except mds.BlobRefused as exc:
        with db.transaction() as session:
            previous = trust.current_blob(session)
            kept = (f"the BLOB in force stays no. {previous.serial} (nextUpdate {previous.next_update})"
                    if previous is not None else "no BLOB is in force")
        fail(f"the BLOB was refused: {exc}; {kept}")
    emit(out, as_json, f"FIDO metadata BLOB no. {out['serialNumber']} is in force: {out['entries']} entries, "
                       f"nextUpdate {out['nextUpdate']}; passkeys marked unusable: {out['passkeysMarkedUnusable']}, "
                       f"usable again: {out['passkeysUsableAgain']}")


@mds_app.command("show")
def mds_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show the FIDO MDS3 BLOB in force."""

    def show(s: Any, ctx: RequestContext) -> dict[str, Any] | None:
        row = trust.current_blob(s)
        return trust.blob_json(row, trust.current_payload(s)) if row is not None else None

    out = _run(show)
    if out is None:
        if as_json:
            typer.echo("null")
            return
        typer.echo("no FIDO metadata BLOB is loaded (passgate mds refresh --file BLOB.jwt | --url URL)")
        return
    emit(out, as_json, f"serial:     {out['serialNumber']}\nnextUpdate: {out['nextUpdate']}\n"
                       f"entries:    {out['entries']}\nloaded at:  {out['loadedDateTime']}\n"
                       f"source:     {out['source']}")


@trust_app.command("add")
def trust_add(
    certificate: Annotated[Path, typer.Argument(help="The root certificate, PEM or DER.")],
    name: Annotated[str | None, typer.Option("--name", help="Display name (default: the subject's CN).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Trust attestations that chain to this self-signed root certificate."""
    data = _read_file(certificate, "certificate")
    out = _run(lambda s, ctx: trust.anchor_json(trust.add_anchor(s, ctx, data, name)))
    emit(out, as_json, f"added trust anchor {out['displayName']} ({out['id']}, SHA-256 {out['thumbprint']})")


@trust_app.command("list")
def trust_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the custom trust anchors."""
    rows = _run(lambda s, ctx: [trust.anchor_json(a) for a in trust.list_anchors(s)])
    text = "\n".join(f"{a['id']}\t{a['thumbprint']}\t{a['displayName']}\tuntil {a['notAfter']}" for a in rows)
    emit(rows, as_json, text or "no custom trust anchors")


@trust_app.command("remove")
def trust_remove(id_or_thumbprint: Annotated[str, typer.Argument(help="Anchor id or SHA-256 thumbprint.")]) -> None:
    """Stop trusting a custom trust anchor (passkeys registered before keep their record)."""
    out = _run(lambda s, ctx: trust.anchor_json(trust.remove_anchor(s, ctx, id_or_thumbprint)))
    typer.echo(f"removed trust anchor {out['displayName']} ({out['id']})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
