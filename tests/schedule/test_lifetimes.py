import pytest

from tests.schedule.helpers import buf, chain, program, step
from tinytrain import TinytrainError
from tinytrain.program import Storage
from tinytrain.schedule import ALIGN, compute_lifetimes
from tinytrain.schedule.lifetimes import align_up


def test_chain_lifetimes_first_write_to_last_read():
    lts = compute_lifetimes(chain([10, 20, 30]))
    assert set(lts) == {"a0", "a1", "a2"}  # the INPUT buffer is not in the arena
    assert lts["a0"].intervals == [(0, 1)]
    assert lts["a1"].intervals == [(1, 2)]
    assert lts["a2"].intervals == [(2, 2)]  # read by no later step: dies at its producer


def test_sizes_are_aligned():
    lts = compute_lifetimes(chain([10, 16, 1]))
    assert [lts[n].size for n in ("a0", "a1", "a2")] == [16, 16, 8]
    assert all(lt.size % ALIGN == 0 for lt in lts.values())
    assert align_up(0) == 0 and align_up(9) == 16


def test_in_place_output_shares_slot_and_extends_lifetime():
    p = program(
        [buf("in", 8, Storage.INPUT), buf("x", 100), buf("y", 50)],
        [step(["in"], ["x"]), step(["x"], ["x"]), step(["x"], ["y"]), step(["y"], ["y"])],
    )
    lts = compute_lifetimes(p)
    assert lts["x"].intervals == [(0, 2)]
    assert lts["y"].intervals == [(2, 3)]


def test_long_lived_saved_activation():
    # a0 saved for the backward step 3
    p = program(
        [buf("in", 8, Storage.INPUT), buf("a0", 64, role="saved"), buf("a1", 64), buf("g", 32, role="grad")],
        [
            step(["in"], ["a0"]),
            step(["a0"], ["a1"]),
            step(["a1"], ["g"], phase="loss"),
            step(["g", "a0"], ["g"], phase="backward"),
        ],
    )
    lts = compute_lifetimes(p)
    assert lts["a0"].intervals == [(0, 3)]
    assert lts["a1"].intervals == [(1, 2)]
    assert lts["g"].intervals == [(2, 3)]


def test_scratch_lives_only_during_its_steps():
    p = program(
        [
            buf("in", 8, Storage.INPUT),
            buf("a", 64),
            buf("b", 64),
            buf("c", 64),
            buf("s", 500, role="scratch"),
        ],
        [step(["in", "s"], ["a", "s"]), step(["a"], ["b"]), step(["b", "s"], ["c", "s"])],
    )
    lts = compute_lifetimes(p)
    assert lts["s"].intervals == [(0, 0), (2, 2)]
    assert not lts["s"].live_at(1)
    assert lts["s"].overlaps(lts["b"])  # b lives [1, 2], s at step 2


def test_read_before_write_is_an_error():
    p = program([buf("in", 8, Storage.INPUT), buf("a", 8), buf("b", 8)], [step(["b"], ["a"])])
    with pytest.raises(TinytrainError, match="before any step writes it"):
        compute_lifetimes(p)


def test_unknown_buffer_is_an_error():
    p = program([buf("in", 8, Storage.INPUT), buf("a", 8)], [step(["nope"], ["a"])])
    with pytest.raises(TinytrainError, match="unknown buffer 'nope'"):
        compute_lifetimes(p)


def test_flash_and_sram_buffers_are_not_planned():
    p = program(
        [
            buf("in", 8, Storage.INPUT),
            buf("w", 100, Storage.FLASH, role="weight"),
            buf("wt", 100, Storage.SRAM, role="weight"),
            buf("a", 8),
        ],
        [step(["in", "w"], ["a"]), step(["a"], ["wt"], phase="update")],
    )
    assert set(compute_lifetimes(p)) == {"a"}


def test_inference_schedule_is_a_separate_run():
    train = [step(["in"], ["a"]), step(["a"], ["b"])]
    infer = [step(["in"], ["a"]), step(["a"], ["b"])]
    p = program([buf("in", 8, Storage.INPUT), buf("a", 64), buf("b", 64)], train, infer)
    lts = compute_lifetimes(p)
    assert lts["a"].intervals == [(0, 1), (2, 3)]
    # an inference step reading a buffer the inference run never wrote is an error
    p2 = program([buf("in", 8, Storage.INPUT), buf("a", 64), buf("b", 64)], train, [step(["a"], ["b"])])
    with pytest.raises(TinytrainError, match="before any step writes it"):
        compute_lifetimes(p2)


def test_kernel_scratch_is_asked_from_the_kernel(monkeypatch):
    import tinytrain.kernels as K

    def fake_scratch_bytes(x: tuple, stride: int) -> int:
        return x[0] // stride

    monkeypatch.setattr(K, "fakeconv_scratch_bytes", fake_scratch_bytes, raising=False)
    p = program(
        [buf("in", 8, Storage.INPUT), buf("a", 64), buf("b", 64)],
        [step(["in"], ["a"]), step(["a"], ["b"], kernel="fakeconv")],
    )
    p.steps[1].inputs = {"x": "a"}
    p.steps[1].attrs = {"stride": 2, "neg_lr": "$neg_lr"}
    lts = compute_lifetimes(p)
    assert lts["scratch#1:fakeconv"].nbytes == 32
    assert lts["scratch#1:fakeconv"].intervals == [(1, 1)]
