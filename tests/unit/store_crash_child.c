/* store_crash_child.c - helper of store_crash_test: inserts one large synthetic sweep.
 *
 * Usage: store_crash_child DB NAME CELLS. Writes 'R' on stdout once the database is open (the
 * parent starts its kill timer then) and 'D' after the submit committed. Exit 0 on success, 1 on
 * a store error (printed on stderr).
 */
#include <stdio.h>
#include <stdlib.h>

#include <unistd.h>

#include "cs_store.h"
#include "store_synth.h"

int main(int argc, char **argv)
{
    cs_store *s = NULL;
    cs_sweep_meta m;
    cs_synth g;
    cs_err err = {0};
    char *end = NULL;
    unsigned long long n;

    if (argc != 4) {
        fprintf(stderr, "usage: store_crash_child DB NAME CELLS\n");
        return 2;
    }
    n = strtoull(argv[3], &end, 10);
    if (!end || *end || n == 0) {
        fprintf(stderr, "store_crash_child: bad cell count '%s'\n", argv[3]);
        return 2;
    }
    if (cs_store_open(argv[1], &s, &err) != CS_OK) {
        fprintf(stderr, "store_crash_child: %s\n", err.msg);
        return 1;
    }
    if (write(STDOUT_FILENO, "R", 1) != 1) {
        cs_store_close(s);
        return 1;
    }
    m = cs_synth_meta(argv[2]);
    cs_synth_init(&g, 0, (size_t)n);
    if (cs_store_submit(s, &m, cs_synth_next, &g, false, 1700000000000LL, NULL, &err) != CS_OK) {
        fprintf(stderr, "store_crash_child: %s\n", err.msg);
        cs_store_close(s);
        return 1;
    }
    if (write(STDOUT_FILENO, "D", 1) != 1) {
        cs_store_close(s);
        return 1;
    }
    cs_store_close(s);
    return 0;
}
