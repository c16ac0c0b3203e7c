"""The object a config's dotted path (``_target_``) names, or a ``ConfigError`` that says which part
of the path failed and why: a module that is not there, a module whose own import fails (with the
line that raised), or a module without that name (with the closest name it has)."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from typing import Any

from .errors import ConfigError, one_line, raised_at


def locate(target: Any, key: str, fix: str) -> Any:
    """``target`` ("package.module.Name") imported; ``key`` names it in errors, ``fix`` says what to do."""
    if not isinstance(target, str) or not target.strip():
        raise ConfigError(f"{key} is {target!r}: it must name what to import, as package.module.Name", where=key,
                          fix=f"set {key}: <package.module.Name> (a misspelt key such as _targt_ leaves it unset)")
    parts = target.split(".")
    found, cut = None, 0
    for depth in range(1, len(parts) + 1):  # the deepest module in the path; the rest are its attributes
        module_name = ".".join(parts[:depth])
        try:
            found, cut = importlib.import_module(module_name), depth
        except Exception as err:  # noqa: BLE001 - the module's own code failed, or a module it imports is missing
            if isinstance(err, ModuleNotFoundError) and err.name == module_name:
                break  # not a module: the rest of the path names attributes
            if isinstance(err, SyntaxError):  # its traceback ends in the import machinery: the file is the place
                raise _cannot(key, target, f"{module_name!r} is not valid Python: {err.msg}, at {err.filename}:"
                                           f"{err.lineno}", f"correct the syntax at {err.filename}:{err.lineno}") from None
            raise _cannot(key, target, f"importing {module_name!r} failed: {one_line(err)}, raised at "
                                       f"{raised_at(err)}", fix) from None
    if found is None:
        raise _cannot(key, target, f"there is no module {parts[0]!r} (is its folder the working directory, or on "
                                   "PYTHONPATH, or is its package installed?)", fix)
    for depth in range(cut, len(parts)):
        name = parts[depth]
        if not hasattr(found, name):
            # a package's modules too, which it has not imported (mypkg.mpl for mypkg.mlp)
            names = [*dir(found), *(m.name for m in pkgutil.iter_modules(getattr(found, "__path__", None) or []))]
            close = difflib.get_close_matches(name, [n for n in names if not n.startswith("_")], n=1)
            raise _cannot(key, target, f"{'.'.join(parts[:depth])!r} has no {name!r}"
                                       + (f" (did you mean {close[0]!r}?)" if close else ""), fix)
        found = getattr(found, name)
    return found


def _cannot(key: str, target: str, why: str, fix: str) -> ConfigError:
    return ConfigError(f"{key} {target!r} cannot be imported: {why}", where=key, fix=fix)
