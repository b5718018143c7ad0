/* cs_path.h - calsweep's directories, path joining, mkdir -p, bounded file reads and atomic
 * file writes.
 *
 * State (the database, caches) lives in $XDG_STATE_HOME/calsweep, else ~/.local/state/calsweep.
 * Sockets and pid files live in $XDG_RUNTIME_DIR/calsweep, else /tmp/calsweep-<uid>; that directory
 * is created 0700 and refused when it is not ours (owner, symlink, group/world writable), because
 * another user could otherwise plant a socket there.
 *
 * Every error names the file and the reason. Paths returned are owned (free with free()).
 * Thread-safe, no globals (the environment is only read).
 */
#ifndef CS_COMMON_CS_PATH_H
#define CS_COMMON_CS_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include <sys/types.h>

#include "cs_err.h"

/* Joins a and b with exactly one '/' between them (trailing '/' of a and leading '/' of b are
 * collapsed; an empty a gives b, an empty b gives a). b is always treated as relative.
 * Returns owned text in *out (free with free()); CS_EINVAL for NULL input, CS_ENOMEM. */
cs_rc cs_path_join(const char *a, const char *b, char **out, cs_err *err);

/* Creates path and its missing parents with mode (subject to the umask), like mkdir -p. An
 * existing directory is fine (its mode is not changed); an existing non-directory is CS_EEXIST.
 * Other errors as cs_err_errno, naming the component that failed. */
cs_rc cs_path_mkdir_p(const char *path, mode_t mode, cs_err *err);

/* The state directory: $XDG_STATE_HOME/calsweep when XDG_STATE_HOME is set to an absolute path,
 * else $HOME/.local/state/calsweep (HOME from the password database when unset). With create, it
 * is made (mkdir -p, 0700). Returns owned text; CS_ENOENT when no home can be found. */
cs_rc cs_path_state_dir(bool create, char **out, cs_err *err);

/* The runtime directory: $XDG_RUNTIME_DIR/calsweep when XDG_RUNTIME_DIR is an absolute path, else
 * /tmp/calsweep-<uid>. Always created (0700) if missing, then checked with lstat: it must be a
 * real directory (not a symlink), owned by the calling user, and not group/world writable;
 * otherwise CS_EAUTH with a message saying what is wrong. Returns owned text. */
cs_rc cs_path_runtime_dir(char **out, cs_err *err);

/* Checks that dir is a directory (not a symlink) owned by the calling user and not group/world
 * writable: the check of cs_path_runtime_dir. CS_EAUTH (or the lstat error) naming dir. */
cs_rc cs_path_check_private_dir(const char *dir, cs_err *err);

/* Reads the whole file at path into *out (owned, NUL-terminated; free with free()), its length in
 * *len (may be NULL). Errors name the file: CS_ENOENT "<path>: No such file or directory",
 * CS_ETOOBIG "<path>: larger than the limit of N bytes", CS_EIO "<path>: is a directory" or
 * "<path>: <read error>", CS_EAUTH for permission denied. max_bytes 0 means 64 MiB. */
cs_rc cs_path_read_file(const char *path, size_t max_bytes, char **out, size_t *len, cs_err *err);

/* Replaces the file at path with data[0..len) atomically: writes a temporary file in the same
 * directory (".<name>.XXXXXX"), fsyncs it, sets mode (exactly, the umask does not apply), renames
 * it over path, and fsyncs the directory. Readers see the old or the new content, never a mix. On
 * any failure the temporary file is removed and the old file (if any) is left intact. A full disk
 * (ENOSPC, EDQUOT) and a file size limit (EFBIG) give CS_ENOSPC (err->cause keeps the errno); other
 * errors as cs_err_errno; all name the path. */
cs_rc cs_path_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                           cs_err *err);

/* Confines path to roots: resolves it with realpath (every "..", "." and symlink followed; the
 * file or folder must exist) and checks that the result is one of roots, or lies inside one.
 * roots is a ':'-separated list of folders, each resolved the same way (a root that does not
 * exist is skipped; a root cannot contain ':'). Returns the resolved path in *out (owned, free
 * with free()). Errors name what (e.g. "data.sources.x.path") and the path as given:
 * CS_ENOENT "<what>: <path>: No such file or directory" (or another realpath error as
 * cs_err_errno), CS_EINVAL "<what>: <path> is outside the allowed roots (<root>, ...)" (or
 * "... there are no allowed roots" when none exists). The text of the file is never read. */
cs_rc cs_path_confine(const char *path, const char *roots, const char *what, char **out,
                      cs_err *err);

#endif
