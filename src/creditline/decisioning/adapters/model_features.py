"""The champion model and the online features, as decisioning's ports want them.

`ChampionScorer` keeps the loaded champion until the champion changes, so promoting a
model takes effect on the next application without a restart. Asking the registry who
holds the role reads three small files; on the file registry the scorer asks it again only
when `roles.json` has changed (the registry replaces that file atomically on every
promotion, so its identity and times change), which costs one `stat` per decision.

`OnlineFeatureSource` reads the customer's feature vector from the online store and picks
out the measurements the admission rules read:

* shared-device customers: other customers seen on the customer's devices;
* neighbour delinquent share: the share of them 30+ days late (0 with no neighbours);
* payments and orders in 365 days, and whether the customer has any bill history.

What counts as a fraud ring (v2: at least two neighbours, at least half of them late) or a
thin file (v2: fewer than five payments and orders, no bill history) is decided by rows of
the admission table (`policies/v2/admission.json`), so those thresholds are policy data
and a decision records the policy version it was made under.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from typing import Any

from creditline.decisioning.domain.application import FeatureSnapshot, ScoreResult
from creditline.decisioning.domain.reasons import model_reason
from creditline.features import service as feature_service
from creditline.features.ports import OnlineFeatureStore
from creditline.scoring import service as scoring_service
from creditline.scoring.adapters.file_registry import FileModelRegistry
from creditline.scoring.ports import ModelRegistry, Role
from creditline.shared.errors import UnavailableError

RolesToken = tuple[int, int, int, int]


class ChampionScorer:
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self._loaded: tuple[str, Any] | None = None
        self._roles_file = (
            registry.root / "roles.json" if isinstance(registry, FileModelRegistry) else None
        )
        self._seen: RolesToken | None = None

    def _roles_token(self) -> RolesToken | None:
        """What identifies this version of the roles file (None: not a file registry, or
        no roles file, so the registry is asked every time)."""
        if self._roles_file is None:
            return None
        try:
            st = os.stat(self._roles_file)
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _model(self) -> Any:
        token = self._roles_token()
        if token is not None and token == self._seen and self._loaded is not None:
            return self._loaded[1]
        entry = self._registry.holder(Role.CHAMPION)
        if entry is None:
            raise UnavailableError(
                "no champion model: train one and promote it "
                "(`creditline model train …`, `creditline model promote VERSION --role champion`)",
                code="no_champion_model",
            )
        if self._loaded is None or self._loaded[0] != entry.version:
            self._loaded = (entry.version, scoring_service.champion(self._registry))
        self._seen = token
        return self._loaded[1]

    def score(self, features: Mapping[str, float | None]) -> ScoreResult:
        result = self._model().score(features)
        return ScoreResult(
            score=result.score,
            pd=result.pd,
            tier=str(result.tier.value if hasattr(result.tier, "value") else result.tier),
            reasons=tuple(model_reason(r.code, r.text_en, r.text_zh) for r in result.reasons),
            model_version=result.model_version,
        )


class OnlineFeatureSource:
    def __init__(self, store: OnlineFeatureStore) -> None:
        self._store = store

    def __call__(self, customer_id: str, on: date) -> FeatureSnapshot:
        vector = feature_service.customer_features(self._store, customer_id, on)
        values = {k: v if type(v) is float else _number(v) for k, v in vector.items()}
        activity = (values.get("payment_count_365d") or 0) + (values.get("order_count_365d") or 0)
        return FeatureSnapshot(
            values=values,
            shared_device_customers=int(values.get("shared_device_customers") or 0),
            neighbour_delinquent_share=float(values.get("neighbour_delinquent_share") or 0.0),
            payments_and_orders_365d=int(activity),
            has_bill_history=values.get("bill_on_time_rate_365d") is not None,
        )


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float):
        return float(value)
    return None
