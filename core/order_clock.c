/*
 * order_clock.c -- choice of the clock order's stamp source and its heavy
 * fence (FTM_ORDER=clock builds; owner: ENGINE-FLOW).  The argument is in
 * order_clock.h.
 *
 * Owns: ftm_clock_source, written once by a constructor that runs before
 * main (or at dlopen of the extension, before the embedder can start the
 * engine), hence before any thread records.  The TSC source needs:
 * x86-64; "constant_tsc" and "nonstop_tsc" in /proc/cpuinfo; the kernel's
 * current clocksource still "tsc" (the kernel demotes it when its warp
 * checks see the TSCs out of step); and membarrier's private expedited
 * command, registered here.  Otherwise the counter source is used.  The
 * environment variable FTM_ORDER_SOURCE=counter forces the fallback (the
 * tests run the oracle over both sources).
 */
#include "order_clock.h"

#if FTM_ORDER_CLOCK

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/membarrier.h>

int ftm_clock_source = FTM_CLOCK_SRC_COUNTER;

static bool cpu_flags_have(const char *a, const char *b)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL) {
        return false;
    }
    char line[4096];
    bool ok = false;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "flags", 5) != 0) {
            continue;
        }
        /* Words are space-separated; look for " a " and " b ". */
        char pa[64], pb[64];
        snprintf(pa, sizeof(pa), " %s", a);
        snprintf(pb, sizeof(pb), " %s", b);
        size_t n = strlen(line);
        if (n > 0 && line[n - 1] == '\n') {
            line[n - 1] = ' ';
        }
        char *ha = strstr(line, pa);
        char *hb = strstr(line, pb);
        ok = ha != NULL && (ha[strlen(pa)] == ' ') && hb != NULL &&
             (hb[strlen(pb)] == ' ');
        break; /* the first CPU's flags; the kernel checks the others */
    }
    fclose(f);
    return ok;
}

static bool clocksource_is_tsc(void)
{
    FILE *f = fopen(
        "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        "r");
    if (f == NULL) {
        return false;
    }
    char buf[32] = {0};
    bool ok = fgets(buf, sizeof(buf), f) != NULL &&
              strncmp(buf, "tsc", 3) == 0 &&
              (buf[3] == '\n' || buf[3] == '\0');
    fclose(f);
    return ok;
}

static bool membarrier_register(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        return false;
    }
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                   0, 0) == 0;
}

__attribute__((constructor)) static void ftm_clock_choose(void)
{
#if defined(__x86_64__)
    const char *force = getenv("FTM_ORDER_SOURCE");
    if (force != NULL && strcmp(force, "counter") == 0) {
        return;
    }
    if (!cpu_flags_have("constant_tsc", "nonstop_tsc") ||
        !clocksource_is_tsc() || !membarrier_register()) {
        return;
    }
    ftm_clock_source = FTM_CLOCK_SRC_TSC;
#endif
}

void ftm_clock_heavy_fence(void)
{
    if (ftm_clock_source == FTM_CLOCK_SRC_TSC) {
        /* Registered in the constructor: cannot fail with EPERM.  Should
         * it fail anyway, nothing orders the markers: that is fatal. */
        if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) !=
            0) {
            abort();
        }
    } else {
        atomic_thread_fence(memory_order_seq_cst);
    }
}

const char *ftm_clock_source_name(void)
{
    return ftm_clock_source == FTM_CLOCK_SRC_TSC ? "tsc" : "counter";
}

#endif /* FTM_ORDER_CLOCK */
