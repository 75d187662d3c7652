"""The per-deployment lease: one watcher at a time, and a crash never wedges a deployment."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rollguard.audit.factory import open_store
from rollguard.audit.locks import KEY_LENGTH, lock_key
from rollguard.audit.sql import SqlAuditStore
from rollguard.errors import LockedError


def test_a_second_owner_is_refused_with_a_clear_message(store: SqlAuditStore) -> None:
    store.acquire_lock("checkout", owner="watch-a", lease_seconds=60)
    with pytest.raises(LockedError) as caught:
        store.acquire_lock("checkout", owner="watch-b", lease_seconds=60)
    message = str(caught.value)
    assert "deployment 'checkout' is already watched by watch-a" in message
    assert "lease runs until" in message
    other = store.acquire_lock("search", owner="watch-b", lease_seconds=60)
    assert other.owner == "watch-b"


def test_the_same_owner_may_take_its_lock_again(store: SqlAuditStore) -> None:
    first = store.acquire_lock("checkout", owner="watch-a", lease_seconds=60)
    again = store.acquire_lock("checkout", owner="watch-a", lease_seconds=60)
    assert again.owner == first.owner


def test_release_lets_the_next_watcher_in(store: SqlAuditStore) -> None:
    store.acquire_lock("checkout", owner="watch-a", lease_seconds=60)
    store.release_lock("checkout", owner="watch-b")  # not the holder: no effect
    with pytest.raises(LockedError):
        store.acquire_lock("checkout", owner="watch-b", lease_seconds=60)
    store.release_lock("checkout", owner="watch-a")
    assert store.acquire_lock("checkout", owner="watch-b", lease_seconds=60).owner == "watch-b"


def test_an_expired_lease_is_taken_over(store_url: str) -> None:
    now = [1_000.0]
    store = open_store(store_url, clock=lambda: now[0])
    try:
        store.acquire_lock("checkout", owner="watch-a", lease_seconds=30)
        now[0] += 29
        with pytest.raises(LockedError):
            store.acquire_lock("checkout", owner="watch-b", lease_seconds=30)
        now[0] += 2
        taken = store.acquire_lock("checkout", owner="watch-b", lease_seconds=30)
        assert (taken.owner, taken.expires_at) == ("watch-b", 1_061.0)
    finally:
        store.close()


def test_renew_extends_and_fails_once_the_lease_was_lost(store_url: str) -> None:
    now = [1_000.0]
    store = open_store(store_url, clock=lambda: now[0])
    try:
        store.acquire_lock("checkout", owner="watch-a", lease_seconds=30)
        now[0] += 20
        assert store.renew_lock("checkout", owner="watch-a", lease_seconds=30).expires_at == 1_050
        now[0] += 31
        store.acquire_lock("checkout", owner="watch-b", lease_seconds=30)
        with pytest.raises(LockedError, match="lost the lock on deployment 'checkout'"):
            store.renew_lock("checkout", owner="watch-a", lease_seconds=30)
    finally:
        store.close()


def test_a_lock_held_by_a_killed_process_is_recovered(
    store: SqlAuditStore, store_url: str, cli_env: dict[str, str]
) -> None:
    holder = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, sys\n"
            "from rollguard.audit.factory import open_store\n"
            "store = open_store(sys.argv[1])\n"
            "store.acquire_lock('checkout', owner='crashed-watch', lease_seconds=3600)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n",
            store_url,
        ],
        env=cli_env,
        check=False,
    )
    assert holder.returncode == -9
    left = store.lock_holder("checkout")
    assert left is not None
    assert left.owner == "crashed-watch"
    assert left.expires_at > left.acquired_at + 3000
    taken = store.acquire_lock("checkout", owner="recovering-watch", lease_seconds=60)
    assert taken.owner == "recovering-watch"


def test_the_same_name_in_two_namespaces_is_two_leases(store: SqlAuditStore) -> None:
    shop_a, shop_b = lock_key("shop", "team-a"), lock_key("shop", "team-b")
    assert store.acquire_lock(shop_a, owner="watch-a", lease_seconds=60).deployment == "team-a/shop"
    assert store.acquire_lock(shop_b, owner="watch-b", lease_seconds=60).owner == "watch-b"
    with pytest.raises(LockedError, match="'team-a/shop' is already watched by watch-a"):
        store.acquire_lock(shop_a, owner="watch-c", lease_seconds=60)
    store.release_lock(shop_a, owner="watch-a")
    holder = store.lock_holder(shop_b)
    assert holder is not None
    assert holder.owner == "watch-b"


def test_a_lease_on_the_bare_name_still_keeps_namespaced_watchers_out(
    store_url: str,
) -> None:
    """A lease stored before keys had namespaces (the bare name) binds until it ends."""
    now = [1_000.0]
    store = open_store(store_url, clock=lambda: now[0])
    try:
        store.acquire_lock("shop", owner="older-watch", lease_seconds=30)
        with pytest.raises(LockedError, match="bare name 'shop' by older-watch"):
            store.acquire_lock(lock_key("shop", "team-a"), owner="new-watch", lease_seconds=30)
        # its own owner is not kept out, and nor is anyone once the old lease ends
        store.acquire_lock(lock_key("shop", "team-a"), owner="older-watch", lease_seconds=30)
        store.release_lock(lock_key("shop", "team-a"), owner="older-watch")
        now[0] += 31
        taken = store.acquire_lock(lock_key("shop", "team-a"), owner="new-watch", lease_seconds=30)
        assert taken.deployment == "team-a/shop"
    finally:
        store.close()


def test_a_key_too_long_for_the_column_stays_unique(store: SqlAuditStore) -> None:
    name = "d" * 253
    first, second = lock_key(name, "a" * 63), lock_key(name, "a" * 62 + "b")
    assert len(first) == len(second) == KEY_LENGTH
    assert first != second
    store.acquire_lock(first, owner="one", lease_seconds=60)
    assert store.acquire_lock(second, owner="two", lease_seconds=60).owner == "two"
    assert lock_key("shop") == "shop"
