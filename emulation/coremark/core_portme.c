/* core_portme.c: tinytrain's EEMBC CoreMark 1.0 port for the emulated boards (see core_portme.h). */
#include "coremark.h"

#ifndef ITERATIONS
#define ITERATIONS 10
#endif

/* Seeds of the performance run (seed1 = seed2 = 0, seed3 = 0x66: the standard "2K performance run" of CoreMark). */
volatile ee_s32 seed1_volatile = 0x0;
volatile ee_s32 seed2_volatile = 0x0;
volatile ee_s32 seed3_volatile = 0x66;
volatile ee_s32 seed4_volatile = ITERATIONS;
volatile ee_s32 seed5_volatile = 0;

ee_u32 default_num_contexts = 1;

static CORETIMETYPE start_ticks, stop_ticks;

/* The timed region is the firmware phase "coremark": the ttprof plugin counts it exactly. */
void start_time(void) {
  tt_phase_begin("coremark");
  start_ticks = (CORETIMETYPE)tt_ticks();
}

void stop_time(void) {
  stop_ticks = (CORETIMETYPE)tt_ticks();
  tt_phase_end("coremark");
}

CORE_TICKS get_time(void) { return (CORE_TICKS)(stop_ticks - start_ticks); }

/* Seconds of EMULATED time (SysTick at the board's emulated rate), not of a real chip. */
secs_ret time_in_secs(CORE_TICKS ticks) { return (secs_ret)ticks / (secs_ret)TT_SYSTICK_HZ; }

void portable_init(core_portable *p, int *argc, char *argv[]) {
  (void)argc;
  (void)argv;
  tt_board_init();
  if (sizeof(ee_ptr_int) != sizeof(ee_u8 *)) ee_printf("ERROR! Please define ee_ptr_int to a type that holds a pointer!\n");
  if (sizeof(ee_u32) != 4) ee_printf("ERROR! Please define ee_u32 to a 32b unsigned type!\n");
  tt_printf("coremark: iterations %ld\n", (long)seed4_volatile);
  p->portable_id = 1;
}

void portable_fini(core_portable *p) { p->portable_id = 0; }
