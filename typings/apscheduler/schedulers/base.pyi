from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Final

from apscheduler.events import SchedulerEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.triggers.base import BaseTrigger
from apscheduler.util import _Undefined

STATE_STOPPED: Final = 0
STATE_RUNNING: Final = 1
STATE_PAUSED: Final = 2

class BaseScheduler:
    state: int
    def __init__(
        self,
        gconfig: Mapping[str, Any] = ...,
        *,
        timezone: str | tzinfo = ...,
        executors: Mapping[str, BaseExecutor | Mapping[str, Any]] = ...,
        job_defaults: Mapping[str, Any] = ...,
        jobstore_retry_interval: float = ...,
        logger: Any = ...,
    ) -> None: ...
    def start(self, paused: bool = False) -> None: ...
    def shutdown(self, wait: bool = True) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    @property
    def running(self) -> bool: ...
    def add_listener(self, callback: Callable[[SchedulerEvent], object], mask: int = ...) -> None: ...
    def remove_listener(self, callback: Callable[[SchedulerEvent], object]) -> None: ...
    def add_job(
        self,
        func: Callable[..., object],
        trigger: BaseTrigger | str | None = None,
        args: Iterable[object] | None = None,
        kwargs: Mapping[str, object] | None = None,
        id: str | None = None,
        name: str | None = None,
        misfire_grace_time: int | _Undefined | None = ...,
        coalesce: bool | _Undefined = ...,
        max_instances: int | _Undefined = ...,
        next_run_time: datetime | _Undefined | None = ...,
        jobstore: str = "default",
        executor: str = "default",
        replace_existing: bool = False,
    ) -> Job: ...
    def get_jobs(self, jobstore: str | None = None, pending: bool | None = None) -> list[Job]: ...
    def get_job(self, job_id: str, jobstore: str | None = None) -> Job | None: ...
    def remove_job(self, job_id: str, jobstore: str | None = None) -> None: ...
    def remove_all_jobs(self, jobstore: str | None = None) -> None: ...
    def wakeup(self) -> None: ...
