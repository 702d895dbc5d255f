"""The API's wire models live in ``app.api.schemas``, one module per domain; routers only use
them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from pydantic import BaseModel

import app.api.routers


def test_no_router_defines_a_wire_model_of_its_own() -> None:
    defined_in_routers = []
    for module_info in pkgutil.iter_modules(app.api.routers.__path__):
        module = importlib.import_module(f"app.api.routers.{module_info.name}")
        defined_in_routers += [
            f"{module.__name__}.{name}"
            for name, member in vars(module).items()
            if inspect.isclass(member)
            and issubclass(member, BaseModel)
            and member.__module__ == module.__name__
        ]
    assert defined_in_routers == []
