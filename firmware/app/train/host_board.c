/* tt_board.h on the host (the host-native build of the training app, for fast tests): stdout for the
 * UART, stdio files for semihosting, no instruction counter (0) and no stack measurement (0).
 * The app's main.c is compiled with -Dmain=tt_app_main; this file's main() calls it and exits like
 * the board's Reset_Handler does (tt_exit(main())). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tt_board.h"

int tt_app_main(void);

int main(void) { tt_exit(tt_app_main()); }

void tt_board_init(void) { tt_emit("{\"ev\":\"boot\",\"board\":\"host\",\"clock_hz\":0,\"instr_per_tick\":[0,1]}"); }
const char *tt_board_name(void) { return "host"; }
uint32_t tt_board_clock_hz(void) { return 0; }

void tt_exit(int status) {
  tt_emit("{\"ev\":\"exit\",\"status\":%d,\"instr\":0,\"stack_hw\":0,\"stack_size\":0}", status);
  fflush(stdout);
  exit(status);
}

void tt_putc(char c) { putchar(c); }
void tt_puts(const char *s) { fputs(s, stdout); }
int tt_vprintf(const char *fmt, va_list ap) { return vprintf(fmt, ap); }
int tt_printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}
int tt_snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

void tt_emit(const char *json_fmt, ...) {
  fputs("TT ", stdout);
  va_list ap;
  va_start(ap, json_fmt);
  vprintf(json_fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

void tt_metric_int(const char *name, int64_t value) {
  tt_emit("{\"ev\":\"metric\",\"name\":\"%s\",\"value\":%lld}", name, (long long)value);
}

void tt_metric_float(const char *name, float value) {
  uint32_t u;
  memcpy(&u, &value, 4);
  tt_emit("{\"ev\":\"metric\",\"name\":\"%s\",\"value\":%.9e,\"bits\":\"0x%08lx\"}", name, (double)value,
          (unsigned long)u);
}

uint64_t tt_instret(void) { return 0; }
uint64_t tt_ticks(void) { return 0; }
void tt_phase_begin(const char *name) { (void)name; }
uint64_t tt_phase_end(const char *name) {
  (void)name;
  return 0;
}
uint32_t tt_stack_size(void) { return 0; }
uint32_t tt_stack_high_water(void) { return 0; }

#define TT_HOST_FILES 8
static FILE *files[TT_HOST_FILES];

int tt_sh_open(const char *path, int mode) {
  static const char *const modes[] = {"r", "rb", "r+", "r+b", "w", "wb", "w+", "w+b", "a", "ab", "a+", "a+b"};
  if (mode < 0 || mode > 11) return -1;
  for (int i = 0; i < TT_HOST_FILES; i++)
    if (!files[i]) {
      files[i] = fopen(path, modes[mode]);
      return files[i] ? i : -1;
    }
  return -1;
}
int tt_sh_read(int fd, void *buf, size_t n) {
  return fd >= 0 && fd < TT_HOST_FILES && files[fd] ? (int)fread(buf, 1, n, files[fd]) : -1;
}
int tt_sh_write(int fd, const void *buf, size_t n) {
  return fd >= 0 && fd < TT_HOST_FILES && files[fd] ? (int)fwrite(buf, 1, n, files[fd]) : -1;
}
int tt_sh_close(int fd) {
  if (fd < 0 || fd >= TT_HOST_FILES || !files[fd]) return -1;
  int rc = fclose(files[fd]);
  files[fd] = 0;
  return rc;
}
long tt_sh_flen(int fd) {
  if (fd < 0 || fd >= TT_HOST_FILES || !files[fd]) return -1;
  long pos = ftell(files[fd]);
  fseek(files[fd], 0, SEEK_END);
  long n = ftell(files[fd]);
  fseek(files[fd], pos, SEEK_SET);
  return n;
}
int tt_sh_seek(int fd, long pos) {
  return fd >= 0 && fd < TT_HOST_FILES && files[fd] ? fseek(files[fd], pos, SEEK_SET) : -1;
}
