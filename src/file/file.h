/* file.h - replacing a file so that a crash leaves either the old content or
 * the new one, whole.
 *
 * The one way aosd rewrites a file it owns beside its database (the master
 * key, the memory index's graph, the sandbox helper's copy, an http tool's
 * idempotency records): write a temporary file in the same directory, fsync
 * it, rename it over the path, then fsync the directory so that the rename
 * itself survives a power cut. Readers never see a half-written file; a crash
 * before the rename leaves the temporary file behind (its name is the path
 * plus a suffix; aos_file_tmp removes an earlier one of the same name).
 *
 * Every call blocks on the disk: call them from a worker thread (the store's,
 * libuv's pool, the index's), or at start and exit, never from the loop. */
#ifndef AOS_FILE_H
#define AOS_FILE_H

#include <stddef.h>
#include <sys/types.h>

#include "err/err.h"

/* Writes len bytes of data to path as above, the file's mode set to mode.
 * Returns 0, or AOS_EIO / AOS_EINVAL with err set; on failure path is
 * unchanged and no temporary file is left. */
int aos_file_replace(const char *path, const void *data, size_t len, mode_t mode, aos_err_t *err);

/* For a writer that streams: opens "<path>.tmp" (tmp receives the name, in
 * tmplen bytes), created with mode, replacing one a crash left. Returns the
 * descriptor, or -1 with err set. */
int aos_file_tmp(const char *path, char *tmp, size_t tmplen, mode_t mode, aos_err_t *err);

/* Finishes what aos_file_tmp began: fsync fd, close it, rename tmp over path,
 * fsync the directory. fd is closed in every case; on failure tmp is removed
 * and path is unchanged. Returns 0 or AOS_EIO with err set. */
int aos_file_commit(int fd, const char *tmp, const char *path, aos_err_t *err);

/* Renames from over to and makes the rename durable (fsyncs to's directory).
 * Returns 0 or AOS_EIO with err set; from is left where it was on failure. */
int aos_file_rename(const char *from, const char *to, aos_err_t *err);

/* fsyncs the directory that holds path (a rename or unlink in it durable).
 * Returns 0 or -1 with errno set. */
int aos_file_sync_dir(const char *path);

#endif
