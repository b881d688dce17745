"""The paths for many small runs give what the run-by-run paths give: plain files decoded
together, plain runs assembled together (`assemble.assemble_runs`), the inventory of small runs
summarised together, and checksums derived from the differences between records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reader_helpers import event_file_name, scalar_series, tensor_series, write_run

import tbreport
from tbreport import testing
from tbreport.reading import assemble, grouping, parsing, pool, records, runbatch
from tbreport.reading import files as reading_files
from tbreport.reading.discovery import discover_runs
from tbreport.reading.parsing import parse_event_files


def _file(events) -> bytes:
    return b"".join(
        e if isinstance(e, bytes) else testing.frame(e.SerializeToString()) for e in events
    )


def _version(wall: float = 1.0, text: str = "brain.Event:2"):
    event = testing.file_version_event(wall_time=wall)
    event.file_version = text
    return event


def _plain_run(rng: np.random.Generator, i: int) -> list:
    """Scalars of a few tags, some with repeated or descending steps, some tags shared."""
    tags = [f"t{(i + k) % 5}/{'éü'[k % 2]}" for k in range(int(rng.integers(1, 4)))]
    events = [_version(wall=1.0 + i)]
    steps = list(range(int(rng.integers(0, 30))))
    if rng.random() < 0.3 and steps:
        steps += [int(rng.integers(0, len(steps)))]  # a duplicate step
    if rng.random() < 0.2:
        steps = steps[::-1]  # descending, no duplicates
    for s in steps:
        for tag in tags:
            events += scalar_series(tag, [s], value=lambda s: rng.normal(), wall0=100.0 + i)
    return events


def _odd_run(rng: np.random.Generator, i: int) -> list:
    """Runs the batch paths must leave to the run-by-run ones."""
    kind = i % 6
    base = [_version()]
    if kind == 0:
        return base + tensor_series("epoch_loss", range(12))  # plugin metadata, tensors
    if kind == 1:
        restart = testing.session_start_event(step=4, wall_time=9.0)
        return base + scalar_series("loss", range(10)) + [restart]
    if kind == 2:
        return scalar_series("loss", [3, 4, 1, 2])  # no version record: the legacy rules
    if kind == 3:
        return [_version(text="brain.Event:1"), *scalar_series("loss", range(6))]
    if kind == 4:
        histogram = testing.histogram_event("w", rng.normal(size=20), step=1, wall_time=2.0)
        return base + scalar_series("loss", range(6)) + [histogram]
    text = testing.text_event("n", "x", step=1, wall_time=3.0)
    return base + scalar_series("loss", range(6)) + [text]


@pytest.fixture
def logdir(tmp_path):
    rng = np.random.default_rng(4)
    for i in range(80):
        events = _odd_run(rng, i) if i % 7 == 3 else _plain_run(rng, i)
        run = tmp_path / f"run_{i:03d}"
        run.mkdir()
        data = _file(events)
        if i % 11 == 5:
            data = data[:-5]  # a cut last record: a warning
        (run / event_file_name(0)).write_bytes(data)
        if i % 13 == 6:  # a second file
            (run / event_file_name(1)).write_bytes(_file(_plain_run(rng, i + 1)))
    return tmp_path


def _run_data_facts(rd: assemble.RunData) -> tuple:
    tags = rd.tags
    return (
        rd.ref.name,
        [tags[t] for t in rd.scalar_tag.tolist()],
        rd.scalar_step.tolist(),
        rd.scalar_wall.tobytes(),
        rd.scalar_value.tobytes(),
        [
            (tags[t], s)
            for t, s in zip(rd.histograms.tag.tolist(), rd.histograms.step.tolist(), strict=True)
        ],
        [(tags[t[0]], *t[1:]) for t in rd.texts],
        rd.hparam_contents,
        rd.files,
        rd.bytes,
        rd.purged,
        rd.duplicate_steps,
        [(w.kind, w.path, w.message, w.offset, w.run) for w in rd.warnings],
    )


def test_runs_assembled_together_equal_runs_assembled_one_by_one(logdir):
    runs, _ = discover_runs(logdir)
    refs = [ref for run in runs for ref in run.files]
    contents = [(Path(ref.path).read_bytes(), ref.display) for ref in refs]

    def parsed_per_run():
        parsed = parse_event_files(contents)
        out = []
        for run in runs:
            out.append(parsed[: len(run.files)])
            del parsed[: len(run.files)]
        return out

    together = assemble.assemble_runs(runs, parsed_per_run())
    one_by_one = [
        assemble.assemble_run(run, files, release=True)
        for run, files in zip(runs, parsed_per_run(), strict=True)
    ]
    assert [_run_data_facts(rd) for rd in together] == [_run_data_facts(rd) for rd in one_by_one]
    assert sum(rd.duplicate_steps > 0 for rd in together) > 3  # the duplicates were exercised


def test_read_equals_the_run_by_run_paths(monkeypatch, logdir):
    fast = tbreport.read(logdir, jobs=1)
    with monkeypatch.context() as patch:
        patch.setattr(
            reading_files,
            "assemble_runs",
            lambda runs, files: [
                assemble.assemble_run(r, f, release=True) for r, f in zip(runs, files, strict=True)
            ],
        )
        patch.setattr(grouping, "_SMALL_RUN_ROWS", -1)  # every run summarised on its own
        patch.setattr(parsing, "_version_two_heads", lambda b, o, n, f, c: np.zeros(len(f), bool))
        slow = tbreport.read(logdir, jobs=1)
    for name in ("scalars", "histograms", "text", "runs", "hparams"):
        pd.testing.assert_frame_equal(getattr(fast, name), getattr(slow, name), check_exact=True)
    assert [str(w) for w in fast.warnings] == [str(w) for w in slow.warnings]
    two = tbreport.read(logdir, jobs=2)
    pd.testing.assert_frame_equal(fast.scalars, two.scalars, check_exact=True)
    pd.testing.assert_frame_equal(fast.runs, two.runs, check_exact=True)


def test_small_run_facts_equal_the_per_run_ranges():
    rng = np.random.default_rng(6)
    histograms = parsing.HistogramColumns.from_rows(
        [
            parsing.HistogramRow(0, t, s, w, 0.0, 1.0, 1.0, 0.0, 0.0, np.ones(1), np.ones(1), False)
            for t, s, w in ((0, 5, np.nan), (1, -3, 7.0), (1, 9, -1.0))
        ]
    )
    run_data = []
    for i in range(40):
        n = int(rng.integers(0, 6))
        walls = rng.choice([np.nan, np.inf, -2.0, 0.0, 5.0, 3.5, 1e9], n)
        run_data.append(
            assemble.RunData(
                ref=None,  # type: ignore[arg-type]
                tags=["a", "b", "c"],
                scalar_tag=rng.integers(0, 3, n).astype(np.int32),
                scalar_step=rng.integers(-5, 50, n),
                scalar_wall=walls,
                scalar_value=np.zeros(n),
                histograms=histograms if i % 3 == 0 else parsing.HistogramColumns.empty(),
                texts=[],
                hparam_contents=[],
                files=1,
                bytes=0,
            )
        )
    together = grouping._small_run_facts(run_data)
    one_by_one = [
        (
            np.unique(rd.scalar_tag).tolist(),
            len(np.unique(rd.histograms.tag)),
            *grouping._range([rd.scalar_step, rd.histograms.step], lambda a: None),
            *grouping._range(
                [rd.scalar_wall, rd.histograms.wall_time], lambda a: np.isfinite(a) & (a > 0)
            ),
        )
        for rd in run_data
    ]
    assert together == one_by_one


@pytest.mark.parametrize("length", [1, 4, 8, 13, 35, 64])
def test_checksums_from_differences_equal_the_byte_loop(monkeypatch, length):
    rng = np.random.default_rng(length)
    for varying in (0, 1, length // 3, length):
        reference = rng.integers(0, 256, length).astype(np.uint8)
        columns = np.repeat(reference[:, None], 200, axis=1)
        for j in rng.choice(length, min(varying, length), replace=False):
            columns[j] = rng.integers(0, 256, 200)
        fast = records.masked_crc32c_rows(columns)
        monkeypatch.setattr(records, "_DIFFERENCE_MIN_ROWS", 1 << 40)
        loop = records.masked_crc32c_rows(columns)
        monkeypatch.undo()
        expected = [records.masked_crc32c(columns[:, i].tobytes()) for i in range(200)]
        assert fast.tolist() == loop.tolist() == expected


@pytest.mark.parametrize("rows", [1, 3, 64, 500])
def test_segments_gathered_or_sliced_equal_the_plain_concatenation(rows):
    rng = np.random.default_rng(rows)
    values = rng.normal(size=40 * rows)
    sizes = rng.integers(0, 2 * rows, size=40)
    starts = np.array([rng.integers(0, len(values) - n + 1) for n in sizes], dtype=np.int64)
    expected = np.concatenate([values[a : a + n] for a, n in zip(starts, sizes, strict=True)])
    assert parsing.gather_segments(values, starts, sizes).tolist() == expected.tolist()


@pytest.mark.parametrize("parts", [0, 1, 2, 7])
def test_columns_joined_in_one_block_equal_each_joined_alone(parts):
    rng = np.random.default_rng(parts)
    types = [np.int8, np.int16, np.int64, np.float64]
    columns = [
        [rng.integers(-100, 100, size=int(rng.integers(0, 50))).astype(t) for _ in range(parts)]
        for t in types
    ]
    expected = [runbatch.join_parts(list(c), t) for c, t in zip(columns, types, strict=True)]
    given = [list(c) for c in columns]
    joined = runbatch.join_columns([(c, t) for c, t in zip(given, types, strict=True)])
    assert all(not c for c in given)  # the parts are let go
    for column, want, dtype in zip(joined, expected, types, strict=True):
        assert column.dtype == dtype
        assert column.tolist() == want.tolist()
    # Side by side, not overlapping: writing one column leaves the others as they were.
    for k, column in enumerate(joined):
        column[:] = k + 1
    assert [set(c.tolist()) for c in joined] == [
        {k + 1} if len(c) else set() for k, c in enumerate(joined)
    ]


def test_columns_with_a_single_part_are_kept_as_they_are():
    part = np.arange(5, dtype=np.int64)
    joined = runbatch.join_columns([([part], np.int64), ([part, part], np.int64)])
    assert joined[0] is part
    assert joined[1].tolist() == [*range(5), *range(5)]


def test_files_framed_in_lockstep_equal_each_framed_alone():
    rng = np.random.default_rng(12)
    whole = _file([_version(), *scalar_series("loss", range(5)), testing.frame(b"")])
    variants = [whole[:cut] for cut in range(len(whole) + 1)]  # cut everywhere, headers too
    for _ in range(40):  # and bytes flipped anywhere
        damaged = bytearray(whole)
        damaged[int(rng.integers(len(whole)))] ^= 1 << int(rng.integers(8))
        variants.append(bytes(damaged))
    variants += [b"\x00" * 16, b"\x00" * 30, testing.frame(b"")[:-2]]
    # Lengths far past the end, up to ones that would overflow a position.
    for huge in (1 << 32, 1 << 62, (1 << 63) + (1 << 62), (1 << 64) - 1):
        variants.append(huge.to_bytes(8, "little") + whole[8:])
    sizes = np.array([len(v) for v in variants], dtype=np.int64)
    ends = np.cumsum(sizes)
    found = records.frame_intact_files(b"".join(variants), ends - sizes, ends)
    intact = 0
    for data, framing in zip(variants, found, strict=True):
        alone = records.frame_records(data, path="f")
        if framing is None:  # anything else is framed on its own, which says what is wrong
            assert alone.warnings or not len(alone.offsets)
            continue
        intact += 1
        assert not alone.warnings
        assert framing.offsets.tolist() == alone.offsets.tolist()
        assert framing.lengths.tolist() == alone.lengths.tolist()
    assert intact >= 2  # the whole file, and it cut after its last record (the same bytes)


def test_small_groups_give_the_same_read(monkeypatch, logdir):
    """Runs assembled, coded and summarised in groups of bounded rows: any bound, same read."""
    whole = tbreport.read(logdir, jobs=1)
    monkeypatch.setattr(assemble, "_PLAIN_GROUP_ROWS", 40)
    monkeypatch.setattr(assemble, "_PLAIN_RUN_ROWS", 60)  # larger runs one by one
    monkeypatch.setattr(runbatch, "_CODE_GROUP_ROWS", 30)
    monkeypatch.setattr(grouping, "_SMALL_RUN_ROWS", 50)
    grouped = tbreport.read(logdir, jobs=1)
    for name in ("scalars", "histograms", "runs"):
        left, right = getattr(whole, name), getattr(grouped, name)
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    assert [str(w) for w in whole.warnings] == [str(w) for w in grouped.warnings]


def _nested_logdir(tmp_path: Path) -> Path:
    """Runs at several depths, with names whose walk order is not plain string order."""
    logdir = tmp_path / "nested"
    names = ["a", "a/b", "a-b", "a/b/c", "b", "b.1", "b/x", "c/d/e", "c/d-e", "z"]
    for k, name in enumerate(names):
        run = logdir / name
        run.mkdir(parents=True, exist_ok=True)
        values = scalar_series("loss", range(5 + k), wall0=10.0 + k)
        (run / event_file_name(k)).write_bytes(_file([_version(), *values]))
    return logdir


def test_reading_while_the_walk_goes_on_equals_reading_after_it(monkeypatch, tmp_path):
    logdir = _nested_logdir(tmp_path)
    one = tbreport.read(logdir, jobs=1)
    started_during_walk = []
    real_add = pool.PoolReader.add

    def add(self, run, *, early=True):
        real_add(self, run, early=early)
        started_during_walk.append(early and self.started)

    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1)  # a batch per run found
    monkeypatch.setattr(pool.PoolReader, "add", add)
    two = tbreport.read(logdir, jobs=2)
    assert any(started_during_walk)  # workers read while runs were still being found
    for name in ("scalars", "runs", "hparams"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name), check_exact=True)
    assert list(two.runs["run"]) == sorted(two.runs["run"], key=lambda n: n.split("/"))


def test_a_walk_that_fails_stops_the_workers(monkeypatch, tmp_path):
    from tbreport.reading import discovery

    logdir = _nested_logdir(tmp_path)
    real_visit = discovery._visit
    calls = []

    def failing_visit(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return real_visit(*args, **kwargs)

    closed = []
    real_close = pool.PoolReader.close

    def close(self):
        closed.append(self.started)
        real_close(self)

    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1)
    monkeypatch.setattr(discovery, "_visit", failing_visit)
    monkeypatch.setattr(pool.PoolReader, "close", close)
    before = set(Path("/dev/shm").glob("tbreport-*")) if Path("/dev/shm").is_dir() else set()
    with pytest.raises(KeyboardInterrupt):
        tbreport.read(logdir, jobs=2)
    assert closed[:1] == [True]  # the pool had started, and was closed
    after = set(Path("/dev/shm").glob("tbreport-*")) if Path("/dev/shm").is_dir() else set()
    assert after == before


def test_small_logdirs_are_read_in_this_process_without_jobs(monkeypatch, tmp_path):
    logdir = _nested_logdir(tmp_path)
    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1)
    pools = []
    real_submit = pool.PoolReader._submit

    def submit(self, tasks, **kwargs):
        pools.append(len(tasks))
        real_submit(self, tasks, **kwargs)

    monkeypatch.setattr(pool.PoolReader, "_submit", submit)
    tbreport.read(logdir)  # a few KB: not worth a worker
    assert pools == []
    tbreport.read(logdir, jobs=2)
    assert pools


def test_run_references_pickle_whole():
    """Workers receive runs pickled by constructor arguments: every field must be among them."""
    import dataclasses
    import pickle

    from tbreport.reading.discovery import EventFileRef, RunRef

    ref = EventFileRef(path="/x/run/events.out", display="run/events.out", size=7)
    run = RunRef(name="run", directory="/x/run", files=[ref, ref], hparams_yaml="/x/run/h.yaml")
    for value in (ref, run):
        assert len(value.__reduce__()[1]) == len(dataclasses.fields(value))
        again = pickle.loads(pickle.dumps(value))
        assert again == value
        assert type(again) is type(value)


def test_shrinking_batches_cover_every_run_in_order_and_shrink(monkeypatch):
    monkeypatch.setattr(pool, "SMALLEST_BATCH_BYTES", 100)
    sizes = [40, 7, 300, 1, 1, 90] * 50
    counts = [1, 2, 1, 1, 3, 1] * 50
    cut = pool.shrinking_batches(sizes, counts, readers=2)
    assert [i for batch in cut for i in batch] == list(range(len(sizes)))
    totals = [sum(sizes[i] for i in batch) for batch in cut]
    # About a quarter of what is left each time: the first is large, the last are small.
    assert totals[0] >= sum(sizes) // 4 - 300
    assert max(totals[-3:]) <= 100 + 300
    assert totals[0] > 5 * max(totals[-3:])
    monkeypatch.setattr(pool, "LARGEST_BATCH_BYTES", 1000)
    capped = pool.shrinking_batches(sizes, counts, readers=2)
    assert [i for batch in capped for i in batch] == list(range(len(sizes)))
    assert max(sum(sizes[i] for i in batch) for batch in capped) <= 1000
    assert len(capped) > len(cut)
    monkeypatch.setattr(reading_files, "BATCH_FILES", 10)
    for batch in pool.shrinking_batches(sizes, counts, readers=2):
        assert sum(counts[i] for i in batch) <= 10 or len(batch) == 1


def test_idle_workers_and_this_process_share_batches_so_that_both_end_together():
    to_workers, mine = pool.lay_out([4, 3, 3, 2, 2], workers_busy=0, workers=1, handover=0)
    # Each batch where it would be done first (the workers on a tie): the workers read
    # 4 + 2 + 2, this process 3 + 3, and neither waits long for the other.
    assert to_workers == [(0, 0.0), (3, 4.0), (4, 6.0)]
    assert mine == 1


def test_busy_workers_get_only_what_they_would_finish_first():
    to_workers, mine = pool.lay_out([4, 3, 2], workers_busy=10, workers=1, handover=0)
    assert (to_workers, mine) == ([], 0)
    # Two workers holding 10 in all are free at 5 and read 2 at a time: this process reads
    # 4 + 2 (ends at 6) while they read 3 + 1 (end at 7).
    to_workers, mine = pool.lay_out([4, 3, 2, 1], workers_busy=10, workers=2, handover=0)
    assert (to_workers, mine) == ([(1, 5.0), (3, 6.5)], 0)


def test_sending_a_batch_away_costs_its_handover():
    without, _ = pool.lay_out([2, 2], workers_busy=0, workers=1, handover=0)
    assert without == [(0, 0.0)]
    # Dearer handed over: the first batch is read here, the second is sent away all the same.
    with_cost, mine = pool.lay_out([2, 2], workers_busy=0, workers=1, handover=1)
    assert (with_cost, mine) == ([(1, 0.0)], 0)
    # A batch that costs less than its handover never leaves.
    assert pool.lay_out([2, 0.5], workers_busy=0, workers=1, handover=1) == ([(1, 0.0)], 0)
    assert pool.lay_out([0.5], workers_busy=0, workers=1, handover=1) == ([], 0)


def test_slower_workers_are_given_less():
    as_fast = pool.lay_out([2, 2, 2], workers_busy=0, workers=1, handover=0)
    assert as_fast == ([(0, 0.0), (2, 2.0)], 1)
    # Twice as slow: one batch takes a worker as long as two take this process.
    slower = pool.lay_out([2, 2, 2], workers_busy=0, workers=1, handover=0, workers_slowdown=2)
    assert slower == ([(1, 0.0)], 0)


def test_with_nothing_for_this_process_the_workers_take_all():
    assert pool.lay_out([1], workers_busy=0, workers=1, handover=0) == ([(0, 0.0)], None)


def _small_runs(logdir: Path, *, count: int, seed: int) -> Path:
    """``count`` small plain runs in ``logdir``."""
    rng = np.random.default_rng(seed)
    for i in range(count):
        run = logdir / f"run{i:02d}"
        run.mkdir(parents=True)
        (run / event_file_name(i)).write_bytes(_file(_plain_run(rng, i)))
    return logdir


def _batches_seen(monkeypatch) -> tuple[list[list[int]], list[list[int]], list[int]]:
    """Record, from now on, the batches given to workers, the batches read here, and the runs
    of every batch read (here or by a worker)."""
    given: list[list[int]] = []
    here: list[list[int]] = []
    kept: list[int] = []
    real_submit, real_here, real_keep = (
        pool.PoolReader._submit,
        pool.PoolReader._read_here,
        pool.PoolReader._keep,
    )

    def submit(self, tasks, **kwargs):
        given.extend(tasks)
        real_submit(self, tasks, **kwargs)

    def read_here(self, task):
        here.append(task)
        real_here(self, task)

    def keep(self, task, batch):
        kept.extend(task)
        real_keep(self, task, batch)

    monkeypatch.setattr(pool.PoolReader, "_submit", submit)
    monkeypatch.setattr(pool.PoolReader, "_read_here", read_here)
    monkeypatch.setattr(pool.PoolReader, "_keep", keep)
    return given, here, kept


def test_the_reading_process_reads_a_share_with_the_workers(monkeypatch, tmp_path):
    logdir = _small_runs(tmp_path / "many", count=60, seed=3)
    one = tbreport.read(logdir, jobs=1)
    # Small batches, so that this little logdir is cut into many.
    monkeypatch.setattr(pool, "SMALLEST_BATCH_BYTES", 1)
    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1 << 30)  # all batches cut after the walk
    _, here, kept = _batches_seen(monkeypatch)
    two = tbreport.read(logdir, jobs=2)
    assert here
    assert set(kept) - {i for task in here for i in task}  # read by a worker
    assert sorted(kept) == list(range(60))  # each run once
    for name in ("scalars", "runs", "hparams"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name), check_exact=True)
    assert [str(w) for w in one.warnings] == [str(w) for w in two.warnings]


def test_a_batch_no_worker_started_is_taken_back_and_read_here_once(monkeypatch, tmp_path):
    import os
    import time

    logdir = _small_runs(tmp_path / "many", count=60, seed=6)
    one = tbreport.read(logdir, jobs=1)
    monkeypatch.setattr(pool, "SMALLEST_BATCH_BYTES", 1)
    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1 << 30)  # all batches cut after the walk
    monkeypatch.setattr(pool, "QUEUE_MARGIN", 1e9)  # the worker's share is given at once
    reading_process = os.getpid()
    real_batch = pool._read_run_batch
    worker_batches = []  # in each worker, its own

    def slow_in_workers(*args, **kwargs):  # a worker stuck in its second batch
        if os.getpid() != reading_process:
            worker_batches.append(1)
            if len(worker_batches) == 2:
                time.sleep(0.5)
        return real_batch(*args, **kwargs)

    monkeypatch.setattr(pool, "_read_run_batch", slow_in_workers)
    given, here, kept = _batches_seen(monkeypatch)
    two = tbreport.read(logdir, jobs=2)
    taken_back = [task for task in given if task in here]
    assert len(taken_back) >= 1  # given to the worker, read here
    assert sorted(kept) == list(range(60))  # each run once
    for name in ("scalars", "runs", "hparams"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name), check_exact=True)


def test_a_batch_is_either_started_by_a_worker_or_taken_back_never_both():
    import multiprocessing

    context = multiprocessing.get_context("fork")
    progress = pool.Progress.shared(context)
    assert progress is not None
    progress.clear(0)
    assert progress.take_back(0)
    assert not progress.start(0)  # the worker that comes to it skips it
    progress.clear(1)
    assert progress.start(1)
    assert not progress.take_back(1)
    assert progress.started_at(1) is not None
    assert progress.seconds(1) is None
    progress.end(1)
    assert progress.seconds(1) >= 0
    # Both sides at once, in two processes: each slot goes to exactly one of them.
    slots = range(2, pool.PROGRESS_SLOTS)
    for slot in slots:
        progress.clear(slot)
    started = context.Array("b", pool.PROGRESS_SLOTS, lock=False)

    def worker():
        for slot in slots:
            started[slot] = progress.start(slot)

    process = context.Process(target=worker)
    process.start()
    taken = [progress.take_back(slot) for slot in reversed(slots)]
    process.join()
    assert process.exitcode == 0
    assert all(s != t for s, t in zip([started[s] for s in reversed(slots)], taken, strict=True))


def test_a_lock_left_held_by_a_dead_worker_stops_taking_back_but_nothing_waits(monkeypatch):
    import multiprocessing
    import time

    monkeypatch.setattr(pool, "LOCK_SECONDS", 0.05)
    context = multiprocessing.get_context("fork")
    progress = pool.Progress.shared(context)
    assert progress is not None
    progress.clear(0)
    progress.clear(1)
    dying = context.Process(target=progress.lock.acquire)  # exits holding the lock
    dying.start()
    dying.join()
    started = time.monotonic()
    assert not progress.take_back(0)
    assert progress.start(1)  # a worker reads what it was given
    assert progress.started_at(1) is not None
    assert time.monotonic() - started < 2.0


def test_workers_are_gone_when_read_returns_though_they_exit_in_the_background(
    monkeypatch, tmp_path
):
    import multiprocessing
    import threading
    import time
    from concurrent.futures import ProcessPoolExecutor

    from tbreport.reading import reader

    logdir = _small_runs(tmp_path / "many", count=20, seed=5)
    monkeypatch.setattr(pool, "EARLY_BATCH_BYTES", 1)  # the workers start during the walk
    real_shutdown = ProcessPoolExecutor.shutdown

    def slow_shutdown(self, *args, **kwargs):  # workers that take long to exit
        time.sleep(0.3)
        real_shutdown(self, *args, **kwargs)

    monkeypatch.setattr(ProcessPoolExecutor, "shutdown", slow_shutdown)

    def stopping() -> bool:
        return "tbreport-pool-stop" in [thread.name for thread in threading.enumerate()]

    stopping_while_combined = []
    real_combine = reader.combine

    def combine(*args, **kwargs):
        stopping_while_combined.append(stopping())
        return real_combine(*args, **kwargs)

    monkeypatch.setattr(reader, "combine", combine)
    tbreport.read(logdir, jobs=2)
    assert stopping_while_combined == [True]
    assert not stopping()
    assert multiprocessing.active_children() == []
    # Also when reading stops with an error.
    monkeypatch.setattr(reader, "combine", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tbreport.read(logdir, jobs=2)
    assert not stopping()
    assert multiprocessing.active_children() == []


def _with_split_runs(logdir: Path) -> Path:
    """``logdir`` plus Keras splits and ``add_scalars`` series: runs whose logical run depends
    on the directories beside them."""
    for split in ("train", "validation"):
        write_run(logdir / "keras" / split, scalar_series("epoch_loss", range(4)))
    for series in ("a", "b"):
        write_run(logdir / "pt" / f"Loss_{series}", scalar_series("Loss", range(3)))
    return logdir


def _read_run_data(logdir: Path) -> list[assemble.RunData]:
    from tbreport.reading.reader import read_runs

    return read_runs(discover_runs(logdir)[0], jobs=1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_runs_combined_in_any_batches_equal_runs_combined_at_once(logdir, seed):
    """Batches of any runs, in any order, some not following the runs' order: the same frames
    and inventory as one batch of all (split runs are classified with all runs known)."""
    _with_split_runs(logdir)
    whole = assemble.combine("x", _read_run_data(logdir))
    run_data = _read_run_data(logdir)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(run_data))
    cuts = sorted(rng.choice(np.arange(1, len(run_data)), size=6, replace=False).tolist())
    groups = np.split(order, cuts)
    batches = [runbatch.RunBatch.of([run_data[k] for k in group]) for group in groups]
    assert any((np.diff(g) != 1).any() for g in groups)  # the rows must be reordered
    batched = assemble.combine("x", run_data, batches=batches)
    for name in ("scalars", "histograms", "text", "runs", "hparams"):
        pd.testing.assert_frame_equal(getattr(whole, name), getattr(batched, name))
    kinds = dict(zip(batched.runs["run"], batched.runs["subrun_kind"], strict=True))
    assert kinds["keras/train"] == "keras-split"
    assert kinds["pt/Loss_a"] == "add-scalars"


def test_batches_must_hold_each_run_once(logdir):
    run_data = _read_run_data(logdir)
    short = [runbatch.RunBatch.of(run_data[1:])]
    with pytest.raises(ValueError, match="each run exactly once"):
        assemble.combine("x", run_data, batches=short)


def test_a_batch_gives_each_run_its_columns_back(logdir):
    run_data = _read_run_data(logdir)
    before = [[getattr(rd, name).copy() for name in runbatch.SCALAR_COLUMNS] for rd in run_data]
    batch = runbatch.RunBatch.of(run_data)
    assert all(len(rd.scalar_step) == 0 for rd in run_data)  # the batch holds them
    assert len(batch.scalar_step) == sum(len(columns[1]) for columns in before)
    batch.give_back_columns()
    for rd, columns in zip(run_data, before, strict=True):
        for name, column in zip(runbatch.SCALAR_COLUMNS, columns, strict=True):
            assert getattr(rd, name).tolist() == column.tolist(), name


def test_a_read_without_hyperparameters_gets_frames_of_its_own(logdir):
    """The empty hparams frames are built once and copied: equal to building them, and one
    read's frame changed leaves the next read's alone."""
    from tbreport.reading import hparams

    first, second = tbreport.read(logdir, jobs=1), tbreport.read(logdir, jobs=1)
    assert first.hparam_records.empty
    assert first.hparams.empty
    pd.testing.assert_frame_equal(first.hparam_records, hparams._records_frame([]))
    pd.testing.assert_frame_equal(first.hparams, pd.DataFrame([], columns=["run"]))
    first.hparam_records["extra"] = 1
    assert list(second.hparam_records.columns) == list(hparams.HPARAM_RECORD_COLUMNS)
    third = tbreport.read(logdir, jobs=1)
    assert list(third.hparam_records.columns) == list(hparams.HPARAM_RECORD_COLUMNS)


def test_a_few_runs_read_by_a_pool_are_combined_from_its_batches(monkeypatch, tmp_path):
    """Too few runs to start workers during the walk: read by a pool afterwards, and combined
    from the batches it read (not batched once more), with the same frames as jobs=1."""
    from tbreport.reading import reader

    for k in range(3):
        write_run(tmp_path / f"run{k}", scalar_series("loss", range(5 + k)))
    one = tbreport.read(tmp_path, jobs=1)
    given: list = []
    real_combine = reader.combine

    def combine(*args, **kwargs):
        given.append(kwargs.get("batches"))
        return real_combine(*args, **kwargs)

    monkeypatch.setattr(reader, "combine", combine)
    two = tbreport.read(tmp_path, jobs=2)
    (batches,) = given
    assert batches is not None
    assert sum(len(batch.runs) for batch in batches) == 3
    for name in ("scalars", "runs"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))
