/* cs_migrations.h - the SQL migrations of the job store, compiled into the binary.
 *
 * The build turns schemas/migrations/NNNN_*.sql into a generated C file (gen_migrations.c is the
 * generator), so the daemon never reads the source tree at run time. Migration i (0-based) takes a
 * database from PRAGMA user_version i to i+1; the newest version a binary knows is
 * cs_store_n_migrations.
 */
#ifndef CS_COORDINATOR_STORE_CS_MIGRATIONS_H
#define CS_COORDINATOR_STORE_CS_MIGRATIONS_H

#include <stddef.h>

/* NUL-terminated SQL texts, in order. */
extern const char *const cs_store_migrations[];
/* File names ("0001_init.sql"), same order. */
extern const char *const cs_store_migration_names[];
extern const size_t cs_store_n_migrations;

#endif
