/*
 * bench_switch.c - the cost of the machine context switch (src/fiber/
 * context.h) in a round trip between two contexts on one thread: the
 * main context switches to a second one, which switches straight back.
 *
 * Variants:
 *   call         baseline: an indirect call through a volatile function
 *                pointer to a function of the switch's signature that
 *                returns its xfer argument plus one
 *   weft         weft__ctx_switch() there and back (two switches), with
 *                the backend this build selected (-Dcontext=asm|ucontext)
 *   swapcontext  glibc's swapcontext() there and back (two switches; each
 *                makes an rt_sigprocmask system call)
 *
 * Each variant runs a chain of dependent round trips (the value sent back
 * is the value received plus one, and is checked at the end: a wrong count
 * exits 1). Every round times each variant once, in an order rotated each
 * round; figures are medians over the rounds, ratios are per-round ratios
 * (median, min..max). Single-threaded: --workers is accepted and ignored.
 *
 * It links the static archive, where the internal weft__ctx_* symbols are
 * visible, besides bench_common (which uses the public API).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "bench_common.h"
#include "fiber/context.h"
#include "weft_config.h"

enum variant { V_CALL, V_WEFT, V_SWAPCONTEXT, NVARIANTS };

static const char *const variant_name[NVARIANTS] = {
	"call", "weft", "swapcontext",
};
static const char *const variant_text[NVARIANTS] = {
	"indirect call",
	WEFT_CONTEXT_UCONTEXT ? "weft__ctx_switch (ucontext)"
			      : "weft__ctx_switch (asm)",
	"glibc swapcontext",
};

#define STACK_SIZE (64 * 1024)

static void die(const char *what)
{
	fprintf(stderr, "bench_switch: %s\n", what);
	exit(1);
}

/* ---------------------------------------------------------- baseline -- */

__attribute__((noinline)) static void *echo_call(void **save, void *to,
						 void *xfer)
{
	(void)save;
	(void)to;
	return (void *)((uintptr_t)xfer + 1);
}

/* volatile: the call stays indirect and is made every time. */
static void *(*volatile echo_fn)(void **, void *, void *) = echo_call;

static uintptr_t run_call(size_t n)
{
	void *(*fn)(void **, void *, void *);
	void *save = NULL;
	uintptr_t x = 0;

	for (size_t i = 0; i < n; i++) {
		fn = echo_fn;
		x = (uintptr_t)fn(&save, NULL, (void *)x);
	}
	return x;
}

/* -------------------------------------------------- weft__ctx_switch -- */

static void *main_ctx, *echo_ctx;

static void echo_entry(void *xfer)
{
	for (;;)
		xfer = weft__ctx_switch(&echo_ctx, main_ctx,
					(void *)((uintptr_t)xfer + 1));
}

static uintptr_t run_weft(size_t n)
{
	uintptr_t x = 0;

	for (size_t i = 0; i < n; i++)
		x = (uintptr_t)weft__ctx_switch(&main_ctx, echo_ctx, (void *)x);
	return x;
}

/* ------------------------------------------------------- swapcontext -- */

static ucontext_t main_uc, echo_uc;
static volatile uintptr_t uc_value;

static void echo_uc_entry(void)
{
	for (;;) {
		uc_value = uc_value + 1;
		if (swapcontext(&echo_uc, &main_uc) != 0)
			die("swapcontext failed");
	}
}

static uintptr_t run_swapcontext(size_t n)
{
	uc_value = 0;
	for (size_t i = 0; i < n; i++) {
		if (swapcontext(&main_uc, &echo_uc) != 0)
			die("swapcontext failed");
	}
	return uc_value;
}

/* One timed run of @n round trips; returns ns per round trip. */
static double run_once(enum variant v, size_t n)
{
	uintptr_t got = 0, want = n;
	int64_t t0, t1;

	t0 = bench_now_ns();
	switch (v) {
	case V_CALL:
		got = run_call(n);
		break;
	case V_WEFT:
		got = run_weft(n);
		break;
	case V_SWAPCONTEXT:
		got = run_swapcontext(n);
		break;
	default:
		abort();
	}
	t1 = bench_now_ns();
	if (got != want) {
		fprintf(stderr, "bench_switch: %s counted %lu round trips, expected %lu\n",
			variant_name[v], (unsigned long)got, (unsigned long)want);
		exit(1);
	}
	return (double)(t1 - t0) / (double)n;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	struct bench_load load;
	struct bench_series ns[NVARIANTS] = { 0 };
	struct bench_series ratio;
	size_t n[NVARIANTS];
	unsigned rounds;
	void *stack_weft, *stack_uc;

	bench_parse_args(&o, "bench_switch", argc, argv);
	rounds = bench_rounds(&o, 7, 15);
	n[V_CALL] = n[V_WEFT] = o.quick ? 2000000 : 20000000;
	/* swapcontext is about 60x slower (research/fibers.md 1.2). */
	n[V_SWAPCONTEXT] = n[V_WEFT] / 20;

	stack_weft = malloc(STACK_SIZE);
	stack_uc = malloc(STACK_SIZE);
	if (!stack_weft || !stack_uc)
		die("malloc failed");
	echo_ctx = weft__ctx_init((char *)stack_weft + STACK_SIZE, echo_entry);
	if (getcontext(&echo_uc) != 0)
		die("getcontext failed");
	echo_uc.uc_stack.ss_sp = stack_uc;
	echo_uc.uc_stack.ss_size = STACK_SIZE;
	echo_uc.uc_link = NULL;
	makecontext(&echo_uc, echo_uc_entry, 0);

	printf("bench_switch: round trips between two contexts on one thread (2 switches each), %u rounds%s\n",
	       rounds, o.quick ? " (quick)" : "");
	printf("  %zu round trips per run (swapcontext: %zu)\n", n[V_WEFT],
	       n[V_SWAPCONTEXT]);

	bench_load_begin(&load);
	/* Warm-up: fault in both stacks, train the predictors. */
	for (unsigned v = 0; v < NVARIANTS; v++) {
		if (bench_selected(&o, variant_name[v]))
			run_once((enum variant)v, n[v] / 10);
	}
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned j = 0; j < NVARIANTS; j++) {
			enum variant v = (enum variant)((j + r) % NVARIANTS);

			if (bench_selected(&o, variant_name[v]))
				bench_series_add(&ns[v], run_once(v, n[v]));
		}
	}
	bench_load_end(&o, &load);

	printf("\n%-30s %12s %16s %12s %12s %16s\n", "variant", "ns/trip",
	       "min..max", "ns/switch", "vs call", "ratio min..max");
	for (unsigned v = 0; v < NVARIANTS; v++) {
		struct bench_series *s = &ns[v];
		char range[40], rmed[16], rrange[40], per_switch[24];

		if (!s->n)
			continue;
		snprintf(range, sizeof(range), "%.2f..%.2f", bench_series_min(s),
			 bench_series_max(s));
		if (v == V_CALL)
			snprintf(per_switch, sizeof(per_switch), "-");
		else
			snprintf(per_switch, sizeof(per_switch), "%.2f",
				 bench_series_median(s) / 2);
		bench_series_ratio(s, &ns[V_CALL], &ratio);
		if (v == V_CALL)
			ratio.n = 0;
		bench_fmt_ratio(&ratio, rmed, sizeof(rmed), rrange, sizeof(rrange));
		printf("%-30s %12.2f %16s %12s %12s %16s\n", variant_text[v],
		       bench_series_median(s), range, per_switch, rmed, rrange);
		bench_csv_series(&o, variant_name[v], "ns_per_round_trip", s);
		bench_csv_series(&o, variant_name[v], "ratio_vs_call", &ratio);
	}

	/* swapcontext over weft: how much the own switch saves. */
	bench_series_ratio(&ns[V_SWAPCONTEXT], &ns[V_WEFT], &ratio);
	if (ratio.n) {
		char rmed[16], rrange[40], text[96], meas[40];
		double rm = bench_series_median(&ratio);

		bench_fmt_ratio(&ratio, rmed, sizeof(rmed), rrange, sizeof(rrange));
		printf("\nswapcontext / weft__ctx_switch: %s (%s)\n", rmed, rrange);
		bench_csv_series(&o, "swapcontext", "ratio_vs_weft", &ratio);
		if (!WEFT_CONTEXT_UCONTEXT) {
			snprintf(text, sizeof(text),
				 "asm switch >= 20x cheaper than swapcontext");
			snprintf(meas, sizeof(meas), "%.1fx", rm);
			bench_target(&o, "asm_vs_swapcontext_ge_20x", rm, rm >= 20.0,
				     text, meas);
		}
	}

	free(stack_weft);
	free(stack_uc);
	return 0;
}
