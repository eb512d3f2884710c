"""Who is calling, and may they: TokenReview and SubjectAccessReview against the API server.

The API acts with its own service account, so it must never do for a caller what the caller's
own RBAC would refuse: every call is checked with a SubjectAccessReview of the caller (user,
groups, uid, extra from the TokenReview) for the verb, resource and namespace the call needs.
Answers are cached briefly (`TOKEN_TTL_S`, `ACCESS_TTL_S`), as the API server's own webhook
authenticator and authorizer do, so a console polling every second costs no review per poll;
a revoked RoleBinding takes effect within `ACCESS_TTL_S`, a granted one within `DENIED_TTL_S`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from kubernetes import client

from streamhouse_operator.models import streamquery as model

TOKEN_TTL_S = 30.0
ACCESS_TTL_S = 10.0
DENIED_TTL_S = 1.0  # a RoleBinding just granted works at once
CACHE_ENTRIES = 4096
RESULTS_SUBRESOURCE = "results"

K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    def __init__(self, ttl_s: float, entries: int = CACHE_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.entries = entries
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            return item[1]

    def put(self, key: K, value: V, ttl_s: float | None = None) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + (ttl_s or self.ttl_s), value)
            self._items.move_to_end(key)
            while len(self._items) > self.entries:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class Caller:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())


@dataclass(frozen=True)
class Access:
    """What a call needs: `verb` on streamqueries (or a subresource) in `namespace`."""

    verb: str
    namespace: str  # "" for every namespace
    name: str = ""
    subresource: str = ""

    def describe(self) -> str:
        what = model.PLURAL + (f"/{self.subresource}" if self.subresource else "")
        where = f"in namespace {self.namespace!r}" if self.namespace else "in every namespace"
        return f"{self.verb} {what}.{model.GROUP} {where}"


class Unauthenticated(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, caller: Caller, access: Access) -> None:
        super().__init__(f"{caller.username} may not {access.describe()}")
        self.access = access


class Authorizer:
    """TokenReview + SubjectAccessReview with short caches."""

    def __init__(self, api: client.ApiClient) -> None:
        self.authentication = client.AuthenticationV1Api(api)
        self.authorization = client.AuthorizationV1Api(api)
        self._tokens: _TtlCache[str, Caller] = _TtlCache(TOKEN_TTL_S)
        self._access: _TtlCache[tuple[Caller, Access], bool] = _TtlCache(ACCESS_TTL_S)

    def authenticate(self, token: str) -> Caller:
        """The caller a bearer token belongs to; raises Unauthenticated (blocking call)."""
        if not token:
            raise Unauthenticated("no bearer token")
        digest = hashlib.sha256(token.encode()).hexdigest()  # never keep the token itself
        cached = self._tokens.get(digest)
        if cached is None:
            review = self.authentication.create_token_review(
                client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
            )
            status = review.status
            if status is None or not status.authenticated or status.user is None:
                raise Unauthenticated("the token was not accepted")
            user = status.user
            cached = Caller(
                username=user.username or "",
                uid=user.uid or "",
                groups=tuple(user.groups or ()),
                extra=tuple(sorted((k, tuple(v)) for k, v in (user.extra or {}).items())),
            )
            self._tokens.put(digest, cached)
        return cached

    def allowed(self, caller: Caller, access: Access) -> bool:
        """The caller's own RBAC answer for `access` (blocking call)."""
        cached = self._access.get((caller, access))
        if cached is not None:
            return cached
        review = self.authorization.create_subject_access_review(
            client.V1SubjectAccessReview(
                spec=client.V1SubjectAccessReviewSpec(
                    user=caller.username,
                    uid=caller.uid or None,
                    groups=list(caller.groups) or None,
                    extra={k: list(v) for k, v in caller.extra} or None,
                    resource_attributes=client.V1ResourceAttributes(
                        group=model.GROUP,
                        resource=model.PLURAL,
                        subresource=access.subresource or None,
                        verb=access.verb,
                        namespace=access.namespace or None,
                        name=access.name or None,
                    ),
                )
            )
        )
        allowed = bool(review.status and review.status.allowed)
        self._access.put((caller, access), allowed, None if allowed else DENIED_TTL_S)
        return allowed

    def require(self, caller: Caller, access: Access) -> None:
        if not self.allowed(caller, access):
            raise Forbidden(caller, access)
