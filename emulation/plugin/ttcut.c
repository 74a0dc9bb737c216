/* ttcut: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that cuts the power: it ends the emulator
 * abruptly (_exit, nothing flushed by the guest, no semihosting exit) when a chosen number of guest
 * instructions has executed since the first execution of a trigger address. With -icount the guest is
 * deterministic, so the same arguments cut at the same instruction every time.
 *
 * Arguments (-plugin ttcut.so,arg=trigger=HEX,arg=end=HEX,arg=after=N,arg=out=PATH):
 *   trigger  address whose first execution starts the count (that instruction is number 1)
 *   end      optional: address whose first execution after the trigger records the window length
 *   after    the cut: QEMU exits with status 86 just before instruction number `after` executes
 *            (0 = never cut: measure the window only)
 *   out      JSON report {"armed":0|1,"count":N,"window":N|null,"cut":0|1}, written at the cut or at exit
 *
 * Until the trigger runs, only the trigger instruction is instrumented (the firmware runs at full speed). At
 * the trigger the plugin resets itself (qemu_plugin_reset: callbacks removed, translation cache flushed) and
 * re-registers with an execution callback on every instruction, so from then on the cut can land on any
 * instruction, a semihosting `bkpt` included (cut before it executes: the file write it asks for never
 * happens). The reset takes effect at the next block boundary: the rest of the trigger's block keeps its old
 * instrumentation (the trigger itself is its first counted instruction; the few after it in that block are
 * not counted), the same way on every run. An instruction QEMU re-executes under -icount (an MMIO access in
 * the middle of a block) is counted each time it runs. The count is deterministic.
 *
 * Debian ships no qemu-plugin.h, so the few API declarations used are written out here. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_simple_cb_t)(qemu_plugin_id_t id);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_reset(qemu_plugin_id_t id, qemu_plugin_simple_cb_t cb);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define CUT_STATUS 86

static uint64_t trigger = UINT64_MAX, end_addr = UINT64_MAX, after;
static uint64_t count, window;
static int armed, end_seen;
static char *out_path;
static qemu_plugin_id_t plugin_id;
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
static void at_exit(qemu_plugin_id_t id, void *p);

static void report(int cut) {
  if (!out_path) return;
  FILE *f = fopen(out_path, "w");
  if (!f) return;
  fprintf(f, "{\"armed\":%d,\"count\":%" PRIu64 ",\"window\":", armed, count);
  if (end_seen) fprintf(f, "%" PRIu64, window);
  else fprintf(f, "null");
  fprintf(f, ",\"cut\":%d,\"after\":%" PRIu64 "}\n", cut, after);
  fclose(f);
}

static void on_reset(qemu_plugin_id_t id) {
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
}

static void on_insn(unsigned int vcpu, void *userdata) {
  (void)vcpu;
  uint64_t pc = (uint64_t)(uintptr_t)userdata;
  if (!armed) {
    if (pc != trigger) return;
    armed = 1;
    qemu_plugin_reset(plugin_id, on_reset); /* from now on: every instruction */
  }
  count++;
  if (!end_seen && pc == end_addr) {
    end_seen = 1;
    window = count - 1; /* instructions from the trigger to the end marker, the marker excluded */
  }
  if (after && count == after) {
    report(1);
    _exit(CUT_STATUS); /* the power cut: no cleanup, no guest exit */
  }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t pc = qemu_plugin_insn_vaddr(insn);
    if (armed || pc == trigger)
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_insn, QEMU_PLUGIN_CB_NO_REGS, (void *)(uintptr_t)pc);
  }
}

static void at_exit(qemu_plugin_id_t id, void *p) {
  (void)id;
  (void)p;
  report(0);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                                int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "trigger=", 8) == 0) trigger = strtoull(argv[i] + 8, NULL, 16);
    else if (strncmp(argv[i], "end=", 4) == 0) end_addr = strtoull(argv[i] + 4, NULL, 16);
    else if (strncmp(argv[i], "after=", 6) == 0) after = strtoull(argv[i] + 6, NULL, 10);
    else if (strncmp(argv[i], "out=", 4) == 0) out_path = strdup(argv[i] + 4);
    else {
      fprintf(stderr, "ttcut: unknown argument %s\n", argv[i]);
      return -1;
    }
  }
  if (trigger == UINT64_MAX) {
    fprintf(stderr, "ttcut: trigger=HEX is required\n");
    return -1;
  }
  plugin_id = id;
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
