"""Token authentication: knox's hashed tokens, expiry refused with its own code, and token guessing throttled.

``Authorization: Token <token>``. The database holds only a digest: a value read from it does not
authenticate. An expired token answers 401 ``token_expired`` and stays listed (expired) in the admin; knox
itself would delete it on sight, which would erase it from the record. A revoked token is gone: 401
``authentication_failed``. Failed attempts are counted per client address in the shared cache; past
``DEFAULT_THROTTLE_RATES["auth_failure"]`` every token request from that address answers 429 with
``Retry-After`` until the window has passed, the right token included.
"""

import binascii
from hmac import compare_digest

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.settings import CONSTANTS
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle

from core.errors import ErrorCode
from core.tokens import token_candidates, token_is_expired
from core.two_factor import is_verified, requires_two_factor


class AuthenticationFailureThrottle(SimpleRateThrottle):
    """Counts failures only (DRF throttles count every request, and run after authentication)."""

    scope = "auth_failure"

    def get_cache_key(self, request, view=None):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request) -> None:
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        self.history = [at for at in self.cache.get(self.key, []) if at > self.now - self.duration]

    def refuse_if_blocked(self, request) -> None:
        self._load(request)
        if len(self.history) >= self.num_requests:
            raise exceptions.Throttled(
                wait=self.wait(),
                detail="Too many failed authentications from this address. Try again later.",
                code=ErrorCode.THROTTLED,
            )

    def record_failure(self, request) -> None:
        self._load(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class HashedTokenAuthentication(TokenAuthentication):
    def authenticate(self, request):
        throttle = AuthenticationFailureThrottle()
        words = get_authorization_header(request).split()
        if not words or words[0].lower() != self.authenticate_header(request).lower().encode():
            return None  # no token: the session (or nothing) decides
        throttle.refuse_if_blocked(request)
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def authenticate_credentials(self, token: bytes):
        try:
            secret = token.decode("utf-8")
            digest = hash_token(secret)
        except (UnicodeDecodeError, TypeError, binascii.Error):
            raise exceptions.AuthenticationFailed("Invalid token.", code=ErrorCode.AUTHENTICATION_FAILED) from None
        for candidate in token_candidates(secret[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if compare_digest(digest, candidate.digest):
                if token_is_expired(candidate):
                    raise exceptions.AuthenticationFailed(
                        "This token has expired. Ask a data manager for a new one.", code=ErrorCode.TOKEN_EXPIRED
                    )
                return self.validate_user(candidate)
        raise exceptions.AuthenticationFailed("Invalid token.", code=ErrorCode.AUTHENTICATION_FAILED)


class TwoFactorRequired(exceptions.PermissionDenied):
    default_code = ErrorCode.TWO_FACTOR_REQUIRED
    default_detail = "Log in to the admin with your authentication code first, or use an API token."


class VerifiedSessionAuthentication(SessionAuthentication):
    """The session, as the dashboard and the admin use it. A role that logs in to the admin with a second factor
    (``core.two_factor``) writes through a session only once that session is verified; reads are the
    dashboard's and need the password login only."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and request.method not in SAFE_METHODS:
            user = result[0]
            if requires_two_factor(user) and not is_verified(request._request.user):
                raise TwoFactorRequired
        return result


class HashedTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ``HashedTokenAuthentication``: ``Authorization: Token <token>``."""

    target_class = HashedTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None)
        )


class VerifiedSessionScheme(SessionScheme):
    target_class = VerifiedSessionAuthentication
