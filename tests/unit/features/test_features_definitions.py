"""The feature catalogue: written once, complete, and refusing malformed specs."""

from __future__ import annotations

import pytest

from creditline.features.domain.definitions import (
    FEATURES,
    PAYMENTS,
    Count,
    Group,
    Op,
    Quotient,
    Source,
    Sum,
    Unit,
    Where,
    feature_names,
)


def test_feature_names_are_unique_lower_case_identifiers() -> None:
    names = feature_names()

    assert len(names) == len(set(names))
    assert all(name.isidentifier() and name == name.lower() for name in names)


def test_every_feature_has_a_description_a_unit_and_a_group() -> None:
    for feature in FEATURES:
        assert feature.description.endswith(".")
        assert isinstance(feature.unit, Unit)
        assert isinstance(feature.group, Group)


def test_the_catalogue_covers_every_family_the_credit_profile_needs() -> None:
    names = set(feature_names())

    for days in (30, 90, 180, 365):
        assert {
            f"payment_count_{days}d",
            f"order_amount_{days}d",
            f"order_average_{days}d",
        } <= names
    assert {
        "category_diversity_90d",
        "refund_rate_90d",
        "bill_on_time_rate_365d",
        "worst_days_late_365d",
        "utilisation_90d",
        "utility_on_time_rate_365d",
        "phone_on_time_rate_365d",
        "transit_on_time_rate_365d",
        "income_stability_180d",
        "account_tenure_days",
        "days_since_sim_change",
        "days_since_new_device",
        "transfer_degree_365d",
        "shared_device_customers",
        "neighbour_delinquent_share",
        "late_products_365d",
        "products_opened_90d",
        "debt_to_income_30d",
    } <= names


def test_ratios_are_not_integral_and_counts_are() -> None:
    by_name = {feature.name: feature for feature in FEATURES}

    assert by_name["payment_count_30d"].is_integral
    assert by_name["account_tenure_days"].is_integral
    assert not by_name["refund_rate_90d"].is_integral
    assert not by_name["income_stability_180d"].is_integral
    assert isinstance(by_name["payment_average_30d"].spec, Quotient)


@pytest.mark.parametrize("window_days", [0, -1, 366])
def test_a_window_outside_one_to_365_days_is_refused(window_days: int) -> None:
    with pytest.raises(ValueError, match="window_days"):
        Count(PAYMENTS, window_days)


def test_summing_a_key_column_is_refused() -> None:
    with pytest.raises(ValueError, match="not a numeric column"):
        Sum(PAYMENTS, "category", 30)


def test_at_least_on_a_text_column_is_refused() -> None:
    with pytest.raises(ValueError, match="not numeric"):
        Where("category", Op.AT_LEAST, 3)


def test_a_source_key_names_its_types_and_conditions() -> None:
    source = Source(where=(Where("days_late", Op.EQ, 0),))

    assert source.key == "any|days_late.eq.0"
