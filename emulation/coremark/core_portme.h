/* core_portme.h: tinytrain's EEMBC CoreMark 1.0 port for the emulated boards (emulation/coremark).
 *
 * The CoreMark core files are compiled unmodified from the shared third-party copy; only this header and
 * core_portme.c are ours. Output goes through the board layer's tt_printf (firmware/include/tt_board.h).
 * Timing: the timed region (start_time .. stop_time) is one firmware phase named "coremark", so the ttprof
 * plugin counts its instructions exactly, by class; get_time() returns SysTick ticks (emulated time, not
 * cycles of a real chip). ITERATIONS is set by the build (-DITERATIONS=N). */
#ifndef CORE_PORTME_H
#define CORE_PORTME_H

#include <stddef.h>
#include <stdint.h>

#include "tt_board.h"

#define HAS_FLOAT 1
#define HAS_TIME_H 0
#define USE_CLOCK 0
#define HAS_STDIO 0
#define HAS_PRINTF 0
#define MAIN_HAS_NOARGC 1
#define MAIN_HAS_NORETURN 0

#ifndef COMPILER_VERSION
#define COMPILER_VERSION "GCC" __VERSION__
#endif
#ifndef FLAGS_STR
#define FLAGS_STR "see emulation.build (board cflags + COMMON_CFLAGS)"
#endif
#define COMPILER_FLAGS FLAGS_STR
#define MEM_LOCATION "STATIC"

typedef signed short ee_s16;
typedef unsigned short ee_u16;
typedef signed int ee_s32;
typedef double ee_f32;
typedef unsigned char ee_u8;
typedef unsigned int ee_u32;
typedef uintptr_t ee_ptr_int;
typedef size_t ee_size_t;

#define align_mem(x) (void *)(4 + (((ee_ptr_int)(x)-1) & ~3))

#define CORETIMETYPE ee_u32
typedef ee_u32 CORE_TICKS;

#define SEED_METHOD SEED_VOLATILE
#define MEM_METHOD MEM_STATIC
#define MULTITHREAD 1
#define USE_PTHREAD 0
#define USE_FORK 0
#define USE_SOCKET 0

typedef struct CORE_PORTABLE_S {
  ee_u8 portable_id;
} core_portable;

extern ee_u32 default_num_contexts;
void portable_init(core_portable *p, int *argc, char *argv[]);
void portable_fini(core_portable *p);

#if !defined(PROFILE_RUN) && !defined(PERFORMANCE_RUN) && !defined(VALIDATION_RUN)
#define PERFORMANCE_RUN 1
#endif

#define ee_printf tt_printf

#endif /* CORE_PORTME_H */
