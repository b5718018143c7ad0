/* cs_store_testing.h - for the store's tests and benchmarks only; no product code includes it.
 *
 * Tests inspect and damage the database behind the store's back (count rows, add a failing
 * trigger, check integrity); product code asks the store (cs_store.h), which owns all SQL.
 */
#ifndef CS_COORDINATOR_STORE_CS_STORE_TESTING_H
#define CS_COORDINATOR_STORE_CS_STORE_TESTING_H

#include "cs_store.h"

struct sqlite3;

/* The store's connection. Borrowed, valid until cs_store_close. */
struct sqlite3 *cs_store_test_db(cs_store *s);

#endif
