/* ttprof: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that counts executed guest instructions
 * per class and per symbol, for tinytrain's cycle model (emulation/cycles.py), and exactly per firmware
 * phase (tt_phase_begin/tt_phase_end).
 *
 * Arguments (-plugin ttprof.so,arg=out=PATH,arg=syms=PATH[,...]):
 *   out        JSON report written at exit
 *   syms       symbol table, one "start end name" per line (hex addresses, half-open ranges), sorted by start
 *   dump       optional: every translated instruction "addr class extra disas" (for checking the classifier)
 *   begin      hex address of the begin marker instruction (tt__mark_begin: `ldrb r1, [r0]` in tt_phase_begin)
 *   begin_ret  hex address of the instruction after it (the stub's `bx lr`)
 *   end        hex address of the end marker instruction (tt__mark_end = tt_phase_end's first instruction)
 *   main, exit hex addresses whose first execution is recorded (main's and tt_exit's entries)
 *
 * Counting. Each translated block is cut into segments that end after every memory-access instruction (or
 * at the block's end); each segment adds 1 to its own counter when it starts (an inline add, no callback).
 * At exit counts = sum over segments of executions x the segment's per-instruction classes. Segments, not
 * blocks, because under -icount an MMIO access in the middle of a block aborts it and QEMU re-executes the
 * access alone, uninstrumented: a per-block counter would count the rest of the block twice.
 * An instruction that faults is counted (its segment started); the error is one instruction per fault.
 *
 * Phase markers. The plugin cannot read registers (API v1), so the marker instruction loads a byte from the
 * phase name (r0): a memory callback on that one instruction gives the name's address, the key of the
 * phase. At each marker the plugin sums the segment counters (the exact cumulative instruction count,
 * including the marker instruction) and moves what ran since the previous marker into the buckets of every
 * open phase (inclusive: a nested phase's instructions count in its parents too). The three marker
 * instructions (begin, begin_ret, end) belong to no phase bucket.
 * Report: "marks" = [[kind (0 begin, 1 end), key, cumulative count], ...] in execution order; "phases" =
 * key (hex) -> counts by class and symbol; "main_entry"/"exit_entry" = instructions before the first
 * execution of those addresses.
 *
 * Debian ships no qemu-plugin.h, so the few API declarations used are written out here. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_mem_rw { QEMU_PLUGIN_MEM_R = 1, QEMU_PLUGIN_MEM_W, QEMU_PLUGIN_MEM_RW };
typedef uint32_t qemu_plugin_meminfo_t;
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_mem_cb_t)(unsigned int vcpu_index, qemu_plugin_meminfo_t info, uint64_t vaddr,
                                          void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags flags, enum qemu_plugin_mem_rw rw,
                                      void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* Keep in step with emulation/plugin.py CLASSES. */
enum { C_ALU, C_LOAD, C_STORE, C_MUL, C_SIMD, C_DIV, C_BRANCH, C_FP, C_FP_MAC, C_FP_DIV, C_SYS, C_N };
static const char *const class_names[C_N] = {"alu", "load", "store",  "mul",    "simd", "div",
                                             "branch", "fp", "fp_mac", "fp_div", "sys"};
/* Extra counters per instruction (keep in step with emulation/cycles.py EXTRAS):
 *   load_extra_words, store_extra_words  registers moved beyond the first by LDM/STM/PUSH/POP/VLDM/LDRD/...
 *   pc_loads        loads into the PC (POP {..., pc}, LDR pc): they refill the pipeline like a branch
 *   it              IT instructions (QEMU counts them as instructions; class alu)
 *   cond_branches   executions of conditional control transfers (B<cond>, CBZ/CBNZ, a branch or PC load
 *                   inside an IT block); every other branch / PC load is always taken
 *   cond_not_taken  ... of them not taken: the next translated block executed starts at the fall-through
 *                   address (dynamic, see `fall_cb`)
 *   cond_unknown    ... of them whose outcome could not be observed (their fall-through block was
 *                   translated before the branch was seen); the model treats them as taken/not by bounds
 *   cond_minority   sum over branch sites of min(taken, not taken): the mispredictions of the best static
 *                   per-site predictor (per counting interval: the run, or between two phase markers)
 *   m4_ls_pipelined Cortex-M4: a single LDR right after a single LDR whose destination is not in its
 *                   address (TRM 3.3.2: one cycle removed)
 *   m4_agu_stalls   Cortex-M4: a load/store whose address register the previous data-processing
 *                   instruction wrote (TRM 3.3.2: one extra cycle, no forwarding path)
 *   m7_issue_cycles Cortex-M7: issue cycles of the straight-line code from a static in-order dual-issue
 *                   schedule of each translated block (see `m7_schedule`); branches' penalties excluded
 *   block_entries   executions of a translated block's first instruction (branch targets, fall-throughs)
 *   wide_unaligned_entries  ... of them whose first instruction is 32-bit at an address = 2 mod 4 (the
 *                   Cortex-M4 refill P depends on "the alignment and width of the target instruction")
 *   indirect_branches  BX/BLX to a register (the target is not in the instruction)
 *   table_branches  TBB/TBH
 *   it_folded       IT instructions right after a 16-bit instruction (Cortex-M4: "can be folded onto a
 *                   preceding 16-bit Thumb instruction, enabling execution in zero cycles")
 *   m4_slow_stores  Cortex-M4: stores whose first word costs 2 cycles, not 1: a single STR with a register
 *                   offset that does not follow a pipelining LDR (3.3.2: only STR Rx,[Ry,#imm] "is always
 *                   one cycle"), STM/PUSH/STRD/VSTM/VPUSH (Table 3-1: 1+N) */
enum {
  X_LOAD_REGS, X_STORE_REGS, X_PC_LOADS, X_IT, X_COND, X_COND_NT, X_COND_UNK, X_COND_MIN, X_M4_PIPE, X_M4_AGU,
  X_M7_ISSUE, X_ENTRIES, X_UNALIGNED, X_INDIRECT, X_TBB, X_IT_FOLD, X_M4_STR_REG, X_N
};
static const char *const extra_names[X_N] = {
    "load_extra_words", "store_extra_words", "pc_loads", "it", "cond_branches", "cond_not_taken",
    "cond_unknown", "cond_minority", "m4_ls_pipelined", "m4_agu_stalls", "m7_issue_cycles", "block_entries",
    "wide_unaligned_entries", "indirect_branches", "table_branches", "it_folded", "m4_slow_stores"};

typedef struct {
  uint32_t start, end;
  char *name;
} sym_t;

static sym_t *syms;
static size_t n_syms;

typedef struct {
  uint8_t cls;
  uint8_t words;   /* extra words for multi-register transfers */
  uint8_t pc_load;
  uint16_t flags;  /* F_MEM, F_NOPHASE, F_IT, ... (below) */
  uint8_t m7;      /* issue cycles this instruction adds in the static M7 schedule (0 = dual-issued) */
  uint32_t sym;    /* index into syms, or n_syms for "?" */
} insn_t;
enum {
  F_MEM = 1, F_NOPHASE = 2, F_IT = 4, F_COND = 8, F_UNK = 16, F_M4_PIPE = 32, F_M4_AGU = 64, F_ENTRY = 128,
  F_UNALIGNED = 256, F_INDIRECT = 512, F_TBB = 1024, F_IT_FOLD = 2048, F_M4_STR_REG = 4096
};

/* A run of instructions of one block that ends after a memory access (or at the block's end). */
typedef struct {
  uint64_t execs; /* incremented inline when the segment starts */
  uint64_t seen;  /* execs already moved into phase buckets */
  uint32_t first, len;
} seg_t;

typedef struct tb_rec {
  struct tb_rec *next;
  seg_t *segs;
  uint32_t n, n_segs;
  insn_t insns[];
} tb_rec;

static tb_rec *recs;
static char *out_path;
static FILE *dump;


/* ---- conditional branches: taken or not ----
 * The plugin cannot read the flags (API v1), so it watches where control goes: a conditional branch ends its
 * translated block; when not taken, the next block executed starts at the fall-through address. Each
 * conditional branch has a callback that records it as pending, with the number of blocks completed so far
 * (`tb_done`, an inline counter on every block's last instruction); every block starting at a fall-through
 * address has a callback that counts a not-taken outcome when the pending branch falls through to it and no
 * block completed in between. A fall-through block translated before its branch was seen has no callback:
 * that branch's outcomes are counted as unknown. */
typedef struct brec {
  struct brec *next;
  uint64_t fall;
  uint64_t nt, nt_seen, execs, execs_seen;
  uint32_t sym;
} brec_t;
static brec_t *brecs;
static brec_t *pending;
static uint64_t pending_stamp;
static uint64_t tb_done;

typedef struct {
  uint64_t *keys;
  size_t cap, n;
} aset_t;
static aset_t fall_set, cb_starts, tb_starts;

static bool aset_has(const aset_t *s, uint64_t k) {
  if (!s->cap) return false;
  for (size_t i = (size_t)(k * 0x9E3779B97F4A7C15ull) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
    if (s->keys[i] == k + 1) return true;
    if (!s->keys[i]) return false;
  }
}

static void aset_add(aset_t *s, uint64_t k) {
  if (aset_has(s, k)) return;
  if (2 * (s->n + 1) > s->cap) {
    aset_t t = {calloc(s->cap ? 2 * s->cap : 1024, sizeof(uint64_t)), s->cap ? 2 * s->cap : 1024, 0};
    for (size_t i = 0; i < s->cap; i++)
      if (s->keys[i]) aset_add(&t, s->keys[i] - 1);
    free(s->keys);
    *s = t;
  }
  size_t i = (size_t)(k * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
  while (s->keys[i]) i = (i + 1) & (s->cap - 1);
  s->keys[i] = k + 1;
  s->n++;
}

static void branch_cb(unsigned int vcpu, void *userdata) {
  (void)vcpu;
  pending = userdata;
  pending->execs++;
  pending_stamp = tb_done;
}

static void fall_cb(unsigned int vcpu, void *userdata) {
  (void)vcpu;
  uint64_t addr = (uint64_t)(uintptr_t)userdata;
  if (pending && pending->fall == addr && tb_done == pending_stamp + 1) pending->nt++;
  pending = NULL;
}


/* ---- phases ---- */
typedef struct {
  uint64_t cls[C_N];
  uint64_t extra[X_N];
  uint64_t total;
} counts_t;

typedef struct {
  uint64_t key;     /* address of the phase name */
  counts_t *per;    /* n_syms + 1 */
  counts_t all;
} bucket_t;

typedef struct {
  uint8_t kind; /* 0 begin, 1 end */
  uint64_t key, count;
} mark_t;

#define MAX_DEPTH 64
static uint64_t addr_begin = UINT64_MAX, addr_begin_ret = UINT64_MAX, addr_end = UINT64_MAX;
static uint64_t addr_main = UINT64_MAX, addr_exit = UINT64_MAX;
static uint64_t main_entry = UINT64_MAX, exit_entry = UINT64_MAX;
static bucket_t *buckets;
static size_t n_buckets, cap_buckets;
static size_t stack[MAX_DEPTH];
static int depth;
static mark_t *marks;
static size_t n_marks, cap_marks;
static uint64_t flushed; /* instructions moved out of the segment counters so far */

static uint32_t find_sym(uint64_t addr) {
  size_t lo = 0, hi = n_syms;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (syms[mid].start <= addr) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && addr < syms[lo - 1].end) return (uint32_t)(lo - 1);
  return (uint32_t)n_syms;
}

static bool is_cond(const char *s) {
  static const char *const conds[] = {"eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs",
                                      "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"};
  for (size_t i = 0; i < sizeof conds / sizeof conds[0]; i++)
    if (strcmp(s, conds[i]) == 0) return true;
  return false;
}

static bool in_list(const char *m, const char *const *list) {
  for (; *list; list++) {
    size_t n = strlen(*list);
    if (strncmp(m, *list, n) == 0 && (m[n] == '\0' || is_cond(m + n))) return true;
  }
  return false;
}

/* Count words in a register list "{r4, r5, r7-r9, lr}" or "{d8-d15}" (d registers are two words). */
static int reglist_words(const char *d, bool *has_pc) {
  const char *p = strchr(d, '{');
  *has_pc = false;
  if (!p) return 1;
  int words = 0;
  p++;
  while (*p && *p != '}') {
    while (*p == ' ' || *p == ',') p++;
    if (*p == '}' || !*p) break;
    char kind = (char)tolower((unsigned char)*p);
    const char *tok = p;
    while (*p && *p != ',' && *p != '}') p++;
    size_t len = (size_t)(p - tok);
    if ((len >= 2 && strncmp(tok, "pc", 2) == 0) || (len >= 3 && strncmp(tok, "r15", 3) == 0)) *has_pc = true;
    const char *dash = memchr(tok, '-', len);
    int count = 1;
    if (dash) {
      int a = atoi(tok + 1), b = atoi(dash + 2);
      count = b >= a ? b - a + 1 : 1;
    }
    words += kind == 'd' ? 2 * count : count;
  }
  return words > 0 ? words : 1;
}

static insn_t classify(const char *disas) {
  insn_t r = {C_ALU, 0, 0, 0};
  char m[32];
  size_t i = 0;
  while (disas[i] && !isspace((unsigned char)disas[i]) && i < sizeof m - 1) {
    m[i] = (char)tolower((unsigned char)disas[i]);
    i++;
  }
  m[i] = '\0';
  char *dot = strchr(m, '.'); /* ldr.w, vadd.f32 */
  char base[32];
  strcpy(base, m);
  if (dot) base[dot - m] = '\0';
  const char *ops = disas + i;
  bool pc = false;

  static const char *const simd[] = {
      "smlad", "smlsd", "smlald", "smlsld", "smuad", "smusd", "sxtb16", "sxtab16", "uxtb16", "uxtab16",
      "sadd16", "ssub16", "sadd8", "ssub8", "sasx", "ssax", "qadd16", "qsub16", "qadd8", "qsub8", "qasx",
      "qsax", "shadd16", "shsub16", "shadd8", "shsub8", "shasx", "shsax", "uadd16", "usub16", "uadd8",
      "usub8", "uasx", "usax", "uqadd16", "uqsub16", "uqadd8", "uqsub8", "uqasx", "uqsax", "uhadd16",
      "uhsub16", "uhadd8", "uhsub8", "uhasx", "uhsax", "sel", "pkhbt", "pkhtb", "ssat16", "usat16",
      "usad8", "usada8", "smladx", "smlsdx", "smlaldx", "smlsldx", "smuadx", "smusdx", NULL};
  static const char *const mul[] = {"mul", "mla", "mls", "umull", "smull", "umlal", "smlal", "umaal",
                                    "smmul", "smmla", "smmls", "smulbb", "smulbt", "smultb", "smultt",
                                    "smulwb", "smulwt", "smlabb", "smlabt", "smlatb", "smlatt", "smlawb",
                                    "smlawt", "smlalbb", "smlalbt", "smlaltb", "smlaltt", "muls", NULL};
  static const char *const branch[] = {"b", "bl", "blx", "bx", "cbz", "cbnz", "tbb", "tbh", NULL};
  static const char *const sys[] = {"bkpt", "svc", "wfi", "wfe", "sev", "yield", "cpsid", "cpsie", "mrs",
                                    "msr", "dsb", "dmb", "isb", "udf", NULL};

  if (base[0] == 'v') {
    if (strncmp(base, "vldr", 4) == 0) r.cls = C_LOAD;
    else if (strncmp(base, "vstr", 4) == 0) r.cls = C_STORE;
    else if (strncmp(base, "vldm", 4) == 0 || strncmp(base, "vpop", 4) == 0) {
      r.cls = C_LOAD;
      r.words = (uint8_t)(reglist_words(ops, &pc) - 1);
    } else if (strncmp(base, "vstm", 4) == 0 || strncmp(base, "vpush", 5) == 0) {
      r.cls = C_STORE;
      r.words = (uint8_t)(reglist_words(ops, &pc) - 1);
    } else if (in_list(base, (const char *const[]){"vfma", "vfms", "vfnma", "vfnms", "vmla", "vmls",
                                                      "vnmla", "vnmls", NULL}))
      r.cls = C_FP_MAC;
    else if (strncmp(base, "vdiv", 4) == 0 || strncmp(base, "vsqrt", 5) == 0) r.cls = C_FP_DIV;
    else r.cls = C_FP;
    return r;
  }
  if (in_list(base, simd)) r.cls = C_SIMD;
  else if (in_list(base, mul)) r.cls = C_MUL;
  else if (in_list(base, (const char *const[]){"sdiv", "udiv", NULL})) r.cls = C_DIV;
  else if (in_list(base, branch)) r.cls = C_BRANCH;
  else if (in_list(base, sys)) r.cls = C_SYS;
  else if (strncmp(base, "ldm", 3) == 0 || strncmp(base, "pop", 3) == 0) {
    r.cls = C_LOAD;
    r.words = (uint8_t)(reglist_words(ops, &pc) - 1);
    r.pc_load = pc;
  } else if (strncmp(base, "stm", 3) == 0 || strncmp(base, "push", 4) == 0) {
    r.cls = C_STORE;
    r.words = (uint8_t)(reglist_words(ops, &pc) - 1);
  } else if (strncmp(base, "ldr", 3) == 0 || strncmp(base, "lda", 3) == 0) {
    r.cls = C_LOAD;
    if (base[3] == 'd') r.words = 1; /* ldrd */
    while (*ops == ' ') ops++;
    if (strncmp(ops, "pc,", 3) == 0) r.pc_load = 1;
  } else if (strncmp(base, "str", 3) == 0 || strncmp(base, "stl", 3) == 0) {
    r.cls = C_STORE;
    if (base[3] == 'd') r.words = 1; /* strd */
  } else if (strncmp(base, "pld", 3) == 0) r.cls = C_LOAD;
  return r;
}

/* ---- operand decoding (for the pipeline rules below) ----
 * Registers as bits: r0-r15 = bits 0-15 (sb sl fp ip sp lr pc = r9-r15), s0-s31 = bits 16-47 (d<n> = s2n, s2n+1). */
static uint64_t reg_bits(const char *t, size_t len) {
  while (len && (*t == ' ' || *t == '{' || *t == '[' || *t == '-')) t++, len--;
  while (len && (t[len - 1] == ' ' || t[len - 1] == '!' || t[len - 1] == ']' || t[len - 1] == '}')) len--;
  if (!len) return 0;
  static const char *const names[] = {"sb", "sl", "fp", "ip", "sp", "lr", "pc"};
  for (int k = 0; k < 7; k++)
    if (len == 2 && strncmp(t, names[k], 2) == 0) return 1ull << (9 + k);
  if (len < 2 || len > 3 || !isdigit((unsigned char)t[1]) || (len == 3 && !isdigit((unsigned char)t[2]))) return 0;
  int n = atoi(t + 1);
  if (t[0] == 'r' && n < 16) return 1ull << n;
  if (t[0] == 's' && n < 32) return 1ull << (16 + n);
  if (t[0] == 'd' && n < 16) return 3ull << (16 + 2 * n);
  return 0;
}

/* Registers of a register list "{r4, r5-r7, lr}" / "{d8-d9}". */
static uint64_t list_bits(const char *p, const char *end) {
  uint64_t m = 0;
  while (p < end) {
    while (p < end && (*p == ' ' || *p == ',' || *p == '{')) p++;
    const char *tok = p;
    while (p < end && *p != ',' && *p != '}') p++;
    const char *dash = memchr(tok, '-', (size_t)(p - tok));
    if (dash) {
      uint64_t a = reg_bits(tok, (size_t)(dash - tok)), b = reg_bits(dash + 1, (size_t)(p - dash - 1));
      if (a && b && b >= a) m |= (b << 1) - a; /* every bit from a's to b's */
    } else {
      m |= reg_bits(tok, (size_t)(p - tok));
    }
    if (p < end && *p == '}') break;
  }
  return m;
}

typedef struct {
  uint64_t dst, src, addr, shifted, acc; /* acc: accumulator sources read late (MLA/VFMA) */
  bool wb;                                /* base-register writeback */
} ops_t;

/* Operands of an instruction: `first_dst` = the first operand is written (not for stores, compares,
 * branches); `n_dst` = how many leading register operands are written (2 for UMULL/LDRD). */
static ops_t decode_ops(const char *ops, bool first_dst, int n_dst, bool acc_first) {
  ops_t o = {0};
  uint64_t last = 0; /* the previous register operand */
  int idx = 0;
  const char *p = ops;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    if (!*p) break;
    const char *tok = p;
    if (*p == '[') {
      const char *e = strchr(p, ']');
      if (!e) e = p + strlen(p);
      o.addr |= list_bits(p + 1, e);
      p = e + (*e ? 1 : 0);
      if (*p == '!') o.wb = true, p++;
      idx++;
      continue;
    }
    if (*p == '{') {
      const char *e = strchr(p, '}');
      if (!e) e = p + strlen(p);
      uint64_t m = list_bits(p + 1, e);
      if (first_dst) o.dst |= m;
      else o.src |= m;
      p = e + (*e ? 1 : 0);
      idx++;
      continue;
    }
    while (*p && *p != ',') p++;
    size_t len = (size_t)(p - tok);
    if (len >= 3 && (strncmp(tok, "lsl", 3) == 0 || strncmp(tok, "lsr", 3) == 0 || strncmp(tok, "asr", 3) == 0 ||
                     strncmp(tok, "ror", 3) == 0 || strncmp(tok, "rrx", 3) == 0)) {
      /* "r2, lsl #3" / "r2, lsl r3": the shifted operand is the previous register */
      const char *sp = memchr(tok, ' ', len);
      uint64_t amount = sp ? reg_bits(sp + 1, len - (size_t)(sp + 1 - tok)) : 0;
      o.src |= amount;
      o.shifted |= (last ? last : 1) | amount;
      idx++;
      continue;
    }
    uint64_t m = reg_bits(tok, len);
    last = m;
    if (m) {
      if (first_dst && idx < n_dst) {
        o.dst |= m;
        if (acc_first) o.acc |= m;
      } else {
        o.src |= m;
      }
    } else if (idx == 0 && first_dst && n_dst > 0) {
      n_dst++; /* a non-register first operand (e.g. "#imm"): nothing written yet */
    }
    idx++;
  }
  if (o.wb) o.dst |= o.addr & 0xffff;
  o.src |= o.addr | o.acc;
  return o;
}

/* What the pipeline rules need to know of an instruction. */
enum { K_ALU, K_LOAD, K_LOAD_BH, K_STORE, K_MULTI, K_MUL, K_DIV, K_BRANCH, K_FP, K_FPMAC, K_FPDIV, K_SIMD, K_SYS, K_IT };
typedef struct {
  uint8_t kind;
  bool single_ls;   /* LDR/STR single word/half/byte (not LDRD/LDM/PC-relative to the PC) */
  bool single_load; /* ... and a load */
  bool dp;          /* data processing (writes a register the address unit would wait for) */
  bool slot0;       /* Cortex-M7: issues only as the older instruction of a pair (DSP, bitfield, CLZ) */
  bool shift;       /* uses the M7 shifter (shifted operand, shift, bitfield, REV/RBIT, extend-and-add) */
  bool early;       /* Cortex-M7: every source read at ISS (UBFX/SBFX/REV/RBIT/SXTA/UXTA: M7Read_ISS) */
  ops_t o;
} dec_t;

static bool starts(const char *m, const char *pre) { return strncmp(m, pre, strlen(pre)) == 0; }

static dec_t decode(const insn_t *in, const char *disas) {
  dec_t d = {0};
  char m[32];
  size_t i = 0;
  while (disas[i] && !isspace((unsigned char)disas[i]) && i < sizeof m - 1) {
    m[i] = (char)tolower((unsigned char)disas[i]);
    i++;
  }
  m[i] = '\0';
  char *dot = strchr(m, '.');
  if (dot && (strcmp(dot, ".w") == 0 || strcmp(dot, ".n") == 0)) *dot = '\0';
  const char *ops = disas + i;
  bool cmp = starts(m, "cmp") || starts(m, "cmn") || starts(m, "tst") || starts(m, "teq") || starts(m, "vcmp");
  switch (in->cls) {
  case C_LOAD: {
    bool multi = in->words > 0 || starts(m, "ldm") || starts(m, "pop") || starts(m, "vldm") || starts(m, "vpop");
    bool ldrd = starts(m, "ldrd");
    d.kind = multi ? K_MULTI : (starts(m, "ldrb") || starts(m, "ldrh") || starts(m, "ldrsb") || starts(m, "ldrsh"))
                                   ? K_LOAD_BH
                                   : K_LOAD;
    d.o = decode_ops(ops, true, ldrd ? 2 : 1, false);
    if (starts(m, "pop") || starts(m, "vpop")) d.o.dst |= 0, d.o.src |= 1ull << 13, d.o.dst |= 1ull << 13;
    d.single_ls = d.single_load = !multi && !in->pc_load && !starts(m, "pld");
    if (starts(m, "vldr")) d.single_ls = d.single_load = false;
    break;
  }
  case C_STORE: {
    bool multi = in->words > 0 || starts(m, "stm") || starts(m, "push") || starts(m, "vstm") || starts(m, "vpush");
    d.kind = multi ? K_MULTI : K_STORE;
    d.o = decode_ops(ops, false, 0, false);
    if (starts(m, "push") || starts(m, "vpush")) d.o.src |= 1ull << 13, d.o.dst |= 1ull << 13;
    d.single_ls = !multi && !starts(m, "vstr");
    break;
  }
  case C_BRANCH:
    d.kind = (starts(m, "tbb") || starts(m, "tbh")) ? K_MULTI : K_BRANCH;
    d.o = decode_ops(ops, false, 0, false);
    break;
  case C_MUL: {
    bool longm = starts(m, "umull") || starts(m, "smull") || starts(m, "umlal") || starts(m, "smlal") ||
                 starts(m, "umaal");
    bool acc = starts(m, "umlal") || starts(m, "smlal") || starts(m, "umaal");
    d.kind = K_MUL;
    d.o = decode_ops(ops, true, longm ? 2 : 1, acc);
    d.dp = true;
    break;
  }
  case C_DIV:
    d.kind = K_DIV;
    d.o = decode_ops(ops, true, 1, false);
    d.dp = true;
    break;
  case C_SIMD:
    if (starts(m, "sml") || starts(m, "smu")) { /* dual 16-bit MACs go down the MAC pipe */
      d.kind = K_MUL;
      d.o = decode_ops(ops, true, starts(m, "smlald") || starts(m, "smlsld") ? 2 : 1,
                       starts(m, "smlald") || starts(m, "smlsld"));
      d.dp = true;
      break;
    }
    d.kind = K_SIMD;
    d.o = decode_ops(ops, true, starts(m, "smlald") || starts(m, "smlsld") ? 2 : 1,
                     starts(m, "smlald") || starts(m, "smlsld"));
    d.dp = d.slot0 = true;
    break;
  case C_FP:
    d.kind = K_FP;
    d.o = decode_ops(ops, !cmp && !starts(m, "vmsr"), 1, false);
    d.dp = true;
    break;
  case C_FP_MAC:
    d.kind = K_FPMAC;
    d.o = decode_ops(ops, true, 1, true);
    d.dp = true;
    break;
  case C_FP_DIV:
    d.kind = K_FPDIV;
    d.o = decode_ops(ops, true, 1, false);
    d.dp = true;
    break;
  case C_SYS:
    d.kind = K_SYS;
    break;
  default:
    if (starts(m, "it")) {
      d.kind = K_IT;
      break;
    }
    d.kind = K_ALU;
    d.o = decode_ops(ops, !cmp, 1, false);
    d.dp = true;
    /* LLVM ARMScheduleM7.td: shifted operands, shifts, BFI/BFC use the shifter (WriteALUsi); UBFX/SBFX/REV/
     * RBIT/SXTA/UXTA too and read every source at ISS (M7WriteShSIMD*, M7Read_ISS); UXT/SXT go down the SIMD
     * unit without the shifter (M7WriteSIMD1); DSP, bitfield, extend, CLZ only as the older of a pair. */
    d.early = starts(m, "ubfx") || starts(m, "sbfx") || starts(m, "rev") || starts(m, "rbit") || starts(m, "sxta") ||
              starts(m, "uxta");
    d.shift = d.early || d.o.shifted != 0 || starts(m, "lsl") || starts(m, "lsr") || starts(m, "asr") ||
              starts(m, "ror") || starts(m, "rrx") || starts(m, "bfi") || starts(m, "bfc");
    d.slot0 = starts(m, "clz") || starts(m, "bfi") || starts(m, "bfc") || starts(m, "uxt") || starts(m, "sxt") ||
              starts(m, "rev") || starts(m, "rbit") || starts(m, "ubfx") || starts(m, "sbfx");
    break;
  }
  if (in->pc_load) d.kind = K_MULTI;
  return d;
}

/* Cortex-M4 rules between neighbours (Cortex-M4 TRM r0p1, DDI 0439B, 3.3.2 "Load/store timings"). */
static void m4_rules(insn_t *in, const dec_t *d, const insn_t *pin, const dec_t *pd) {
  bool ldr_pipe = pin && pd->single_load && !(pd->o.dst & d->o.addr);
  /* STR with a register offset: 2 cycles unless it pipelines after an LDR (3.3.2 "LDR R0,[R1,R2];
   * STR R1,[R3,R2] - normally three cycles total") */
  if (d->kind == K_STORE && d->single_ls && __builtin_popcountll(d->o.addr & 0xffff) >= 2 && !ldr_pipe)
    in->flags |= F_M4_STR_REG;
  if (d->kind == K_MULTI && in->cls == C_STORE) in->flags |= F_M4_STR_REG; /* 1+N */
  if (!pin) return;
  /* A load after a load: one cycle removed. (A store after a load pipelines too, but a single store costs
   * one cycle already: its data phase overlaps the next instruction; the model charges it 1.) */
  if (d->single_load && pd->single_load && !(pd->o.dst & d->o.addr)) in->flags |= F_M4_PIPE;
  if ((in->cls == C_LOAD || in->cls == C_STORE) && pd->dp && pd->kind != K_IT && (pd->o.dst & d->o.addr))
    in->flags |= F_M4_AGU;
}

/* Cortex-M7: a static in-order dual-issue schedule of one translated block (all registers ready at its start).
 * Rules and latencies from LLVM's Cortex-M7 scheduling model (llvm/lib/Target/ARM/ARMScheduleM7.td, written by
 * Arm): issue width 2; per cycle at most 2 ALU, 2 loads, 1 store, 1 MAC, 1 branch, 1 FP, 1 shifter op; DSP /
 * bitfield / extend / CLZ only as the older of a pair; LDM/STM/PUSH/POP/LDRD/STRD/TBB/system instructions and
 * divides single-issue. Result latencies (cycles until an EX2 reader): ALU 1, word load 1, byte/half load 2,
 * MUL/MAC 2, DIV 7 (blocking), FP add/mul/convert/move 3, FP MAC 6 (accumulator read 3 late), FP div/sqrt 16.
 * Address and shifted operands are read one cycle early (ISS), store data and MAC accumulators one late. */
#define NREG 48
static void m7_schedule(insn_t *ins, const dec_t *ds, size_t n) {
  int ready[NREG] = {0};
  int cyc = 0, used = 2, alu = 0, ld = 0, st = 0, mac = 0, br = 0, fp = 0, sh = 0;
  bool prev_single = false;
  for (size_t i = 0; i < n; i++) {
    const dec_t *d = &ds[i];
    bool single = d->kind == K_MULTI || d->kind == K_SYS || d->kind == K_DIV;
    int t_dep = 0;
    for (int r = 0; r < NREG; r++) {
      uint64_t bit = 1ull << r;
      if (!(d->o.src & bit)) continue;
      int need = ready[r];
      if (d->o.addr & bit) need += 1;                                         /* read at ISS */
      else if (d->early || (d->o.shifted & bit)) need += 1;                   /* shifter input early */
      else if (d->kind == K_STORE) need -= 1;                                 /* store data late */
      else if (d->o.acc & bit) need -= d->kind == K_FPMAC ? 3 : 1;            /* accumulator late */
      if (need > t_dep) t_dep = need;
    }
    bool fits = used < 2 && !single && !prev_single && !d->slot0;
    switch (d->kind) {
    case K_ALU: fits = fits && alu < 2 && (!d->shift || sh < 1); break;
    case K_SIMD: fits = fits && alu < 2; break;
    case K_LOAD: case K_LOAD_BH: fits = fits && ld < 2; break;
    case K_STORE: fits = fits && st < 1; break;
    case K_MUL: fits = fits && mac < 1; break;
    case K_BRANCH: fits = fits && br < 1; break;
    case K_FP: case K_FPMAC: case K_FPDIV: fits = fits && fp < 1; break;
    default: break;
    }
    int t = fits ? cyc : cyc + 1;
    if (t_dep > t) t = t_dep;
    if (t > cyc) used = alu = ld = st = mac = br = fp = sh = 0;
    int delta = t - cyc;
    if (d->kind == K_DIV) delta += 6; /* blocks the pipeline for its 7-cycle latency */
    if (ins[i].flags & F_TBB) delta += 1; /* "TBB/TBH - single-issue only; takes two cycles to issue" */
    ins[i].m7 = (uint8_t)(delta > 255 ? 255 : delta);
    cyc = t + (d->kind == K_DIV ? 6 : 0) + (ins[i].flags & F_TBB ? 1 : 0);
    used += single ? 2 : 1;
    prev_single = single;
    switch (d->kind) {
    case K_ALU: alu++; sh += d->shift; break;
    case K_SIMD: alu++; break;
    case K_LOAD: case K_LOAD_BH: ld++; break;
    case K_STORE: st++; break;
    case K_MUL: mac++; break;
    case K_BRANCH: br++; break;
    case K_FP: case K_FPMAC: case K_FPDIV: fp++; break;
    default: break;
    }
    int lat = 1;
    switch (d->kind) {
    case K_LOAD_BH: case K_MUL: lat = 2; break;
    case K_DIV: lat = 1; break;
    case K_FP: lat = 3; break;
    case K_FPMAC: lat = 6; break;
    case K_FPDIV: lat = 16; break;
    default: break;
    }
    for (int r = 0; r < NREG; r++)
      if (d->o.dst & (1ull << r)) ready[r] = t + lat;
  }
}

static void add_insn(counts_t *c, const insn_t *in, uint64_t e) {
  c->cls[in->cls] += e;
  c->total += e;
  if (in->words) c->extra[in->cls == C_LOAD ? X_LOAD_REGS : X_STORE_REGS] += e * in->words;
  if (in->pc_load) c->extra[X_PC_LOADS] += e;
  if (in->flags & F_IT) c->extra[X_IT] += e;
  if (in->flags & F_COND) c->extra[X_COND] += e;
  if (in->flags & F_UNK) c->extra[X_COND_UNK] += e;
  if (in->flags & F_M4_PIPE) c->extra[X_M4_PIPE] += e;
  if (in->flags & F_M4_AGU) c->extra[X_M4_AGU] += e;
  if (in->flags & F_ENTRY) c->extra[X_ENTRIES] += e;
  if (in->flags & F_UNALIGNED) c->extra[X_UNALIGNED] += e;
  if (in->flags & F_INDIRECT) c->extra[X_INDIRECT] += e;
  if (in->flags & F_TBB) c->extra[X_TBB] += e;
  if (in->flags & F_IT_FOLD) c->extra[X_IT_FOLD] += e;
  if (in->flags & F_M4_STR_REG) c->extra[X_M4_STR_REG] += e;
  c->extra[X_M7_ISSUE] += e * in->m7;
}

/* Move everything executed since the last flush into the buckets of the open phases. Exact: every segment
 * that has started has also finished (the callers run at the end of a segment or before its start). */
static void flush(void) {
  for (brec_t *b = brecs; b; b = b->next) {
    uint64_t d = b->nt - b->nt_seen, e = b->execs - b->execs_seen;
    if (!e) continue;
    b->nt_seen = b->nt;
    b->execs_seen = b->execs;
    uint64_t mn = d < e - d ? d : e - d;
    int open = depth < MAX_DEPTH ? depth : MAX_DEPTH;
    for (int k = 0; k < open; k++) {
      bucket_t *bk = &buckets[stack[k]];
      bk->per[b->sym].extra[X_COND_NT] += d;
      bk->all.extra[X_COND_NT] += d;
      bk->per[b->sym].extra[X_COND_MIN] += mn;
      bk->all.extra[X_COND_MIN] += mn;
    }
  }
  for (tb_rec *r = recs; r; r = r->next) {
    for (uint32_t k = 0; k < r->n_segs; k++) {
      seg_t *g = &r->segs[k];
      uint64_t d = g->execs - g->seen;
      if (!d) continue;
      g->seen = g->execs;
      flushed += d * g->len;
      int open = depth < MAX_DEPTH ? depth : MAX_DEPTH;
      for (uint32_t i = g->first; i < g->first + g->len; i++) {
        const insn_t *in = &r->insns[i];
        if (in->flags & F_NOPHASE) continue;
        for (int b = 0; b < open; b++) {
          bucket_t *bk = &buckets[stack[b]];
          add_insn(&bk->per[in->sym], in, d);
          add_insn(&bk->all, in, d);
        }
      }
    }
  }
}

static size_t bucket_for(uint64_t key) {
  for (size_t i = 0; i < n_buckets; i++)
    if (buckets[i].key == key) return i;
  if (n_buckets == cap_buckets) {
    cap_buckets = cap_buckets ? 2 * cap_buckets : 16;
    buckets = realloc(buckets, cap_buckets * sizeof *buckets);
  }
  bucket_t *b = &buckets[n_buckets];
  memset(b, 0, sizeof *b);
  b->key = key;
  b->per = calloc(n_syms + 1, sizeof *b->per);
  return n_buckets++;
}

static void mark(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr, void *userdata) {
  (void)vcpu;
  (void)info;
  uint8_t kind = (uint8_t)(uintptr_t)userdata;
  flush();
  if (n_marks == cap_marks) {
    cap_marks = cap_marks ? 2 * cap_marks : 1024;
    marks = realloc(marks, cap_marks * sizeof *marks);
  }
  marks[n_marks++] = (mark_t){kind, vaddr, flushed};
  if (kind == 0) {
    if (depth < MAX_DEPTH) stack[depth] = bucket_for(vaddr);
    depth++;
  } else if (depth > 0) {
    depth--;
  }
}

/* An instruction callback runs before the inline add of the segment the instruction starts, so the sum
 * of the counters is the count of instructions executed before this one. */
static void entry(unsigned int vcpu, void *userdata) {
  (void)vcpu;
  uint64_t *slot = userdata;
  if (*slot != UINT64_MAX) return;
  flush();
  *slot = flushed;
}

static bool is_mem_insn(const insn_t *in, const char *disas) {
  if (in->cls == C_LOAD || in->cls == C_STORE) return true;
  return strncmp(disas, "tbb", 3) == 0 || strncmp(disas, "tbh", 3) == 0; /* table loads */
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  tb_rec *rec = calloc(1, sizeof *rec + n * sizeof(insn_t));
  rec->n = (uint32_t)n;
  rec->segs = calloc(n ? n : 1, sizeof(seg_t));
  dec_t *ds = calloc(n ? n : 1, sizeof(dec_t));
  int it_left = 0; /* instructions left in the current IT block */
  size_t prev_size = 0;
  bool cond_end = false;
  uint64_t fall = 0;
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    char *d = qemu_plugin_insn_disas(insn);
    const char *text = d ? d : "";
    uint64_t addr = qemu_plugin_insn_vaddr(insn);
    insn_t *in = &rec->insns[i];
    *in = classify(text);
    in->sym = find_sym(addr);
    if (is_mem_insn(in, text)) in->flags |= F_MEM;
    if (addr == addr_begin || addr == addr_begin_ret || addr == addr_end) in->flags |= F_NOPHASE;
    ds[i] = decode(in, text);
    size_t size = qemu_plugin_insn_size(insn);
    if (i == 0) in->flags |= F_ENTRY | (size == 4 && (addr & 2) ? F_UNALIGNED : 0);
    if (ds[i].kind == K_IT && i > 0 && prev_size == 2) in->flags |= F_IT_FOLD;
    prev_size = size;
    if (in->cls == C_BRANCH && (strncmp(text, "bx", 2) == 0 || strncmp(text, "blx", 3) == 0)) {
      const char *op = text + strcspn(text, " ");
      while (*op == ' ') op++;
      if (reg_bits(op, strlen(op))) in->flags |= F_INDIRECT; /* not "blx <label>" */
    }
    if (strncmp(text, "tbb", 3) == 0 || strncmp(text, "tbh", 3) == 0) in->flags |= F_TBB;
    bool in_it = it_left > 0;
    if (it_left) it_left--;
    if (ds[i].kind == K_IT) {
      in->flags |= F_IT;
      const char *mask = text + 2; /* "it", "ite", "ittt" ...: 1 + the T/E letters */
      int k = 1;
      while (*mask == 't' || *mask == 'e') k++, mask++;
      it_left = k;
    }
    bool transfer = in->cls == C_BRANCH || in->pc_load;
    if (transfer) {
      char m[16];
      size_t j = 0;
      while (text[j] && !isspace((unsigned char)text[j]) && j < sizeof m - 1) m[j] = text[j], j++;
      m[j] = '\0';
      char *dot = strchr(m, '.');
      if (dot) *dot = '\0';
      bool cond = in_it || strncmp(m, "cbz", 3) == 0 || strncmp(m, "cbnz", 4) == 0 ||
                  (m[0] == 'b' && strlen(m) == 3 && is_cond(m + 1) && strcmp(m + 1, "al") != 0);
      if (cond && i == n - 1) {
        in->flags |= F_COND;
        cond_end = true;
        fall = addr + qemu_plugin_insn_size(insn);
      }
    }
    m4_rules(in, &ds[i], i > 0 ? &rec->insns[i - 1] : NULL, i > 0 ? &ds[i - 1] : NULL);
    if (dump)
      fprintf(dump, "%08llx %s %u %u %s\n", (unsigned long long)addr, class_names[in->cls], in->words,
              in->pc_load, text);
    free(d);
  }
  m7_schedule(rec->insns, ds, n);
  free(ds);

  uint64_t start = n ? qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, 0)) : 0;
  if (n && aset_has(&fall_set, start)) {
    qemu_plugin_register_vcpu_insn_exec_cb(qemu_plugin_tb_get_insn(tb, 0), fall_cb, QEMU_PLUGIN_CB_NO_REGS,
                                           (void *)(uintptr_t)start);
    aset_add(&cb_starts, start);
  }
  if (n) aset_add(&tb_starts, start);

  bool new_seg = true;
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    uint64_t addr = qemu_plugin_insn_vaddr(insn);
    insn_t *in = &rec->insns[i];
    if (addr == addr_main) qemu_plugin_register_vcpu_insn_exec_cb(insn, entry, QEMU_PLUGIN_CB_NO_REGS, &main_entry);
    if (addr == addr_exit) qemu_plugin_register_vcpu_insn_exec_cb(insn, entry, QEMU_PLUGIN_CB_NO_REGS, &exit_entry);
    if (i == n - 1 && cond_end) {
      if (aset_has(&tb_starts, fall) && !aset_has(&cb_starts, fall)) {
        in->flags |= F_UNK; /* its fall-through block exists without the callback */
      } else {
        brec_t *b = calloc(1, sizeof *b);
        b->fall = fall;
        b->sym = in->sym;
        b->next = brecs;
        brecs = b;
        aset_add(&fall_set, fall);
        qemu_plugin_register_vcpu_insn_exec_cb(insn, branch_cb, QEMU_PLUGIN_CB_NO_REGS, b);
      }
    }
    if (new_seg) {
      seg_t *g = &rec->segs[rec->n_segs++];
      g->first = (uint32_t)i;
      qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &g->execs, 1);
    }
    if (i == n - 1) qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &tb_done, 1);
    rec->segs[rec->n_segs - 1].len++;
    new_seg = (in->flags & F_MEM) != 0;
    if (addr == addr_begin || addr == addr_end)
      /* MEM_RW: QEMU 7.2 filters MEM_R/MEM_W the wrong way round; the marker only loads anyway. */
      qemu_plugin_register_vcpu_mem_cb(insn, mark, QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW,
                                       (void *)(uintptr_t)(addr == addr_end));
  }
  rec->next = recs;
  recs = rec;
}

static void write_counts(FILE *f, const counts_t *c) {
  fprintf(f, "{\"total\":%llu,\"classes\":{", (unsigned long long)c->total);
  for (int k = 0; k < C_N; k++) fprintf(f, "%s\"%s\":%llu", k ? "," : "", class_names[k], (unsigned long long)c->cls[k]);
  fprintf(f, "},\"extra\":{");
  for (int k = 0; k < X_N; k++) fprintf(f, "%s\"%s\":%llu", k ? "," : "", extra_names[k], (unsigned long long)c->extra[k]);
  fprintf(f, "}}");
}

static void write_symbols(FILE *f, const counts_t *per) {
  fprintf(f, "{");
  bool first = true;
  for (size_t s = 0; s <= n_syms; s++) {
    if (!per[s].total) continue;
    fprintf(f, "%s\"%s\":", first ? "" : ",", s < n_syms ? syms[s].name : "?");
    write_counts(f, &per[s]);
    first = false;
  }
  fprintf(f, "}");
}

static void write_opt(FILE *f, const char *name, uint64_t v) {
  if (v == UINT64_MAX) fprintf(f, ",\"%s\":null", name);
  else fprintf(f, ",\"%s\":%llu", name, (unsigned long long)v);
}

static void at_exit(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  counts_t all = {0};
  counts_t *per = calloc(n_syms + 1, sizeof *per);
  size_t n_tbs = 0;
  for (tb_rec *r = recs; r; r = r->next) {
    n_tbs++;
    for (uint32_t k = 0; k < r->n_segs; k++) {
      const seg_t *g = &r->segs[k];
      if (!g->execs) continue;
      for (uint32_t i = g->first; i < g->first + g->len; i++) {
        add_insn(&per[r->insns[i].sym], &r->insns[i], g->execs);
        add_insn(&all, &r->insns[i], g->execs);
      }
    }
  }
  for (brec_t *b = brecs; b; b = b->next) {
    uint64_t mn = b->nt < b->execs - b->nt ? b->nt : b->execs - b->nt;
    per[b->sym].extra[X_COND_NT] += b->nt;
    all.extra[X_COND_NT] += b->nt;
    per[b->sym].extra[X_COND_MIN] += mn;
    all.extra[X_COND_MIN] += mn;
  }
  FILE *f = out_path ? fopen(out_path, "w") : NULL;
  if (!f) {
    qemu_plugin_outs("ttprof: cannot write the report (arg out=PATH)\n");
    return;
  }
  fprintf(f, "{\"plugin\":\"ttprof\",\"translated_blocks\":%zu", n_tbs);
  write_opt(f, "main_entry", main_entry);
  write_opt(f, "exit_entry", exit_entry);
  fprintf(f, ",\"all\":");
  write_counts(f, &all);
  fprintf(f, ",\"symbols\":");
  write_symbols(f, per);
  fprintf(f, ",\"marks\":[");
  for (size_t i = 0; i < n_marks; i++)
    fprintf(f, "%s[%u,%llu,%llu]", i ? "," : "", marks[i].kind, (unsigned long long)marks[i].key,
            (unsigned long long)marks[i].count);
  fprintf(f, "],\"phases\":{");
  for (size_t b = 0; b < n_buckets; b++) {
    fprintf(f, "%s\"%llu\":{\"all\":", b ? "," : "", (unsigned long long)buckets[b].key);
    write_counts(f, &buckets[b].all);
    fprintf(f, ",\"symbols\":");
    write_symbols(f, buckets[b].per);
    fprintf(f, "}");
  }
  fprintf(f, "}}\n");
  fclose(f);
  if (dump) fclose(dump);
  free(per);
}

static void load_syms(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t cap = 256;
  syms = malloc(cap * sizeof *syms);
  char name[512];
  unsigned long start, end;
  while (fscanf(f, "%lx %lx %511s", &start, &end, name) == 3) {
    if (n_syms == cap) syms = realloc(syms, (cap *= 2) * sizeof *syms);
    syms[n_syms].start = (uint32_t)start;
    syms[n_syms].end = (uint32_t)end;
    syms[n_syms].name = strdup(name);
    n_syms++;
  }
  fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                                int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "out=", 4) == 0) out_path = strdup(argv[i] + 4);
    else if (strncmp(argv[i], "syms=", 5) == 0) load_syms(argv[i] + 5);
    else if (strncmp(argv[i], "dump=", 5) == 0) dump = fopen(argv[i] + 5, "w");
    else if (strncmp(argv[i], "begin=", 6) == 0) addr_begin = strtoull(argv[i] + 6, NULL, 16);
    else if (strncmp(argv[i], "begin_ret=", 10) == 0) addr_begin_ret = strtoull(argv[i] + 10, NULL, 16);
    else if (strncmp(argv[i], "end=", 4) == 0) addr_end = strtoull(argv[i] + 4, NULL, 16);
    else if (strncmp(argv[i], "main=", 5) == 0) addr_main = strtoull(argv[i] + 5, NULL, 16);
    else if (strncmp(argv[i], "exit=", 5) == 0) addr_exit = strtoull(argv[i] + 5, NULL, 16);
    else {
      fprintf(stderr, "ttprof: unknown argument %s\n", argv[i]);
      return -1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
