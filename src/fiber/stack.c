/*
 * fiber/stack.c - fiber stack mappings, the guarded-stack budget, and the
 * SIGSEGV/SIGBUS handler that reports a stack overflow.
 *
 * Layout of every stack, guarded or not (one mmap, lowest address left):
 *
 *	map                    lo                                   hi
 *	| WEFT__STACK_GUARD    | usable (size rounded to pages)      |
 *	  PROT_NONE if guarded,  canary word at lo if unguarded
 *	  else untouched slack
 *
 * An unguarded stack keeps the low region as read-write slack: it costs
 * address space but no memory (MAP_NORESERVE, never touched), it keeps the
 * layout the same for both kinds, and an overflow past the canary lands in
 * it before it reaches a neighbouring mapping.
 *
 * Why 16 pages and a budget: stack.h, and research/fibers.md section 2.2
 * (two VMAs per guarded stack; mprotect() failed with ENOMEM at stack
 * 32 753 under the default vm.max_map_count of 65530). The budget is read
 * once (pthread_once) as (vm.max_map_count - 4096) / 2, 65530 assumed when
 * /proc cannot be read. WEFT_GUARDED_STACKS, if set to a decimal number,
 * replaces it: 0 turns guard pages off, a value above what the kernel
 * allows is harmless because a failing mprotect() falls back to an
 * unguarded stack. Any other value is ignored.
 *
 * The overflow report follows Rust's std (stack_overflow.rs) and what
 * research/fibers.md section 2.3 measured: an SA_SIGINFO | SA_ONSTACK
 * handler asks fiber.c (through the registered lookup) whether si_addr is
 * in the current fiber's guard; if so it write(2)s the message, restores
 * SIG_DFL and returns, so that the faulting instruction runs again and the
 * default action dumps core at the real fault site. Anything else is
 * passed to the handler that was installed before ours. The handler runs
 * on an alternate signal stack (a stack overflow leaves no room on the
 * faulting one); each worker thread gets its own unless it already has one
 * (ASan installs its own and breaks at thread exit if it is replaced:
 * fibers.md section 2.3).
 *
 * Threads: map/unmap/release from any thread; the budget and count are
 * atomics; the handler is installed once per process; the signal stack is
 * per thread (thread-local).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber/stack.h"
#include "weft_config.h"

#if WEFT_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#if WEFT_ASAN || defined(__SANITIZE_ADDRESS__)
#define STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STACK_ASAN 1
#endif
#endif
#ifdef STACK_ASAN
#include <sanitizer/asan_interface.h>
#endif

#define STACK_MAX ((size_t)2 << 30)	   /* "absurd" above this (stack.h) */
#define MAPS_RESERVED 4096		   /* VMAs left to the rest of the process */
#define MAP_COUNT_DEFAULT 65530		   /* the kernel's DEFAULT_MAX_MAP_COUNT */
#define ALTSTACK_MIN ((size_t)64 * 1024)   /* room for the handler and lookup */

/* ---- budget --------------------------------------------------------- */

/*
 * Both relaxed: they only count, and publish no other memory. The limit
 * is advisory (the kernel has the last word through mprotect's ENOMEM).
 */
static _Atomic size_t guard_budget;
static _Atomic size_t guarded_count;
static pthread_once_t budget_once = PTHREAD_ONCE_INIT;

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	while (*end == ' ' || *end == '\n' || *end == '\t')
		end++;
	if (errno || *end || v > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

static size_t read_max_map_count(void)
{
	char buf[32];
	size_t v;
	ssize_t n;
	int fd;

	fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return MAP_COUNT_DEFAULT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return MAP_COUNT_DEFAULT;
	buf[n] = '\0';
	if (parse_size(buf, &v) != 0)
		return MAP_COUNT_DEFAULT;
	return v;
}

static void budget_init(void)
{
	size_t maps, n;
	int saved = errno; /* parse_size() goes through strtoull() */

	if (parse_size(getenv("WEFT_GUARDED_STACKS"), &n) != 0) {
		maps = read_max_map_count();
		n = maps > MAPS_RESERVED ? (maps - MAPS_RESERVED) / 2 : 0;
	}
	atomic_store_explicit(&guard_budget, n, memory_order_relaxed);
	errno = saved;
}

/* Take one guarded-stack slot; false when the budget is spent. */
static bool guard_take(void)
{
	size_t c, limit;

	pthread_once(&budget_once, budget_init);
	limit = atomic_load_explicit(&guard_budget, memory_order_relaxed);
	c = atomic_load_explicit(&guarded_count, memory_order_relaxed);
	do {
		if (c >= limit)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&guarded_count, &c,
			c + 1, memory_order_relaxed, memory_order_relaxed));
	return true;
}

static void guard_put(void)
{
	atomic_fetch_sub_explicit(&guarded_count, 1, memory_order_relaxed);
}

size_t weft__stack_guard_budget(void)
{
	pthread_once(&budget_once, budget_init);
	return atomic_load_explicit(&guard_budget, memory_order_relaxed);
}

size_t weft__stack_guarded_count(void)
{
	return atomic_load_explicit(&guarded_count, memory_order_relaxed);
}

size_t weft__stack_set_guard_budget(size_t n)
{
	/* Initialise first, so that a later lazy init cannot overwrite @n. */
	pthread_once(&budget_once, budget_init);
	return atomic_exchange_explicit(&guard_budget, n, memory_order_relaxed);
}

/* ---- mappings ------------------------------------------------------- */

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_up(size_t n, size_t to)
{
	return (n + to - 1) / to * to;
}

/* The guard is 16 pages of 4 KiB; on a kernel with larger pages it is
 * rounded up so that mprotect() gets a page multiple. */
static size_t guard_size(size_t page)
{
	return round_up(WEFT__STACK_GUARD, page);
}

static void canary_write(const struct weft__stack *s)
{
	*(volatile uint64_t *)s->lo = WEFT__STACK_CANARY;
}

int weft__stack_map(size_t size, struct weft__stack *out)
{
	size_t page = page_size(), guard = guard_size(page), usable;
	bool guarded;
	char *map;

	if (size > STACK_MAX)
		return -EINVAL;
	usable = round_up(size < WEFT__STACK_MIN ? WEFT__STACK_MIN : size, page);

	map = mmap(NULL, guard + usable, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		   -1, 0);
	if (map == MAP_FAILED)
		return -ENOMEM;

#ifdef MADV_NOHUGEPAGE
	/*
	 * Before the mprotect(), while the mapping is still one VMA. Kernels
	 * from commit c4608d1bf7c6 (6.7/6.8) already imply it for MAP_STACK
	 * (fibers.md 2.2). EINVAL without THP support is harmless.
	 */
	(void)madvise(map, guard + usable, MADV_NOHUGEPAGE);
#endif

	guarded = guard_take();
	if (guarded && mprotect(map, guard, PROT_NONE) != 0) {
		/* ENOMEM: vm.max_map_count reached despite the budget (a
		 * too-large WEFT_GUARDED_STACKS, or a process with many other
		 * mappings). A canary is better than failing the spawn. */
		guard_put();
		guarded = false;
	}

	out->map = map;
	out->map_size = guard + usable;
	out->lo = map + guard;
	out->hi = map + guard + usable;
	out->guarded = guarded;
	out->vg_id = 0;
	if (!guarded)
		canary_write(out);
#if WEFT_HAVE_VALGRIND_H
	/* Valgrind wants the lowest and the highest addressable byte
	 * (valgrind.h, VALGRIND_STACK_REGISTER). */
	if (RUNNING_ON_VALGRIND)
		out->vg_id = VALGRIND_STACK_REGISTER(out->lo,
						     (char *)out->hi - 1);
#endif
	return 0;
}

void weft__stack_unmap(struct weft__stack *s)
{
	if (!s->map)
		return;
#if WEFT_HAVE_VALGRIND_H
	/* Not keyed on vg_id != 0: Valgrind may hand out id 0 itself. */
	if (RUNNING_ON_VALGRIND)
		VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
#ifdef STACK_ASAN
	/* Frames abandoned on this stack leave poisoned shadow bytes behind;
	 * a later mapping at the same address would inherit them (PHP's
	 * zend_fibers.c and folly do the same: fibers.md 4.1). */
	__asan_unpoison_memory_region(s->map, s->map_size);
#endif
	if (munmap(s->map, s->map_size) != 0) {
		/*
		 * ENOMEM: unguarded stacks merge into one VMA, and unmapping
		 * one from the middle splits it, which needs a VMA more than
		 * vm.max_map_count may allow (seen with the budget set above
		 * the kernel's limit and every other stack unmapped). Give the
		 * memory back at least; the address range stays reserved.
		 */
		(void)madvise(s->map, s->map_size, MADV_DONTNEED);
	}
	if (s->guarded)
		guard_put();
	memset(s, 0, sizeof(*s));
}

void weft__stack_release(struct weft__stack *s, size_t keep)
{
	char *lo = s->lo, *hi = s->hi, *end;
	size_t page = page_size();

	if (keep >= (size_t)(hi - lo))
		return;
	/* Round the boundary down: at least @keep top bytes survive. */
	end = (char *)((uintptr_t)(hi - keep) & ~(uintptr_t)(page - 1));
	if (end > lo) {
#ifdef STACK_ASAN
		/* The pages come back zeroed; their shadow must say so too. */
		__asan_unpoison_memory_region(lo, (size_t)(end - lo));
#endif
		(void)madvise(lo, (size_t)(end - lo), MADV_DONTNEED);
	}
	if (!s->guarded)
		canary_write(s);
}

/* ---- overflow report ------------------------------------------------ */

/* acquire in on_fault(): pairs with the release in
 * weft__stack_overflow_init(). Lock-free on every target we build for, as
 * a load from a signal handler must be. */
static _Atomic(weft__overflow_lookup) overflow_lookup;
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2,
	       "on_fault() needs a lock-free pointer load");
static pthread_once_t overflow_once = PTHREAD_ONCE_INIT;

/* The dispositions we replaced; written once before our handler is
 * installed (the sigaction() system call orders the two), read-only after,
 * except that an SA_RESETHAND handler is dropped after its one call. */
static struct sigaction old_segv, old_bus;

/* The alternate signal stack this thread installed, if any. */
static _Thread_local void *altstack_map;
static _Thread_local size_t altstack_len;

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void set_default(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(sig, &sa, NULL);
}

/*
 * Do what the previous disposition would have done. A fault raised by the
 * hardware (si_code > 0) repeats when we return; the kernel's own rule
 * for a synchronous fault that is ignored is to kill anyway
 * (force_sig_info_to_task resets SIG_IGN to SIG_DFL), so SIG_IGN acts as
 * SIG_DFL for it. A signal sent with kill() does not repeat: re-raise it
 * for SIG_DFL (it stays pending while blocked in this handler), drop it
 * for SIG_IGN.
 */
static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *slot = sig == SIGSEGV ? &old_segv : &old_bus;
	struct sigaction old = *slot;
	bool fault = si->si_code > 0;
	sigset_t prev;

	if (old.sa_handler == SIG_IGN && !fault)
		return;
	if (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN) {
		set_default(sig);
		if (!fault)
			(void)raise(sig);
		return;
	}
	if (old.sa_flags & SA_RESETHAND) {
		slot->sa_handler = SIG_DFL;
		slot->sa_flags &= ~SA_SIGINFO;
	}
	/* The old handler expects its own sa_mask blocked while it runs. */
	(void)pthread_sigmask(SIG_BLOCK, &old.sa_mask, &prev);
	if (old.sa_flags & SA_SIGINFO)
		old.sa_sigaction(sig, si, uc);
	else
		old.sa_handler(sig);
	(void)pthread_sigmask(SIG_SETMASK, &prev, NULL);
}

/* Async-signal-safe throughout: the lookup is required to be, the rest is
 * write(), sigaction(), raise() and pthread_sigmask(). */
static void on_fault(int sig, siginfo_t *si, void *uc)
{
	weft__overflow_lookup lookup;
	char msg[1024];
	int saved = errno;
	size_t n = 0;

	lookup = atomic_load_explicit(&overflow_lookup, memory_order_acquire);
	if (lookup && si->si_code > 0)
		n = lookup(si->si_addr, msg, sizeof(msg));
	if (n > 0) {
		write_all(STDERR_FILENO, msg, n < sizeof(msg) ? n : sizeof(msg));
		set_default(sig);
	} else {
		chain(sig, si, uc);
	}
	errno = saved;
}

static void install_one(int sig, struct sigaction *old)
{
	struct sigaction sa;

	/* Read the old disposition first so that it is in place before the
	 * handler that uses it can run. */
	if (sigaction(sig, NULL, old) != 0) {
		memset(old, 0, sizeof(*old));
		old->sa_handler = SIG_DFL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(sig, &sa, NULL);
}

static void overflow_install(void)
{
	install_one(SIGSEGV, &old_segv);
	install_one(SIGBUS, &old_bus);
}

void weft__stack_overflow_init(weft__overflow_lookup lookup)
{
	/* release: pairs with the acquire in on_fault() */
	atomic_store_explicit(&overflow_lookup, lookup, memory_order_release);
	pthread_once(&overflow_once, overflow_install);
}

void weft__stack_overflow_thread_init(void)
{
	size_t page = page_size(), len;
	stack_t old, ss;
	char *map;

	if (altstack_map)
		return;
	if (sigaltstack(NULL, &old) != 0 || !(old.ss_flags & SS_DISABLE))
		return; /* the thread has one already (ASan's, the user's) */

	/* SIGSTKSZ is sysconf(_SC_SIGSTKSZ) on glibc >= 2.34 (it grows with
	 * AVX-512 state); a page below it is a guard for the handler itself. */
	len = (size_t)SIGSTKSZ;
	len = round_up(len < ALTSTACK_MIN ? ALTSTACK_MIN : len, page);
	map = mmap(NULL, len + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
		   -1, 0);
	if (map == MAP_FAILED)
		return;
	(void)mprotect(map, page, PROT_NONE);

	memset(&ss, 0, sizeof(ss));
	ss.ss_sp = map + page;
	ss.ss_size = len;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) != 0) {
		(void)munmap(map, len + page);
		return;
	}
	altstack_map = map;
	altstack_len = len + page;
}

void weft__stack_overflow_thread_fini(void)
{
	size_t page = page_size();
	stack_t cur, off;

	if (!altstack_map)
		return;
	if (sigaltstack(NULL, &cur) == 0 &&
	    cur.ss_sp == (char *)altstack_map + page &&
	    !(cur.ss_flags & SS_DISABLE)) {
		if (cur.ss_flags & SS_ONSTACK)
			return; /* called from a handler on it: cannot free */
		memset(&off, 0, sizeof(off));
		off.ss_flags = SS_DISABLE;
		if (sigaltstack(&off, NULL) != 0)
			return;
	}
	(void)munmap(altstack_map, altstack_len);
	altstack_map = NULL;
	altstack_len = 0;
}
