"""The catalogue of stable error codes.

Every rejection Passgate makes carries one of these: the number goes into the sign-in log's
`status.errorCode` and is shown on the page, the name is the `code` of the API error body. Numbers
that Entra ID also uses (AADSTS) keep Entra's meaning; Passgate's own start at 135100 (ceremonies)
and 900000 (requests). Numbers and names never change once published.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ErrorCode:
    number: int
    name: str
    status: int
    message: str
    action: str


class PassgateError(Exception):
    """A rejection with a stable code; `detail` adds what was wrong with this particular request."""

    def __init__(self, code: ErrorCode, detail: str | None = None) -> None:
        super().__init__(code.name if detail is None else f"{code.name}: {detail}")
        self.code = code
        self.detail = detail

    @property
    def message(self) -> str:
        return self.code.message if self.detail is None else f"{self.code.message} {self.detail}"


_CATALOGUE: dict[str, ErrorCode] = {}


def _code(number: int, name: str, status: int, message: str, action: str) -> ErrorCode:
    code = ErrorCode(number, name, status, message, action)
    assert name not in _CATALOGUE and all(c.number != number for c in _CATALOGUE.values())
    _CATALOGUE[name] = code
    return code


def catalogue() -> list[ErrorCode]:
    return sorted(_CATALOGUE.values(), key=lambda c: c.number)


def by_number(number: int) -> ErrorCode | None:
    return next((c for c in _CATALOGUE.values() if c.number == number), None)


# -- account ---------------------------------------------------------------------------------
USER_NOT_FOUND = _code(
    50034, "UserNotFound", 400,
    "There is no account with that username.",
    "Check the spelling of your username (it looks like name@example.com) or ask your administrator.",
)
TOO_MANY_ATTEMPTS = _code(
    50053, "TooManyAttempts", 429,
    "Too many wrong attempts; sign-in with a Temporary Access Pass is paused for a while.",
    "Wait 15 minutes before trying again, or ask your helpdesk for a new Temporary Access Pass.",
)
USER_DISABLED = _code(
    50057, "UserDisabled", 403,
    "This account is disabled.",
    "Ask your administrator to enable your account.",
)
SESSION_REQUIRED = _code(
    50058, "SessionRequired", 401,
    "You are not signed in, or your session has ended.",
    "Sign in again.",
)

# -- Temporary Access Pass -------------------------------------------------------------------
TAP_INVALID = _code(
    135101, "TemporaryAccessPassInvalid", 400,
    "That Temporary Access Pass is not right.",
    "Check the pass for typing mistakes and try again, or ask your helpdesk for a new one.",
)
TAP_EXPIRED = _code(
    135102, "TemporaryAccessPassExpired", 400,
    "Your Temporary Access Pass has expired.",
    "Ask your helpdesk for a new Temporary Access Pass.",
)
TAP_NOT_YET_VALID = _code(
    135103, "TemporaryAccessPassNotYetValid", 400,
    "Your Temporary Access Pass is not valid yet.",
    "Try again after the start time your helpdesk gave you.",
)
TAP_ALREADY_USED = _code(
    135104, "TemporaryAccessPassAlreadyUsed", 400,
    "This one-time Temporary Access Pass has already been used.",
    "Ask your helpdesk for a new Temporary Access Pass.",
)
TAP_LIFETIME_OUT_OF_RANGE = _code(
    135105, "TemporaryAccessPassLifetimeOutOfRange", 400,
    "The lifetime is outside what the Temporary Access Pass policy allows.",
    "Choose a lifetime between the policy's minimum and maximum (10 to 43200 minutes at most).",
)
TAP_MULTI_USE_NOT_ALLOWED = _code(
    135106, "TemporaryAccessPassMultiUseNotAllowed", 400,
    "The Temporary Access Pass policy only allows one-time passes.",
    "Create the pass with isUsableOnce set to true.",
)
TAP_DISABLED_BY_POLICY = _code(
    135107, "TemporaryAccessPassDisabledByPolicy", 403,
    "Temporary Access Passes are turned off for you, or this multi-use pass is no longer allowed by policy.",
    "Ask your helpdesk for a new one-time Temporary Access Pass, or sign in another way.",
)

# -- passkey ceremonies ----------------------------------------------------------------------
CHALLENGE_NOT_FOUND = _code(
    135110, "ChallengeNotFound", 400,
    "This sign-in request was not started here, or it was started in another browser.",
    "Reload the page and try again.",
)
CHALLENGE_EXPIRED = _code(
    135111, "ChallengeExpired", 400,
    "This request took too long and has expired.",
    "Reload the page and try again; the passkey prompt must be answered within 5 minutes.",
)
CHALLENGE_ALREADY_USED = _code(
    135112, "ChallengeAlreadyUsed", 400,
    "This passkey response was already used once and cannot be used again.",
    "Reload the page and try again.",
)
ORIGIN_NOT_ALLOWED = _code(
    135113, "OriginNotAllowed", 400,
    "The passkey response came from a web address this server does not accept.",
    "Open the sign-in page at its usual address; an administrator can add origins in PASSGATE_ORIGINS.",
)
CROSS_ORIGIN_NOT_ALLOWED = _code(
    135114, "CrossOriginNotAllowed", 400,
    "Passkeys cannot be used from a page embedded in another site.",
    "Open the sign-in page directly in its own tab.",
)
USER_VERIFICATION_REQUIRED = _code(
    135115, "UserVerificationRequired", 400,
    "Your passkey did not verify you (no PIN, fingerprint or face check).",
    "Try again and unlock the passkey with your PIN or biometrics when asked.",
)
SIGN_COUNT_REGRESSION = _code(
    135116, "SignCountRegression", 400,
    "This passkey's usage counter went backwards, which is a sign it may have been copied.",
    "Use another passkey, and tell your helpdesk so they can check and remove this one.",
)
ASSERTION_INVALID = _code(
    135117, "PasskeyResponseInvalid", 400,
    "The passkey response could not be verified.",
    "Try again; if it keeps failing, use another passkey or a Temporary Access Pass.",
)
REGISTRATION_INVALID = _code(
    135118, "PasskeyRegistrationInvalid", 400,
    "The new passkey could not be verified.",
    "Try again; if it keeps failing, try another device or security key.",
)
CREDENTIAL_ALREADY_REGISTERED = _code(
    135119, "PasskeyAlreadyRegistered", 409,
    "This passkey is already registered.",
    "Use the passkey you already have, or register a different one.",
)
USER_HANDLE_MISMATCH = _code(
    135120, "PasskeyUserMismatch", 400,
    "This passkey belongs to a different account than the one you are signing in to.",
    "Choose the passkey for your own account, or sign in without typing a username.",
)
CREDENTIAL_NOT_FOUND = _code(
    135010, "KeyNotFound", 400,
    "This passkey is not registered here, or it was removed.",
    "Choose another passkey, or sign in with a Temporary Access Pass and add a new passkey.",
)

# -- requests --------------------------------------------------------------------------------
MALFORMED_JSON = _code(
    900001, "MalformedJson", 400,
    "The request body is not valid JSON.",
    "Send a JSON object with Content-Type: application/json.",
)
INVALID_REQUEST = _code(
    900002, "Request_BadRequest", 400,
    "The request is not valid.",
    "Correct the request as the message says and send it again.",
)
MALFORMED_CREDENTIAL = _code(
    900003, "MalformedCredential", 400,
    "The passkey data is damaged (bad base64url, CBOR or structure).",
    "Try again; if it keeps failing, the browser or authenticator sent data this server cannot read.",
)
NOT_FOUND = _code(
    900004, "Request_ResourceNotFound", 404,
    "The resource does not exist.",
    "Check the id or userPrincipalName in the URL.",
)
CONFLICT = _code(
    900005, "Request_Conflict", 409,
    "Another object already has that value.",
    "Choose a different value.",
)
FORBIDDEN_ORIGIN = _code(
    900006, "CrossSiteRequestRefused", 403,
    "The request did not come from this site's pages.",
    "Use the Passgate pages themselves; the request's Origin must be one of PASSGATE_ORIGINS.",
)

# -- admin API authentication ----------------------------------------------------------------
INVALID_TOKEN = _code(
    900010, "InvalidAuthenticationToken", 401,
    "The access token is missing, expired or not valid.",
    "Get a new token from /oauth2/token and send it as 'Authorization: Bearer <token>'.",
)
INSUFFICIENT_PERMISSIONS = _code(
    900011, "Authorization_RequestDenied", 403,
    "Insufficient privileges to complete the operation.",
    "Grant the app the Graph permission the operation needs (for example User.ReadWrite.All).",
)
INVALID_CLIENT = _code(
    900012, "invalid_client", 401,
    "The client id or secret is wrong.",
    "Check the appId and client secret; a lost secret must be replaced with 'passgate apps add'.",
)
UNSUPPORTED_GRANT_TYPE = _code(
    900013, "unsupported_grant_type", 400,
    "This grant type is not supported here.",
    "Use grant_type=client_credentials for automation.",
)

# -- log queries (/auditLogs): OData options the log read APIs refuse ------------------------
UNSUPPORTED_FILTER = _code(
    900030, "Request_UnsupportedQuery", 400,
    "This $filter is not supported on this resource.",
    "Filter only on the properties and operators the message lists, joined with 'and'.",
)
INVALID_FILTER_VALUE = _code(
    900031, "Request_InvalidFilterValue", 400,
    "A value in $filter has the wrong form for its property.",
    "Write times as ISO 8601 UTC without quotes (2026-01-31T00:00:00Z), numbers without quotes, and "
    "strings in single quotes.",
)
INVALID_TOP = _code(
    900032, "Request_InvalidTop", 400,
    "$top is out of range for this resource.",
    "Give $top as a whole number from 1 to the maximum the message names, or leave it out.",
)
UNSUPPORTED_ORDER_BY = _code(
    900033, "Request_UnsupportedOrderBy", 400,
    "This $orderby is not supported on this resource.",
    "Order by the time property the message names, ascending (asc) or descending (desc, the default).",
)
INVALID_SKIP_TOKEN = _code(
    900034, "Request_InvalidSkipToken", 400,
    "The paging token ($skiptoken) is not one this server issued for this query.",
    "Follow @odata.nextLink exactly as it was returned, or start again from the first page.",
)

# -- OpenID Connect: requests that cannot be answered at the app's redirect URI -----------------
APP_NOT_FOUND = _code(
    700016, "UnauthorizedClient_AppNotFound", 400,
    "The app that sent you here is not registered with this sign-in service.",
    "Tell the app's owner: the client_id in its sign-in request matches no app registration here.",
)
REDIRECT_URI_MISMATCH = _code(
    50011, "RedirectUriMismatch", 400,
    "The app asked to return you to an address it has not registered, so sign-in stopped here.",
    "Tell the app's owner: the redirect_uri in its sign-in request must exactly match one of the app "
    "registration's redirect URIs (scheme, host, port, path, case and trailing slash included).",
)
AUTHORIZE_REQUEST_INVALID = _code(
    900020, "AuthorizeRequestInvalid", 400,
    "The app's sign-in request is incomplete, so sign-in stopped here.",
    "Tell the app's owner: the request must carry client_id and redirect_uri exactly once each.",
)
LOGOUT_REDIRECT_NOT_REGISTERED = _code(
    900021, "PostLogoutRedirectUriNotRegistered", 400,
    "You are signed out, but the app asked to send you to an address it has not registered.",
    "Tell the app's owner: post_logout_redirect_uri must match one of the app registration's "
    "post-logout redirect URIs (web.logoutUrl or postLogoutRedirectUris).",
)

AUTHORIZE_PARAMETER_INVALID = _code(
    900022, "AuthorizeParameterInvalid", 400,
    "The app's sign-in request has a parameter that is missing, repeated or not valid.",
    "Tell the app's owner: the error_description names the parameter (nonce, prompt, max_age, "
    "response_mode); each parameter may be sent once.",
)
PKCE_REQUIRED = _code(
    900023, "PkceRequired", 400,
    "The app's sign-in request does not use PKCE with S256, which every app must.",
    "Tell the app's owner: send code_challenge (43 to 128 characters) with code_challenge_method=S256.",
)
UNSUPPORTED_RESPONSE_TYPE = _code(
    900024, "UnsupportedResponseType", 400,
    "The app asked for a kind of answer this sign-in service does not give.",
    "Tell the app's owner: use the authorization code flow (response_type=code).",
)
INVALID_SCOPE = _code(
    900025, "InvalidScope", 400,
    "The app asked for permissions this sign-in service does not know.",
    "Tell the app's owner: scope must include openid and only openid, profile, email, offline_access.",
)
LOGIN_REQUIRED = _code(
    900026, "LoginRequired", 400,
    "The app asked to sign you in silently, but no sign-in in this browser satisfies its request.",
    "Open the app again; it should send you to the sign-in page (without prompt=none).",
)
AUTHENTICATION_STRENGTH_UNREACHABLE = _code(
    900027, "AuthenticationStrengthUnreachable", 403,
    "The app needs a stronger sign-in than your account can give (acr_values).",
    "Ask your helpdesk for a passkey of the kind the app needs (for example an attested device-bound one).",
)
LOGOUT_REQUEST_REFUSED = _code(
    900028, "LogoutRequestRefused", 400,
    "The app's sign-out request names a return address it has not registered, so you were not signed out.",
    "Sign out from the Security info page, and tell the app's owner: post_logout_redirect_uri must match "
    "one of the app registration's post-logout redirect URIs.",
)

# -- methods policy and passkey profiles -----------------------------------------------------
FIDO2_DISABLED = _code(
    135130, "PasskeyMethodDisabled", 403,
    "Passkeys are turned off in this organisation's authentication methods policy.",
    "Sign in another way, or ask your administrator to enable Passkey (FIDO2).",
)
FIDO2_NOT_ENABLED_FOR_USER = _code(
    135131, "PasskeyMethodNotEnabledForUser", 403,
    "Passkeys are not enabled for your account by the authentication methods policy.",
    "Ask your administrator to include you (or a group you are in) in the Passkey (FIDO2) policy.",
)
SELF_SERVICE_REGISTRATION_NOT_ALLOWED = _code(
    135132, "PasskeySelfServiceNotAllowed", 403,
    "Adding your own passkey is not allowed by this organisation's policy.",
    "Ask your helpdesk to register a passkey for you.",
)
PASSKEY_TYPE_NOT_ALLOWED = _code(
    135133, "PasskeyTypeNotAllowed", 403,
    "This kind of passkey (synced or device-bound) is not allowed for your account.",
    "Use a passkey of the allowed kind; for device-bound, a security key or a device that keeps the key on it.",
)
PASSKEY_MODEL_NOT_ALLOWED = _code(
    135134, "PasskeyModelNotAllowed", 403,
    "This passkey's make and model is not allowed for your account.",
    "Use a passkey from a model your organisation allows, or ask your administrator which ones are allowed.",
)
ATTESTATION_REQUIRED = _code(
    135135, "PasskeyAttestationRequired", 403,
    "This passkey could not prove its make and model, and your organisation requires that.",
    "Use a security key or device that supports attestation, and allow it to share its make and model.",
)
PASSKEY_MODEL_REVOKED = _code(
    135136, "PasskeyModelRevoked", 403,
    "This passkey model has been withdrawn by its maker or found to be compromised, so it cannot be added.",
    "Use a different security key or device; ask your administrator which models are recommended.",
)
ATTESTATION_UNTRUSTED = _code(
    135137, "PasskeyAttestationUntrusted", 403,
    "This passkey's proof of its make and model could not be traced to a trusted maker.",
    "Use a security key or device your organisation trusts, or ask your administrator to add its maker's "
    "certificate as a trust anchor.",
)
ADMIN_LOCKOUT = _code(
    135140, "PolicyWouldLockOutAdministrators", 409,
    "This change would leave no Global Administrator able to sign in with a passkey.",
    "Give an administrator a passkey the new policy allows first, or confirm with the override header.",
)

# -- Conditional Access (numbers Entra also uses keep Entra's meaning) ---------------------------
BLOCKED_BY_CONDITIONAL_ACCESS = _code(
    53003, "BlockedByConditionalAccess", 403,
    "Access has been blocked by a Conditional Access policy.",
    "Ask your administrator which policy blocked you (it is named in the sign-in log), or sign in from "
    "a place or device the policy allows.",
)
STRONG_AUTHENTICATION_REQUIRED = _code(
    50076, "UserStrongAuthClientAuthNRequired", 401,
    "This app needs a stronger sign-in than the one you made.",
    "Complete the extra verification you are offered (for example, your passkey).",
)
STRONG_AUTHENTICATION_ENROLLMENT_REQUIRED = _code(
    50079, "UserStrongAuthEnrollmentRequired", 403,
    "This app needs a sign-in method you have not registered yet.",
    "Register the method you are offered (for example, a passkey) on the Security info page.",
)
SECURITY_INFO_REGISTRATION_BLOCKED = _code(
    53010, "ProofUpBlockedDueToSecurityInfoAcr", 403,
    "A Conditional Access policy does not allow registering security info from here.",
    "Register your methods from a place or device your organisation allows, or ask your administrator.",
)
SIGN_IN_FREQUENCY = _code(
    70044, "BadSessionDueToSignInFrequency", 401,
    "Your sign-in is older than a Conditional Access policy allows for this app.",
    "Sign in again.",
)

# -- authentication strengths and Conditional Access administration --------------------------
STRENGTH_COMBINATION_INVALID = _code(
    135170, "AuthenticationStrengthCombinationInvalid", 400,
    "An allowed combination of the authentication strength is not valid.",
    "Write each combination as authentication method modes joined by commas, such as 'fido2' or "
    "'password,softwareOath'; GET /identity/conditionalAccess/authenticationStrength/authenticationMethodModes "
    "lists the modes.",
)
STRENGTH_READ_ONLY = _code(
    135171, "AuthenticationStrengthReadOnly", 400,
    "Built-in authentication strengths cannot be changed or deleted.",
    "Create a custom authentication strength with the combinations you need.",
)
STRENGTH_IN_USE = _code(
    135172, "AuthenticationStrengthInUse", 409,
    "This authentication strength is required by a Conditional Access policy.",
    "Change or delete the Conditional Access policies that use it first (GET .../usage lists them).",
)
STRENGTH_CANNOT_BE_SATISFIED = _code(
    135173, "AuthenticationStrengthCannotBeSatisfied", 403,
    "None of the sign-in methods you have, or could register, is strong enough for this app.",
    "Ask your administrator which methods this app requires, and to give you one of them.",
)
CONDITIONAL_ACCESS_POLICY_INVALID = _code(
    135174, "ConditionalAccessPolicyInvalid", 400,
    "The Conditional Access policy is not valid.",
    "Correct the property the message names; nothing was saved.",
)
CONDITIONAL_ACCESS_LOCKOUT = _code(
    135175, "ConditionalAccessWouldLockOutAdministrators", 409,
    "This Conditional Access policy would block every Global Administrator from the admin API.",
    "Exclude an administrator (or a group or role of them) from the policy, or confirm with the header "
    "'Passgate-Override-Lockout: true'.",
)
NAMED_LOCATION_INVALID = _code(
    135176, "NamedLocationInvalid", 400,
    "The named location is not valid.",
    "Give a displayName and ipRanges of #microsoft.graph.iPv4CidrRange or iPv6CidrRange with cidrAddress "
    "values such as '203.0.113.0/24'.",
)
NAMED_LOCATION_IN_USE = _code(
    135177, "NamedLocationInUse", 409,
    "This named location is used by a Conditional Access policy.",
    "Remove it from the policies' location conditions first.",
)
COMBINATION_CONFIGURATION_INVALID = _code(
    135178, "CombinationConfigurationInvalid", 400,
    "The combination configuration is not valid.",
    "Send a #microsoft.graph.fido2CombinationConfiguration with allowedAAGUIDs (AAGUIDs) and "
    "appliesToCombinations ['fido2'].",
)
# -- legacy methods: password and TOTP (softwareOath) ----------------------------------------
INVALID_USERNAME_OR_PASSWORD = _code(
    50126, "InvalidUserNameOrPassword", 400,
    "The username or password is not right.",
    "Check your password for typing mistakes (and Caps Lock) and try again, or sign in another way.",
)
PASSWORD_NOT_ENABLED_FOR_USER = _code(
    135150, "PasswordMethodNotEnabledForUser", 403,
    "Passwords are not enabled for your account by the authentication methods policy.",
    "Sign in another way, or ask your administrator to include you in the Password method policy.",
)
SOFTWARE_OATH_NOT_ENABLED_FOR_USER = _code(
    135151, "SoftwareOathMethodNotEnabledForUser", 403,
    "Authenticator app codes (TOTP) are not enabled for your account by the authentication methods policy.",
    "Use another method, or ask your administrator to include you in the Software OATH tokens policy.",
)
PASSWORD_TOO_WEAK = _code(
    135152, "PasswordTooWeak", 400,
    "This password is not allowed.",
    "Choose a longer password that is not a common one and does not contain your username.",
)
VERIFICATION_CODE_INVALID = _code(
    135153, "VerificationCodeInvalid", 400,
    "That verification code is not right.",
    "Type the 6-digit code your authenticator app shows now; check that your device's clock is correct.",
)
VERIFICATION_CODE_ALREADY_USED = _code(
    135154, "VerificationCodeAlreadyUsed", 400,
    "That verification code was already used once and cannot be used again.",
    "Wait for your authenticator app to show a new code, then type that one.",
)
TOO_MANY_WRONG_SECRETS = _code(
    135155, "TooManyWrongPasswordsOrCodes", 429,
    "Too many wrong passwords or codes; sign-in with them is paused for a while.",
    "Wait 15 minutes before trying again, or sign in with a passkey.",
)
VERIFICATION_CODE_REQUIRED = _code(
    135156, "VerificationCodeRequiredInterrupt", 401,
    "The password was right; the sign-in now needs a code from your authenticator app.",
    "Type the 6-digit code your authenticator app shows to finish signing in.",
)
PENDING_SIGN_IN_NOT_FOUND = _code(
    135157, "PendingSignInNotFound", 400,
    "This sign-in step has expired, was already finished, or was started in another browser.",
    "Start again: type your username and password.",
)
CURRENT_PASSWORD_REQUIRED = _code(
    135158, "CurrentPasswordRequired", 403,
    "Changing your password needs your current password or a sign-in within the last 10 minutes.",
    "Type your current password, or sign out and sign in again, then change it.",
)
AUTHENTICATOR_SETUP_EXPIRED = _code(
    135159, "AuthenticatorAppSetupExpired", 400,
    "This authenticator app set-up has expired, was already finished, or was started in another browser.",
    "Select “Add authenticator app” again and scan the new QR code.",
)
TOO_MANY_AUTHENTICATOR_APPS = _code(
    135160, "TooManyAuthenticatorApps", 409,
    "You already have the most authenticator apps allowed.",
    "Delete an authenticator app you no longer use, then add the new one.",
)
