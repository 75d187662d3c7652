"""Tampering with the outage spool while it waits: refused, set aside and recorded.

An adversarial run edited a spooled line to ``failure / TAMPERED`` and deleted a
spooled ``action_step``; both were flushed and ``audit verify`` said intact. The
spool is now chained (and MACed with the trail's key when it is keyed): the
entries before a break are flushed, the rest never reach the trail, and a
``spool_refused`` entry names the line, the problem and where the refused
entries were set aside.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audit_helpers import KEY_TEXT, key, record

from rollguard.audit.chain import canonical_json
from rollguard.audit.factory import open_store
from rollguard.audit.keys import AuditKey
from rollguard.audit.spool import SPOOLED, SpooledStore, SpoolTamperedError
from servers.postgres import running_postgres

Attack = Callable[[Path], None]


def lines_of(spool: Path) -> list[str]:
    return spool.read_text().splitlines(keepends=True)


def edit_outcome(spool: Path) -> None:
    lines = lines_of(spool)
    data = json.loads(lines[2])
    data["record"]["outcome"], data["record"]["reason"] = "failure", "TAMPERED"
    lines[2] = json.dumps(data) + "\n"
    spool.write_text("".join(lines))


def delete_middle(spool: Path) -> None:
    lines = lines_of(spool)
    del lines[2]  # the action_step
    spool.write_text("".join(lines))


def swap(spool: Path) -> None:
    lines = lines_of(spool)
    lines[1], lines[2] = lines[2], lines[1]
    spool.write_text("".join(lines))


def cut_end(spool: Path) -> None:
    spool.write_text("".join(lines_of(spool)[:3]))


def drop_head(spool: Path) -> None:
    spool.with_suffix(".head").unlink()


def edit_head(spool: Path) -> None:
    head = spool.with_suffix(".head")
    data = json.loads(head.read_text())
    data["last_seq"] = 3
    head.write_text(json.dumps(data))


def unchained_line(spool: Path) -> None:
    # A record as an older rollguard wrote it: no seq, no MAC.
    lines = lines_of(spool)
    lines[2] = json.dumps(json.loads(lines[2])["record"]) + "\n"
    spool.write_text("".join(lines))


ATTACKS: dict[str, tuple[Attack, int, str, int]] = {
    # name: (attack, entries still flushed, refused line and message, entries refused)
    "edited": (edit_outcome, 2, "3: line 3 (entry 3) was edited: it no longer matches its MAC", 3),
    "deleted": (delete_middle, 2, "3: entry 3 was deleted before line 3 (entry 4)", 2),
    "reordered": (swap, 1, "2: line 2 (entry 3) is out of order: entry 2 comes after it", 4),
    "cut at the end": (cut_end, 3, "4: entries 4-5 were deleted from the end of the spool", 0),
    "head deleted": (drop_head, 0, "1: the spool's head file is missing", 5),
    "head edited": (edit_head, 0, "1: the spool's head file was edited", 5),
    "unchained line": (unchained_line, 2, "3: line 3 is not a chained spool entry", 3),
}


@pytest.fixture(params=[None, key()], ids=["unkeyed", "keyed"])
def secret(request: pytest.FixtureRequest) -> AuditKey | None:
    found: AuditKey | None = request.param
    return found


@pytest.fixture
def spooled(tmp_path: Path, secret: AuditKey | None) -> Iterator[SpooledStore]:
    store = SpooledStore(
        open_store(f"sqlite:///{tmp_path / 'a.db'}", key=secret),
        spool=tmp_path / "spool" / "s.jsonl",
        redact=None if secret is None else secret.redact,
        key=secret,
    )
    store.append(record(0, kind="deployment_start"))
    kinds = ["action_intent", "decision", "action_step", "action_step", "action_result"]
    for n, kind in enumerate(kinds, start=1):
        store._keep(record(n, kind=kind))  # as an outage would have left them
    yield store
    store.close()


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_tampered_spool_is_refused_and_recorded(spooled: SpooledStore, attack: str) -> None:
    change, flushed, where, refused = ATTACKS[attack]
    change(spooled.spool)
    with pytest.raises(SpoolTamperedError, match=re.escape(where.split(": ", 1)[1])):
        spooled.pending()
    assert spooled.flush() == flushed
    entries = spooled.list()
    kept = [entry.record.reason for entry in entries[1 : 1 + flushed]]
    assert kept == [record(n).reason for n in range(1, flushed + 1)]
    notice = entries[-1].record
    assert len(entries) == 1 + flushed + 1
    assert notice.kind == "spool_refused"
    assert notice.reason.startswith(f"{spooled.spool}:{where}")
    assert notice.evidence["entries_refused"] == refused
    assert "TAMPERED" not in json.dumps([entry.record.reason for entry in entries])
    assert spooled.verify().ok  # the trail itself is intact: nothing forged got in
    set_aside = Path(str(notice.evidence["kept_in"]))
    assert not spooled.spool.exists()
    assert set_aside.exists() or refused == 0 or attack == "head deleted"


def test_the_next_append_after_a_refusal_starts_a_clean_spool(spooled: SpooledStore) -> None:
    edit_outcome(spooled.spool)
    spooled.flush()
    spooled._keep(record(9))
    assert [r.reason for r in spooled.pending()] == [record(9).reason]


def rebuild(spool: Path, secret: AuditKey | None) -> None:
    """Recompute every MAC and the head after an edit, as someone who can write the
    spool but does not hold the key would: with plain SHA-256."""
    lines = [json.loads(line) for line in lines_of(spool)]
    lines[2]["record"]["outcome"] = "failure"
    previous = "0" * 64
    for line in lines:
        body = {"seq": line["seq"], "prev": previous, "record": line["record"]}
        text = b"rollguard spool entry\n" + canonical_json(body).encode()
        line["prev"], line["mac"] = previous, hashlib.sha256(text).hexdigest()
        previous = line["mac"]
    spool.write_text("".join(json.dumps(line) + "\n" for line in lines))
    head = {"anchor_seq": 0, "anchor_hash": "0" * 64, "last_seq": 5, "last_hash": previous}
    text = b"rollguard spool head\n" + canonical_json(head).encode()
    head["mac"] = hashlib.sha256(text).hexdigest()  # type: ignore[assignment]
    spool.with_suffix(".head").write_text(json.dumps(head))


@pytest.mark.parametrize("secret", [key()], ids=["keyed"])
def test_a_keyed_spool_cannot_be_rebuilt_without_the_key(spooled: SpooledStore) -> None:
    rebuild(spooled.spool, None)
    assert spooled.flush() == 0
    assert spooled.list()[-1].record.kind == "spool_refused"
    assert "failure" not in [entry.record.outcome for entry in spooled.list()]


@pytest.mark.parametrize("secret", [None], ids=["unkeyed"])
def test_an_unkeyed_spool_rebuilt_whole_is_accepted_the_documented_limit(
    spooled: SpooledStore,
) -> None:
    # docs/security.md: without a key, whoever can write the spool can forge it whole.
    rebuild(spooled.spool, None)
    assert spooled.flush() == 5
    assert [entry.record.outcome for entry in spooled.list()][3] == "failure"


@pytest.mark.real_server
def test_an_edited_entry_spooled_while_postgresql_was_down_never_reaches_the_trail(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool.jsonl"
    secret = key()
    with running_postgres() as server:
        store = SpooledStore(
            open_store(server.url(), connect_timeout_seconds=2, key=secret),
            spool=spool,
            redact=secret.redact,
            key=secret,
        )
        try:
            store.append(record(0))
            server.stop()
            for n in range(1, 4):
                assert store.append(record(n, kind="action_step")) == SPOOLED
            assert KEY_TEXT not in spool.read_text()
            edit_outcome(spool)
            server.start()
            store.append(record(4))
            records = [entry.record for entry in store.list()]
            assert [r.reason for r in records[:3]] == [record(n).reason for n in range(3)]
            assert records[3].kind == "spool_refused"
            assert records[3].reason.startswith(f"{spool}:3: line 3 (entry 3) was edited")
            assert records[4].reason == record(4).reason
            assert store.verify().ok
        finally:
            store.close()
