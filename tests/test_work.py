"""Tests of sgm.work: WorkUnit split/merge and Batch validation."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sgm.work import NONCE_SPACE, Batch, WorkUnit, merge_units


@st.composite
def units(draw: st.DrawFn, min_count: int = 1) -> WorkUnit:
    start = draw(st.integers(0, NONCE_SPACE - min_count))
    count = draw(st.integers(min_count, NONCE_SPACE - start))
    return WorkUnit(draw(st.sampled_from(["a", "b"])), draw(st.integers(0, 5)),
                    draw(st.integers(0, 3)), start, count)


def test_basic_fields() -> None:
    u = WorkUnit("job", 2, 1, 100, 50)
    assert u.nonce_end == 150
    assert len(u) == 50
    assert 100 in u and 149 in u and 150 not in u and 99 not in u
    assert u.as_pulled() == (2, 1, 100, 50)
    assert WorkUnit.from_pulled("job", (2, 1, 100, 50)) == u
    with pytest.raises(dataclasses.FrozenInstanceError):
        u.nonce_count = 3  # type: ignore[misc]


@given(units(min_count=2), st.data())
def test_split_then_merge_round_trip(u: WorkUnit, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, u.nonce_count - 1))
    head, tail = u.split(n)
    assert head.nonce_count == n and tail.nonce_count == u.nonce_count - n
    assert head.nonce_start == u.nonce_start and head.nonce_end == tail.nonce_start
    assert tail.nonce_end == u.nonce_end
    assert head.can_merge(tail) and tail.can_merge(head)
    assert head.merge(tail) == u
    assert tail.merge(head) == u


@given(units(min_count=3), st.data())
def test_many_pieces_merge_back(u: WorkUnit, data: st.DataObject) -> None:
    pieces = [u]
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(pieces) - 1))
        if pieces[i].nonce_count < 2:
            continue
        n = data.draw(st.integers(1, pieces[i].nonce_count - 1))
        pieces[i:i + 1] = list(pieces[i].split(n))
    shuffled = data.draw(st.permutations(pieces))
    assert merge_units(list(shuffled)) == [u]


@pytest.mark.parametrize("n", [0, 10, 11, -1])
def test_split_out_of_range(n: int) -> None:
    with pytest.raises(ValueError, match="n must"):
        WorkUnit("j", 0, 0, 0, 10).split(n)


def test_split_type() -> None:
    with pytest.raises(TypeError, match="n must"):
        WorkUnit("j", 0, 0, 0, 10).split(2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "other",
    [
        WorkUnit("j2", 1, 0, 10, 5),   # other job
        WorkUnit("j", 2, 0, 10, 5),    # other generation
        WorkUnit("j", 1, 1, 10, 5),    # other midstate
        WorkUnit("j", 1, 0, 11, 5),    # gap
        WorkUnit("j", 1, 0, 9, 5),     # overlap
        WorkUnit("j", 1, 0, 0, 10),    # identical
    ],
)
def test_invalid_merges_raise(other: WorkUnit) -> None:
    u = WorkUnit("j", 1, 0, 0, 10)
    assert not u.can_merge(other)
    with pytest.raises(ValueError, match="cannot merge"):
        u.merge(other)


def test_merge_wrong_type() -> None:
    u = WorkUnit("j", 1, 0, 0, 10)
    assert not u.can_merge((1, 0, 10, 5))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="other"):
        u.merge((1, 0, 10, 5))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"nonce_count": 0}, ValueError, "nonce_count"),
        ({"nonce_start": NONCE_SPACE - 1, "nonce_count": 2}, ValueError, "nonce_count"),
        ({"nonce_start": -1}, ValueError, "nonce_start"),
        ({"midstate_id": -1}, ValueError, "midstate_id"),
        ({"generation": -1}, ValueError, "generation"),
        ({"job_id": 5}, TypeError, "job_id"),
        ({"nonce_count": 1.0}, TypeError, "nonce_count"),
        ({"midstate_id": True}, TypeError, "midstate_id"),
    ],
)
def test_unit_validation(kwargs: dict, exc: type, name: str) -> None:
    base = {"job_id": "j", "generation": 0, "midstate_id": 0, "nonce_start": 0,
            "nonce_count": 1}
    base.update(kwargs)
    with pytest.raises(exc, match=name):
        WorkUnit(**base)


def test_unit_may_end_at_top_of_space() -> None:
    u = WorkUnit("j", 0, 0, 0, NONCE_SPACE)
    assert u.nonce_end == NONCE_SPACE


def test_batch() -> None:
    a = WorkUnit("j", 3, 1, 0, 10)
    b = WorkUnit("j", 3, 1, 50, 5)
    batch = Batch("cpu0", [a, b])
    assert batch.nonce_count == 15
    assert (batch.job_id, batch.generation, batch.midstate_id) == ("j", 3, 1)
    batch.add(WorkUnit("j", 3, 1, 55, 5))     # continues the last unit: merged into it
    assert batch.units == [a, WorkUnit("j", 3, 1, 50, 10)]
    batch.add(WorkUnit("j", 3, 1, 10, 5))     # not after the last unit: appended
    assert batch.nonce_count == 25
    assert batch.units[-1] == WorkUnit("j", 3, 1, 10, 5)


@pytest.mark.parametrize(
    "units_",
    [
        [],
        [WorkUnit("j", 3, 1, 0, 10), WorkUnit("k", 3, 1, 10, 10)],
        [WorkUnit("j", 3, 1, 0, 10), WorkUnit("j", 3, 2, 10, 10)],
        [WorkUnit("j", 3, 1, 0, 10), WorkUnit("j", 4, 1, 10, 10)],
        [WorkUnit("j", 3, 1, 0, 10), WorkUnit("j", 3, 1, 5, 10)],
    ],
)
def test_batch_validation(units_: list[WorkUnit]) -> None:
    with pytest.raises(ValueError, match="units"):
        Batch("gpu0", units_)


def test_batch_add_validation() -> None:
    batch = Batch("gpu0", [WorkUnit("j", 3, 1, 0, 10)])
    with pytest.raises(ValueError, match="unit"):
        batch.add(WorkUnit("j", 3, 2, 10, 10))
    with pytest.raises(ValueError, match="overlaps"):
        batch.add(WorkUnit("j", 3, 1, 9, 10))
    with pytest.raises(TypeError, match="unit"):
        batch.add((3, 1, 10, 10))  # type: ignore[arg-type]
    assert batch.nonce_count == 10
