"""Per-image test results in rows and the paired test-image bootstrap computed from them: the
bits round-trip, give the row's u and s (a forged row is refused on every route), and the
bootstrap is paired, class-stratified, reproducible and judges ties with the seed interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from zsbench_calibrators import calibrated_stacking, metric_rescaling

from zsbench import Scores
from zsbench.evaluation.calibration import per_image, sweep
from zsbench.site.leaderboard import write_leaderboard
from zsbench.store import comparisons as cmp
from zsbench.store.rows import RowError, check_rows, pack_bits, per_class_means, problems, unpack_bits
from zsbench.store.sqlite import ResultStore
from zsbench.store.summary import summarize

pytestmark = pytest.mark.usefixtures("exact_unmeasured")


@given(st.lists(st.booleans(), max_size=300))
def test_bits_round_trip_whatever_their_number(bits):
    packed = pack_bits(bits)
    assert unpack_bits(packed, len(bits)).tolist() == bits
    assert len(packed) <= 4 * ((len(bits) + 7) // 8 + 2) // 3  # one bit an image, in base64
    if bits:
        with pytest.raises(ValueError, match="bytes"):
            unpack_bits(packed, len(bits) + 8)


def test_set_padding_bits_and_text_that_is_not_base64_are_refused():
    with pytest.raises(ValueError, match="padding"):
        unpack_bits(pack_bits([True] * 8), 5)
    with pytest.raises(ValueError, match="base64"):
        unpack_bits("not base64!", 3)


def group(per_class: list[list[bool]], first_class: int = 0) -> dict:
    """A per_image group: one list of correctness bits per class, classes numbered from first_class."""
    return {"classes": list(range(first_class, first_class + len(per_class))), "sizes": [len(c) for c in per_class],
            "bits": pack_bits([b for c in per_class for b in c])}


def row(unseen: list[list[bool]], seen: list[list[bool]], seed: int = 0, method: str = "m", **over) -> dict:
    """A valid result row whose u and s are those of its per-image bits."""
    groups = {"unseen": group(unseen, 0), "seen": group(seen, 100)}
    u = float(per_class_means(groups["unseen"]).mean()) if unseen else 0.0
    s = float(per_class_means(groups["seen"]).mean()) if seen else 0.0
    out = {"run_key": f"{method}-{seed}", "spec_name": "s", "spec_hash": "h", "dataset": "d", "dataset_plugin": "d",
           "method": method, "method_plugin": method, "calibrator": "none", "seed": seed, "u": u, "s": s,
           "H": 0.0 if u + s == 0 else 2 * u * s / (u + s), "zsl": u, "val_u": 0.5, "val_s": 0.5, "val_H": 0.5,
           "calibration_param": None, "hyperparameters": {}, "sweep": {}, "provenance": {}, "side_information": "att",
           "features": "f", "wall_time": 1.0, "per_image": groups}
    out.update(over)
    return out


classes = st.lists(st.lists(st.booleans(), min_size=1, max_size=12), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(classes, classes)
def test_a_row_whose_bits_give_its_numbers_passes_and_a_forged_one_is_refused(unseen, seen):
    honest = row(unseen, seen)
    assert problems(honest) == []
    flipped = [list(c) for c in unseen]
    flipped[0][0] = not flipped[0][0]  # one image's result changed, the row's numbers kept
    forged = {**honest, "per_image": {**honest["per_image"], "unseen": group(flipped)}}
    assert any("the bits give u" in p for p in problems(forged))
    with pytest.raises(RowError, match="per_image.unseen"):
        check_rows([("rows.jsonl: line 1", forged)])


def test_sizes_and_bits_that_disagree_and_shared_classes_are_refused():
    honest = row([[True, False]], [[True]])
    bad_sizes = {**honest, "per_image": {**honest["per_image"], "unseen": {**honest["per_image"]["unseen"],
                                                                          "sizes": [2, 1]}}}
    assert any("per_image.unseen.sizes" in p for p in problems(bad_sizes))
    too_many = {**honest, "per_image": {**honest["per_image"], "seen": {**honest["per_image"]["seen"],
                                                                       "sizes": [9]}}}
    assert any("per_image.seen.bits: 1 bytes, expected 2" in p for p in problems(too_many))
    shared = {**honest, "per_image": {"unseen": honest["per_image"]["unseen"],
                                      "seen": {**honest["per_image"]["seen"], "classes": [0]}}}
    assert any("both seen and unseen" in p for p in problems(shared))
    assert any("per_image: expected an object" in p for p in problems({**honest, "per_image": {"seen": 1}}))
    assert problems({**honest, "per_image": None}) == []  # rows written before the field have none


def test_the_store_keeps_the_bits_and_refuses_a_forged_row(tmp_path):
    from support.store import row as stored_row

    honest = row([[True, False], [True]], [[True, True, False]])
    per_image_fields = {k: honest[k] for k in ("u", "s", "H", "per_image")}
    with ResultStore(tmp_path / "r.sqlite") as store:
        store.write_run([stored_row(**per_image_fields), stored_row(key="old")])
        rows = {r["run_key"]: r for r in store.rows()}
        assert rows["k1"]["per_image"] == honest["per_image"] and rows["old"]["per_image"] is None
        forged = stored_row(key="f", **{**per_image_fields, "u": 0.25, "H": 2 * 0.25 * honest["s"] / (0.25 + honest["s"])})
        with pytest.raises(RowError, match="the bits give u"):
            store.write_run([forged])


def random_problem(seed: int, n: int, k: int, n_seen: int):
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, k, generator=g, dtype=torch.float64) * 3
    return Scores(values, is_distance=True), torch.randint(0, k, (n,), generator=g), torch.arange(k) < n_seen


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 9), st.integers(1, 60))
def test_the_bits_at_the_chosen_parameter_give_the_sweeps_u_and_s(seed, k, n):
    scores, labels, seen = random_problem(seed, n, k, max(1, k // 2))
    for calibrator in (None, metric_rescaling(0.0, 2.0, 17), calibrated_stacking(-1.0, 1.0, 17)):
        param = None if calibrator is None else float(calibrator.grid(torch.zeros(1))[seed % 17])
        result = sweep(scores, labels, seen, calibrator, None if param is None else torch.tensor([param]))
        bits = per_image(scores, labels, seen, calibrator, param)
        u, s, h = float(result.u[0]), float(result.s[0]), float(result.H[0])
        assert problems(row([], [], u=u, s=s, H=h, per_image=bits)) == []
        assert sum(bits["unseen"]["sizes"]) + sum(bits["seen"]["sizes"]) == n


def summary(rows: list[dict]):
    (out,) = summarize(rows)
    return out


@settings(max_examples=30, deadline=None)
@given(classes, classes, st.integers(0, 2**40))
def test_identical_rows_differ_by_exactly_zero_in_every_replicate(unseen, seen, seed):
    a = summary([row(unseen, seen, seed=seed, method="a")])
    b = summary([row(unseen, seen, seed=seed, method="b")])
    interval = cmp.Pair.of(a, b).bootstrap
    assert interval is not None and interval.low == interval.high == 0.0 and interval.seeds == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=1, max_size=8), st.integers(0, 1000))
def test_draws_stay_in_their_class_and_keep_its_size(sizes, seed):
    idx = cmp._draws(sizes, np.random.default_rng(seed), 50)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for c, size in enumerate(sizes):
        block = idx[:, starts[c]:starts[c + 1]]
        assert block.shape == (50, size) and (block >= starts[c]).all() and (block < starts[c + 1]).all()


def test_the_bootstrap_is_paired_antisymmetric_and_reproducible():
    rng = np.random.default_rng(0)
    unseen = [list(rng.random(20) < 0.6) for _ in range(5)]
    seen = [list(rng.random(20) < 0.8) for _ in range(5)]
    better = [list(c) for c in unseen]
    for c in better:  # a fixes three images of each unseen class, gets nothing else wrong
        for i in [i for i, ok in enumerate(c) if not ok][:3]:
            c[i] = True
    a, b = summary([row(better, seen, method="a")]), summary([row(unseen, seen, method="b")])
    ab, ba = cmp.Pair.of(a, b).bootstrap, cmp.Pair.of(b, a).bootstrap
    assert ab.low > 0  # paired: every draw that helps b helps a at least as much
    assert (ab.low, ab.high) == pytest.approx((-ba.high, -ba.low))
    cmp._replicated_h.cache_clear()
    assert cmp.Pair.of(a, b).bootstrap == ab  # a fixed generator: pages are reproducible


def test_a_seed_interval_that_excludes_zero_and_a_test_image_interval_that_contains_it_tie():
    many = [[True] * 40 for _ in range(4)]
    a_rows = [row([c[:39] + [False] for c in many[:s + 2]], many, seed=s, method="a") for s in range(3)]
    b_rows = [row([c[:38] + [False, False] for c in many[:s + 2]], many, seed=s, method="b") for s in range(3)]
    pair = cmp.Pair.of(summary(a_rows), summary(b_rows))
    d = pair.difference
    assert d.mean - d.half_width > 0  # b is one image behind in every class of every seed
    assert pair.bootstrap is not None and pair.bootstrap.low >= 0
    assert not pair.tied and pair.why == "ahead"
    # three test images a class: a redraw often misses the one image the rows disagree on
    wide = [row([[True, False, True]], [[True, False, True]], seed=s, method="c") for s in range(2)]
    narrow = [row([[True, False, False]], [[True, False, True]], seed=s, method="e") for s in range(2)]
    close = cmp.Pair.of(summary(wide), summary(narrow))
    assert close.difference.half_width == 0 and close.difference.mean > 0  # the seeds agree exactly
    assert 0 in close.bootstrap and close.why == "tied: the test-image interval contains 0"


def test_rows_of_other_test_sets_or_without_bits_are_compared_over_seeds_only():
    a = summary([row([[True, False]], [[True]], seed=s, method="a") for s in range(2)])
    other = summary([row([[True, False, True]], [[True]], seed=s, method="b") for s in range(2)])
    assert cmp.Pair.of(a, other).bootstrap is None
    old = summary([{**row([[True]], [[True]], seed=s, method="c"), "per_image": None} for s in range(2)])
    assert cmp.Pair.of(a, old).bootstrap is None


def page_rows(with_bits: bool) -> list[dict]:
    rows = []
    for method, p in (("a", 0.9), ("b", 0.6), ("c", 0.3)):
        rng = np.random.default_rng(len(method) + int(10 * p))
        for seed in range(3):
            r = row([list(rng.random(10) < p) for _ in range(4)], [list(rng.random(10) < 0.8) for _ in range(4)],
                    seed=seed, method=method)
            rows.append({**r, "id": len(rows), "curves": {}, "per_image": r["per_image"] if with_bits else None})
    return rows


@pytest.mark.parametrize("with_bits", [True, False])
def test_the_page_shows_the_test_image_interval_and_says_which_intervals_judged(tmp_path, with_bits):
    write_leaderboard(page_rows(with_bits), tmp_path, with_plots=False)
    page = (tmp_path / "d.md").read_text()
    pairs = page.split("## Paired comparisons")[1]
    assert "| pair | H difference | paired seeds | test-image interval | verdict |" in pairs
    a_vs_b = next(line for line in pairs.splitlines() if line.startswith("| a vs b |"))
    if with_bits:
        assert "Here every comparison used both intervals." in page and "[+" in a_vs_b
    else:
        assert "Here ties were judged over seeds only" in page and "| — |" in a_vs_b
