/* Private to firmware/boards: registers and the UART driver interface. */
#ifndef TT_BOARD_INTERNAL_H
#define TT_BOARD_INTERNAL_H
#include <stdint.h>

#define TT_REG(addr) (*(volatile uint32_t *)(addr))
#define SYST_CSR TT_REG(0xE000E010u)
#define SYST_RVR TT_REG(0xE000E014u)
#define SYST_CVR TT_REG(0xE000E018u)
#define SCB_ICSR TT_REG(0xE000ED04u)
#define SCB_VTOR TT_REG(0xE000ED08u)
#define SCB_CCR TT_REG(0xE000ED14u)
#define SCB_SHCSR TT_REG(0xE000ED24u)
#define SCB_CFSR TT_REG(0xE000ED28u)
#define SCB_HFSR TT_REG(0xE000ED2Cu)
#define SCB_MMFAR TT_REG(0xE000ED34u)
#define SCB_BFAR TT_REG(0xE000ED38u)
#define SCB_CPACR TT_REG(0xE000ED88u)

#define TT_SYSTICK_RELOAD 0x00FFFFFFu
#define TT_STACK_PAINT 0xC5C5C5C5u

/* Per-board UART driver (uart_cmsdk.c, uart_stm32.c); TT_UART_BASE comes from board.json. */
void tt_uart_init(void);
void tt_uart_putc(char c);

/* tt_board.c */
extern volatile uint32_t tt_systick_wraps;
int tt_semihost(int op, void *arg);
void tt_stack_paint(void);
#endif
