"""A model's docstring becomes its table comment, and Tortoise's SQLite migrations split their SQL
on semicolons: a semicolon in a model docstring breaks `rebate migrate` on the embedded default."""

from __future__ import annotations

import importlib

from tortoise.models import Model

from app.db import MODEL_MODULES


def test_no_model_docstring_has_a_semicolon():
    offenders = []
    for module_name in MODEL_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            is_model = isinstance(value, type) and issubclass(value, Model) and value is not Model
            if is_model and ";" in (value.__doc__ or ""):
                offenders.append(f"{module_name}.{value.__name__}")
    assert offenders == []
