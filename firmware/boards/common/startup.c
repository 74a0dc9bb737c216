/* Reset, vector table, fault reporting and the SysTick wrap counter, shared by every board. */
#include <stdint.h>
#include <string.h>

#include "board_internal.h"
#include "tt_board.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
extern int main(void);

void Reset_Handler(void) __attribute__((noreturn));
void tt_fault_entry(void);
void tt_default_handler(void);
void SysTick_Handler(void);

#define TT_NUM_IRQS 96
typedef void (*tt_vector)(void);

__attribute__((section(".vectors"), used)) const tt_vector tt_vectors[16 + TT_NUM_IRQS] = {
    [0] = (tt_vector)(uintptr_t)&__stack_top,
    [1] = Reset_Handler,
    [2] = tt_default_handler, /* NMI */
    [3] = tt_fault_entry,     /* HardFault */
    [4] = tt_fault_entry,     /* MemManage */
    [5] = tt_fault_entry,     /* BusFault */
    [6] = tt_fault_entry,     /* UsageFault */
    [11] = tt_default_handler, /* SVCall */
    [12] = tt_default_handler, /* DebugMonitor */
    [14] = tt_default_handler, /* PendSV */
    [15] = SysTick_Handler,
    [16 ... 16 + TT_NUM_IRQS - 1] = tt_default_handler,
};

void Reset_Handler(void) {
  /* FPU on (CP10, CP11 full access) before any floating-point instruction. */
  SCB_CPACR |= (0xFu << 20);
  __asm volatile("dsb\n isb" ::: "memory");
  SCB_VTOR = (uint32_t)(uintptr_t)tt_vectors;

  uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
  tt_stack_paint();

  /* Separate handlers for MemManage, BusFault, UsageFault (all report through tt_fault_entry);
   * trap integer division by zero. */
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
  SCB_CCR |= (1u << 4);

  /* Instruction counter: SysTick on the processor clock, full 24-bit reload, wrap interrupt. */
  SYST_RVR = TT_SYSTICK_RELOAD;
  SYST_CVR = 0;
  SYST_CSR = 0x7u; /* ENABLE | TICKINT | CLKSOURCE=processor */

  tt_exit(main());
}

volatile uint32_t tt_systick_wraps;

void SysTick_Handler(void) { tt_systick_wraps++; }

/* The stacked exception frame: r0 r1 r2 r3 r12 lr pc xpsr. */
__attribute__((used)) void tt_fault_report(const uint32_t *frame, uint32_t exc_return) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  static const char *const names[] = {"?", "?", "nmi", "hardfault", "memmanage", "busfault", "usagefault"};
  uint32_t exc = ipsr & 0x1FFu;
  tt_uart_init();
  tt_printf(
      "\nTT {\"ev\":\"fault\",\"exception\":\"%s\",\"cfsr\":\"0x%08lx\",\"hfsr\":\"0x%08lx\","
      "\"mmfar\":\"0x%08lx\",\"bfar\":\"0x%08lx\",\"pc\":\"0x%08lx\",\"lr\":\"0x%08lx\",\"xpsr\":\"0x%08lx\","
      "\"sp\":\"0x%08lx\",\"exc_return\":\"0x%08lx\",\"instr\":%llu}\n",
      exc < 7 ? names[exc] : "irq", (unsigned long)SCB_CFSR, (unsigned long)SCB_HFSR,
      (unsigned long)SCB_MMFAR, (unsigned long)SCB_BFAR, (unsigned long)frame[6], (unsigned long)frame[5],
      (unsigned long)frame[7], (unsigned long)(uintptr_t)frame, (unsigned long)exc_return,
      (unsigned long long)tt_instret());
  uint32_t block[2] = {0x20026u, TT_EXIT_FAULT};
  tt_semihost(0x20, block);
  for (;;) {
  }
}

__attribute__((naked)) void tt_fault_entry(void) {
  __asm volatile(
      "tst lr, #4\n"
      "ite eq\n"
      "mrseq r0, msp\n"
      "mrsne r0, psp\n"
      "mov r1, lr\n"
      "b tt_fault_report\n");
}

void tt_default_handler(void) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  tt_uart_init();
  tt_printf("\nTT {\"ev\":\"fault\",\"exception\":\"unexpected\",\"irq\":%lu}\n", (unsigned long)(ipsr & 0x1FFu));
  uint32_t block[2] = {0x20026u, TT_EXIT_UNEXPECTED_IRQ};
  tt_semihost(0x20, block);
  for (;;) {
  }
}
