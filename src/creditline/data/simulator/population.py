"""The simulated population: who the customers are, and which of them go bad.

The generative model (docs/simulator.md): every customer has a latent creditworthiness
`z ~ N(0, 1)` (higher is better). Age, occupation, education and a log-normal income are
drawn around it; thin-file customers (young people more often) have few events; a small
share of customers sit in fraud rings that share devices, inflate their declared income
and default together. The outcome "90+ days past due within 12 months of the observation
date" is a Bernoulli draw with

    logit(pd) = intercept + RISK_SLOPE * (-z) + RING_SHOCK * in_ring + noise-free extras

where `intercept` is solved (bisection) so that the population's mean pd equals the
`base_rate` parameter. Everything is vectorised and seeded: the same seed gives the same
population, chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

# numpy's stubs type many random draws loosely (scalars vs arrays); the aliases say what
# each array holds and stay permissive about how numpy spells it.
F64 = npt.NDArray[Any]
I64 = npt.NDArray[Any]
B = npt.NDArray[Any]

OCCUPATIONS = np.array(
    ["salaried", "civil_servant", "self_employed", "gig_worker", "student", "retired", "unemployed"]
)
_OCCUPATION_MIX = np.array([0.55, 0.08, 0.15, 0.12, 0.0, 0.0, 0.10])
#: Log-income shift of each occupation relative to salaried work.
_OCCUPATION_INCOME = np.array([0.0, 0.15, 0.2, -0.25, -1.2, -0.5, -1.0])
EDUCATIONS = np.array(["below_high_school", "high_school", "associate", "bachelor", "postgraduate"])
PROVINCES = np.array(
    [
        f"cn-{code}"
        for code in (
            11,
            12,
            13,
            14,
            15,
            21,
            22,
            23,
            31,
            32,
            33,
            34,
            35,
            36,
            37,
            41,
            42,
            43,
            44,
            45,
            46,
            50,
            51,
            52,
            53,
            54,
            61,
            62,
            63,
            64,
            65,
        )
    ]
)

#: How strongly the latent creditworthiness drives the log-odds of going bad.
RISK_SLOPE = 1.45
#: Extra log-odds of default for a fraud-ring member (they default together).
RING_SHOCK = 2.5
#: Young customers (under 25) default a little more often at equal creditworthiness.
YOUNG_SHIFT = 0.35


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """The knobs of one simulation; the defaults are the documented model."""

    customers: int
    months: int
    seed: int
    start_on: date = date(2025, 1, 1)
    base_rate: float = 0.04
    thin_file_share: float = 0.15
    fraud_ring_share: float = 0.01
    chunk_customers: int = 50_000

    def __post_init__(self) -> None:
        if self.customers < 1 or self.months < 1:
            raise ValueError("customers and months must be at least 1")
        if not 0.005 <= self.base_rate <= 0.5:
            raise ValueError("base_rate must be between 0.005 and 0.5")
        if self.start_on.day != 1:
            raise ValueError("start_on must be the first day of a month")
        if self.chunk_customers < 100:
            raise ValueError("chunk_customers must be at least 100")

    @property
    def observation_on(self) -> date:
        """The day after the simulated window: outcomes look 12 months on from here."""
        return add_months(self.start_on, self.months)


def add_months(on: date, months: int) -> date:
    index = on.year * 12 + on.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Population:
    """One chunk of customers, as parallel arrays (index i is customer `first + i`)."""

    first: int
    z: F64
    age: I64
    occupation: I64
    education: I64
    monthly_income_minor: I64
    is_thin_file: B
    ring_id: I64  # -1 when not in a ring
    activity: F64
    products: I64
    devices: I64
    province: I64
    pd: F64
    bad: B

    @property
    def size(self) -> int:
        return len(self.z)

    @property
    def in_ring(self) -> B:
        return self.ring_id >= 0

    def customer_ids(self) -> list[str]:
        return [customer_id(self.first + i) for i in range(self.size)]


def customer_id(index: int) -> str:
    return f"c{index:09d}"


def default_intercept(config: SimulationConfig) -> float:
    """The intercept that makes the mean pd equal `base_rate` (on a fixed reference sample)."""
    rng = np.random.default_rng([config.seed, 999_983])
    size = 200_000
    z, age, ring = _latent(rng, size, config)
    low, high = -15.0, 5.0
    for _ in range(60):
        middle = (low + high) / 2
        mean = float(_pd(middle, z, age, ring).mean())
        low, high = (middle, high) if mean < config.base_rate else (low, middle)
    return (low + high) / 2


def _latent(rng: np.random.Generator, size: int, config: SimulationConfig) -> tuple[F64, I64, B]:
    z = rng.standard_normal(size)
    age = np.clip(18 + rng.gamma(4.0, 4.5, size), 18, 70).astype(np.int64)
    ring = rng.random(size) < config.fraud_ring_share
    z = np.where(ring, z - 1.0, z)
    return z, age, ring


def _pd(intercept: float, z: F64, age: I64, ring: B) -> F64:
    logit = intercept - RISK_SLOPE * z + RING_SHOCK * ring + YOUNG_SHIFT * (age < 25)
    result: F64 = 1.0 / (1.0 + np.exp(-logit))
    return result


def draw_population(config: SimulationConfig, chunk: int, intercept: float) -> Population:
    """The customers of chunk number `chunk` (deterministic for the seed and chunk)."""
    rng = np.random.default_rng([config.seed, chunk])
    first = chunk * config.chunk_customers
    size = min(config.chunk_customers, config.customers - first)
    z, age, ring = _latent(rng, size, config)
    ring_id = _rings(rng, ring, first)
    occupation = _occupation(rng, age)
    education = np.clip(np.rint(1.8 + 0.5 * z + rng.standard_normal(size)), 0, 4).astype(np.int64)
    log_income = (
        8.6
        + _OCCUPATION_INCOME[occupation]
        + 0.12 * education
        + 0.2 * z
        + 0.45 * rng.standard_normal(size)
    )
    income_minor = np.rint(np.exp(log_income) * 100).astype(np.int64)
    thin = rng.random(size) < config.thin_file_share * np.where(age < 24, 2.0, 0.8)
    activity = rng.lognormal(0.0, 0.5, size) * np.where(thin, 0.12, 1.0)
    products = np.where(thin, 0, np.clip(rng.poisson(1.0 + 0.25 * education), 0, 4))
    pd = _pd(intercept, z, age, ring)
    # Rings default together: one draw per ring decides for all its members.
    shared = rng.random(size)
    ring_draw = np.where(ring_id >= 0, _per_ring(rng, ring_id), shared)
    return Population(
        first=first,
        z=z,
        age=age,
        occupation=occupation,
        education=education,
        monthly_income_minor=income_minor,
        is_thin_file=thin,
        ring_id=ring_id,
        activity=activity,
        products=products.astype(np.int64),
        devices=1 + (rng.random(size) < 0.3).astype(np.int64),
        province=rng.integers(0, len(PROVINCES), size),
        pd=pd,
        bad=ring_draw < pd,
    )


def _rings(rng: np.random.Generator, ring: B, first: int) -> I64:
    """Group ring members into rings of 3 to 8 (ids are global: first index of the chunk)."""
    members = np.flatnonzero(ring)
    ring_id = np.full(len(ring), -1, dtype=np.int64)
    position = 0
    while position < len(members):
        size = int(rng.integers(3, 9))
        ring_id[members[position : position + size]] = first + position
        position += size
    return ring_id


def _per_ring(rng: np.random.Generator, ring_id: I64) -> F64:
    rings, inverse = np.unique(ring_id, return_inverse=True)
    draws = rng.random(len(rings))
    result: F64 = draws[inverse]
    return result


def _occupation(rng: np.random.Generator, age: I64) -> I64:
    size = len(age)
    occupation = rng.choice(len(OCCUPATIONS), size=size, p=_OCCUPATION_MIX)
    roll = rng.random(size)
    occupation = np.where((age < 23) & (roll < 0.6), 4, occupation)
    occupation = np.where((age >= 58) & (roll < 0.7), 5, occupation)
    return occupation.astype(np.int64)
