"""The champion model and the online features, as decisioning's ports want them.

`ChampionScorer` asks the model registry for the champion on each decision and keeps the
loaded model until the champion changes, so promoting a model takes effect on the next
application without a restart. `OnlineFeatureSource` reads the customer's feature vector
from the online store and derives the flags the admission rules read:

* shared-device cluster size = other customers on the customer's devices + the customer;
* fraud ring = at least two device-sharing neighbours and at least half of the
  customer's neighbours 30+ days late (rings share devices and default together);
* thin file = fewer than five payments and orders in a year and no bill history.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from creditline.decisioning.domain.application import FeatureSnapshot, ScoreResult
from creditline.decisioning.domain.reasons import model_reason
from creditline.features import service as feature_service
from creditline.features.ports import OnlineFeatureStore
from creditline.scoring import service as scoring_service
from creditline.scoring.ports import ModelRegistry, Role
from creditline.shared.errors import UnavailableError

FRAUD_RING_MIN_NEIGHBOURS = 2
FRAUD_RING_DELINQUENT_SHARE = 0.5
THIN_FILE_MIN_EVENTS = 5


class ChampionScorer:
    def __init__(self, registry: ModelRegistry) -> None:
        self._registry = registry
        self._loaded: tuple[str, Any] | None = None

    def _model(self) -> Any:
        entry = self._registry.holder(Role.CHAMPION)
        if entry is None:
            raise UnavailableError(
                "no champion model: train one and promote it "
                "(`creditline model train …`, `creditline model promote VERSION --role champion`)",
                code="no_champion_model",
            )
        if self._loaded is None or self._loaded[0] != entry.version:
            self._loaded = (entry.version, scoring_service.champion(self._registry))
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
        values = {k: _number(v) for k, v in vector.items()}
        neighbours = int(values.get("shared_device_customers") or 0)
        delinquent_share = values.get("neighbour_delinquent_share") or 0.0
        activity = (values.get("payment_count_365d") or 0) + (values.get("order_count_365d") or 0)
        return FeatureSnapshot(
            values=values,
            fraud_ring=neighbours >= FRAUD_RING_MIN_NEIGHBOURS
            and delinquent_share >= FRAUD_RING_DELINQUENT_SHARE,
            shared_device_cluster_size=neighbours + 1,
            thin_file=activity < THIN_FILE_MIN_EVENTS
            and values.get("bill_on_time_rate_365d") is None,
        )


def _number(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    if isinstance(value, int | float):
        return float(value)
    return None
