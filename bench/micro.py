"""The physical floor of a passkey sign-in on this machine, measured in the same run as the load:
one ES256 verification (`cryptography`), and py_webauthn's whole `verify_authentication_response`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn import verify_authentication_response

from .softauthn import SoftAuthenticator, b64url, cose_key


@dataclass
class Floor:
    es256_verify_s: float  # CPU seconds of one ES256 verification
    webauthn_check_s: float  # CPU seconds of py_webauthn's whole assertion check

    @property
    def es256_per_s(self) -> float:
        return 1.0 / self.es256_verify_s

    @property
    def webauthn_per_s(self) -> float:
        return 1.0 / self.webauthn_check_s


def _cpu_per_call(call: Callable[[], object], seconds: float, rounds: int = 5) -> float:
    """Median over rounds of CPU seconds per call (process CPU time: this runs in one thread, so one core)."""
    results = []
    for _ in range(rounds):
        n, start = 0, time.process_time()
        while True:
            for _ in range(50):
                call()
            n += 50
            spent = time.process_time() - start
            if spent >= seconds / rounds:
                break
        results.append(spent / n)
    results.sort()
    return results[len(results) // 2]


def measure(seconds: float = 2.0) -> Floor:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    message = b"\x49" * 37 + hashlib.sha256(b"client data").digest()  # authenticatorData || clientDataHash
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    algorithm = ec.ECDSA(hashes.SHA256())

    def es256() -> None:
        public.verify(signature, message, algorithm)

    origin, rp_id = "http://localhost:8000", "localhost"
    authenticator = SoftAuthenticator(counter="zero")  # counter 0 can be replayed to the checker
    challenge = b"bench-challenge-0123456789abcdef"
    options = {"challenge": b64url(challenge), "rpId": rp_id, "allowCredentials": [], "userVerification": "required"}
    authenticator.create({"challenge": b64url(challenge), "rp": {"id": rp_id, "name": "x"},
                          "user": {"id": b64url(b"u"), "name": "u", "displayName": "u"},
                          "pubKeyCredParams": [{"type": "public-key", "alg": -7}]}, origin)
    credential = next(iter(authenticator.credentials.values()))
    assertion = authenticator.get(options, origin)
    public_key = cose_key(credential.key)

    def webauthn() -> None:
        verify_authentication_response(
            credential=assertion, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=public_key, credential_current_sign_count=0, require_user_verification=True,
        )

    return Floor(es256_verify_s=_cpu_per_call(es256, seconds), webauthn_check_s=_cpu_per_call(webauthn, seconds))
