"""The ttprof plugin's pipeline counters on hand-written instruction sequences whose counts are known:
taken / not-taken conditional branches, Cortex-M4 load pipelining and address-generation stalls, the
static Cortex-M7 dual-issue schedule (emulation/plugin/ttprof.c, docs/emulation.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulation.build import build_firmware
from emulation.runner import run_elf

from .conftest import needs_qemu

pytestmark = needs_qemu

SOURCE = r"""
#include <stdint.h>
#include "tt_board.h"

/* Cortex-M4: loads 5 (+1 literal load: none here), 2 pipelined (a load after an independent load),
 * 1 address-generation stall (address from the previous ALU result). */
__attribute__((naked, noinline)) void pipe_block(const uint32_t *p) {
  __asm__ volatile(
      "ldr r1, [r0]\n"
      "ldr r2, [r0, #4]\n"
      "adds r3, r0, #8\n"
      "ldr r2, [r3]\n"
      "ldr r1, [r0, #12]\n"
      "ldr r3, [r0, r1]\n"
      "bx lr\n");
}

/* n iterations: the BNE runs n times, taken n - 1 times. */
__attribute__((naked, noinline)) void loop_block(int n) {
  __asm__ volatile(
      "movs r1, #0\n"
      "1: adds r1, #1\n"
      "cmp r1, r0\n"
      "bne 1b\n"
      "bx lr\n");
}

/* n iterations: the BEQ is never taken (n < 200), the BNE taken n - 1 times. */
__attribute__((naked, noinline)) void skip_block(int n) {
  __asm__ volatile(
      "movs r1, #0\n"
      "1: cmp r1, #200\n"
      "beq 2f\n"
      "adds r1, #1\n"
      "cmp r1, r0\n"
      "bne 1b\n"
      "2: bx lr\n");
}

/* IT after a 16-bit CMP (folded), STR with a register offset (2 cycles on the M4) then one right after an LDR
 * (pipelined: 1), PUSH (1+N: 2 for its first word), BX LR (a register target). */
__attribute__((naked, noinline)) void misc_block(uint32_t *p) {
  __asm__ volatile(
      "movs r1, #0\n"
      "cmp r1, #0\n"
      "it eq\n"
      "moveq r1, #4\n"
      "str r1, [r0, r1]\n"
      "ldr r2, [r0]\n"
      "str r2, [r0, r1]\n"
      "push {r4, r5}\n"
      "pop {r4, r5}\n"
      "bx lr\n");
}

static uint32_t buf[4] = {1, 2, 3, 4};

int main(void) {
  tt_board_init();
  pipe_block(buf);
  loop_block(100);
  skip_block(100);
  misc_block(buf);
  return 0;
}
"""


@pytest.fixture(scope="module", params=["m4", "m7"])
def symbols(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    d: Path = tmp_path_factory.mktemp(f"pipe-{request.param}")
    src = d / "pipe.c"
    src.write_text(SOURCE)
    res = build_firmware(request.param, [src], out_dir=d / "build", name="pipe")
    rec = run_elf(res.elf, request.param, profile=True, run_dir=d / "run", timeout=30)
    assert rec.ok, rec.message
    return {"board": request.param, **rec.profile["symbols"]}  # type: ignore[index]


def test_taken_and_not_taken(symbols: dict[str, dict]) -> None:
    loop = symbols["loop_block"]["extra"]
    assert (loop["cond_branches"], loop["cond_not_taken"], loop["cond_unknown"]) == (100, 1, 0)
    assert loop["cond_minority"] == 1
    skip = symbols["skip_block"]["extra"]
    assert (skip["cond_branches"], skip["cond_not_taken"], skip["cond_unknown"]) == (200, 101, 0)
    assert skip["cond_minority"] == 1  # BEQ never taken (0), BNE once not taken (1)


def test_m4_load_pipelining_and_agu_stalls(symbols: dict[str, dict]) -> None:
    pipe = symbols["pipe_block"]
    assert pipe["classes"]["load"] == 5
    assert pipe["extra"]["m4_ls_pipelined"] == 2
    assert pipe["extra"]["m4_agu_stalls"] == 1


def test_m7_static_schedule(symbols: dict[str, dict]) -> None:
    # ldr|ldr paired (1), adds (1), ldr waits for r3 at ISS (2), ldr pairs with it (0), ldr [r0, r1] waits
    # for r1 (2), bx lr pairs with it (0): 6 issue cycles for 7 instructions
    assert symbols["pipe_block"]["extra"]["m7_issue_cycles"] == 6


def test_m4_store_it_and_branch_kinds(symbols: dict[str, dict]) -> None:
    ex = symbols["misc_block"]["extra"]
    assert (ex["it"], ex["it_folded"]) == (1, 1)
    assert ex["m4_slow_stores"] == 2  # STR r1,[r0,r1] and PUSH; not the STR right after the LDR
    assert ex["indirect_branches"] == 1 and ex["table_branches"] == 0
    assert ex["block_entries"] >= 1
    loop = symbols["loop_block"]["extra"]
    assert loop["indirect_branches"] == 1 and loop["block_entries"] >= 100  # BX LR; the loop body 100 times
