from collections.abc import Mapping
from typing import Any

from apscheduler.executors.base import BaseExecutor

class BasePoolExecutor(BaseExecutor): ...

class ThreadPoolExecutor(BasePoolExecutor):
    def __init__(self, max_workers: int = 10, pool_kwargs: Mapping[str, Any] | None = None) -> None: ...
