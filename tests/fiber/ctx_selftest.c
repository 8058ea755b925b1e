/*
 * ctx_selftest.c - the checks of tests/unit/test_context.c as a plain
 * program, without Criterion, so that it runs where Criterion is not
 * available: under qemu-user for AArch64 (.ci/aarch64) and in any build.
 *
 * Runs every check of ctx_checks.h in this process, then the returning
 * entry in a child process (it must die of the trap signal). Prints one
 * line per check. Exit status: 0 all passed (some may have been skipped),
 * 1 a check failed, 77 none could run.
 */
#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctx_checks.h"

struct check {
	const char *name;
	int (*fn)(void);
};

/* The returning entry, in a child: it must die of the trap signal. */
static int ck_returning_entry_traps(void)
{
	pid_t pid;
	int status;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return ck_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		ck_run_returning_entry();
		_Exit(3);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return ck_fail("waitpid: %s", strerror(errno));
	}
	if (WIFSIGNALED(status) && WTERMSIG(status) == CK_TRAP_SIGNAL)
		return CK_PASS;
	if (WIFSIGNALED(status))
		return ck_fail("the child died of signal %d (%s), expected %d (%s)",
			       WTERMSIG(status), strsignal(WTERMSIG(status)),
			       CK_TRAP_SIGNAL, strsignal(CK_TRAP_SIGNAL));
	return ck_fail("the child exited with status %d, expected signal %d",
		       WEXITSTATUS(status), CK_TRAP_SIGNAL);
}

static const struct check checks[] = {
	{ "ping_pong", ck_ping_pong },
	{ "init_footprint", ck_init_footprint },
	{ "callee_saved_registers", ck_registers },
	{ "live_values", ck_live_values },
	{ "stack_alignment", ck_alignment },
	{ "fp_control_per_context", ck_fp_control },
	{ "migrates_between_threads", ck_migration },
	{ "many_contexts_round_robin", ck_many },
	{ "returning_entry_traps", ck_returning_entry_traps },
};

int main(void)
{
	unsigned pass = 0, fail = 0, skip = 0;

	printf("ctx_selftest: %s backend\n",
	       WEFT_CONTEXT_UCONTEXT ? "ucontext" : "assembly");
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		int rc;

		ck_msg[0] = '\0';
		rc = checks[i].fn();
		switch (rc) {
		case CK_PASS:
			pass++;
			printf("PASS %s\n", checks[i].name);
			break;
		case CK_SKIP:
			skip++;
			printf("SKIP %s: %s\n", checks[i].name, ck_msg);
			break;
		default:
			fail++;
			printf("FAIL %s: %s\n", checks[i].name, ck_msg);
			break;
		}
		fflush(stdout);
	}
	printf("ctx_selftest: %u passed, %u failed, %u skipped\n", pass, fail,
	       skip);
	if (fail)
		return 1;
	return pass ? 0 : 77;
}
