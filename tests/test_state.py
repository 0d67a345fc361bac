"""StateStore: shared JSON documents that survive crashes and concurrent updates."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llmroute.locking import atomic_write, locked
from llmroute.state import StateStore


def test_missing_file_reads_empty_and_update_creates_it(tmp_path):
    store = StateStore(tmp_path / "state" / "breakers.json")
    assert store.read() == {}
    with store.update() as doc:
        doc["openai/gpt-4o"] = {"failures": 2}
    assert store.read() == {"openai/gpt-4o": {"failures": 2}}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.lock_path.stat().st_mode) == 0o600


def test_update_that_raises_writes_nothing(tmp_path):
    store = StateStore(tmp_path / "cursor.json")
    with store.update() as doc:
        doc["n"] = 1
    with pytest.raises(RuntimeError):
        with store.update() as doc:
            doc["n"] = 99
            raise RuntimeError("boom")
    assert store.read() == {"n": 1}


def test_unchanged_update_does_not_rewrite(tmp_path):
    store = StateStore(tmp_path / "s.json")
    with store.update() as doc:
        doc["a"] = [1, 2]
    inode = store.path.stat().st_ino
    with store.update() as doc:
        assert doc == {"a": [1, 2]}
    assert store.path.stat().st_ino == inode


@pytest.mark.parametrize("garbage", [b'{"torn": ', b"[1, 2]", b"\xff\xfe\x00"])
def test_corrupt_file_is_kept_aside_and_rebuilt(tmp_path, garbage):
    warnings: list[str] = []
    store = StateStore(tmp_path / "breakers.json", clock=lambda: 1700000000.5, warn=warnings.append)
    store.path.write_bytes(garbage)
    assert store.read() == {}
    kept = tmp_path / "breakers.json.corrupt-20231114T221320.500000Z"
    assert kept.read_bytes() == garbage
    assert not store.path.exists()
    assert warnings == [f"breakers.json was unreadable; kept it as {kept.name} and started afresh"]
    with store.update() as doc:
        doc["ok"] = True
    assert store.read() == {"ok": True}


def test_corrupt_file_found_during_update_is_rebuilt_without_clobbering_copies(tmp_path):
    store = StateStore(tmp_path / "rl.json", clock=lambda: 0.0)
    store.path.write_bytes(b"nope")
    (tmp_path / "rl.json.corrupt-19700101T000000.000000Z").write_bytes(b"older")
    with store.update() as doc:
        assert doc == {}
        doc["x"] = 1
    assert store.read() == {"x": 1}
    assert (tmp_path / "rl.json.corrupt-19700101T000000.000000Z").read_bytes() == b"older"
    assert (tmp_path / "rl.json.corrupt-19700101T000000.000000Z-1").read_bytes() == b"nope"


def test_empty_file_reads_as_empty_document(tmp_path):
    store = StateStore(tmp_path / "e.json")
    store.path.write_bytes(b"")
    assert store.read() == {}
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_atomic_write_replaces_whole_file_0600_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "f.json"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_atomic_write_failure_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "f.json"
    atomic_write(target, b"old")
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_exclusive_lock_excludes_other_processes(tmp_path):
    lock = tmp_path / "x.lock"
    probe = textwrap.dedent(
        """
        import fcntl, os, sys
        fd = os.open(sys.argv[1], os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit(7)
        sys.exit(0)
        """
    )
    with locked(lock):
        held = subprocess.run([sys.executable, "-c", probe, str(lock)]).returncode
    released = subprocess.run([sys.executable, "-c", probe, str(lock)]).returncode
    assert (held, released) == (7, 0)


def test_lock_of_a_killed_process_is_released(tmp_path):
    lock = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom pathlib import Path\nfrom llmroute.locking import locked\n"
         "with locked(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n",
         str(lock)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert holder.stdout.readline() == b"held\n"
        holder.kill()
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.stdout.close()
    with locked(lock):  # would block forever if the lock had gone stale
        pass


COUNTER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from llmroute.state import StateStore

    store = StateStore(Path(sys.argv[1]))
    for _ in range(10):
        with store.update() as doc:
            doc["counter"] = doc.get("counter", 0) + 1
        store.read()
    """
)


def test_concurrent_updates_lose_nothing(tmp_path):
    path = tmp_path / "state" / "counter.json"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = [subprocess.Popen([sys.executable, "-c", COUNTER, str(path)], env=env) for _ in range(20)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert StateStore(path).read() == {"counter": 200}


# --- documents of the wrong shape (issue 13) ------------------------------------------------------


@pytest.mark.parametrize("document", [b'{"breakers": [1, 2, 3]}', b'{"breakers": "x"}',
                                      b'{"breakers": true}', b'{"cursor": {"a": 1}}'])
def test_a_document_of_the_wrong_shape_is_kept_aside_like_a_corrupt_one(tmp_path, document):
    from llmroute.state import sections

    warnings: list[str] = []
    store = StateStore(tmp_path / "routing.json", clock=lambda: 1700000000.5, warn=warnings.append,
                       valid=sections(breakers=dict, cursor=int))
    store.path.write_bytes(document)
    assert store.read() == {}
    kept = tmp_path / "routing.json.corrupt-20231114T221320.500000Z"
    assert kept.read_bytes() == document
    assert len(warnings) == 1 and kept.name in warnings[0]
    with store.update() as doc:  # and updates start afresh instead of failing on the shape
        doc.setdefault("breakers", {})["a/b"] = {"failures": 1}
    assert store.read() == {"breakers": {"a/b": {"failures": 1}}}


def test_a_document_of_the_right_shape_is_left_alone(tmp_path):
    from llmroute.state import sections

    store = StateStore(tmp_path / "s.json", valid=sections(breakers=dict, cursor=int))
    store.path.write_bytes(b'{"breakers": {}, "cursor": 3, "other": [1]}')
    assert store.read() == {"breakers": {}, "cursor": 3, "other": [1]}
    assert list(tmp_path.glob("*.corrupt-*")) == []


def test_json_types_exclude_bools_from_numbers_and_non_finite_floats():
    from llmroute.state import is_json_type

    assert is_json_type(3, int) and is_json_type(2.5, (int, float)) and is_json_type(True, bool)
    assert not is_json_type(True, int) and not is_json_type(False, (int, float))
    assert not is_json_type(float("inf"), float) and not is_json_type(float("nan"), (int, float))


def test_by_default_a_damaged_file_is_reported_on_stderr(tmp_path, capsys):
    store = StateStore(tmp_path / "health.json")
    store.path.write_bytes(b"[1, 2, 3]")
    assert store.read() == {}
    err = capsys.readouterr().err
    assert err.startswith("llmroute: warning: health.json was unreadable; kept it as health.json.corrupt-")
    assert err.count("\n") == 1
