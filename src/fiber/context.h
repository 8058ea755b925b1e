/*
 * fiber/context.h - the machine context switch (internal).
 *
 * A saved context is one pointer: the stack pointer of the suspended
 * frame (the asm backends push the callee-saved registers, the MXCSR and
 * x87 control words on x86-64, d8-d15 on AArch64, then store sp), or for the
 * ucontext backend the address of a ucontext_t kept in the suspended frame.
 * The backend is chosen at build time (meson option `context`):
 *   asm       src/fiber/switch_x86_64.S or switch_aarch64.S (default)
 *   ucontext  src/fiber/switch_ucontext.c, glibc's swapcontext (slow: it
 *             makes a sigprocmask system call per switch; kept as a
 *             portable twin that must pass the same tests)
 *
 * These functions carry no sanitizer annotations; fiber.c adds them around
 * every call (DESIGN.md section 5).
 *
 * Floating-point control (x86-64, both backends): the rounding mode and
 * the other MXCSR control bits and the x87 control word are per context,
 * and a fresh context starts with those of the thread that called
 * weft__ctx_init(). The asm backend leaves the MXCSR exception flags with
 * the thread (the psABI makes them caller-saved). On AArch64 the asm
 * backend does not switch FPCR: code that changes it must restore it
 * before it switches away.
 *
 * Threads: none of this is thread-aware; a context may be resumed on a
 * different thread from the one that saved it.
 */
#ifndef WEFT_FIBER_CONTEXT_H
#define WEFT_FIBER_CONTEXT_H

#include <stddef.h>

/* Entry of a fresh context: called on its own stack with the @xfer value of
 * the first switch to it. Must never return (the trampoline traps). */
typedef void (*weft__ctx_entry)(void *xfer);

/*
 * Prepare the stack whose highest usable address is @stack_hi (exclusive;
 * any alignment, the function aligns down) so that the first
 * weft__ctx_switch() to the returned context calls @entry(xfer). Returns
 * the context. Writes only below @stack_hi: at most 512 bytes with the asm
 * backends (64 on x86-64, 160 on AArch64), at most 8 KiB with the ucontext
 * backend, which stores a ucontext_t there (glibc 2.36: 968 bytes on
 * x86-64, 4560 on AArch64). The stack must leave room for that and for the
 * entry's frames below it.
 */
void *weft__ctx_init(void *stack_hi, weft__ctx_entry entry);

/*
 * Save the calling context in *@save, switch to @to, and pass @xfer to it:
 * @to sees @xfer as the return value of its own weft__ctx_switch() call, or
 * as its entry's argument the first time. Returns, once something switches
 * back to *@save, the xfer value that switch passed.
 */
void *weft__ctx_switch(void **save, void *to, void *xfer);

#endif /* WEFT_FIBER_CONTEXT_H */
