"""Load shapes as functions of time: what each asks for, and when each ends."""

from __future__ import annotations

import argparse

import pytest

from loadtest.profiles import PROFILES, Plan, soak, spike, steady, step, wanted


def test_steady_holds_the_users_until_the_run_time_is_up():
    plan = Plan(users=20, spawn_rate=5, run_time=30)
    assert steady(0, plan) == (20, 5)
    assert steady(29.9, plan) == (20, 5)
    assert steady(30, plan) is None


def test_steady_without_a_run_time_never_ends_on_its_own():
    assert steady(1e6, Plan(20, 5, None)) == (20, 5)


def test_step_climbs_five_equal_stairs_to_all_users():
    plan = Plan(users=50, spawn_rate=10, run_time=100)
    users = [step(t, plan)[0] for t in (0, 19.9, 20, 40, 60, 80, 99.9)]
    assert users == [10, 10, 20, 30, 40, 50, 50]
    assert step(100, plan) is None


def test_spike_is_all_users_only_in_the_middle_fifth_and_arrives_at_once():
    plan = Plan(users=50, spawn_rate=2, run_time=100)
    assert spike(10, plan)[0] == 10
    assert spike(40, plan) == (50, 50.0)
    assert spike(59.9, plan)[0] == 50
    assert spike(60, plan)[0] == 10
    assert spike(100, plan) is None


def test_soak_runs_half_an_hour_unless_told_otherwise():
    assert soak(1799, Plan(10, 1, None)) == (10, 1)
    assert soak(1800, Plan(10, 1, None)) is None
    assert soak(61, Plan(10, 1, 60)) is None


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_keeps_at_least_one_user_and_ends(name):
    plan = Plan(users=3, spawn_rate=1, run_time=10)
    wanted = [PROFILES[name](t / 10, plan) for t in range(100)]
    assert all(w is not None and w[0] >= 1 for w in wanted)
    assert PROFILES[name](10, plan) is None


def test_the_profile_named_in_the_options_is_the_one_that_runs():
    options = argparse.Namespace(num_users=50, spawn_rate=10, run_time=100, load_shape="step")
    assert wanted(options, 0) == (10, 10)
    options.load_shape = "spike"
    assert wanted(options, 0) == (10, 50.0)
    options.run_time = None
    options.load_shape = "steady"
    assert wanted(options, 1e6) == (50, 10)
