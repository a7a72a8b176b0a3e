/* File-system helpers with the durability rules the store relies on.
 *
 * "Atomic" here means: a reader sees either the old file or the complete new
 * one, also after a crash, because data is fsynced before the rename and the
 * directory is fsynced after it. */
#ifndef OX_FS_H
#define OX_FS_H

#include <stddef.h>
#include <stdint.h>

/* mkdir -p with mode; existing directories are fine. */
int ox_fs_mkdir_p(const char *path, unsigned mode);
/* fsync the directory itself (after a rename or unlink inside it). */
int ox_fs_fsync_dir(const char *dir);
/* fsync the directory that contains path. */
int ox_fs_fsync_parent(const char *path);
/* Writes data to path atomically (temp file in the same directory, fsync,
 * rename, fsync dir). Creates missing parent directories. */
int ox_fs_write_atomic(const char *path, const void *data, size_t len);
/* Reads a whole file into a malloc'd NUL-terminated buffer (caller frees).
 * Fails with OX_ETOOBIG when the file is larger than max. */
int ox_fs_read_all(const char *path, size_t max, char **out, size_t *len);
/* Removes empty directories from dirname(path) upwards, stopping at (and never
 * removing) stop. */
void ox_fs_prune_empty_dirs(const char *path, const char *stop);
/* Size and mtime (ns since epoch) of a regular file. OX_ENOTFOUND if absent. */
int ox_fs_stat(const char *path, uint64_t *size, int64_t *mtime_ns);
/* Joins a and b with one '/' into out; OX_ETOOBIG if it does not fit. */
int ox_fs_join(char *out, size_t cap, const char *a, const char *b);

#endif
