"""Checks across fields and sections that no single model can make: impossible combinations of settings.

They run on the defaults and on each override merged over the defaults, because a combination is only
impossible once it is complete: an override may set ``escalate: nurture`` relying on the defaults' list.
Each problem comes back as ``(key path inside the rules, message)``; the loader adds the place.
"""

from __future__ import annotations

from collections.abc import Mapping

from policies.policy_file import Override, RuleSet, StageMoves

Problem = tuple[tuple[str | int, ...], str]


def check_rules(rules: RuleSet, stages: Mapping[str, StageMoves]) -> list[Problem]:
    """Problems of one complete rule set, given the stage moves configured per pipeline."""
    problems: list[Problem] = []
    nurture = rules.nurture
    can_nurture = nurture.enabled and nurture.list is not None
    if nurture.enabled and nurture.list is None:
        problems.append((("nurture", "list"), "nurture is enabled but names no list or campaign"))
    if rules.next_step.enabled and rules.next_step.escalate == "nurture" and not can_nurture:
        problems.append(
            (("next_step", "escalate"), "escalating to nurture needs nurture.enabled and a nurture.list")
        )
    stop = rules.stop
    if stop.enabled and stop.qualified_deals == "nurture" and not can_nurture:
        problems.append(
            (
                ("stop", "qualified_deals"),
                "sending qualified deals to nurture needs nurture.enabled and a list",
            )
        )
    criteria = (
        stop.max_unanswered_touches,
        stop.max_since_inbound,
        stop.max_in_stage,
        stop.close_date_overdue,
    )
    if stop.enabled and all(c is None for c in criteria):
        problems.append(
            (
                ("stop", "enabled"),
                "the stop rule is enabled but has no criterion: set max_unanswered_touches, "
                "max_since_inbound, max_in_stage or close_date_overdue, or disable it",
            )
        )
    stopping = (
        stop.enabled
        or (rules.next_step.enabled and rules.next_step.escalate == "stop")
        or (rules.qualification.enabled and rules.qualification.stop_after is not None and _qualifies(rules))
    )
    if stopping and not any(moves.lost for moves in stages.values()):
        problems.append(
            (
                ("stop", "enabled"),
                "stopping deals needs a lost stage: set stages.<pipeline id>.lost (a closed-lost stage)",
            )
        )
    if can_nurture and nurture.move_stage and not any(m.nurture for m in stages.values()):
        problems.append((("nurture", "move_stage"), "needs stages.<pipeline id>.nurture"))
    if can_nurture and nurture.move_stage_back and not any(m.reactivate for m in stages.values()):
        problems.append((("nurture", "move_stage_back"), "needs stages.<pipeline id>.reactivate"))
    if nurture.enabled and not nurture.reactivate_on:
        problems.append((("nurture", "reactivate_on"), "list at least one signal that ends nurture"))
    if rules.decision_maker.enabled and not rules.decision_maker.roles:
        problems.append((("decision_maker", "roles"), "list at least one decision-maker role"))
    if rules.next_step.enabled and rules.next_step.min_length > 200:
        problems.append((("next_step", "min_length"), "a next step cannot be required to be that long"))
    return problems


def _qualifies(rules: RuleSet) -> bool:
    q = rules.qualification
    return bool(q.required_fields) or q.min_score is not None


def check_stages(stages: Mapping[str, StageMoves]) -> list[Problem]:
    """A pipeline's lost stage cannot also be where nurtured or reactivated deals go."""
    problems: list[Problem] = []
    for pipeline, moves in stages.items():
        if moves.lost is not None and moves.lost == moves.nurture:
            problems.append(((pipeline, "nurture"), f"stage {moves.lost!r} is also the lost stage"))
        if moves.lost is not None and moves.lost == moves.reactivate:
            problems.append(((pipeline, "reactivate"), f"stage {moves.lost!r} is the lost stage"))
        if moves.nurture is not None and moves.nurture == moves.reactivate:
            problems.append(((pipeline, "reactivate"), "reactivating into the nurture stage changes nothing"))
    return problems


def check_override_scope(override: Override) -> list[Problem]:
    when = override.when
    if not (when.pipelines or when.stages or when.owners or when.teams or when.amount is not None):
        return [(("when",), "an override needs at least one condition; put rules for all deals in defaults")]
    if when.amount is not None and when.amount.min is None and when.amount.max is None:
        return [(("when", "amount"), "an amount band needs min, max or both")]
    return []
