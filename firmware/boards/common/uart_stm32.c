/* STM32F4 USART (USART1 at 0x40011000 is QEMU netduinoplus2's serial0). */
#include "board_internal.h"

#ifndef TT_UART_BASE
#error "TT_UART_BASE must be defined (board.json uart.base)"
#endif
#define USART_SR TT_REG(TT_UART_BASE + 0x00u)
#define USART_DR TT_REG(TT_UART_BASE + 0x04u)
#define USART_CR1 TT_REG(TT_UART_BASE + 0x0Cu)

void tt_uart_init(void) { USART_CR1 = (1u << 13) | (1u << 3); /* UE | TE */ }

void tt_uart_putc(char c) {
  while (!(USART_SR & (1u << 7))) { /* TXE */
  }
  USART_DR = (uint32_t)(unsigned char)c;
}
