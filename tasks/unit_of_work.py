"""Prefect's `@task`, for the campaign's units of work: what every module in tasks/ decorates with.

Before a task runs, Prefect walks its arguments looking for futures and states to resolve and to
record as upstream inputs. Our tasks take the campaign's configuration (a pydantic model with every
unit and obligation), sheet declarations and data frames, never futures; walking them cost more than
a fifth of a day's run (some 400,000 visits per flow run). Such arguments are passed `quote`d, as
Prefect's own performance advice says: the task receives them unchanged and unvisited. Plain values
(strings, dates, lists of keys) are passed as they are, so a `task_run_name` can still use them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import pydantic
from prefect import Task
from prefect.utilities.annotations import quote

P = ParamSpec("P")
R = TypeVar("R")

ENGINE_KEYWORDS = frozenset({"return_state", "wait_for"})  # Task.__call__'s and submit's own


def _passed_through(value: Any) -> Any:
    structured = isinstance(value, pydantic.BaseModel | pd.DataFrame) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )
    return quote(value) if structured else value


class CampaignTask(Task[P, R]):
    """A Prefect task whose structured arguments are not walked (see the module's docstring). Called
    directly or by `.submit`; Prefect's `with_options` would give back a plain Task."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*map(_passed_through, args), **_keywords(kwargs))

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        return super().submit(*map(_passed_through, args), **_keywords(kwargs))


def _keywords(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k in ENGINE_KEYWORDS else _passed_through(v) for k, v in kwargs.items()}


def task(**options: Any) -> Callable[[Callable[P, R]], CampaignTask[P, R]]:
    """`@task(name=…, description=…, …)` with Prefect's options."""

    def decorate(fn: Callable[P, R]) -> CampaignTask[P, R]:
        return CampaignTask(fn=fn, **options)

    return decorate
