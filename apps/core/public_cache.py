"""Anonymous GETs of public API pages, answered from Redis in front of Django.

A public page is the same for every anonymous client, yet a Django-level cache hit still pays
for the whole middleware chain, DRF's dispatch and the view (compare the cached list cases in
docs/performance.md). This WSGI layer, like the liveness probe's, answers such a request from
Redis before Django is called, with the response Django built the first time (its security
headers included), in one round trip.

What is stored, and for whom:
- A view opts a response in with `allow()`, naming the generation key that invalidates it
  (`apps.articles.cache` replaces its token on any change to an article). Nothing else is
  ever stored: a response Django did not mark goes out as it came.
- Only GET requests with no session cookie, no read-your-writes cookie and no Authorization
  header are looked up or stored; an analytics cookie does not matter. Only 200 responses
  that set no cookie are stored.
- The key covers the scheme, the Host (port included, and the server's name and port, which
  Django uses without one), the path and query string, and the Accept header: pages carry links
  built from the Host, so one client's Host is never served to another. An entry is stored only
  after Django answered 200, so the Host was one it allows.
- Each entry carries the generation it was built under, read in the same round trip as the
  lookup, before Django ran: a change during the request leaves an entry no one will read.
- The layer looks a path up only once a view in this process has marked a response for it,
  so other endpoints (autocomplete, the HTML pages) never pay the round trip.
- Each process keeps a copy of each entry Redis confirmed for it (at most MAX_LOCAL_ENTRIES and
  MAX_LOCAL_BYTES) and answers from it, without Redis, for PUBLIC_CACHE_LOCAL_SECONDS after
  Redis last confirmed the entry current: an anonymous reader may see a page up to that long
  after a change, as nginx's micro-cache (NGINX_MICROCACHE_TTL, the same 1 s by default) already
  allows for clients without cookies. The process that made the change drops its copies at once
  (`forget_local`). 0 turns the copies off: every hit then checks the generation in Redis, and
  no reader ever sees a page from before a change once it is committed and invalidated.

A hit is counted as the request it is: `request.time.<view>`, `request.status.2xx` and the
Munin request counters, plus `request.public_cache.hit`. DRF's anonymous throttle does not see
hits; nginx's `limit_req` still does. With the cache down or not Redis, every request goes to
Django, which degrades to uncached answers as it does without this layer.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from apps.core import metrics, monitoring
from apps.core.cache import raw_client, raw_key
from apps.core.db_router import RECENT_WRITE_COOKIE
from apps.core.request_id import REQUEST_ID_HEADER, request_id_from_header

logger = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Part of every entry's key: change it with the entry's layout, so a deploy never reads the old one.
ENTRY_FORMAT = "v1"
# After a failed lookup, Django answers alone for this long before Redis is tried again.
REDIS_RETRY_SECONDS = 5.0
_down_until = [0.0]
# A bound on the paths a process remembers, so a crawler walking every detail page cannot grow it.
MAX_PATHS = 2_000
# Per-request headers: never replayed from an entry.
_UNSTORED_HEADERS = {REQUEST_ID_HEADER.lower(), "date", "server"}


# (generation key, generation, view name, headers, body), as stored in Redis.
Entry = tuple[str, bytes, str, list[tuple[str, str]], bytes]


@dataclass(frozen=True)
class Marker:
    """What `allow()` attaches to a response: the view's name and what invalidates the entry."""

    view_name: str
    generation_key: str
    timeout: int


@dataclass
class Lookup:
    """One eligible request's lookup: where its entry goes, and the generation read before Django ran."""

    key: str
    generation_key: str
    generation: bytes | None


_paths: dict[str, str] = {}  # path -> generation key (the Redis key, prefix included)
_paths_lock = threading.Lock()

# Per process: entry key -> (when Redis last confirmed it current, the entry). Bounded in
# entries and in bytes, so a client inventing query strings cannot grow a worker.
MAX_LOCAL_ENTRIES = 256
MAX_LOCAL_BYTES = 16_000_000
MAX_LOCAL_ENTRY_BYTES = 1_000_000  # a larger page is served from Redis every time
_local: dict[str, tuple[float, Entry]] = {}
_local_bytes = 0
# Bumped by forget_local(): a copy confirmed before the bump must not be kept after it.
_local_epoch = 0
_local_lock = threading.Lock()


def forget_local() -> None:
    """Drop this process's copies: its own readers see a change it just made at once."""
    global _local_bytes, _local_epoch
    with _local_lock:
        _local.clear()
        _local_bytes = 0
        _local_epoch += 1


def _hold(key: str, entry: Entry, confirmed_at: float, epoch: int) -> None:
    """Keep a copy of `entry`, which Redis confirmed current at `confirmed_at`, in epoch `epoch`."""
    global _local_bytes
    size = len(entry[4])
    if size > MAX_LOCAL_ENTRY_BYTES:
        return
    with _local_lock:
        if epoch != _local_epoch:
            return  # a change in this process since the MGET: the entry may be from before it
        previous = _local.pop(key, None)
        if previous is not None:
            _local_bytes -= len(previous[1][4])
        while _local and (len(_local) >= MAX_LOCAL_ENTRIES or _local_bytes + size > MAX_LOCAL_BYTES):
            _, oldest = _local.pop(next(iter(_local)))  # the oldest: dicts keep insertion order
            _local_bytes -= len(oldest[4])
        _local[key] = (confirmed_at, entry)
        _local_bytes += size


def _cookie_names() -> tuple[str, ...]:
    return (f"{settings.SESSION_COOKIE_NAME}=", f"{RECENT_WRITE_COOKIE}=")


def _eligible(environ: dict[str, Any]) -> bool:
    if environ.get("REQUEST_METHOD") != "GET" or "HTTP_AUTHORIZATION" in environ:
        return False
    cookies = environ.get("HTTP_COOKIE", "")
    # A substring test may bypass the cache for a cookie that only contains the name: harmless.
    return not (cookies and any(name in cookies for name in _cookie_names()))


def _entry_key(environ: dict[str, Any], path: str) -> str:
    identity = "\n".join(
        (
            environ.get("wsgi.url_scheme", ""),
            environ.get("HTTP_X_FORWARDED_PROTO", ""),
            environ.get("HTTP_HOST", ""),
            environ.get("HTTP_X_FORWARDED_HOST", ""),
            # What Django builds links from when no Host header came (HTTP/1.0).
            environ.get("SERVER_NAME", ""),
            environ.get("SERVER_PORT", ""),
            path,
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_ACCEPT", ""),
        )
    )
    digest = hashlib.blake2b(identity.encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
    return raw_key(f"public:{ENTRY_FORMAT}:{digest}")


def allow(response: HttpResponse, request: Any, *, generation_key: str, timeout: int) -> HttpResponse:
    """Let the front layer store `response` for anonymous GETs of this URL until `generation_key` changes.

    `generation_key` is a cache key name (as given to Django's cache). Call only for a response
    that is the same for every anonymous client.
    """
    # The front layer only stores for requests it judged anonymous from their cookies and headers;
    # this is the second check, by what Django's and DRF's authentication concluded.
    user = getattr(request, "user", None)
    if (user is not None and user.is_authenticated) or getattr(request, "auth", None) is not None:
        return response
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match is not None and match.view_name else "unresolved"
    response.public_cache = Marker(view_name, raw_key(generation_key), timeout)  # type: ignore[attr-defined]
    return response


def _remember(path: str, generation_key: str) -> None:
    if path in _paths:
        return
    with _paths_lock:
        if len(_paths) < MAX_PATHS:
            _paths[path] = generation_key


def _serve(
    entry: Entry,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    started: float,
) -> Iterable[bytes]:
    view_name, body = entry[2], entry[4]
    request_id = request_id_from_header(environ.get("HTTP_X_REQUEST_ID"))
    start_response("200 OK", [*entry[3], (REQUEST_ID_HEADER, request_id)])
    milliseconds = (time.perf_counter() - started) * 1000
    with metrics.batch():
        monitoring.record_request(view_name=view_name, status_class="2xx", milliseconds=milliseconds)
        metrics.incr("request.public_cache.hit")
    return [body]


def _store(
    client: Any, lookup: Lookup, marker: Marker, status: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    if not status.startswith("200 ") or marker.generation_key != lookup.generation_key:
        return
    if any(name.lower() == "set-cookie" for name, _ in headers):
        return
    kept = [(name, value) for name, value in headers if name.lower() not in _UNSTORED_HEADERS]
    entry = (marker.generation_key, lookup.generation, marker.view_name, kept, body)
    try:
        client.set(lookup.key, pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL), ex=marker.timeout)
    except Exception as error:  # a page that cannot be stored only costs the next request a miss
        logger.warning("could not store a public response in the cache: %s", error)


def _mget(client: Any, *keys: str) -> list[bytes | None]:
    """MGET on a connection of the client's pool, without the client's per-command machinery.

    Every hit pays this round trip, and redis-py's retry and instrumentation wrappers would add to
    each one. A connection that failed is disconnected before it goes back to the pool, which
    reconnects it on its next use.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_command("MGET", *keys)
        values: list[bytes | None] = connection.read_response()
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
    return values


def _load(raw: bytes | None) -> Entry | None:
    """An entry as stored by `_store`, or None for anything else (an older format, a bad value)."""
    if raw is None:
        return None
    try:
        entry = pickle.loads(raw)  # noqa: S301 - written by this module to our own Redis
    except Exception as error:
        logger.warning("ignored a public cache entry that does not load: %s", error)
        return None
    if isinstance(entry, tuple) and len(entry) == 5 and isinstance(entry[4], bytes):
        return entry
    return None


def with_public_cache(app: WSGIApp) -> WSGIApp:
    """`app`, with anonymous GETs of pages a view allowed answered from Redis before it is called."""
    client_holder: list[Any] = []

    def client() -> Any | None:
        if not client_holder:
            client_holder.append(raw_client())
        return client_holder[0]

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        generation_key = _paths.get(path)
        if not _eligible(environ):
            return app(environ, start_response)
        redis = client()
        if redis is None:
            return app(environ, start_response)
        if generation_key is None:
            # A path no view has allowed yet in this process: nothing to look up or store, but
            # the answer may teach the process that the path is cacheable.
            result = app(environ, start_response)
            marker = getattr(result, "public_cache", None)
            if isinstance(marker, Marker):
                _remember(path, marker.generation_key)
            return result
        started = time.perf_counter()
        lookup = Lookup(_entry_key(environ, path), generation_key, None)
        local_seconds = settings.PUBLIC_CACHE_LOCAL_SECONDS
        held = _local.get(lookup.key) if local_seconds > 0 else None
        if held is not None and time.monotonic() - held[0] < local_seconds:
            return _serve(held[1], environ, start_response, started)
        if time.monotonic() < _down_until[0]:
            return app(environ, start_response)
        confirmed_at, epoch = time.monotonic(), _local_epoch
        try:
            raw_entry, lookup.generation = _mget(redis, lookup.key, generation_key)
        except Exception as error:
            # Redis down: Django answers alone for a while, so during an outage only one request
            # every REDIS_RETRY_SECONDS waits on Redis here (Django's own cache reads still do).
            _down_until[0] = time.monotonic() + REDIS_RETRY_SECONDS
            logger.warning("public cache off for %s s: Redis failed (%s)", REDIS_RETRY_SECONDS, error)
            return app(environ, start_response)
        entry = _load(raw_entry) if lookup.generation is not None else None
        if entry is not None and entry[0] == generation_key and entry[1] == lookup.generation:
            if local_seconds > 0:
                _hold(lookup.key, entry, confirmed_at, epoch)
            return _serve(entry, environ, start_response, started)
        metrics.incr("request.public_cache.miss")
        answer: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = app(environ, capture)
        marker = getattr(result, "public_cache", None)
        if (
            isinstance(marker, Marker)
            and isinstance(result, HttpResponse)
            and "status" in answer
            and lookup.generation is not None
        ):
            _store(redis, lookup, marker, answer["status"], answer["headers"], result.content)
        return result

    return application
