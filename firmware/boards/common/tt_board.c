/* The board layer behind tt_board.h: formatter, metrics protocol, instruction counter, phases, stack
 * high-water mark, semihosting exit and file I/O. Board specifics come in as defines from board.json:
 * TT_BOARD_NAME, TT_CLOCK_HZ, TT_INSTR_PER_TICK_NUM / _DEN, TT_UART_BASE. */
#include <stdarg.h>
#include <stdint.h>

#include "board_internal.h"
#include "tt_board.h"

#ifndef TT_BOARD_NAME
#error "TT_BOARD_NAME must be defined"
#endif

extern uint32_t __stack_bottom, __stack_top;

/* ---- semihosting ---------------------------------------------------------------------------- */

int tt_semihost(int op, void *arg) {
  register int r0 __asm("r0") = op;
  register void *r1 __asm("r1") = arg;
  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

static size_t tt_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

int tt_sh_open(const char *path, int mode) {
  uint32_t block[3] = {(uint32_t)(uintptr_t)path, (uint32_t)mode, (uint32_t)tt_strlen(path)};
  return tt_semihost(0x01, block);
}

int tt_sh_close(int fd) {
  uint32_t block[1] = {(uint32_t)fd};
  return tt_semihost(0x02, block);
}

int tt_sh_write(int fd, const void *buf, size_t n) {
  uint32_t block[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)n};
  int left = tt_semihost(0x05, block); /* bytes NOT written */
  return left < 0 ? -1 : (int)n - left;
}

int tt_sh_read(int fd, void *buf, size_t n) {
  uint32_t block[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)buf, (uint32_t)n};
  int left = tt_semihost(0x06, block); /* bytes NOT read */
  return left < 0 ? -1 : (int)n - left;
}

long tt_sh_flen(int fd) {
  uint32_t block[1] = {(uint32_t)fd};
  return tt_semihost(0x0C, block);
}

int tt_sh_seek(int fd, long pos) {
  uint32_t block[2] = {(uint32_t)fd, (uint32_t)pos};
  return tt_semihost(0x0A, block);
}

/* ---- instruction counter -------------------------------------------------------------------- */

uint64_t tt_ticks(void) {
  uint32_t w1, w2, v;
  do {
    w1 = tt_systick_wraps;
    v = SYST_CVR;
    w2 = tt_systick_wraps;
  } while (w1 != w2);
  return (uint64_t)w1 * (TT_SYSTICK_RELOAD + 1u) + (TT_SYSTICK_RELOAD - v);
}

uint64_t tt_instret(void) {
  uint64_t t = tt_ticks();
#if TT_INSTR_PER_TICK_DEN == 1
  return t * TT_INSTR_PER_TICK_NUM;
#else
  return t * TT_INSTR_PER_TICK_NUM / TT_INSTR_PER_TICK_DEN;
#endif
}

/* ---- stack ---------------------------------------------------------------------------------- */

void tt_stack_paint(void) {
  uint32_t *sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  for (uint32_t *p = &__stack_bottom; p < sp; p++) *(volatile uint32_t *)p = TT_STACK_PAINT;
}

uint32_t tt_stack_size(void) { return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_bottom); }

uint32_t tt_stack_high_water(void) {
  const volatile uint32_t *p = &__stack_bottom;
  while (p < &__stack_top && *p == TT_STACK_PAINT) p++;
  return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}

/* ---- formatter ------------------------------------------------------------------------------ */

typedef struct {
  void (*put)(void *ctx, char c);
  void *ctx;
  int count;
} tt_sink;

static void sink_put(tt_sink *s, char c) {
  s->put(s->ctx, c);
  s->count++;
}

static void sink_pad(tt_sink *s, char c, int n) {
  while (n-- > 0) sink_put(s, c);
}

static void fmt_str(tt_sink *s, const char *str, int len, int width, int left, char pad) {
  if (!left) sink_pad(s, pad, width - len);
  for (int i = 0; i < len; i++) sink_put(s, str[i]);
  if (left) sink_pad(s, ' ', width - len);
}

static void fmt_uint(tt_sink *s, uint64_t v, unsigned base, int upper, int neg, int width, int left,
                     char pad, int prec) {
  char buf[24];
  int n = 0;
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    buf[n++] = digits[v % base];
    v /= base;
  } while (v);
  while (n < prec && n < (int)sizeof buf) buf[n++] = '0';
  int len = n + (neg ? 1 : 0);
  if (neg && pad == '0') sink_put(s, '-');
  if (!left) sink_pad(s, pad, width - len);
  if (neg && pad != '0') sink_put(s, '-');
  while (n) sink_put(s, buf[--n]);
  if (left) sink_pad(s, ' ', width - len);
}

static void fmt_double(tt_sink *s, double x, int prec, char conv, int width, int left) {
  char buf[48];
  int n = 0;
  if (x != x) {
    fmt_str(s, "nan", 3, width, left, ' ');
    return;
  }
  int neg = x < 0 || (x == 0 && 1.0 / x < 0);
  if (neg) x = -x;
  if (x > 1.7e308) {
    fmt_str(s, neg ? "-inf" : "inf", neg ? 4 : 3, width, left, ' ');
    return;
  }
  if (prec > 17) prec = 17;
  int exp10 = 0;
  if (conv == 'e' && x != 0) {
    while (x >= 10.0) { x /= 10.0; exp10++; }
    while (x < 1.0) { x *= 10.0; exp10--; }
  }
  double rnd = 0.5;
  for (int i = 0; i < prec; i++) rnd /= 10.0;
  x += rnd;
  if (conv == 'e' && x >= 10.0) { x /= 10.0; exp10++; }
  if (neg) buf[n++] = '-';
  if (x >= 1.8446744073709552e19) { /* too big for %f: fall back to %e */
    fmt_double(s, neg ? -x : x, prec, 'e', width, left);
    return;
  }
  uint64_t ip = (uint64_t)x;
  double frac = x - (double)ip;
  char ibuf[24];
  int in = 0;
  do { ibuf[in++] = (char)('0' + ip % 10); ip /= 10; } while (ip);
  while (in) buf[n++] = ibuf[--in];
  if (prec > 0) {
    buf[n++] = '.';
    for (int i = 0; i < prec; i++) {
      frac *= 10.0;
      int d = (int)frac;
      if (d > 9) d = 9;
      buf[n++] = (char)('0' + d);
      frac -= d;
    }
  }
  if (conv == 'e') {
    buf[n++] = 'e';
    buf[n++] = exp10 < 0 ? '-' : '+';
    if (exp10 < 0) exp10 = -exp10;
    if (exp10 >= 100) buf[n++] = (char)('0' + exp10 / 100);
    buf[n++] = (char)('0' + (exp10 / 10) % 10);
    buf[n++] = (char)('0' + exp10 % 10);
  }
  fmt_str(s, buf, n, width, left, ' ');
}

static int tt_vformat(tt_sink *s, const char *fmt, va_list ap) {
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      sink_put(s, *fmt);
      continue;
    }
    fmt++;
    int left = 0, width = 0, prec = -1, lng = 0;
    char pad = ' ';
    for (;; fmt++) {
      if (*fmt == '-') left = 1;
      else if (*fmt == '0') pad = '0';
      else break;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    if (*fmt == '*') { width = va_arg(ap, int); fmt++; }
    if (*fmt == '.') {
      fmt++;
      prec = 0;
      while (*fmt >= '0' && *fmt <= '9') prec = prec * 10 + (*fmt++ - '0');
    }
    while (*fmt == 'l' || *fmt == 'z' || *fmt == 'h') {
      if (*fmt == 'l') lng++;
      if (*fmt == 'z') lng = 1;
      fmt++;
    }
    if (left) pad = ' ';
    switch (*fmt) {
      case 'd':
      case 'i': {
        int64_t v = lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
        fmt_uint(s, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, 0, v < 0, width, left, pad, prec);
        break;
      }
      case 'u':
      case 'x':
      case 'X': {
        uint64_t v = lng >= 2   ? va_arg(ap, unsigned long long)
                     : lng == 1 ? va_arg(ap, unsigned long)
                                : va_arg(ap, unsigned int);
        fmt_uint(s, v, *fmt == 'u' ? 10 : 16, *fmt == 'X', 0, width, left, pad, prec);
        break;
      }
      case 'p':
        sink_put(s, '0');
        sink_put(s, 'x');
        fmt_uint(s, (uintptr_t)va_arg(ap, void *), 16, 0, 0, 8, 0, '0', -1);
        break;
      case 'c': {
        char c = (char)va_arg(ap, int);
        fmt_str(s, &c, 1, width, left, ' ');
        break;
      }
      case 's': {
        const char *str = va_arg(ap, const char *);
        if (!str) str = "(null)";
        int len = (int)tt_strlen(str);
        if (prec >= 0 && prec < len) len = prec;
        fmt_str(s, str, len, width, left, ' ');
        break;
      }
      case 'f':
      case 'e':
        fmt_double(s, va_arg(ap, double), prec < 0 ? 6 : prec, *fmt, width, left);
        break;
      case '%':
        sink_put(s, '%');
        break;
      case '\0':
        return s->count;
      default:
        sink_put(s, '%');
        sink_put(s, *fmt);
    }
  }
  return s->count;
}

/* ---- output --------------------------------------------------------------------------------- */

void tt_putc(char c) {
  if (c == '\n') tt_uart_putc('\r');
  tt_uart_putc(c);
}

void tt_puts(const char *s) {
  while (*s) tt_putc(*s++);
}

static void uart_sink(void *ctx, char c) {
  (void)ctx;
  tt_putc(c);
}

int tt_vprintf(const char *fmt, va_list ap) {
  tt_sink s = {uart_sink, 0, 0};
  return tt_vformat(&s, fmt, ap);
}

int tt_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = tt_vprintf(fmt, ap);
  va_end(ap);
  return n;
}

typedef struct {
  char *buf;
  size_t size, pos;
} tt_buf;

static void buf_sink(void *ctx, char c) {
  tt_buf *b = (tt_buf *)ctx;
  if (b->pos + 1 < b->size) b->buf[b->pos] = c;
  b->pos++;
}

int tt_snprintf(char *buf, size_t size, const char *fmt, ...) {
  tt_buf b = {buf, size, 0};
  tt_sink s = {buf_sink, &b, 0};
  va_list ap;
  va_start(ap, fmt);
  int n = tt_vformat(&s, fmt, ap);
  va_end(ap);
  if (size) buf[b.pos < size ? b.pos : size - 1] = '\0';
  return n;
}

void tt_emit(const char *json_fmt, ...) {
  tt_puts("TT ");
  va_list ap;
  va_start(ap, json_fmt);
  tt_vprintf(json_fmt, ap);
  va_end(ap);
  tt_putc('\n');
}

void tt_metric_int(const char *name, int64_t value) {
  tt_emit("{\"ev\":\"metric\",\"name\":\"%s\",\"value\":%lld}", name, (long long)value);
}

void tt_metric_float(const char *name, float value) {
  union {
    float f;
    uint32_t u;
  } bits = {value};
  if (value != value || value > 3.4e38f || value < -3.4e38f) /* JSON has no nan/inf */
    tt_emit("{\"ev\":\"metric\",\"name\":\"%s\",\"value\":null,\"bits\":\"0x%08lx\"}", name,
            (unsigned long)bits.u);
  else
    tt_emit("{\"ev\":\"metric\",\"name\":\"%s\",\"value\":%.9e,\"bits\":\"0x%08lx\"}", name, (double)value,
            (unsigned long)bits.u);
}

/* ---- board, phases, exit -------------------------------------------------------------------- */

const char *tt_board_name(void) { return TT_BOARD_NAME; }
uint32_t tt_board_clock_hz(void) { return TT_CLOCK_HZ; }

void tt_board_init(void) {
  tt_uart_init();
  tt_emit("{\"ev\":\"boot\",\"board\":\"%s\",\"clock_hz\":%lu,\"instr_per_tick\":[%u,%u],\"stack_size\":%lu}",
          TT_BOARD_NAME, (unsigned long)TT_CLOCK_HZ, (unsigned)TT_INSTR_PER_TICK_NUM,
          (unsigned)TT_INSTR_PER_TICK_DEN, (unsigned long)tt_stack_size());
}

static uint64_t phase_start[TT_PHASE_DEPTH];
static int phase_depth;

/* The SysTick bookkeeping of tt_phase_begin/tt_phase_end; the public entry points are the assembly stubs
 * below, which carry the phase markers the ttprof plugin watches. */
__attribute__((used, noinline)) void tt__phase_begin_systick(const char *name) {
  (void)name;
  if (phase_depth < TT_PHASE_DEPTH) phase_start[phase_depth] = tt_instret();
  phase_depth++;
}

__attribute__((used, noinline)) uint64_t tt__phase_end_systick(const char *name) {
  uint64_t now = tt_instret();
  if (phase_depth <= 0) {
    tt_emit("{\"ev\":\"error\",\"msg\":\"tt_phase_end(%s) without tt_phase_begin\"}", name);
    return 0;
  }
  phase_depth--;
  uint64_t n = phase_depth < TT_PHASE_DEPTH ? now - phase_start[phase_depth] : 0;
  tt_emit("{\"ev\":\"phase\",\"name\":\"%s\",\"instr\":%llu,\"depth\":%d}", name, (unsigned long long)n,
          phase_depth);
  return n;
}

/* Phase markers for exact counts (emulation/plugin/ttprof.c). The plugin cannot read registers, so each
 * marker is a byte load from the phase name: a memory callback on that one instruction sees the name's
 * address (the phase's key) and the exact instruction count at that point.
 *   tt__mark_begin      `ldrb r1, [r0]` the last instruction of tt_phase_begin before its return,
 *   tt__mark_begin_ret  `bx lr`         after the SysTick bookkeeping;
 *   tt__mark_end        `ldrb r1, [r0]` the first instruction of tt_phase_end, before its bookkeeping.
 * So a phase's exact count is the instructions the caller runs from the return of tt_phase_begin to the
 * entry of tt_phase_end (the call of tt_phase_end and its argument set-up included); the three marker
 * instructions themselves belong to no phase. r1 is a scratch register in the AAPCS, r0 is preserved. */
__asm__(
    "  .pushsection .text.tt_phase_begin,\"ax\",%progbits\n"
    "  .syntax unified\n"
    "  .thumb\n"
    "  .global tt_phase_begin\n"
    "  .type tt_phase_begin, %function\n"
    "  .thumb_func\n"
    "tt_phase_begin:\n"
    "  push {r0, lr}\n"
    "  bl tt__phase_begin_systick\n"
    "  pop {r0, lr}\n"
    "  .global tt__mark_begin\n"
    "tt__mark_begin:\n"
    "  ldrb r1, [r0]\n"
    "  .global tt__mark_begin_ret\n"
    "tt__mark_begin_ret:\n"
    "  bx lr\n"
    "  .size tt_phase_begin, . - tt_phase_begin\n"
    "  .popsection\n"
    "  .pushsection .text.tt_phase_end,\"ax\",%progbits\n"
    "  .global tt_phase_end\n"
    "  .type tt_phase_end, %function\n"
    "  .thumb_func\n"
    "tt_phase_end:\n"
    "  .global tt__mark_end\n"
    "tt__mark_end:\n"
    "  ldrb r1, [r0]\n"
    "  b.w tt__phase_end_systick\n"
    "  .size tt_phase_end, . - tt_phase_end\n"
    "  .popsection\n");

void tt_exit(int status) {
  uint64_t instr = tt_instret();
  uint32_t hw = tt_stack_high_water();
  uint32_t size = tt_stack_size();
  if (status == 0 && hw >= size) status = TT_EXIT_STACK_OVERFLOW;
  tt_uart_init();
  tt_emit("{\"ev\":\"exit\",\"status\":%d,\"instr\":%llu,\"stack_hw\":%lu,\"stack_size\":%lu}", status,
          (unsigned long long)instr, (unsigned long)hw, (unsigned long)size);
  uint32_t block[2] = {0x20026u, (uint32_t)status}; /* ADP_Stopped_ApplicationExit, status */
  tt_semihost(0x20, block);                         /* SYS_EXIT_EXTENDED */
  for (;;) {
  }
}
