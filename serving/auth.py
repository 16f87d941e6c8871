"""API keys: who is calling, which routes they may use, and whether they may run admin operations."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from core.settings import ApiKey
from core.types import ModelRef
from serving.errors import AuthenticationError, PermissionDeniedError


@dataclass(frozen=True)
class Principal:
    """The caller behind a key."""

    name: str
    routes: frozenset[str] | None = None
    """Route names this caller may use; None: all."""
    admin: bool = False

    def may_use(self, route: str) -> bool:
        """Whether this caller may use the route named `route`."""
        return self.routes is None or route in self.routes

    def check_route(self, model: ModelRef) -> None:
        """403 unless this caller may use the route `model` names (a pin, `demo@v2`, does not matter)."""
        if not self.may_use(model.name):
            raise PermissionDeniedError(
                f"this API key may not use model {str(model)!r}", param="model", code="model_not_allowed"
            )


OPEN = Principal("anonymous", None, admin=True)
"""No keys configured (loopback development): everything is allowed."""


class Keyring:
    """The configured keys. Every key is compared in constant time, whichever matches."""

    def __init__(self, api_keys: Sequence[str | ApiKey] = (), admin_keys: Sequence[str] = ()) -> None:
        self._entries: list[tuple[bytes, Principal]] = []
        for number, entry in enumerate(api_keys, start=1):
            key = entry if isinstance(entry, ApiKey) else ApiKey(key=entry)
            routes = frozenset(key.routes) if key.routes is not None else None
            self._entries.append((key.key.encode(), Principal(key.name or f"key-{number}", routes)))
        for number, admin_key in enumerate(admin_keys, start=1):
            self._entries.append((admin_key.encode(), Principal(f"admin-{number}", None, admin=True)))

    @property
    def open(self) -> bool:
        return not self._entries

    def identify(self, authorization: str | None) -> Principal:
        """The caller an `Authorization: Bearer <key>` header names; 401 when it names nobody."""
        if self.open:
            return OPEN
        scheme, _, token = (authorization or "").partition(" ")
        presented = token.strip().encode()
        found: Principal | None = None
        for key, principal in self._entries:
            # No early exit: the time taken must not depend on which key (if any) matched.
            if hmac.compare_digest(presented, key) and found is None:
                found = principal
        if scheme.lower() != "bearer" or not presented or found is None:
            raise AuthenticationError(
                "Invalid or missing API key: send `Authorization: Bearer <key>`.", code="invalid_api_key"
            )
        return found

    def identify_admin(self, authorization: str | None) -> Principal:
        """Like `identify`, but only an admin key passes (403 for a valid non-admin key)."""
        principal = self.identify(authorization)
        if not principal.admin:
            raise PermissionDeniedError("this operation needs an admin key", code="admin_key_required")
        return principal
