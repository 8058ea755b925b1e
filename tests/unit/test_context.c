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

Test(context, ping_pong, .timeout = 30)
{
	verdict(ck_ping_pong());
}

Test(context, init_footprint, .timeout = 30)
{
	verdict(ck_init_footprint());
}

Test(context, callee_saved_registers, .timeout = 30)
{
	verdict(ck_registers());
}

Test(context, live_values, .timeout = 30)
{
	verdict(ck_live_values());
}

Test(context, stack_alignment, .timeout = 30)
{
	verdict(ck_alignment());
}

Test(context, fp_control_per_context, .timeout = 30)
{
	verdict(ck_fp_control());
}

Test(context, migrates_between_threads, .timeout = 60)
{
	verdict(ck_migration());
}

Test(context, many_contexts_round_robin, .timeout = 60)
{
	verdict(ck_many());
}

/* Under Valgrind the signal would end the process with a report that
 * .ci/valgrind counts as a finding, so the death test skips there. */
Test(context, returning_entry_traps, .signal = CK_TRAP_SIGNAL, .timeout = 30)
{
	if (RUNNING_ON_VALGRIND)
		cr_skip_test("the trap would be reported by Valgrind");
	ck_run_returning_entry();
}
