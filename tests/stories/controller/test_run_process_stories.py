"""``gitops run`` as real processes against the simulator and a real git remote.

Each story is told from outside the controller: its JSON log lines on stderr, its HTTP
endpoints, the status branch, the Lease, and the simulator's audit log, which also proves the
rollout invariants (surge, availability, make-before-break, no duplicate replacement).

- a force-push rewriting the fleet branch is followed, logged, and its new tip applied;
- an unsigned commit, with ``--verify-signatures``, is never applied and reported Stalled;
- of two replicas only the Lease holder acts; SIGKILL it and the other takes over within the
  lease duration and finishes the rollout;
- SIGKILL the only replica mid-rollout, start it again: it converges with no duplicate;
- with ``--repo`` a local working directory, a commit is reconciled at once, not at the poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from gitops.fleet import load
from gitops.sim.api.resources import LEASES, MACHINES
from tests.adapters.controller.conftest import (
    Launch,
    RunProcess,
    World,
    commit,
    condition,
    converged_at,
    in_force,
    phase,
    set_image,
    status_doc,
    until,
)
from tests.adapters.gitrepo.conftest import Signers, run_git
from tests.adapters.rollout.invariants import check, snapshot
from tests.conftest import git

# The rollout of these stories: two waves, 5 nodes (prod stays on os-1), so that each story
# runs in seconds while a rollout is still in flight when a controller dies.
BUMPED = ("canary.yaml", "staging.yaml")
REPLACEMENTS = 5


def _lease(world: World) -> dict[str, Any]:
    try:
        return world.sim.object("", LEASES, "default", "gitops-controller")["spec"]
    except Exception:  # not created yet
        return {}


def _machines(world: World) -> int:
    """How many Machines the management cluster holds (from the simulator's store)."""
    return len(world.sim.store.list("", MACHINES)[0])


def _on(world: World, cluster: str, revision: str, image: str) -> bool:
    doc = status_doc(world.status, f"status/{cluster}.yaml")
    return (
        doc.get("fleetRevision") == revision
        and all(p["observedImages"] == {image: p["replicas"]} for p in doc.get("pools") or [])
        and condition(doc, "Ready")["status"] == "True"
    )


def _acting(line: dict[str, Any]) -> bool:
    """A log line only a controller that acts writes."""
    return line["logger"] == "gitops.rollout.executor" or line["message"].startswith(
        "Fleet revision "
    )


@pytest.mark.slow
def test_a_force_push_is_followed_logged_and_its_new_tip_applied(
    world: World, gitops_run: Launch
) -> None:
    work = world.work
    snap = snapshot(world.sim, load(work))
    run = gitops_run("a")
    base = git(work, "rev-parse", "HEAD")
    run.wait_log(in_force(base))
    set_image(work, "os-1", "os-2", "canary.yaml")
    first = commit(work, "Canary to os-2")
    run.wait_log(in_force(first))
    git(work, "reset", "-q", "--hard", base)  # history rewritten: the os-2 commit is gone
    set_image(work, "os-1", "os-3", "canary.yaml")
    git(work, "commit", "-qam", "Canary to os-3 instead")
    git(work, "push", "-q", "--force", "origin", "main")
    rewritten = git(work, "rev-parse", "HEAD")

    line = run.wait_log(lambda x: "force-pushed" in x["message"], 30, "the force-push logged")
    assert line["level"] == "warning" and line["logger"] == "gitops.gitrepo"
    assert f"rewritten from {first} to {rewritten}" in line["message"]
    run.wait_log(in_force(rewritten), 30)
    until(lambda: _on(world, "canary", rewritten, "os-3"), 30, "the canary on os-3")
    fetch = phase(status_doc(world.status, "controller.yaml"), "fetch")
    assert fetch == {
        "phase": "fetch",
        "result": "Ok",
        "message": f"main is at {rewritten[:12]}, force-pushed over {first[:12]}",
    }
    assert check(world.audit, snap, load(work)) == []


@pytest.mark.slow
def test_an_unsigned_commit_is_not_applied_and_is_reported_stalled(
    world: World, gitops_run: Launch, signers: Signers
) -> None:
    work = world.work
    args, env = signers.gpg(signers.alice)
    run_git(work, *args, "commit", "--allow-empty", "-qm", "Signed by Alice", env=env)
    git(work, "push", "-q", "origin", "main")
    signed = git(work, "rev-parse", "HEAD")
    run = gitops_run("a", "--verify-signatures", str(signers.keys_dir))
    run.wait_log(in_force(signed))
    until(lambda: _on(world, "canary", signed, "os-1"), 30, "the signed revision's status")

    set_image(work, "os-1", "os-2")
    unsigned = commit(work, "Roll to os-2, unsigned")
    why = f"revision {unsigned[:12]} is not signed by a trusted key: revision {unsigned} is not signed"
    until(lambda: why in world.status.read().get("README.md", b"").decode(), 30, "Stalled shown")
    stalled = condition(status_doc(world.status, "status/canary.yaml"), "Stalled")
    assert (stalled["status"], stalled["reason"], stalled["message"]) == (
        "True",
        "RevisionNotApplied",
        why,
    )
    load_phase = phase(status_doc(world.status, "controller.yaml"), "load")
    assert (load_phase["result"], load_phase["message"]) == ("Stalled", why)
    code, body = run.get("/readyz")
    assert code == 200 and f"revision {signed[:12]} is in force" in body
    assert f"load: Stalled: {why}" in body
    line = run.find(lambda x: x.get("phase") == "load" and x["level"] == "error")
    assert line is not None and why in line["message"]
    assert not run.find(in_force(unsigned))
    assert world.created() == []  # nothing of the unsigned revision was carried out
    assert status_doc(world.status, "status/canary.yaml")["fleetRevision"] == signed


def _took_over(follower: RunProcess) -> float:
    line = follower.wait_log(lambda x: "became the leader" in x["message"], 60, "a takeover")
    return datetime.fromisoformat(line["time"]).timestamp()


def _expires(lease: dict[str, Any]) -> float:
    """When a Lease last renewed as ``lease`` says runs out (epoch seconds)."""
    renewed = datetime.fromisoformat(lease["renewTime"].replace("Z", "+00:00")).timestamp()
    return renewed + float(lease["leaseDurationSeconds"])


@pytest.mark.slow
def test_only_the_leader_acts_and_the_other_takes_over_when_it_is_killed(
    world: World, gitops_run: Launch
) -> None:
    work = world.work
    a, b = gitops_run("a"), gitops_run("b")
    holder = until(lambda: _lease(world).get("holderIdentity"), 30, "a Lease holder")
    leader, follower = (a, b) if holder == a.identity else (b, a)
    assert holder == leader.identity
    base = git(work, "rev-parse", "HEAD")
    leader.wait_log(in_force(base))
    set_image(work, "os-1", "os-2", *BUMPED)
    fleet = load(work)
    snap = snapshot(world.sim, fleet)
    bumped = commit(work, "Roll canary and staging to os-2")
    until(world.created, 30, "the leader's first Machine")
    assert follower.find(_acting) is None  # only the leader has acted
    # the world records the Machine as the create lands; the leader logs it once answered
    leader.wait_log(lambda x: x["message"].startswith("created machine"), 10, "its creation")

    expires = _expires(_lease(world))  # the leader may renew once more before it dies
    leader.kill()
    # Not before the dead leader's Lease ran out: a floor, which holds on any machine; how
    # soon after is a liveness matter, bounded by the generous deadline of the wait.
    took_over = _took_over(follower)
    assert took_over >= expires - 0.01  # log times and renewTime are both to the millisecond
    assert _lease(world)["holderIdentity"] == follower.identity
    until(lambda: converged_at(world.status, bumped), 60, "the rollout to converge")
    assert check(world.audit, snap, fleet) == []
    assert len(world.created()) == REPLACEMENTS  # one replacement per node: none twice


@pytest.mark.slow
def test_a_controller_killed_mid_rollout_resumes_without_a_duplicate(
    world: World, gitops_run: Launch
) -> None:
    work = world.work
    first = gitops_run("a")
    first.wait_log(in_force(git(work, "rev-parse", "HEAD")))
    set_image(work, "os-1", "os-2", *BUMPED)
    fleet = load(work)
    snap = snapshot(world.sim, fleet)
    before = _machines(world)
    # The simulated machines stand still until the kill: the leader creates the canary's first
    # replacement (maxSurge 1: one at a time) and can go no further, so the kill lands mid-
    # rollout by construction, however fast or slow the machine.
    sim_world = world.sim.world
    assert sim_world is not None
    sim_world.stop()
    bumped = commit(work, "Roll canary and staging to os-2")
    until(lambda: _machines(world) > before, 30, "the first Machine")
    first.kill()  # a replacement is on its way: its Machine exists, its node is not Ready yet
    in_flight = _machines(world) - before
    sim_world.start()
    second = gitops_run("a")  # same cache directory, a new identity: waits for the Lease
    second.wait_log(in_force(bumped), 30)
    until(lambda: converged_at(world.status, bumped), 60, "the rollout to converge")
    created = world.created()
    assert check(world.audit, snap, fleet) == []
    assert len(created) == REPLACEMENTS and in_flight == 1
    replaced = [e["replaces"] for e in created]
    assert sorted(set(replaced)) == sorted(replaced)  # no node replaced twice


@pytest.mark.slow
def test_a_commit_in_a_local_working_directory_is_reconciled_at_once(
    world: World, gitops_run: Launch
) -> None:
    work = world.work
    run = gitops_run("a", "--interval", "10m", repo=str(work))  # only the watch can explain it
    run.wait_log(in_force(git(work, "rev-parse", "HEAD")))
    set_image(work, "os-1", "os-2", "canary.yaml")
    revision = commit(work, "Canary to os-2", push=False)  # no push: a local commit
    # A generous deadline that is still far below the 10-minute poll interval.
    run.wait_log(in_force(revision), 120, "the local commit in force")
    assert run.find(lambda x: x["message"].startswith("The branch main moved in "))
