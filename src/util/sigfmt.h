/*
 * util/sigfmt.h - formatting into a char buffer from a signal handler
 * (internal, header-only).
 *
 * snprintf() is not on POSIX's list of async-signal-safe functions (it may
 * take locale locks or allocate), so the stack-overflow report, which is
 * built inside a SIGSEGV handler, uses these instead. They touch nothing
 * but their arguments: no locks, no errno, no static state, no libc calls.
 *
 * Every helper appends at offset @pos of @buf (capacity @len) and returns
 * the new offset. Output that does not fit is cut off silently; the offset
 * never passes @len, so a caller can chain calls and use the final offset
 * as the message length. No NUL is written (the text goes to write(2)).
 *
 *	size_t n = 0;
 *	n = weft__sigfmt_str(buf, len, n, "fiber stack overflow at ");
 *	n = weft__sigfmt_ptr(buf, len, n, addr);
 *	n = weft__sigfmt_str(buf, len, n, "\n");
 *
 * Threads: pure functions, any thread, any context.
 */
#ifndef WEFT_UTIL_SIGFMT_H
#define WEFT_UTIL_SIGFMT_H

#include <stddef.h>
#include <stdint.h>

/* Append the bytes of the NUL-terminated string @s. */
static inline size_t weft__sigfmt_str(char *buf, size_t len, size_t pos,
				      const char *s)
{
	while (*s && pos < len)
		buf[pos++] = *s++;
	return pos;
}

/* Append @v in decimal, without leading zeros ("0" for zero). */
static inline size_t weft__sigfmt_uint(char *buf, size_t len, size_t pos,
				       uintmax_t v)
{
	char tmp[3 * sizeof(uintmax_t)]; /* > log10(2^(8n)) digits */
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && pos < len)
		buf[pos++] = tmp[--n];
	return pos;
}

/* Append @v in lower-case hexadecimal with a "0x" prefix ("0x0" for zero). */
static inline size_t weft__sigfmt_hex(char *buf, size_t len, size_t pos,
				      uintmax_t v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[2 * sizeof(uintmax_t)];
	size_t n = 0;

	do {
		tmp[n++] = digits[v & 0xf];
		v >>= 4;
	} while (v);
	pos = weft__sigfmt_str(buf, len, pos, "0x");
	while (n && pos < len)
		buf[pos++] = tmp[--n];
	return pos;
}

/* Append the address @p as weft__sigfmt_hex() does. */
static inline size_t weft__sigfmt_ptr(char *buf, size_t len, size_t pos,
				      const void *p)
{
	return weft__sigfmt_hex(buf, len, pos, (uintmax_t)(uintptr_t)p);
}

#endif /* WEFT_UTIL_SIGFMT_H */
