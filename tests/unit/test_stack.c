/*
 * test_stack.c - fiber stack memory (src/fiber/stack.c): the mapping and
 * its guard, the guarded-stack budget and the canary that replaces the
 * guard past it, releasing pages, and the stack-overflow report of the
 * SIGSEGV handler, including how it passes other faults on. Plus the
 * async-signal-safe formatters of util/sigfmt.h that the report uses.
 *
 * Criterion runs every test in its own process, so the process-wide state
 * (budget, installed handler) starts fresh in each. The overflow tests run
 * a deep recursion on a mapped stack through glibc's ucontext, not the
 * project's context switch, so that they test only this module.
 *
 * Under ASan, ASan's own SIGSEGV handler is installed when a test starts;
 * tests that expect the default action for a fault that is not an
 * overflow set SIG_DFL first, or ASan would report and abort (SIGABRT).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "fiber/stack.h"
#include "helpers.h"
#include "util/sigfmt.h"
#include "weft_config.h"

#if WEFT_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

/*
 * The chaining tests end in an old handler's _exit() after a deliberate
 * write to a protected page. Memcheck would report that write as an error
 * (and its --error-exitcode replace the exit code they check), so under
 * Valgrind (.ci/valgrind) error reporting is turned off for this process
 * just before the write: the test still runs the whole chain.
 */
static void deliberate_fault_next(void)
{
#if WEFT_HAVE_VALGRIND_H
	VALGRIND_DISABLE_ERROR_REPORTING;
#endif
}

/* And on again in the handler that ends such a test with _exit(), or
 * Valgrind warns that a thread exits with reporting off. */
static void deliberate_fault_done(void)
{
#if WEFT_HAVE_VALGRIND_H
	VALGRIND_ENABLE_ERROR_REPORTING;
#endif
}

static size_t page(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Death tests are expected to crash: keep them from writing core files. */
static void no_core(void)
{
	struct rlimit rl = {0, 0};

	setrlimit(RLIMIT_CORE, &rl);
}

static void default_segv(void)
{
	signal(SIGSEGV, SIG_DFL);
}

static size_t usable(const struct weft__stack *s)
{
	return (size_t)((char *)s->hi - (char *)s->lo);
}

/* ---- mapping -------------------------------------------------------- */

Test(stack, map_gives_writable_usable_range_above_guard)
{
	struct weft__stack s;
	size_t i;

	cr_assert_eq(weft__stack_map(256 * 1024, &s), 0);
	cr_assert(s.guarded);
	cr_assert_eq(usable(&s), 256 * 1024);
	cr_assert_eq((char *)s.lo, (char *)s.map + WEFT__STACK_GUARD);
	cr_assert_eq(s.map_size, (size_t)WEFT__STACK_GUARD + 256 * 1024);
	cr_assert_eq((uintptr_t)s.lo % page(), 0);
	memset(s.lo, 0x5a, usable(&s));
	for (i = 0; i < usable(&s); i += 4096)
		cr_assert_eq(((unsigned char *)s.lo)[i], 0x5a);
	cr_assert_eq(((unsigned char *)s.hi)[-1], 0x5a);
	cr_assert_eq(weft__stack_guarded_count(), 1);
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_guarded_count(), 0);
	cr_assert_null(s.map);
}

Test(stack, write_just_below_lo_hits_guard, .signal = SIGSEGV,
     .timeout = 30)
{
	struct weft__stack s;

	no_core();
	default_segv();
	cr_assert_eq(weft__stack_map(64 * 1024, &s), 0);
	cr_assert(s.guarded);
	((volatile char *)s.lo)[-1] = 1;
}

Test(stack, write_at_bottom_of_guard_hits_guard, .signal = SIGSEGV,
     .timeout = 30)
{
	struct weft__stack s;

	no_core();
	default_segv();
	cr_assert_eq(weft__stack_map(64 * 1024, &s), 0);
	*(volatile char *)s.map = 1;
}

Test(stack, size_rounds_up_to_min_and_pages)
{
	struct weft__stack s;

	cr_assert_eq(weft__stack_map(0, &s), 0);
	cr_assert_eq(usable(&s), WEFT__STACK_MIN);
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_map(1, &s), 0);
	cr_assert_eq(usable(&s), WEFT__STACK_MIN);
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_map(WEFT__STACK_MIN + 1, &s), 0);
	cr_assert_eq(usable(&s), WEFT__STACK_MIN + page());
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_map(100 * 1000, &s), 0);
	cr_assert_eq(usable(&s) % page(), 0);
	cr_assert_geq(usable(&s), 100 * 1000);
	cr_assert_lt(usable(&s), 100 * 1000 + page());
	weft__stack_unmap(&s);
}

/* Two GiB: the public limit of 1 GiB of usable stack plus room for the
 * fiber descriptor on top (fiber.c). */
Test(stack, two_gib_is_allowed_more_is_einval)
{
	struct weft__stack s;

	cr_assert_eq(weft__stack_map((size_t)2 << 30, &s), 0);
	cr_assert_eq(usable(&s), (size_t)2 << 30);
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_map(((size_t)2 << 30) + 1, &s), -EINVAL);
	cr_assert_eq(weft__stack_map(SIZE_MAX, &s), -EINVAL);
	cr_assert_eq(weft__stack_map(SIZE_MAX - 4096, &s), -EINVAL);
	cr_assert_eq(weft__stack_guarded_count(), 0);
}

Test(stack, unmap_of_zeroed_or_unmapped_stack_is_a_noop)
{
	struct weft__stack s;

	memset(&s, 0, sizeof(s));
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_map(0, &s), 0);
	weft__stack_unmap(&s);
	weft__stack_unmap(&s);
	cr_assert_eq(weft__stack_guarded_count(), 0);
}

/* ---- budget and canary ---------------------------------------------- */

Test(stack, budget_of_two_leaves_third_stack_unguarded_with_canary)
{
	struct weft__stack s[3], again;
	int i;

	weft__stack_set_guard_budget(2);
	for (i = 0; i < 3; i++)
		cr_assert_eq(weft__stack_map(32 * 1024, &s[i]), 0);
	cr_assert(s[0].guarded);
	cr_assert(s[1].guarded);
	cr_assert_not(s[2].guarded);
	cr_assert_eq(*(uint64_t *)s[2].lo, WEFT__STACK_CANARY);
	cr_assert(weft__stack_canary_ok(&s[2]));
	/* Same layout for both kinds: the low region is slack, not guard. */
	cr_assert_eq((char *)s[2].lo, (char *)s[2].map + WEFT__STACK_GUARD);
	cr_assert_eq(weft__stack_guarded_count(), 2);

	weft__stack_unmap(&s[0]);
	cr_assert_eq(weft__stack_guarded_count(), 1);
	cr_assert_eq(weft__stack_map(32 * 1024, &again), 0);
	cr_assert(again.guarded, "a freed slot is reused");
	weft__stack_unmap(&again);

	weft__stack_unmap(&s[2]);
	cr_assert_eq(weft__stack_guarded_count(), 1);
	weft__stack_unmap(&s[1]);
	cr_assert_eq(weft__stack_guarded_count(), 0);
}

Test(stack, set_guard_budget_returns_old_value)
{
	size_t first = weft__stack_guard_budget();

	cr_assert_eq(weft__stack_set_guard_budget(5), first);
	cr_assert_eq(weft__stack_guard_budget(), 5);
	cr_assert_eq(weft__stack_set_guard_budget(first), 5);
}

Test(stack, default_budget_is_half_of_max_map_count_minus_reserve)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	unsigned long maps = 65530;

	if (f) {
		cr_assert_eq(fscanf(f, "%lu", &maps), 1);
		fclose(f);
	}
	unsetenv("WEFT_GUARDED_STACKS");
	cr_assert_eq(weft__stack_guard_budget(),
		     maps > 4096 ? (maps - 4096) / 2 : 0);
}

Test(stack, env_overrides_budget)
{
	struct weft__stack s;

	setenv("WEFT_GUARDED_STACKS", "0", 1);
	cr_assert_eq(weft__stack_guard_budget(), 0);
	cr_assert_eq(weft__stack_map(0, &s), 0);
	cr_assert_not(s.guarded);
	weft__stack_unmap(&s);
}

Test(stack, env_number_is_used)
{
	setenv("WEFT_GUARDED_STACKS", "7", 1);
	cr_assert_eq(weft__stack_guard_budget(), 7);
}

Test(stack, env_garbage_is_ignored)
{
	FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
	unsigned long maps = 65530;
	size_t dflt;

	if (f) {
		cr_assert_eq(fscanf(f, "%lu", &maps), 1);
		fclose(f);
	}
	dflt = maps > 4096 ? (maps - 4096) / 2 : 0;
	setenv("WEFT_GUARDED_STACKS", "12abc", 1);
	cr_assert_eq(weft__stack_guard_budget(), dflt);
}

Test(stack, overwritten_canary_is_detected)
{
	struct weft__stack s, g;

	weft__stack_set_guard_budget(0);
	cr_assert_eq(weft__stack_map(0, &s), 0);
	cr_assert_not(s.guarded);
	cr_assert(weft__stack_canary_ok(&s));
	((volatile char *)s.lo)[3] = 0;
	cr_assert_not(weft__stack_canary_ok(&s));
	weft__stack_unmap(&s);

	/* A guarded stack has no canary; its low bytes are ordinary stack. */
	weft__stack_set_guard_budget(1);
	cr_assert_eq(weft__stack_map(0, &g), 0);
	cr_assert(g.guarded);
	memset(g.lo, 0, 64);
	cr_assert(weft__stack_canary_ok(&g));
	weft__stack_unmap(&g);
}

Test(stack, many_stacks_do_not_leak_budget, .timeout = 30)
{
	enum { N = 2000 };
	static struct weft__stack s[N];
	size_t guarded = 0;
	int i;

	for (i = 0; i < N; i++) {
		cr_assert_eq(weft__stack_map(16 * 1024, &s[i]), 0);
		((volatile char *)s[i].hi)[-1] = 1;
		guarded += s[i].guarded;
	}
	cr_assert_eq(weft__stack_guarded_count(), guarded);
	cr_assert_eq(guarded, N, "default budget is far above %d", N);
	for (i = 0; i < N; i++)
		weft__stack_unmap(&s[i]);
	cr_assert_eq(weft__stack_guarded_count(), 0);

	/* Again with the budget cut to half: the rest get canaries. */
	weft__stack_set_guard_budget(N / 2);
	for (i = 0; i < N; i++)
		cr_assert_eq(weft__stack_map(16 * 1024, &s[i]), 0);
	cr_assert_eq(weft__stack_guarded_count(), N / 2);
	for (i = 0; i < N; i++) {
		cr_assert_eq(s[i].guarded, i < N / 2);
		cr_assert(weft__stack_canary_ok(&s[i]));
	}
	for (i = N - 1; i >= 0; i--)
		weft__stack_unmap(&s[i]);
	cr_assert_eq(weft__stack_guarded_count(), 0);

	for (i = 0; i < N; i++) {
		cr_assert_eq(weft__stack_map(16 * 1024, &s[0]), 0);
		weft__stack_unmap(&s[0]);
	}
	cr_assert_eq(weft__stack_guarded_count(), 0);
}

/*
 * No .timeout here: it does bounded work (meson's timeout still applies),
 * and with one, Criterion 2.4.1's runner process leaked 48 bytes in most
 * ASan runs with -j2 or more, which LeakSanitizer turns into a failure.
 */
Test(stack, kernel_map_limit_falls_back_to_canary)
{
	/*
	 * With the budget above what vm.max_map_count allows, mprotect()
	 * fails with ENOMEM after about 32 750 guarded stacks (fibers.md
	 * 2.2): the stack must come back unguarded, not as an error.
	 */
	enum { MAX = 70000 };
	static struct weft__stack s[MAX];
	unsigned long maps = 0;
	size_t guarded = 0;
	FILE *f;
	int i, n;

#if WEFT_HAVE_VALGRIND_H
	if (RUNNING_ON_VALGRIND)
		cr_skip_test("Valgrind's own mapping table is smaller");
#endif
	f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f) {
		if (fscanf(f, "%lu", &maps) != 1)
			maps = 0;
		fclose(f);
	}
	if (maps == 0 || maps > 2 * (unsigned long)MAX - 10000)
		cr_skip_test("vm.max_map_count %lu: limit out of reach", maps);

	weft__stack_set_guard_budget(SIZE_MAX);
	for (n = 0; n < MAX; n++) {
		cr_assert_eq(weft__stack_map(0, &s[n]), 0, "stack %d", n);
		if (!s[n].guarded)
			break;
		guarded++;
	}
	cr_assert_lt(n, MAX, "no fallback within %d stacks", MAX);
	cr_assert(weft__stack_canary_ok(&s[n]));
	cr_assert_eq(*(uint64_t *)s[n].lo, WEFT__STACK_CANARY);
	cr_assert_eq(weft__stack_guarded_count(), guarded, "failed try undone");
	/* Guarded ones first: each frees two VMAs before anything splits. */
	for (i = 0; i <= n; i++)
		weft__stack_unmap(&s[i]);
	cr_assert_eq(weft__stack_guarded_count(), 0);
}

/* ---- release -------------------------------------------------------- */

static void check_release(bool guarded)
{
	const size_t keep = 5000; /* not a page multiple on purpose */
	struct weft__stack s;
	unsigned char *lo, *hi, *cut;
	size_t i;

	weft__stack_set_guard_budget(guarded ? 1 : 0);
	cr_assert_eq(weft__stack_map(128 * 1024, &s), 0);
	cr_assert_eq(s.guarded, guarded);
	lo = s.lo;
	hi = s.hi;
	memset(lo, 0xab, usable(&s));
	weft__stack_release(&s, keep);

	cut = (unsigned char *)((uintptr_t)(hi - keep) & ~(uintptr_t)(page() - 1));
	for (i = 0; i < keep; i++)
		cr_assert_eq(hi[-1 - (ptrdiff_t)i], 0xab, "top byte %zu lost", i);
	for (i = guarded ? 0 : sizeof(uint64_t); lo + i < cut; i++)
		cr_assert_eq(lo[i], 0, "byte %zu below the kept top not zero", i);
	cr_assert(weft__stack_canary_ok(&s));
	if (!guarded)
		cr_assert_eq(*(uint64_t *)lo, WEFT__STACK_CANARY);
	/* Still mapped and writable. */
	memset(lo, 1, usable(&s));
	weft__stack_unmap(&s);
}

Test(stack, release_guarded_zeroes_below_keep)
{
	check_release(true);
}

Test(stack, release_unguarded_zeroes_below_keep_and_rewrites_canary)
{
	check_release(false);
}

Test(stack, release_keep_at_least_size_changes_nothing)
{
	struct weft__stack s;

	cr_assert_eq(weft__stack_map(0, &s), 0);
	memset(s.lo, 0xcd, usable(&s));
	weft__stack_release(&s, usable(&s));
	weft__stack_release(&s, SIZE_MAX);
	cr_assert_eq(((unsigned char *)s.lo)[0], 0xcd);
	weft__stack_release(&s, 0);
	cr_assert_eq(((unsigned char *)s.hi)[-1], 0);
	weft__stack_unmap(&s);
}

/* ---- overflow report ------------------------------------------------ */

static struct weft__stack fiber_stack;
static ucontext_t main_uc, fiber_uc;

#define OVERFLOW_MSG "test: fiber overflowed its "

/* Plays fiber.c's part: is @addr in the guard of the one test fiber? */
static size_t guard_lookup(void *addr, char *buf, size_t len)
{
	char *a = addr;
	size_t n = 0;

	if (a < (char *)fiber_stack.map || a >= (char *)fiber_stack.lo)
		return 0;
	n = weft__sigfmt_str(buf, len, n, OVERFLOW_MSG);
	n = weft__sigfmt_uint(buf, len, n, usable(&fiber_stack));
	n = weft__sigfmt_str(buf, len, n, "-byte stack (fault at ");
	n = weft__sigfmt_ptr(buf, len, n, addr);
	n = weft__sigfmt_str(buf, len, n, " in its guard)\n");
	return n;
}

/* Each frame keeps a touched 512-byte array, and the addition after the
 * call keeps the frame alive (no tail call), so this walks down the stack
 * until it faults in the guard. The depth bound only makes it finite. */
__attribute__((noinline)) static unsigned recurse(unsigned depth)
{
	volatile char pad[512];

	pad[0] = (char)depth;
	pad[sizeof(pad) - 1] = (char)depth;
	if (depth == UINT_MAX)
		return 0;
	return recurse(depth + 1) + (unsigned)pad[0] + (unsigned)pad[511];
}

static void fiber_entry(void)
{
	recurse(0);
	swapcontext(&fiber_uc, &main_uc); /* not reached */
}

static void overflow_on_fiber(void)
{
	no_core();
	cr_assert_eq(weft__stack_map(64 * 1024, &fiber_stack), 0);
	cr_assert(fiber_stack.guarded);
	weft__stack_overflow_init(guard_lookup);
	weft__stack_overflow_thread_init();

	cr_assert_eq(getcontext(&fiber_uc), 0);
	fiber_uc.uc_stack.ss_sp = fiber_stack.lo;
	fiber_uc.uc_stack.ss_size = usable(&fiber_stack);
	fiber_uc.uc_link = &main_uc;
	makecontext(&fiber_uc, fiber_entry, 0);
	swapcontext(&main_uc, &fiber_uc);
}

Test(overflow, deep_recursion_on_fiber_dies_by_sigsegv, .signal = SIGSEGV,
     .timeout = 30)
{
	overflow_on_fiber();
}


Test(overflow, report_is_written_to_stderr, .timeout = 30)
{
	char out[4096];
	int status;

	run_child(overflow_on_fiber, out, sizeof(out), &status);
	cr_assert(WIFSIGNALED(status), "child status %#x, stderr: %s", status,
		  out);
	cr_assert_eq(WTERMSIG(status), SIGSEGV);
	cr_assert(strstr(out, OVERFLOW_MSG "65536-byte stack (fault at 0x"),
		  "stderr was: %s", out);
	cr_assert(strstr(out, " in its guard)\n"), "stderr was: %s", out);
}

/* An unrelated fault: a page of our own, never in any guard. */
static volatile char *unrelated_page(void)
{
	void *p = mmap(NULL, page(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}

/* volatile itself: stored before the faulting write, read in the handler */
static volatile char *volatile expected_addr;

static void old_siginfo_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	deliberate_fault_done();
	if (sig == SIGSEGV && si->si_addr == (void *)expected_addr)
		_exit(42);
	_exit(41);
}

static void old_plain_handler(int sig)
{
	deliberate_fault_done();
	_exit(sig == SIGSEGV ? 43 : 44);
}

Test(overflow, other_fault_chains_to_siginfo_handler, .exit_code = 42,
     .timeout = 30)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = old_siginfo_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
	cr_assert_eq(weft__stack_map(0, &fiber_stack), 0);
	weft__stack_overflow_init(guard_lookup);
	weft__stack_overflow_thread_init();

	expected_addr = unrelated_page();
	deliberate_fault_next();
	*expected_addr = 1;
}

Test(overflow, other_fault_chains_to_plain_handler, .exit_code = 43,
     .timeout = 30)
{
	signal(SIGSEGV, old_plain_handler);
	weft__stack_overflow_init(guard_lookup);
	deliberate_fault_next();
	*unrelated_page() = 1;
}

Test(overflow, other_fault_with_default_action_dies, .signal = SIGSEGV,
     .timeout = 30)
{
	no_core();
	default_segv();
	cr_assert_eq(weft__stack_map(0, &fiber_stack), 0);
	weft__stack_overflow_init(guard_lookup);
	deliberate_fault_next();
	*unrelated_page() = 1;
}

Test(overflow, other_fault_with_ignore_still_dies, .signal = SIGSEGV,
     .timeout = 30)
{
	/* The kernel never lets an ignored hardware fault through. */
	no_core();
	signal(SIGSEGV, SIG_IGN);
	weft__stack_overflow_init(guard_lookup);
	deliberate_fault_next();
	*unrelated_page() = 1;
}

Test(overflow, sent_sigsegv_reaches_old_handler, .exit_code = 43,
     .timeout = 30)
{
	signal(SIGSEGV, old_plain_handler);
	weft__stack_overflow_init(guard_lookup);
	raise(SIGSEGV);
}

Test(overflow, sent_sigsegv_with_default_action_dies, .signal = SIGSEGV,
     .timeout = 30)
{
	/* kill()ed, not a fault: it does not repeat, so it is re-raised. */
	no_core();
	default_segv();
	weft__stack_overflow_init(guard_lookup);
	raise(SIGSEGV);
}

Test(overflow, sent_sigsegv_with_ignore_is_ignored)
{
	signal(SIGSEGV, SIG_IGN);
	weft__stack_overflow_init(guard_lookup);
	raise(SIGSEGV);
	cr_assert(true, "survived");
}

static void errno_clobbering_handler(int sig)
{
	(void)sig;
	errno = EIO;
}

Test(overflow, handler_keeps_errno, .timeout = 30)
{
	signal(SIGSEGV, errno_clobbering_handler);
	weft__stack_overflow_init(guard_lookup);
	errno = 1234;
	raise(SIGSEGV);
	cr_assert_eq(errno, 1234);
}

#if WEFT_ASAN || defined(__SANITIZE_ADDRESS__)
static void asan_sees_unrelated_fault(void)
{
	no_core();
	weft__stack_overflow_init(guard_lookup);
	deliberate_fault_next();
	*unrelated_page() = 1;
}

Test(overflow, other_fault_reaches_asan_handler, .timeout = 30)
{
	/* ASan's SEGV handler was installed first: it must still get, and
	 * report, faults that are not overflows (aborting or exiting 1,
	 * depending on abort_on_error). */
	char out[8192];
	int status;

	run_child(asan_sees_unrelated_fault, out, sizeof(out), &status);
	cr_assert((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) ||
		  (WIFEXITED(status) && WEXITSTATUS(status) == 1),
		  "child status %#x", status);
	cr_assert(strstr(out, "AddressSanitizer: SEGV on unknown address"),
		  "stderr was: %s", out);
	cr_assert_null(strstr(out, OVERFLOW_MSG), "stderr was: %s", out);
}
#endif

static void *altstack_thread(void *arg)
{
	stack_t before, during, after;
	int *bad = arg;

	sigaltstack(NULL, &before);
	weft__stack_overflow_thread_init();
	weft__stack_overflow_thread_init(); /* idempotent */
	sigaltstack(NULL, &during);
	if (before.ss_flags & SS_DISABLE) {
		/* None before (plain build): ours, at least 64 KiB. */
		if ((during.ss_flags & SS_DISABLE) ||
		    during.ss_size < 64 * 1024)
			*bad = 1;
	} else if (during.ss_sp != before.ss_sp ||
		   during.ss_size != before.ss_size) {
		*bad = 2; /* someone else's (ASan's) was replaced */
	}
	weft__stack_overflow_thread_fini();
	sigaltstack(NULL, &after);
	if ((after.ss_flags & SS_DISABLE) != (before.ss_flags & SS_DISABLE) ||
	    (!(before.ss_flags & SS_DISABLE) && after.ss_sp != before.ss_sp))
		*bad = 3;
	return NULL;
}

Test(overflow, thread_gets_altstack_only_if_it_has_none, .timeout = 30)
{
	pthread_t t;
	int bad = 0;

	cr_assert_eq(pthread_create(&t, NULL, altstack_thread, &bad), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert_eq(bad, 0);
}

Test(overflow, existing_altstack_is_kept, .timeout = 30)
{
	static char mine[128 * 1024];
	stack_t ss = {.ss_sp = mine, .ss_size = sizeof(mine)}, old, cur;

	sigaltstack(NULL, &old);
	cr_assert_eq(sigaltstack(&ss, NULL), 0);
	weft__stack_overflow_thread_init();
	sigaltstack(NULL, &cur);
	cr_assert_eq(cur.ss_sp, (void *)mine);
	weft__stack_overflow_thread_fini();
	sigaltstack(NULL, &cur);
	cr_assert_eq(cur.ss_sp, (void *)mine, "fini frees only its own");
	sigaltstack(&old, NULL);
}

/* ---- util/sigfmt.h -------------------------------------------------- */

Test(sigfmt, formats_strings_numbers_and_pointers)
{
	char buf[128];
	size_t n = 0;

	n = weft__sigfmt_str(buf, sizeof(buf), n, "a=");
	n = weft__sigfmt_uint(buf, sizeof(buf), n, 0);
	n = weft__sigfmt_str(buf, sizeof(buf), n, " b=");
	n = weft__sigfmt_uint(buf, sizeof(buf), n, 18446744073709551615ull);
	n = weft__sigfmt_str(buf, sizeof(buf), n, " c=");
	n = weft__sigfmt_hex(buf, sizeof(buf), n, 0);
	n = weft__sigfmt_str(buf, sizeof(buf), n, " d=");
	n = weft__sigfmt_hex(buf, sizeof(buf), n, 0xdeadbeef0ull);
	n = weft__sigfmt_str(buf, sizeof(buf), n, " e=");
	n = weft__sigfmt_ptr(buf, sizeof(buf), n, (void *)0x7fff1234);
	buf[n] = '\0';
	cr_assert_str_eq(buf, "a=0 b=18446744073709551615 c=0x0 "
			      "d=0xdeadbeef0 e=0x7fff1234");
}

Test(sigfmt, truncates_without_overrunning)
{
	char buf[8];
	size_t n = 0;

	memset(buf, '#', sizeof(buf));
	n = weft__sigfmt_str(buf, 6, n, "abc");
	n = weft__sigfmt_uint(buf, 6, n, 12345);
	cr_assert_eq(n, 6);
	cr_assert_eq(memcmp(buf, "abc123##", 8), 0);
	n = weft__sigfmt_hex(buf, 6, n, 0xff);
	n = weft__sigfmt_str(buf, 6, n, "x");
	cr_assert_eq(n, 6);
	cr_assert_eq(buf[6], '#');
	cr_assert_eq(weft__sigfmt_hex(buf, 3, 0, 0xabc), 3);
	cr_assert_eq(memcmp(buf, "0xa", 3), 0);
}
