/* tt_board.h: what firmware apps (the self-test, the training firmware) use from the board layer.
 *
 * Output goes to the board's UART; machine-readable lines start with "TT " followed by one JSON object
 * on the same line (the metrics protocol, parsed by emulation.protocol). Every event has "ev":
 *   {"ev":"boot","board":"m7","clock_hz":216000000,"instr_per_tick":40}
 *   {"ev":"phase","name":"forward","instr":123456}          (tt_phase_end)
 *   {"ev":"metric","name":"loss","value":0.25}              (tt_metric_*)
 *   {"ev":"fault",...}                                      (the fault handler, then exit TT_EXIT_FAULT)
 *   {"ev":"exit","status":0,"instr":N,"stack_hw":N,"stack_size":N}   (tt_exit)
 * Anything else on the UART is free text.
 *
 * The instruction counter is SysTick on the CPU clock. QEMU runs with -icount shift=0, so virtual time
 * advances exactly one nanosecond per instruction and the count is deterministic; its resolution is one
 * SysTick period (40 instructions on the mps2 boards; 125/21 on stm32f405). For exact per-function
 * counts use the TCG plugin (emulation.plugin).
 *
 * Exact phase counts: tt_phase_begin/tt_phase_end carry marker instructions the ttprof plugin watches
 * (run_elf(..., profile=True)). The runner then replaces the SysTick count of each phase event with the
 * exact number of instructions the caller ran from the return of tt_phase_begin to the entry of
 * tt_phase_end (the call of tt_phase_end included; the three marker instructions of a nested phase
 * excluded, its bookkeeping and UART output included), and splits each phase by function and class.
 * Name phases with string literals: the plugin keys a phase by the address of its name.
 */
#ifndef TT_BOARD_H
#define TT_BOARD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exit statuses with a meaning to the runner (emulation.runner); apps use 0 for success, 1 for failure. */
#define TT_EXIT_OK 0
#define TT_EXIT_FAIL 1
#define TT_EXIT_FAULT 101         /* a CPU fault (HardFault, MemManage, BusFault, UsageFault) */
#define TT_EXIT_STACK_OVERFLOW 102 /* the painted stack was used up to its last word */
#define TT_EXIT_UNEXPECTED_IRQ 103

/* Board */
void tt_board_init(void);                      /* UART on; prints the boot event. Counter runs since reset. */
const char *tt_board_name(void);
uint32_t tt_board_clock_hz(void);              /* nominal clock of the modelled MCU (216 MHz for m7) */
void tt_exit(int status) __attribute__((noreturn)); /* prints the exit event, semihosting exit */

/* Text output */
void tt_putc(char c);
void tt_puts(const char *s);                   /* no newline added */
int tt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tt_vprintf(const char *fmt, va_list ap);
int tt_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A tiny formatter: %d %i %u %x %X %c %s %p %% with flags '-' '0', width, precision, length l/ll/z;
 * %f %e with precision (default 6), for float/double arguments. */

/* Metrics protocol */
void tt_emit(const char *json_fmt, ...) __attribute__((format(printf, 1, 2))); /* "TT " + json + "\n" */
void tt_metric_int(const char *name, int64_t value);
void tt_metric_float(const char *name, float value);   /* value printed as %.9e, plus "bits" (hex) */

/* Instruction counting */
uint64_t tt_instret(void);                     /* instructions since reset (SysTick resolution) */
uint64_t tt_ticks(void);                       /* raw SysTick ticks since reset */
void tt_phase_begin(const char *name);         /* phases nest, up to TT_PHASE_DEPTH deep; name: a literal */
uint64_t tt_phase_end(const char *name);       /* prints the phase event; returns its instructions (SysTick) */
#define TT_PHASE_DEPTH 8

/* Stack */
uint32_t tt_stack_size(void);                  /* bytes from the end of .bss to the end of RAM */
uint32_t tt_stack_high_water(void);            /* bytes of stack ever used (painted at reset) */

/* Semihosting file I/O on the host (paths relative to QEMU's working directory, the run directory). */
#define TT_SH_R 0  /* "r"  */
#define TT_SH_RB 1 /* "rb" */
#define TT_SH_W 4  /* "w"  */
#define TT_SH_WB 5 /* "wb" */
#define TT_SH_AB 9 /* "ab" */
int tt_sh_open(const char *path, int mode);    /* handle >= 0, or -1 */
int tt_sh_read(int fd, void *buf, size_t n);   /* bytes read (0 at EOF), -1 on error */
int tt_sh_write(int fd, const void *buf, size_t n); /* bytes written, -1 on error */
int tt_sh_close(int fd);
long tt_sh_flen(int fd);
int tt_sh_seek(int fd, long pos);

#ifdef __cplusplus
}
#endif
#endif /* TT_BOARD_H */
