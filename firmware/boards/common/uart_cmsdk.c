/* CMSDK APB UART (the mps2 boards). TX must be enabled in CTRL, or QEMU drops the writes. */
#include "board_internal.h"

#ifndef TT_UART_BASE
#error "TT_UART_BASE must be defined (board.json uart.base)"
#endif
#define UART_DATA TT_REG(TT_UART_BASE + 0x0u)
#define UART_STATE TT_REG(TT_UART_BASE + 0x4u)
#define UART_CTRL TT_REG(TT_UART_BASE + 0x8u)
#define UART_BAUDDIV TT_REG(TT_UART_BASE + 0x10u)

void tt_uart_init(void) {
  UART_BAUDDIV = 16;
  UART_CTRL = 0x1u; /* TX enable */
}

void tt_uart_putc(char c) {
  while (UART_STATE & 0x1u) { /* TX buffer full */
  }
  UART_DATA = (uint32_t)(unsigned char)c;
}
