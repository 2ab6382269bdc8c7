"""The two deal pipelines every generated dataset has, and how a story's stage level maps onto them.

- ``default`` ("Sales Pipeline"): HubSpot's default pipeline with its real stage ids and probabilities
  (appointmentscheduled 0.2, qualifiedtobuy 0.4, presentationscheduled 0.6, decisionmakerboughtin 0.8,
  contractsent 0.9, closedwon 1.0, closedlost 0.0).
- ``enterprise`` ("Enterprise Pipeline"): longer cycles, with an open ``nurture`` stage where qualified but
  not-ready deals wait, and its own closed won / closed lost stages.

Stage labels are unique across both pipelines, because Salesforce uses the label as ``StageName`` and stage
names are one org-wide picklist; with unique labels the Salesforce sandbox can map a StageName back to its
pipeline (sales process) without ambiguity.
"""

from __future__ import annotations

import random

from crm_sandbox.dataset import GenPipeline, GenStage

__all__ = ["PIPELINES", "stage_for_level", "stage_ids_by_name"]

PIPELINES: tuple[GenPipeline, ...] = (
    GenPipeline(
        "default",
        "Sales Pipeline",
        (
            GenStage("appointmentscheduled", "Appointment Scheduled", 0, 0.2, False, False),
            GenStage("qualifiedtobuy", "Qualified To Buy", 1, 0.4, False, False),
            GenStage("presentationscheduled", "Presentation Scheduled", 2, 0.6, False, False),
            GenStage("decisionmakerboughtin", "Decision Maker Bought-In", 3, 0.8, False, False),
            GenStage("contractsent", "Contract Sent", 4, 0.9, False, False),
            GenStage("closedwon", "Closed Won", 5, 1.0, True, True),
            GenStage("closedlost", "Closed Lost", 6, 0.0, True, False),
        ),
    ),
    GenPipeline(
        "enterprise",
        "Enterprise Pipeline",
        (
            GenStage("discovery", "Discovery", 0, 0.1, False, False),
            GenStage("nurture", "Nurture", 1, 0.05, False, False),
            GenStage("solutiondesign", "Solution Design", 2, 0.3, False, False),
            GenStage("businesscase", "Business Case", 3, 0.5, False, False),
            GenStage("negotiation", "Negotiation", 4, 0.8, False, False),
            GenStage("enterprisewon", "Closed Won (Enterprise)", 5, 1.0, True, True),
            GenStage("enterpriselost", "Closed Lost (Enterprise)", 6, 0.0, True, False),
        ),
    ),
)

# story stage level -> candidate stage ids per pipeline (drawn uniformly)
_LEVELS: dict[str, dict[str, tuple[str, ...]]] = {
    "default": {
        "early": ("appointmentscheduled", "qualifiedtobuy"),
        "mid": ("qualifiedtobuy", "presentationscheduled"),
        "late": ("decisionmakerboughtin", "contractsent"),
        "nurture": ("qualifiedtobuy",),  # the default pipeline has no nurture stage
        "won": ("closedwon",),
        "lost": ("closedlost",),
    },
    "enterprise": {
        "early": ("discovery",),
        "mid": ("solutiondesign", "businesscase"),
        "late": ("businesscase", "negotiation"),
        "nurture": ("nurture",),
        "won": ("enterprisewon",),
        "lost": ("enterpriselost",),
    },
}
_STAGES = {(pipeline.id, stage.id): stage for pipeline in PIPELINES for stage in pipeline.stages}


def stage_for_level(pipeline: GenPipeline, level: str, rng: random.Random) -> GenStage:
    """A stage of ``pipeline`` at the story's ``level`` (early, mid, late, nurture, won, lost)."""
    candidates = _LEVELS[pipeline.id][level]
    stage_id = candidates[0] if len(candidates) == 1 else rng.choice(candidates)
    return _STAGES[(pipeline.id, stage_id)]


def stage_ids_by_name() -> dict[str, str]:
    """StageName -> stage id: the Salesforce sandbox's StageNames are these stages' labels, so a client that
    names stages by id (as on HubSpot) maps them back with this (crm-followup's ``stage_ids`` setting)."""
    return {stage.label: stage.id for pipeline in PIPELINES for stage in pipeline.stages}
