/* ttprof: a QEMU TCG plugin (plugin API version 1, QEMU 7.2) that counts executed guest instructions
 * per class and per symbol, for tinytrain's cycle model (emulation/cycles.py).
 *
 * Arguments (-plugin ttprof.so,arg=out=PATH,arg=syms=PATH[,arg=dump=PATH]):
 *   out   JSON report written at exit
 *   syms  symbol table, one "start end name" per line (hex addresses, half-open ranges), sorted by start
 *   dump  optional: every translated instruction "addr class extra disas" (for checking the classifier)
 *
 * Cost: classification happens once per translated block (from qemu_plugin_insn_disas text); at run time
 * each executed block adds 1 to its own counter (an inline add, no callback). At exit
 * counts = sum over blocks of executions x the block's per-instruction classes.
 * A block that is left early (a fault in its middle) is counted whole: the error is a few instructions.
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
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
char *qemu_plugin_insn_disas(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* Keep in step with emulation/plugin.py CLASSES. */
enum { C_ALU, C_LOAD, C_STORE, C_MUL, C_SIMD, C_DIV, C_BRANCH, C_FP, C_FP_MAC, C_FP_DIV, C_SYS, C_N };
static const char *const class_names[C_N] = {"alu", "load", "store",  "mul",    "simd", "div",
                                             "branch", "fp", "fp_mac", "fp_div", "sys"};
/* Extra counters per instruction: registers moved beyond the first by LDM/STM/PUSH/POP/VLDM/...
 * (in words), and loads into the PC (POP {..., pc}, LDR pc): they refill the pipeline like a branch. */
enum { X_LOAD_REGS, X_STORE_REGS, X_PC_LOADS, X_N };
static const char *const extra_names[X_N] = {"load_extra_words", "store_extra_words", "pc_loads"};

typedef struct {
  uint32_t start, end;
  char *name;
} sym_t;

static sym_t *syms;
static size_t n_syms;

typedef struct {
  uint8_t cls;
  uint8_t words; /* extra words for multi-register transfers */
  uint8_t pc_load;
  uint32_t sym;  /* index into syms, or n_syms for "?" */
} insn_t;

typedef struct tb_rec {
  uint64_t execs;
  struct tb_rec *next;
  uint32_t n;
  insn_t insns[];
} tb_rec;

static tb_rec *recs;
static char *out_path;
static FILE *dump;

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

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  tb_rec *rec = calloc(1, sizeof *rec + n * sizeof(insn_t));
  rec->n = (uint32_t)n;
  for (size_t i = 0; i < n; i++) {
    struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
    char *d = qemu_plugin_insn_disas(insn);
    uint64_t addr = qemu_plugin_insn_vaddr(insn);
    rec->insns[i] = classify(d ? d : "");
    rec->insns[i].sym = find_sym(addr);
    if (dump)
      fprintf(dump, "%08llx %s %u %u %s\n", (unsigned long long)addr, class_names[rec->insns[i].cls],
              rec->insns[i].words, rec->insns[i].pc_load, d ? d : "?");
    free(d);
  }
  rec->next = recs;
  recs = rec;
  qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &rec->execs, 1);
}

typedef struct {
  uint64_t cls[C_N];
  uint64_t extra[X_N];
  uint64_t total;
} counts_t;

static void write_counts(FILE *f, const counts_t *c) {
  fprintf(f, "{\"total\":%llu,\"classes\":{", (unsigned long long)c->total);
  for (int k = 0; k < C_N; k++) fprintf(f, "%s\"%s\":%llu", k ? "," : "", class_names[k], (unsigned long long)c->cls[k]);
  fprintf(f, "},\"extra\":{");
  for (int k = 0; k < X_N; k++) fprintf(f, "%s\"%s\":%llu", k ? "," : "", extra_names[k], (unsigned long long)c->extra[k]);
  fprintf(f, "}}");
}

static void at_exit(qemu_plugin_id_t id, void *userdata) {
  (void)id;
  (void)userdata;
  counts_t all = {0};
  counts_t *per = calloc(n_syms + 1, sizeof *per);
  size_t n_tbs = 0;
  for (tb_rec *r = recs; r; r = r->next) {
    n_tbs++;
    if (!r->execs) continue;
    for (uint32_t i = 0; i < r->n; i++) {
      const insn_t *in = &r->insns[i];
      counts_t *c = &per[in->sym];
      uint64_t e = r->execs;
      c->cls[in->cls] += e;
      c->total += e;
      all.cls[in->cls] += e;
      all.total += e;
      if (in->words) {
        int x = in->cls == C_LOAD ? X_LOAD_REGS : X_STORE_REGS;
        c->extra[x] += e * in->words;
        all.extra[x] += e * in->words;
      }
      if (in->pc_load) {
        c->extra[X_PC_LOADS] += e;
        all.extra[X_PC_LOADS] += e;
      }
    }
  }
  FILE *f = out_path ? fopen(out_path, "w") : NULL;
  if (!f) {
    qemu_plugin_outs("ttprof: cannot write the report (arg out=PATH)\n");
    return;
  }
  fprintf(f, "{\"plugin\":\"ttprof\",\"translated_blocks\":%zu,\"all\":", n_tbs);
  write_counts(f, &all);
  fprintf(f, ",\"symbols\":{");
  bool first = true;
  for (size_t s = 0; s <= n_syms; s++) {
    if (!per[s].total) continue;
    fprintf(f, "%s\"%s\":", first ? "" : ",", s < n_syms ? syms[s].name : "?");
    write_counts(f, &per[s]);
    first = false;
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
    else {
      fprintf(stderr, "ttprof: unknown argument %s\n", argv[i]);
      return -1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
