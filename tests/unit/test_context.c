/*
 * test_context.c - the machine context switch (src/fiber/context.h), with
 * whichever backend the build selected (meson option `context`).
 *
 * The checks themselves live in tests/fiber/ctx_checks.h, shared with
 * tests/fiber/ctx_selftest.c, the plain program that runs the same checks
 * under qemu-user for AArch64 (.ci/aarch64), where Criterion is not
 * available. Each test here runs one check and turns its verdict into a
 * Criterion result.
 *
 * Only the test that waits (for other threads) has a .timeout: the rest
 * never block, and Criterion 2.4's timeout bookkeeping (BoxFort's
 * src/timeout-posix.c) can leak a request when several short timed tests
 * run at once, which LeakSanitizer then reports as a failure of the whole
 * program in ASan builds. meson's own timeout covers the program.
 *
 * No sanitizer annotations: these raw switches neither longjmp nor call a
 * noreturn function on a test stack, which is what ASan needs to know
 * about (research/fibers.md section 4.1).
 */
#include <signal.h>

#include <criterion/criterion.h>

#include "../fiber/ctx_checks.h"

static void verdict(int rc)
{
	if (rc == CK_SKIP)
		cr_skip_test("%s", ck_msg);
	cr_assert_eq(rc, CK_PASS, "%s", ck_msg);
}

Test(context, ping_pong)
{
	verdict(ck_ping_pong());
}

Test(context, init_footprint)
{
	verdict(ck_init_footprint());
}

Test(context, callee_saved_registers)
{
	verdict(ck_registers());
}

Test(context, live_values)
{
	verdict(ck_live_values());
}

Test(context, stack_alignment)
{
	verdict(ck_alignment());
}

Test(context, fp_control_per_context)
{
	verdict(ck_fp_control());
}

Test(context, migrates_between_threads, .timeout = 60)
{
	verdict(ck_migration());
}

Test(context, many_contexts_round_robin)
{
	verdict(ck_many());
}

Test(context, returning_entry_traps, .signal = CK_TRAP_SIGNAL)
{
	ck_run_returning_entry();
}
