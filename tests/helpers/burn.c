/* Test helper: burns CPU by the process's own clock, so a test's verdict does not depend on
 * how fast the machine is or how loaded it is.
 *   burn MS       spin until CLOCK_PROCESS_CPUTIME_ID reaches MS milliseconds, print
 *                 "burned MS ms" and exit 0
 *   burn forever  spin until killed
 * A further argument is ignored: a marker for a test to find the process by.
 * Built statically by tests/integration/common.rs (burner()). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: burn MS|forever [MARKER]\n");
        return 2;
    }
    int forever = strcmp(argv[1], "forever") == 0;
    double ms = forever ? 0 : strtod(argv[1], NULL);
    if (!forever && ms <= 0) {
        fprintf(stderr, "burn: %s is not a positive number of milliseconds\n", argv[1]);
        return 2;
    }
    volatile unsigned long spin = 0;
    while (forever || cpu_ms() < ms)
        for (int i = 0; i < 10000; i++) spin++;
    printf("burned %s ms\n", argv[1]);
    return 0;
}
