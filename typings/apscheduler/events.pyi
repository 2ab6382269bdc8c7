from datetime import datetime
from typing import Final

EVENT_SCHEDULER_STARTED: Final[int]
EVENT_SCHEDULER_START: Final[int]
EVENT_SCHEDULER_SHUTDOWN: Final[int]
EVENT_SCHEDULER_PAUSED: Final[int]
EVENT_SCHEDULER_RESUMED: Final[int]
EVENT_JOB_ADDED: Final[int]
EVENT_JOB_REMOVED: Final[int]
EVENT_JOB_MODIFIED: Final[int]
EVENT_JOB_EXECUTED: Final[int]
EVENT_JOB_ERROR: Final[int]
EVENT_JOB_MISSED: Final[int]
EVENT_JOB_SUBMITTED: Final[int]
EVENT_JOB_MAX_INSTANCES: Final[int]
EVENT_ALL: Final[int]

class SchedulerEvent:
    code: int
    alias: str | None

class JobEvent(SchedulerEvent):
    job_id: str
    jobstore: str

class JobSubmissionEvent(JobEvent):
    scheduled_run_times: list[datetime]

class JobExecutionEvent(JobEvent):
    scheduled_run_time: datetime
    retval: object
    exception: BaseException | None
    traceback: str | None
