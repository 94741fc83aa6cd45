"""Bearer-token authentication, role checks per RPC and store scoping for every service.

How it fits together:

* A tokens file (``auth.tokens_file``, YAML or TOML) lists the SHA-256 hex digest of each
  token with a name, a role and the stores it may act on; it never holds a token::

      tokens:
        - name: store-0042-lanes
          role: lane_agent            # lane_agent | pos | attendant | manager | service
          stores: ["store-0042"]      # or ["*"] for every store
          lanes: ["01", "02"]         # optional (lane agents): the lanes it may feed
          sha256: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b

  ``python -m lanesight.common.auth mint --name N --role R --stores S`` prints a new
  token and its entry.
* ``start_server`` installs :class:`AuthInterceptor` when ``auth.enabled``. It answers
  UNAUTHENTICATED without a valid ``authorization: Bearer <token>`` header and
  PERMISSION_DENIED when the token's role may not call the method (:data:`METHOD_ROLES`).
  Health and reflection stay open for probes and tooling.
* The interceptor cannot read request fields (streams), so **servicers check the store a
  request names**, once they know it, with::

      from lanesight.common.auth import authorize_store, authorize_stores

      await authorize_store(context, request.lane.store_id)        # one store
      store_ids = await authorize_stores(context, request.store_ids)  # a filter; [] = all

  ``authorize_store`` aborts the RPC with PERMISSION_DENIED when the caller's token is not
  scoped to that store; it does nothing when auth is off (no caller recorded) or the
  token covers every store. ``authorize_stores`` checks every requested id and, when the
  request asks for "all stores" (an empty list), returns the caller's own stores so the
  query is narrowed instead of refused. On hot paths (every event of an Ingest stream)
  use the synchronous :func:`caller_may_access_store`; for chain-wide effects (enrolling
  a product) :func:`authorize_all_stores`. docs/deploy.md lists the call for each RPC.
* ``open_channel`` presents ``auth.client_token_file`` to peers (see channels.py).

Tokens are compared in constant time (``hmac.compare_digest`` over their digests) and are
never logged.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import hmac
import inspect
import logging
import os
import secrets
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import grpc
import yaml
from lanesight.common import registry
from lanesight.common.config import AuthConfig
from opentelemetry import metrics
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

log = logging.getLogger(__name__)

Role = Literal["lane_agent", "pos", "attendant", "manager", "service"]
ROLES: tuple[Role, ...] = ("lane_agent", "pos", "attendant", "manager", "service")
ALL_STORES = "*"


def _table(rows: Mapping[str, Iterable[str]]) -> dict[str, frozenset[Role]]:
    table: dict[str, frozenset[Role]] = {}
    for method, roles in rows.items():
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"{method}: unknown roles {sorted(unknown)}; roles are {ROLES}")
        table[method] = frozenset(role for role in ROLES if role in roles)
    return table


#: Which roles may call which RPC, as each service declares it (ServiceSpec.method_roles).
#: A method missing here is denied to everyone.
METHOD_ROLES: Mapping[str, frozenset[Role]] = _table(registry.method_roles())

#: Services every caller may use without a token: probes and API discovery.
OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


@dataclass(frozen=True)
class Identity:
    """Who called: the token's name, its role and the stores it may act on."""

    name: str
    role: Role
    stores: frozenset[str]
    #: The lanes this token may feed events for; empty: any lane of its stores.
    lanes: frozenset[str] = frozenset()

    @property
    def all_stores(self) -> bool:
        """True when the token covers every store of the chain."""
        return ALL_STORES in self.stores

    def may_access_store(self, store_id: str) -> bool:
        """True when this caller may read or act on store_id."""
        return self.all_stores or (store_id != "" and store_id in self.stores)

    def may_feed_lane(self, lane_id: str) -> bool:
        """True when this caller may feed events for lane_id (any lane when unbound)."""
        return not self.lanes or lane_id in self.lanes


_CALLER: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "lanesight_caller", default=None
)
_METHOD: contextvars.ContextVar[str] = contextvars.ContextVar("lanesight_method", default="")


def current_caller() -> Identity | None:
    """The authenticated caller of the RPC being served; None when auth is off."""
    return _CALLER.get()


def caller_may_access_store(store_id: str) -> bool:
    """Synchronous store check for hot paths; True when auth is off."""
    caller = _CALLER.get()
    return caller is None or caller.may_access_store(store_id)


def caller_may_feed_lane(lane_id: str) -> bool:
    """Synchronous lane check for event feeds (a token bound to lanes); True when auth is off."""
    caller = _CALLER.get()
    return caller is None or caller.may_feed_lane(lane_id)


async def authorize_store(context: grpc.aio.ServicerContext, store_id: str) -> None:
    """Abort the RPC with PERMISSION_DENIED unless the caller may act on store_id.

    Call it with the store the request names (or, for an alert id, the alert's store)
    before doing anything for the caller. Does nothing when auth is off.
    """
    caller = _CALLER.get()
    if caller is None or caller.may_access_store(store_id):
        return
    method = _METHOD.get()
    _count_rejection(method, grpc.StatusCode.PERMISSION_DENIED)
    log.warning(
        "%s: denied %s (role %s) access to store %r",
        method,
        caller.name,
        caller.role,
        store_id or "<none>",
    )
    await context.abort(
        grpc.StatusCode.PERMISSION_DENIED,
        f"caller {caller.name!r} may not access store {store_id or '<none>'!r}",
    )


async def authorize_stores(
    context: grpc.aio.ServicerContext, store_ids: Sequence[str]
) -> list[str]:
    """The store filter to apply for a request naming store_ids ([] meaning every store).

    Aborts with PERMISSION_DENIED if any named store is out of the caller's scope. For an
    empty request it returns the caller's own stores, or [] (every store) when the caller
    covers all stores or auth is off.
    """
    caller = _CALLER.get()
    if not store_ids:
        if caller is None or caller.all_stores:
            return []
        return sorted(caller.stores)
    for store_id in store_ids:
        await authorize_store(context, store_id)
    return list(store_ids)


async def authorize_all_stores(context: grpc.aio.ServicerContext) -> None:
    """Abort with PERMISSION_DENIED unless the caller's token covers every store.

    For RPCs whose effect is chain-wide (enrolling a product in the shared model).
    """
    caller = _CALLER.get()
    if caller is None or caller.all_stores:
        return
    await authorize_store(context, ALL_STORES)


# --- the tokens file -------------------------------------------------------------------


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is listed in the tokens file."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mint_token() -> str:
    """A new random bearer token (256 bits; the prefix helps secret scanners spot leaks)."""
    return "lst_" + secrets.token_urlsafe(32)


class TokenEntry(BaseModel):
    """One entry of the tokens file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    role: Role
    stores: list[str] = Field(min_length=1)
    lanes: list[str] = []
    sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")

    @field_validator("stores")
    @classmethod
    def _stores_are_ids_or_star(cls, stores: list[str]) -> list[str]:
        if any(not store for store in stores):
            raise ValueError("store ids must not be empty")
        if ALL_STORES in stores and len(stores) > 1:
            raise ValueError('"*" (every store) must be the only entry')
        return stores

    @field_validator("lanes")
    @classmethod
    def _lanes_are_ids(cls, lanes: list[str]) -> list[str]:
        if any(not lane for lane in lanes):
            raise ValueError("lane ids must not be empty")
        return lanes


class TokensFile(BaseModel):
    """The tokens file: a list of token entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: list[TokenEntry] = []


class TokensFileError(Exception):
    """The tokens file cannot be read or is invalid."""


def load_tokens(path: Path) -> list[tuple[bytes, Identity]]:
    """Read and validate a tokens file: (digest bytes, identity) per entry."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TokensFileError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = yaml.safe_load(text) or {}
        parsed = TokensFile.model_validate(data)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise TokensFileError(f"{path}: not valid {path.suffix[1:] or 'yaml'}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise TokensFileError(f"{path}: {problems}") from None
    entries: list[tuple[bytes, Identity]] = []
    seen: set[bytes] = set()
    for entry in parsed.tokens:
        digest = bytes.fromhex(entry.sha256)
        if digest in seen:
            raise TokensFileError(f"{path}: token {entry.name!r} is listed twice")
        seen.add(digest)
        identity = Identity(entry.name, entry.role, frozenset(entry.stores), frozenset(entry.lanes))
        entries.append((digest, identity))
    return entries


class TokenRegistry:
    """The known tokens, re-read when the file changes (rotation without a restart)."""

    def __init__(self, path: Path, recheck_interval_s: float = 5.0) -> None:
        self.path = path
        self.recheck_interval_s = recheck_interval_s
        self._entries = load_tokens(path)
        self._mtime_ns = self._stat()
        self._next_check = time.monotonic() + recheck_interval_s
        log.info("auth: %d tokens loaded from %s", len(self._entries), path)

    def __len__(self) -> int:
        return len(self._entries)

    def _stat(self) -> int:
        try:
            return os.stat(self.path).st_mtime_ns
        except OSError:
            return -1

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.recheck_interval_s
        mtime_ns = self._stat()
        if mtime_ns == self._mtime_ns:
            return
        self._mtime_ns = mtime_ns
        try:
            self._entries = load_tokens(self.path)
        except TokensFileError as exc:
            log.warning("auth: keeping the previous tokens, the new file is invalid: %s", exc)
            return
        log.info("auth: tokens reloaded, %d tokens", len(self._entries))

    def lookup(self, token: str) -> Identity | None:
        """The identity of a presented token, or None; constant time in the token."""
        self._maybe_reload()
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found: Identity | None = None
        # No early exit: every entry is compared, so timing does not reveal which matched.
        for known, identity in self._entries:
            if hmac.compare_digest(known, digest):
                found = identity
        return found


# --- the server interceptor ------------------------------------------------------------

_meter = metrics.get_meter("lanesight.auth")
_rejections = _meter.create_counter(
    "lanesight.rpc.auth.rejections",
    unit="{rejection}",
    description="RPCs refused by authentication or authorization.",
)


def _count_rejection(method: str, code: grpc.StatusCode) -> None:
    service, _, name = method.lstrip("/").partition("/")
    _rejections.add(
        1, {"rpc.service": service, "rpc.method": name, "rpc.grpc.status_code": code.value[0]}
    )


def _bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    values = [value for key, value in (metadata or ()) if key == "authorization"]
    if len(values) != 1 or not isinstance(values[0], str):
        return None
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def _rejecting_handler(
    handler: grpc.RpcMethodHandler, method: str, code: grpc.StatusCode, details: str
) -> grpc.RpcMethodHandler:
    """A handler of the same shape as handler that only aborts with code."""

    async def reject(request_or_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        _count_rejection(method, code)
        log.info("%s: %s from %s", method, details, context.peer())
        await context.abort(code, details)

    if handler.request_streaming and handler.response_streaming:
        return handler._replace(stream_stream=reject)
    if handler.request_streaming:
        return handler._replace(stream_unary=reject)
    if handler.response_streaming:
        return handler._replace(unary_stream=reject)
    return handler._replace(unary_unary=reject)


def _with_caller(behavior: Any, caller: Identity, method: str) -> Any:
    """Wrap a servicer method so the caller identity is set where the method runs."""
    if behavior is None:
        return None
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Any) -> Any:
            _CALLER.set(caller)
            _METHOD.set(method)
            async for item in behavior(request, context):
                yield item

        return stream
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: Any) -> Any:
            _CALLER.set(caller)
            _METHOD.set(method)
            return await behavior(request, context)

        return call

    def sync_call(request: Any, context: Any) -> Any:
        caller_token, method_token = _CALLER.set(caller), _METHOD.set(method)
        try:
            return behavior(request, context)
        finally:
            _METHOD.reset(method_token)
            _CALLER.reset(caller_token)

    return sync_call


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates bearer tokens and checks the caller's role against METHOD_ROLES."""

    def __init__(
        self,
        registry: TokenRegistry,
        method_roles: Mapping[str, frozenset[Role]] = METHOD_ROLES,
    ) -> None:
        self.registry = registry
        self.method_roles = method_roles

    @classmethod
    def from_config(cls, config: AuthConfig) -> AuthInterceptor:
        """The interceptor for config.auth; raises TokensFileError if the file is bad."""
        if config.tokens_file is None:
            raise TokensFileError("auth.tokens_file is required when auth.enabled is true")
        return cls(TokenRegistry(config.tokens_file))

    async def intercept_service(
        self, continuation: Any, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return None
        if method.lstrip("/").partition("/")[0] in OPEN_SERVICES:
            return handler
        token = _bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            return _rejecting_handler(
                handler, method, grpc.StatusCode.UNAUTHENTICATED, "missing bearer token"
            )
        caller = self.registry.lookup(token)
        if caller is None:
            return _rejecting_handler(
                handler, method, grpc.StatusCode.UNAUTHENTICATED, "invalid bearer token"
            )
        if caller.role not in self.method_roles.get(method, frozenset()):
            return _rejecting_handler(
                handler,
                method,
                grpc.StatusCode.PERMISSION_DENIED,
                f"caller {caller.name!r} (role {caller.role}) may not call {method}",
            )
        return handler._replace(
            unary_unary=_with_caller(handler.unary_unary, caller, method),
            unary_stream=_with_caller(handler.unary_stream, caller, method),
            stream_unary=_with_caller(handler.stream_unary, caller, method),
            stream_stream=_with_caller(handler.stream_stream, caller, method),
        )


# --- the client side -------------------------------------------------------------------


def read_client_token(config: AuthConfig) -> str | None:
    """The token this process presents to peers (auth.client_token_file), or None."""
    if config.client_token_file is None:
        return None
    try:
        token = config.client_token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TokensFileError(
            f"auth.client_token_file {config.client_token_file}: cannot read: {exc.strerror}"
        ) from exc
    if not token or any(c.isspace() for c in token):
        raise TokensFileError(
            f"auth.client_token_file {config.client_token_file}: must hold exactly one token"
        )
    return token


class _BearerMetadata:
    """Adds the authorization header to a call (plaintext channels, development only)."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(*self._header)
        return details._replace(metadata=metadata)


class _UnaryUnary(_BearerMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _UnaryStream(_BearerMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(self._details(client_call_details), request)


class _StreamUnary(_BearerMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStream(_BearerMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(self._details(client_call_details), request_iterator)


def bearer_token_interceptors(token: str) -> list[grpc.aio.ClientInterceptor]:
    """Client interceptors that send token on every call of a plaintext channel.

    gRPC refuses call credentials on insecure channels, so plaintext development setups
    send the header this way; TLS channels use grpc.access_token_call_credentials.
    """
    return [_UnaryUnary(token), _UnaryStream(token), _StreamUnary(token), _StreamStream(token)]


# --- python -m lanesight.common.auth ----------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lanesight.common.auth", description="Mint and hash lanesight tokens."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    mint = sub.add_parser("mint", help="print a new token and its tokens-file entry")
    mint.add_argument("--name", required=True)
    mint.add_argument("--role", required=True, choices=ROLES)
    mint.add_argument("--stores", required=True, help='comma-separated store ids, or "*"')
    mint.add_argument("--lanes", default="", help="comma-separated lane ids it may feed")
    mint.add_argument("--token-out", help="write the token to this file (mode 0600)")
    sub.add_parser("hash", help="read a token on stdin, print its SHA-256 digest")
    check = sub.add_parser("check", help="validate a tokens file")
    check.add_argument("tokens_file")
    args = parser.parse_args(argv)
    if args.command == "hash":
        print(hash_token(sys.stdin.readline().strip()))
        return 0
    if args.command == "check":
        try:
            entries = load_tokens(Path(args.tokens_file))
        except TokensFileError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"{args.tokens_file}: {len(entries)} tokens, valid")
        return 0
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    token = mint_token()
    try:
        lanes = [lane.strip() for lane in args.lanes.split(",") if lane.strip()]
        entry = TokenEntry(
            name=args.name, role=args.role, stores=stores, lanes=lanes, sha256=hash_token(token)
        )
    except ValidationError as exc:
        print(f"invalid entry: {exc}", file=sys.stderr)
        return 2
    if args.token_out:
        fd = os.open(args.token_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(token + "\n")
        print(f"# token written to {args.token_out}", file=sys.stderr)
    else:
        print(f"# token (give it to {args.name}; it is not stored anywhere): {token}")
    fields = entry.model_dump(exclude_defaults=True)
    print(yaml.safe_dump({"tokens": [fields]}, sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
