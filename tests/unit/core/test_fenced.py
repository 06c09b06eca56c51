"""The fencing rule alone: a replica acts only at the epoch it took and as the stored owner."""

from __future__ import annotations

from gitops.kube.fence import fenced


def test_the_taker_at_its_epoch_may_act() -> None:
    assert fenced(3, 3, "a", "a") == ""


def test_a_moved_epoch_refuses() -> None:
    assert "epoch moved from 3 to 4" in fenced(3, 4, "a", "a")


def test_another_owner_refuses_and_is_named() -> None:
    why = fenced(3, 4, "b", "a")
    assert "owner is b at epoch 4" in why and "held epoch 3" in why


def test_never_taken_refuses() -> None:
    assert "never took" in fenced(None, 2, "a", "a")
