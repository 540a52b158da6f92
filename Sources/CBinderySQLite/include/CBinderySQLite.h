// SQLite's process-wide settings, which it takes through the variadic sqlite3_config (not
// callable from Swift): a non-variadic wrapper per setting Bindery uses.
#ifndef CBINDERY_SQLITE_H
#define CBINDERY_SQLITE_H

#include <sqlite3.h>

/// How many bytes of a statement journal (a savepoint's record of the pages it changes)
/// SQLite keeps in memory before it spills the rest to a temporary file. Only before SQLite
/// is initialized (the first connection opens it); SQLite's result code (SQLITE_MISUSE after).
static inline int bindery_sqlite_set_statement_journal_spill(int bytes) {
    return sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, bytes);
}

#endif
