"""The local ``ApiClient``, and local repositories that refuse what they do not serve.

Entities of the local platform carry a ``LocalApiClient``: any dtlpy code path that would send a
request raises :class:`UnsupportedOperation` naming the request instead of reaching the network.
Repositories of the local platform subclass dtlpy's (the entities assert their types); every
public method they do not implement raises an error naming it.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any

from dtlpy.services.api_client import ApiClient

from ...errors import UnsupportedOperation

_FIX = "use only the entity methods the local platform serves (see the README), or run with platform=dataloop"


def _unsupported(what: str):
    def refuse(*_args, **_kwargs):
        raise UnsupportedOperation(f"{what} is not supported on the local platform", fix=_FIX)

    return refuse


class _QuietVerbose:
    """dtlpy reads progress-bar switches from ``client_api.verbose``; the local client keeps them off
    without writing the user's dtlpy cookie."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("disable_progress_bar"):
            return True
        return getattr(self._real, name)


class LocalApiClient(ApiClient):
    def __init__(self, platform):
        self._quiet_verbose = None
        self.platform = platform
        super().__init__()

    @property
    def verbose(self):
        if self._quiet_verbose is None:
            self._quiet_verbose = _QuietVerbose(ApiClient.verbose.fget(self))
        return self._quiet_verbose

    def gen_request(self, req_type, path, *args, **kwargs):
        _unsupported(f"the request {str(req_type).upper()} {path}")()

    _gen_request = gen_request

    def gen_async_request(self, req_type, path, *args, **kwargs):
        _unsupported(f"the request {str(req_type).upper()} {path}")()

    def send_session(self, prepared, stream=None):
        _unsupported(f"the request {prepared.method} {prepared.url}")()

    def login(self, *args, **kwargs):
        _unsupported("logging in")()


@functools.cache
def _public_methods(cls: type, with_properties: bool = False) -> tuple[str, ...]:
    return tuple(name for name, value in inspect.getmembers(cls) if not name.startswith("_") and (
        inspect.isfunction(value) or (with_properties and isinstance(value, property))))


def local_repository(base: type):
    """Class decorator: a local repository over dtlpy's ``base``. Public methods of ``base`` the
    local class does not define raise an error naming ``dl.<Base>.<method>``. Properties stay: they
    are the accessors (``model``, ``item`` ...) the base's own code reads."""

    def decorate(cls: type) -> type:
        own = {name for klass in cls.__mro__ if klass is not object and not issubclass(base, klass)
               for name in vars(klass)}
        for name in _public_methods(base):
            if name not in own:
                setattr(cls, name, _unsupported(f"dl.{base.__name__}.{name}"))
        return cls

    return decorate


@functools.cache
def _stub_class(base: type) -> type:
    stub = type(f"Unsupported{base.__name__}", (base,), {"__init__": lambda self: None})
    for name in _public_methods(base, with_properties=True):
        setattr(stub, name, _unsupported(f"dl.{base.__name__}.{name}"))
    return stub


@functools.cache
def unsupported_repository(base: type):
    """An instance of dtlpy's repository ``base`` (so entity type checks pass) whose every method
    raises an error naming it. Stateless, so one instance per class serves every entity."""
    return _stub_class(base)()


def _dtlpy_call() -> str:
    """``dl.<Repository>.<method>`` of the outermost dtlpy repository call on the stack (the user's)."""
    found = "a dtlpy call"
    frame = sys._getframe(2)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if "/dtlpy/repositories/" in frame.f_code.co_filename.replace("\\", "/") and owner is not None:
            found = f"dl.{type(owner).__name__.lower()}.{frame.f_code.co_name}"
        frame = frame.f_back
    return found


def guard_global_client() -> None:
    """dtlpy's module-level repositories (``dl.items``, ``dl.models``, ``dl.datasets``...) ask Dataloop's
    servers through ``dl.client_api``. Without a login they fail with "Token expired, please login",
    which sends a user of the local platform the wrong way: in this process, until a login, they raise
    an error naming the call and what to use instead. Reads the token only: nothing reaches the network."""
    import dtlpy as dl

    client = dl.client_api
    if getattr(client, "_local_platform_guard", False):
        return

    def guarded(original):
        @functools.wraps(original)
        def request(*args, **kwargs):
            if client.token_expired():
                req_type, path = (list(args) + [kwargs.get("req_type"), kwargs.get("path")])[:2]
                raise UnsupportedOperation(
                    f"{_dtlpy_call()} asks Dataloop's servers ({str(req_type).upper()} {path}), which a run on the "
                    "local platform does not use, and dtlpy is not logged in",
                    fix="reach items, datasets and models through the entities the adapter is given "
                        "(self.model_entity, self.model_entity.dataset, item.dataset.items.get(item_id=...)), "
                        "or run with platform=dataloop")
            return original(*args, **kwargs)

        return request

    for name in ("gen_request", "gen_async_request"):
        setattr(client, name, guarded(getattr(client, name)))
    client._local_platform_guard = True
