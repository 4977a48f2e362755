/* What startup.c gives main.c: semihosting output and exit. */
#ifndef FIRMWARE_H
#define FIRMWARE_H

/* Writes a NUL-terminated string to the debugger's (QEMU's) console. */
void semihost_write(const char *s);
/* Ends the program: QEMU exits with status 0 when `success`, 1 otherwise. */
void semihost_exit(int success) __attribute__((noreturn));

#endif
