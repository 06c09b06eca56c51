"""Placement of workload clusters on controller replicas: deterministic, complete, balanced, stable."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.placement import balance, moved, place
from tests.examples import examples

weights_st = st.dictionaries(
    st.text("abcdefghij-", min_size=1, max_size=8),
    st.integers(min_value=1, max_value=500),
    min_size=1,
    max_size=40,
)
members_st = st.lists(
    st.text("pqrstu", min_size=1, max_size=4), min_size=1, max_size=6, unique=True
)


def fleet(n: int = 500, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    return {f"cluster-{i:03d}": rng.randint(50, 500) for i in range(n)}


@settings(max_examples=examples(150), deadline=None)
@given(weights_st, members_st)
def test_every_cluster_placed_once_on_a_member_whatever_the_input_order(
    weights: dict[str, int], members: list[str]
) -> None:
    out = place(weights, members)
    assert set(out) == set(weights)
    assert set(out.values()) <= set(members)
    shuffled = dict(reversed(list(weights.items())))
    assert place(shuffled, list(reversed(members))) == out


@settings(max_examples=examples(150), deadline=None)
@given(weights_st, members_st)
def test_load_stays_within_the_bound(weights: dict[str, int], members: list[str]) -> None:
    out = place(weights, members, slack=0.25)
    mean = sum(weights.values()) / len(members)
    assert balance(out, weights, members) <= 1.25 + max(weights.values()) / mean + 1e-9


def test_no_members_places_nothing() -> None:
    assert place({"a": 3}, []) == {}


def test_adding_a_member_moves_about_its_fair_share() -> None:
    weights = fleet()
    three = place(weights, ["r1", "r2", "r3"])
    four = place(weights, ["r1", "r2", "r3", "r4"])
    fair = len(weights) / 4
    assert moved(three, four) >= 1
    assert moved(three, four) <= 2 * fair


def test_removing_a_member_moves_its_clusters_and_little_else() -> None:
    weights = fleet()
    four = place(weights, ["r1", "r2", "r3", "r4"])
    three = place(weights, ["r1", "r2", "r3"])
    orphans = sum(1 for member in four.values() if member == "r4")
    assert orphans >= 1
    others = moved(four, three) - orphans
    assert others <= len(weights) / 4


def test_three_four_three_returns_to_the_original_assignment() -> None:
    weights = fleet()
    three = place(weights, ["r1", "r2", "r3"])
    place(weights, ["r1", "r2", "r3", "r4"])
    assert place(weights, ["r3", "r1", "r2"]) == three


def test_balance_of_the_example_fleet_is_near_even() -> None:
    weights = fleet()
    members = ["r1", "r2", "r3", "r4"]
    assert balance(place(weights, members), weights, members) <= 1.25 + 500 / (
        sum(weights.values()) / 4
    )


def test_moved_counts_only_shared_clusters_that_changed() -> None:
    assert moved({"a": "x", "b": "y"}, {"a": "x", "b": "z", "c": "x"}) == 1
