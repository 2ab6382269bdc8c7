"""Word pools the dataset generator draws from: people, companies, places, titles and activity texts.

Kept apart from the generator so the stories (sandbox/archetypes.py) read as logic, not as lists. Every
pool is a tuple, so drawing with ``rng.choice`` is deterministic for a seed; nothing here is random itself.
The names are invented combinations of common first and last names; any likeness to a real person or
company is accidental.
"""

from __future__ import annotations

__all__ = [
    "COMPANY_PREFIXES",
    "COMPANY_SUFFIXES",
    "CONCRETE_STEPS",
    "COUNTRIES",
    "EMAIL_IN",
    "EMAIL_OUT",
    "FIRST_NAMES",
    "GHOST_EMAILS",
    "INDUSTRIES",
    "LAST_NAMES",
    "LOST_REASONS",
    "NOTES",
    "NOT_NOW_STEPS",
    "OWNER_REGIONS",
    "TITLES_BY_ROLE",
    "VAGUE_NEXT_STEPS",
]

FIRST_NAMES: tuple[str, ...] = (
    "Anna", "Erik", "Lena", "Jonas", "Sofia", "Lukas", "Maja", "Oskar", "Emma", "Felix", "Hannah", "Noah",
    "Olivia", "Liam", "Mia", "Elias", "Clara", "Henrik", "Ingrid", "Magnus", "Sarah", "David", "Laura",
    "Daniel", "Julia", "Thomas", "Karin", "Stefan", "Priya", "Arjun", "Wei", "Mei", "Hiroshi", "Yuki",
    "Carlos", "Lucia", "Mateo", "Isabel", "James", "Emily", "Michael", "Jessica", "Robert", "Ashley",
    "William", "Grace", "Oliver", "Charlotte", "Amelia", "George", "Astrid", "Linnea", "Björn", "Sven",
    "Greta", "Jürgen", "Monika", "Tobias", "Katrin", "Siobhan", "Aisha", "Omar", "Fatima", "Chen",
)  # fmt: skip

LAST_NAMES: tuple[str, ...] = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Müller", "Schmidt", "Schneider",
    "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann", "Smith", "Johnson", "Williams", "Brown",
    "Jones", "Miller", "Davis", "Wilson", "Taylor", "Clarke", "Walker", "Wright", "Thompson", "Evans",
    "Tan", "Lim", "Lee", "Ng", "Wong", "Sharma", "Patel", "Gupta", "Garcia", "Martinez", "Rodriguez",
    "Lopez", "Rossi", "Bianchi", "Dubois", "Moreau", "Lindqvist", "Berg", "Holm", "Lund", "Nordström",
    "Krüger", "Vogel", "Richter", "O'Brien", "Murphy", "Kelly", "Novak", "Kowalski", "Jensen", "Hansen",
)  # fmt: skip

COMPANY_PREFIXES: tuple[str, ...] = (
    "Nordic", "Alpine", "Blue", "Bright", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Harbor",
    "Iron", "Juniper", "Keystone", "Lumen", "Maple", "North", "Oak", "Pioneer", "Quantum", "River",
    "Summit", "Titan", "Union", "Vector", "Westwind", "Zenith", "Atlas", "Beacon", "Crown", "Drift",
    "Ember", "Fjord", "Glacier", "Horizon", "Insight", "Kestrel", "Lighthouse", "Meridian", "Nova", "Orbit",
)  # fmt: skip

COMPANY_SUFFIXES: tuple[str, ...] = (
    "Logistics", "Systems", "Analytics", "Foods", "Health", "Energy", "Robotics", "Retail", "Capital",
    "Labs", "Manufacturing", "Software", "Media", "Logic", "Freight", "Pharma", "Networks", "Materials",
    "Solutions", "Dynamics", "Works", "Partners", "Industries", "Bio", "Cloud", "Mobility",
)  # fmt: skip

INDUSTRIES: tuple[str, ...] = (
    "COMPUTER_SOFTWARE", "LOGISTICS_AND_SUPPLY_CHAIN", "FOOD_PRODUCTION", "HOSPITAL_HEALTH_CARE",
    "RENEWABLES_ENVIRONMENT", "RETAIL", "FINANCIAL_SERVICES", "MACHINERY", "PHARMACEUTICALS",
    "MARKETING_AND_ADVERTISING", "TELECOMMUNICATIONS", "AUTOMOTIVE", "CONSTRUCTION", "EDUCATION_MANAGEMENT",
)  # fmt: skip

# country code -> (time zone, top-level domain, currency, phone prefix)
COUNTRIES: dict[str, tuple[str, str, str, str]] = {
    "US": ("America/New_York", "com", "USD", "+1 212"),
    "US-W": ("America/Los_Angeles", "com", "USD", "+1 415"),
    "DE": ("Europe/Berlin", "de", "EUR", "+49 30"),
    "SE": ("Europe/Stockholm", "se", "SEK", "+46 8"),
    "GB": ("Europe/London", "co.uk", "GBP", "+44 20"),
    "SG": ("Asia/Singapore", "sg", "SGD", "+65"),
    "NL": ("Europe/Amsterdam", "nl", "EUR", "+31 20"),
    "AU": ("Australia/Sydney", "com.au", "AUD", "+61 2"),
}
COUNTRY_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("US", 30), ("US-W", 12), ("DE", 16), ("SE", 12), ("GB", 14), ("SG", 6), ("NL", 6), ("AU", 4),
)  # fmt: skip

# (team, time zone, working start, working end, weight)
OWNER_REGIONS: tuple[tuple[str, str, str, str, int], ...] = (
    ("AMER East", "America/New_York", "08:30", "17:30", 5),
    ("AMER West", "America/Los_Angeles", "08:00", "17:00", 3),
    ("DACH", "Europe/Berlin", "08:00", "17:00", 4),
    ("Nordics", "Europe/Stockholm", "08:00", "16:30", 3),
    ("UK&I", "Europe/London", "09:00", "17:30", 3),
    ("APAC", "Asia/Singapore", "09:00", "18:00", 2),
)

TITLES_BY_ROLE: dict[str, tuple[str, ...]] = {
    "decision_maker": ("CEO", "COO", "VP Operations", "Head of Logistics", "Managing Director", "CTO"),
    "economic_buyer": ("CFO", "Finance Director", "VP Finance", "Head of Procurement"),
    "champion": ("Operations Manager", "Team Lead", "Product Manager", "Project Manager"),
    "influencer": ("IT Architect", "Senior Analyst", "Engineering Manager", "Controller"),
    "gatekeeper": ("Executive Assistant", "Office Manager", "Receptionist", "Personal Assistant to the CEO"),
    "user": ("Coordinator", "Specialist", "Dispatcher", "Analyst"),
}

# --- what reps write ------------------------------------------------------------------------------------

VAGUE_NEXT_STEPS: tuple[str, ...] = (
    "follow up", "Follow up", "Follow-up", "check in", "Check in next week", "touch base", "circle back",
    "nachfassen", "Nachfassen", "mal nachhaken", "Wiedervorlage", "återkomma", "Återkomma", "höra av sig",
    "stämma av", "ping",
)  # fmt: skip

LOST_REASONS: tuple[str, ...] = (
    "Chose a competitor", "No budget", "No decision / status quo", "Timing: project postponed",
    "Price too high", "Lost contact with the buyer", "Missing feature: SSO", "Went with in-house build",
)  # fmt: skip

# (next step, why)
CONCRETE_STEPS: tuple[tuple[str, str], ...] = (
    ("Send revised proposal with volume pricing", "Agreed in the meeting: needs numbers for the budget"),
    ("Demo the routing module to the ops team", "Champion asked for a demo for the people who will use it"),
    ("Share the security questionnaire answers", "IT review is the last blocker before the contract"),
    ("Book the reference call with a customer", "Decision maker wants to hear from a company of their size"),
    ("Agree the pilot success criteria", "Both sides agreed a 4-week pilot needs written criteria"),
    ("Send contract draft for legal review", "Verbal yes on the call; legal needs the draft this week"),
)
NOT_NOW_STEPS: tuple[tuple[str, str], ...] = (
    ("Re-engage when the new budget opens", "Budget frozen until next fiscal year; asked us to come back"),
    ("Check progress on their ERP migration", "Nothing new before the ERP migration is done"),
    ("Send the Q3 case study", "Interested, but reorganising this quarter; keep them warm"),
)

# (subject, body)
EMAIL_OUT: tuple[tuple[str, str], ...] = (
    ("Following up on our conversation", "Thanks for your time. As promised, here is the summary."),
    ("Proposal", "Please find the proposal attached. Happy to walk you through it."),
    ("Quick question", "Do you have ten minutes this week to go through the open points?"),
    ("Pricing overview", "Here is the pricing overview for the volumes we discussed."),
    ("Case study", "Thought this case study from a company like yours might be useful."),
)
EMAIL_IN: tuple[tuple[str, str], ...] = (
    ("Re: Following up on our conversation", "Thanks, this is helpful. Let me check with the team."),
    ("Re: Proposal", "We reviewed the proposal. A few questions on the implementation timeline."),
    ("Re: Quick question", "Thursday afternoon works for me."),
    ("Re: Pricing overview", "Looks reasonable. Can you include the onboarding costs?"),
)
GHOST_EMAILS: tuple[tuple[str, str], ...] = (
    ("Checking in", "Just checking in on the proposal I sent. Any thoughts?"),
    ("Any update?", "I wanted to see whether you had a chance to review the proposal."),
    ("Still a priority?", "Is improving dispatch planning still on your list this quarter?"),
    ("Closing the loop", "I haven't heard back, so I'll assume the timing isn't right."),
)
NOTES: tuple[tuple[str, str], ...] = (
    ("Note", "Budget confirmed for this year; procurement involved from next month."),
    ("Note", "Champion is pushing internally; needs a one-pager for the steering group."),
    ("Note", "Discussed integration with their ERP; no blockers seen."),
    ("Note", "Competitor also in the evaluation; our routing is the differentiator."),
)
