"""Decisioning: from an application to approved, declined or review, with every reason.

The pipeline is consent → admission rules → score → score cut-offs → limit → regulatory
caps → price → APR caps. Rules a risk analyst tunes (admission, cut-offs, the limit matrix,
the price table) are GoRules JDM decision tables under `policies/`, evaluated by zen-engine;
rules the law fixes (consent, the per-customer caps, the price cap) are code.
"""
