"""Load user apps from `module:attr` or a file path."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from stepline import errors
from stepline.sdk.app import App


def _apps_in(namespace: dict[str, object]) -> list[App]:
    return [value for value in namespace.values() if isinstance(value, App)]


def _import_file(path: Path) -> ModuleType:
    """Import a file; inside a package (folders with __init__.py) by its dotted name."""
    if not path.is_file():
        raise errors.ConfigurationError(f"no such file: {path}")
    path = path.resolve()
    parts = [path.stem]
    root = path.parent
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    sys.path.insert(0, str(root))
    if len(parts) > 1:
        return importlib.import_module(".".join(parts))
    name = f"stepline_app_{path.stem}"
    loader = importlib.util.spec_from_file_location(name, path)
    if loader is None or loader.loader is None:
        raise errors.ConfigurationError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module


def load_app(spec: str) -> list[App]:
    """Import `module:attr`, `module` or `path/to/file.py` and return the App(s) it defines.

    Raises:
        ConfigurationError: The module or file cannot be loaded, or defines no App.
    """
    module_name, _, attr = spec.partition(":")
    path = Path(module_name)
    try:
        if module_name.endswith(".py") or path.is_file():
            module = _import_file(path)
        else:
            sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except errors.ConfigurationError:
        raise
    except Exception as exc:
        raise errors.ConfigurationError(f"cannot import {spec!r}: {exc}") from exc
    if attr:
        value = getattr(module, attr, None)
        if not isinstance(value, App):
            raise errors.ConfigurationError(f"{spec!r} is not a stepline.App")
        return [value]
    apps = _apps_in(vars(module))
    if not apps:
        raise errors.ConfigurationError(
            f"{spec!r} defines no stepline.App; name one as module:attr"
        )
    return apps
