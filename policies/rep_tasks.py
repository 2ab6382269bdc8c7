"""The rep's own follow-up tasks when a deal goes to nurture (``nurture.close_rep_tasks``, off by default).

A deal in nurture waits for the buyer: a call or e-mail the owner planned for it would only chase someone
who said "not now". With the setting on, entering nurture also closes the **deal owner's** open follow-up
tasks on the deal (``Deal.rep_tasks``: calls, e-mails and to-dos associated with the deal, not created
by crm-followup), with the reason written on them. Tasks of anybody else, meetings and tasks of other
kinds are never touched. Pure: the decision is a ``CloseTask`` with an empty ``task_key``, which tells the
connector that the task is not ours (it keeps its text and gets no key line).
"""

from __future__ import annotations

from policies.context import NURTURE, Context
from policies.model import CloseReason, CloseTask, Explanation, TaskType, make_key

FOLLOW_UP_TYPES = frozenset({TaskType.CALL, TaskType.EMAIL, TaskType.TODO})


def close_rep_followups(ctx: Context, rule_id: str, explanation: Explanation) -> int:
    """Close the owner's open follow-up tasks on the deal when the policy says so; how many."""
    deal = ctx.deal
    if not ctx.rules.nurture.close_rep_tasks or deal.owner_id is None:
        return 0
    tasks = [
        t
        for t in deal.rep_tasks
        if t.is_open and t.owner_id == deal.owner_id and t.task_type in FOLLOW_UP_TYPES
    ]
    for task in tasks:
        ctx.actions.append(
            CloseTask(
                key=make_key(NURTURE, "close-rep-task", deal.id, task.id),
                deal_id=deal.id,
                rule_id=rule_id,
                explanation=explanation,
                task_id=task.id,
                task_key="",
                reason=CloseReason.DEAL_STOPPED,
            )
        )
    return len(tasks)
