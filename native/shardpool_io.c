// shardpool's native I/O layer: the system calls Node lacks (flock, O_DIRECT opens, block-device ioctls, discard,
// fdatasync on a raw fd) and page-aligned buffers for O_DIRECT. Every call that can block runs on the libuv
// threadpool and returns a Promise; a failure rejects with an Error carrying code (errno name), errno and syscall.
// Kept deliberately small: policy (alignment checks, fallbacks, counters) lives in src/io/*.ts.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uv.h>

#define MAX_SAFE_INTEGER ((UINT64_C(1) << 53) - 1)

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) {                                                                                           \
      napi_throw_error(env, "NATIVE_CALL_FAILED", "N-API call failed: " #call);                                      \
      return NULL;                                                                                                     \
    }                                                                                                                  \
  } while (0)

typedef enum { OP_OPEN, OP_FLOCK, OP_FDATASYNC, OP_FSYNC, OP_PREAD, OP_PWRITE, OP_PWRITEV, OP_DISCARD, OP_ZEROOUT, OP_INFO } op_t;

// pwritev takes a record in a few parts (head block, the fragment's own memory, tail block); a handful is plenty.
#define PWRITEV_PARTS_MAX 8

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffer_ref;  // keeps the JS buffer (or pwritev's array of buffers) alive while the kernel uses its memory
  op_t op;
  int fd;
  int flags;            // open flags, or flock operation
  char *path;
  uint8_t *data;
  size_t length;
  int64_t position;
  struct iovec parts[PWRITEV_PARTS_MAX];  // OP_PWRITEV
  int part_count;
  int64_t result;
  int error;            // errno of the failed call, 0 on success
  const char *syscall;
  // OP_INFO results
  int is_block_device;
  uint64_t size_bytes;
  int logical_sector_bytes;
  int physical_sector_bytes;
  int block_size_bytes;
} request_t;

// The errno's name exactly as Node's own fs errors spell it ('EBUSY', 'EINVAL'): libuv, linked into node, knows every
// one ("Unknown system error N" for the rest) and writes into our buffer without allocating.
static const char *errno_name(int error, char *name, size_t name_bytes) {
  return uv_err_name_r(-error, name, name_bytes);
}

static napi_value make_errno_error(napi_env env, int error, const char *syscall) {
  char name[64];
  char message[256];
  errno_name(error, name, sizeof name);
  snprintf(message, sizeof message, "%s: %s (%s)", syscall, strerror(error), name);
  napi_value code, msg, err, errno_value, syscall_value;
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &err);
  napi_create_int32(env, error, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, err, "errno", errno_value);
  napi_set_named_property(env, err, "syscall", syscall_value);
  return err;
}

// ── the work done on the threadpool ─────────────────────────────────────────────────────────────────────────────

static void fail(request_t *request, const char *syscall) {
  request->error = errno;
  request->syscall = syscall;
}

static void execute_info(request_t *request) {
  struct stat st;
  if (fstat(request->fd, &st) != 0) return fail(request, "fstat");
  request->is_block_device = S_ISBLK(st.st_mode);
  if (!request->is_block_device) {
    request->size_bytes = (uint64_t)st.st_size;
    request->logical_sector_bytes = 512;
    request->physical_sector_bytes = (int)st.st_blksize;
    request->block_size_bytes = (int)st.st_blksize;
    return;
  }
  uint64_t size = 0;
  int logical = 0;
  unsigned int physical = 0;
  int block = 0;
  if (ioctl(request->fd, BLKGETSIZE64, &size) != 0) return fail(request, "ioctl(BLKGETSIZE64)");
  if (ioctl(request->fd, BLKSSZGET, &logical) != 0) return fail(request, "ioctl(BLKSSZGET)");
  if (ioctl(request->fd, BLKPBSZGET, &physical) != 0) return fail(request, "ioctl(BLKPBSZGET)");
  if (ioctl(request->fd, BLKBSZGET, &block) != 0) return fail(request, "ioctl(BLKBSZGET)");
  // JavaScript numbers hold integers exactly up to 2^53 (8 PiB): refuse a size that would round.
  if (size > MAX_SAFE_INTEGER) {
    errno = EOVERFLOW;
    return fail(request, "ioctl(BLKGETSIZE64)");
  }
  request->size_bytes = size;
  request->logical_sector_bytes = logical;
  request->physical_sector_bytes = (int)physical;
  request->block_size_bytes = block;
}

static int is_block_device(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISBLK(st.st_mode);
}

static void execute_range(request_t *request, int zero) {
  uint64_t range[2] = {(uint64_t)request->position, (uint64_t)request->length};
  if (is_block_device(request->fd)) {
    if (ioctl(request->fd, zero ? BLKZEROOUT : BLKDISCARD, range) != 0) {
      fail(request, zero ? "ioctl(BLKZEROOUT)" : "ioctl(BLKDISCARD)");
    }
    return;
  }
  // A regular file (a device image). Discard punches a hole, which frees the blocks and reads back as zeros.
  // Zero-out prefers ZERO_RANGE, which keeps the blocks allocated so a later write cannot fail with ENOSPC; where
  // the filesystem lacks it (tmpfs before 6.x, some FUSE) a punched hole reads back as zeros just the same.
  off_t offset = (off_t)request->position, length = (off_t)request->length;
  if (zero) {
    if (fallocate(request->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length) == 0) return;
    if (errno != EOPNOTSUPP) return fail(request, "fallocate(ZERO_RANGE)");
  }
  if (fallocate(request->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) != 0) {
    fail(request, "fallocate(PUNCH_HOLE)");
  }
}

static void execute_transfer(request_t *request) {
  size_t done = 0;
  while (done < request->length) {
    ssize_t n = request->op == OP_PREAD
                    ? pread(request->fd, request->data + done, request->length - done, (off_t)(request->position + done))
                    : pwrite(request->fd, request->data + done, request->length - done, (off_t)(request->position + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(request, request->op == OP_PREAD ? "pread" : "pwrite");
    }
    if (n == 0) break;  // end of file or device: the caller sees a short count
    done += (size_t)n;
  }
  request->result = (int64_t)done;
}

// Writes every part in order from `position`, resuming after a short write (which only a signal or a full device
// causes) at the first byte not yet written.
static void execute_pwritev(request_t *request) {
  struct iovec *iov = request->parts;
  int count = request->part_count;
  size_t done = 0;
  while (count > 0) {
    ssize_t n = pwritev(request->fd, iov, count, (off_t)(request->position + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(request, "pwritev");
    }
    if (n == 0) break;
    done += (size_t)n;
    while (count > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      count--;
    }
    if (count > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  request->result = (int64_t)done;
}

static void execute(napi_env env, void *data) {
  (void)env;
  request_t *request = data;
  switch (request->op) {
    case OP_OPEN: {
      int fd = open(request->path, request->flags, 0);
      if (fd < 0) return fail(request, "open");
      request->result = fd;
      return;
    }
    case OP_FLOCK:
      if (flock(request->fd, request->flags) != 0) {
        if (errno == EWOULDBLOCK) {
          request->result = 0;
          return;
        }
        return fail(request, "flock");
      }
      request->result = 1;
      return;
    case OP_PWRITEV:
      return execute_pwritev(request);
    case OP_FDATASYNC:
      if (fdatasync(request->fd) != 0) fail(request, "fdatasync");
      return;
    case OP_FSYNC:
      if (fsync(request->fd) != 0) fail(request, "fsync");
      return;
    case OP_PREAD:
    case OP_PWRITE:
      return execute_transfer(request);
    case OP_DISCARD:
      return execute_range(request, 0);
    case OP_ZEROOUT:
      return execute_range(request, 1);
    case OP_INFO:
      return execute_info(request);
  }
}

static napi_value info_object(napi_env env, request_t *request) {
  napi_value object, value;
  napi_create_object(env, &object);
  napi_get_boolean(env, request->is_block_device, &value);
  napi_set_named_property(env, object, "isBlockDevice", value);
  napi_create_double(env, (double)request->size_bytes, &value);
  napi_set_named_property(env, object, "sizeBytes", value);
  napi_create_int32(env, request->logical_sector_bytes, &value);
  napi_set_named_property(env, object, "logicalSectorBytes", value);
  napi_create_int32(env, request->physical_sector_bytes, &value);
  napi_set_named_property(env, object, "physicalSectorBytes", value);
  napi_create_int32(env, request->block_size_bytes, &value);
  napi_set_named_property(env, object, "blockSizeBytes", value);
  return object;
}

static void discard_request(napi_env env, request_t *request) {
  if (request->buffer_ref != NULL) napi_delete_reference(env, request->buffer_ref);
  free(request->path);
  free(request);
}

static void complete(napi_env env, napi_status status, void *data) {
  request_t *request = data;
  napi_value value;
  if (status != napi_ok) {
    napi_value code, msg;
    napi_create_string_utf8(env, "NATIVE_CALL_FAILED", NAPI_AUTO_LENGTH, &code);
    napi_create_string_utf8(env, "native async work was cancelled", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, code, msg, &value);
    napi_reject_deferred(env, request->deferred, value);
  } else if (request->error != 0) {
    napi_reject_deferred(env, request->deferred, make_errno_error(env, request->error, request->syscall));
  } else {
    switch (request->op) {
      case OP_FLOCK: napi_get_boolean(env, request->result == 1, &value); break;
      case OP_INFO: value = info_object(env, request); break;
      case OP_FDATASYNC:
      case OP_FSYNC:
      case OP_DISCARD:
      case OP_ZEROOUT: napi_get_undefined(env, &value); break;
      default: napi_create_double(env, (double)request->result, &value); break;
    }
    napi_resolve_deferred(env, request->deferred, value);
  }
  napi_delete_async_work(env, request->work);
  discard_request(env, request);
}

static napi_value queue(napi_env env, request_t *request) {
  napi_value promise, name;
  if (napi_create_promise(env, &request->deferred, &promise) != napi_ok) {
    discard_request(env, request);
    napi_throw_error(env, "NATIVE_CALL_FAILED", "cannot create a promise");
    return NULL;
  }
  napi_create_string_utf8(env, "shardpool_io", NAPI_AUTO_LENGTH, &name);
  if (napi_create_async_work(env, NULL, name, execute, complete, request, &request->work) != napi_ok ||
      napi_queue_async_work(env, request->work) != napi_ok) {
    // The promise exists but will never settle from the threadpool: reject it here instead.
    request->error = ENOMEM;
    request->syscall = "napi_queue_async_work";
    napi_reject_deferred(env, request->deferred, make_errno_error(env, request->error, request->syscall));
    if (request->work != NULL) napi_delete_async_work(env, request->work);
    discard_request(env, request);
  }
  return promise;
}

// ── argument helpers ────────────────────────────────────────────────────────────────────────────────────────────

static int get_args(napi_env env, napi_callback_info info, size_t expected, napi_value *argv) {
  size_t argc = expected;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < expected) {
    napi_throw_type_error(env, "USAGE_INVALID", "missing arguments to a native I/O call");
    return 0;
  }
  return 1;
}

static int get_int64(napi_env env, napi_value value, int64_t *out) {
  if (napi_get_value_int64(env, value, out) != napi_ok || *out < 0) {
    napi_throw_type_error(env, "USAGE_INVALID", "expected a non-negative integer");
    return 0;
  }
  return 1;
}

static request_t *new_request(napi_env env, op_t op) {
  request_t *request = calloc(1, sizeof(request_t));
  if (request == NULL) {
    napi_throw(env, make_errno_error(env, ENOMEM, "calloc"));
    return NULL;
  }
  request->op = op;
  return request;
}

// ── exported functions ──────────────────────────────────────────────────────────────────────────────────────────

// open(path, flags) → Promise<fd>. Flags are composed in JS from the constants exported below.
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  size_t length = 0;
  CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &length));
  int64_t flags = 0;
  if (!get_int64(env, argv[1], &flags)) return NULL;
  request_t *request = new_request(env, OP_OPEN);
  if (request == NULL) return NULL;
  request->path = malloc(length + 1);
  if (request->path == NULL) {
    free(request);
    napi_throw(env, make_errno_error(env, ENOMEM, "malloc"));
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], request->path, length + 1, &length);
  request->flags = (int)flags | O_CLOEXEC;
  return queue(env, request);
}

// flock(fd, mode: 0 unlock | 1 shared | 2 exclusive, nonBlocking) → Promise<boolean acquired>
static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int64_t fd = 0, mode = 0;
  bool non_blocking = false;
  if (!get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &mode)) return NULL;
  CHECK(napi_get_value_bool(env, argv[2], &non_blocking));
  if (mode > 2) {
    napi_throw_range_error(env, "USAGE_INVALID", "flock mode is 0 (unlock), 1 (shared) or 2 (exclusive)");
    return NULL;
  }
  request_t *request = new_request(env, OP_FLOCK);
  if (request == NULL) return NULL;
  request->fd = (int)fd;
  request->flags = (mode == 0 ? LOCK_UN : mode == 1 ? LOCK_SH : LOCK_EX) | (non_blocking ? LOCK_NB : 0);
  return queue(env, request);
}

static napi_value fd_only(napi_env env, napi_callback_info info, op_t op) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t fd = 0;
  if (!get_int64(env, argv[0], &fd)) return NULL;
  request_t *request = new_request(env, op);
  if (request == NULL) return NULL;
  request->fd = (int)fd;
  return queue(env, request);
}

static napi_value js_fdatasync(napi_env env, napi_callback_info info) { return fd_only(env, info, OP_FDATASYNC); }
static napi_value js_fsync(napi_env env, napi_callback_info info) { return fd_only(env, info, OP_FSYNC); }
static napi_value js_info(napi_env env, napi_callback_info info) { return fd_only(env, info, OP_INFO); }

// pread/pwrite(fd, buffer, bufferOffset, length, position) → Promise<bytes>. The buffer's own memory is handed to
// the kernel unchanged, so an aligned buffer stays aligned.
static napi_value transfer(napi_env env, napi_callback_info info, op_t op) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int64_t fd = 0, offset = 0, length = 0, position = 0;
  void *data = NULL;
  size_t buffer_length = 0;
  if (!get_int64(env, argv[0], &fd)) return NULL;
  CHECK(napi_get_buffer_info(env, argv[1], &data, &buffer_length));
  if (!get_int64(env, argv[2], &offset) || !get_int64(env, argv[3], &length) || !get_int64(env, argv[4], &position)) {
    return NULL;
  }
  if ((uint64_t)offset + (uint64_t)length > buffer_length || (uint64_t)position + (uint64_t)length > MAX_SAFE_INTEGER) {
    napi_throw_range_error(env, "USAGE_INVALID", "buffer range out of bounds");
    return NULL;
  }
  request_t *request = new_request(env, op);
  if (request == NULL) return NULL;
  request->fd = (int)fd;
  request->data = (uint8_t *)data + offset;
  request->length = (size_t)length;
  request->position = position;
  napi_create_reference(env, argv[1], 1, &request->buffer_ref);
  return queue(env, request);
}

// pwritev(fd, buffers[], position) → Promise<bytes>: one write of the buffers laid end to end, each buffer's own
// memory handed to the kernel (the caller keeps every part aligned, as O_DIRECT requires of each one).
static napi_value js_pwritev(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int64_t fd = 0, position = 0;
  uint32_t count = 0;
  if (!get_int64(env, argv[0], &fd) || !get_int64(env, argv[2], &position)) return NULL;
  bool is_array = false;
  CHECK(napi_is_array(env, argv[1], &is_array));
  if (is_array) CHECK(napi_get_array_length(env, argv[1], &count));
  if (!is_array || count == 0 || count > PWRITEV_PARTS_MAX) {
    napi_throw_range_error(env, "USAGE_INVALID", "pwritev takes an array of 1 to 8 buffers");
    return NULL;
  }
  request_t *request = new_request(env, OP_PWRITEV);
  if (request == NULL) return NULL;
  uint64_t total = 0;
  for (uint32_t index = 0; index < count; index++) {
    napi_value part;
    void *data = NULL;
    size_t length = 0;
    if (napi_get_element(env, argv[1], index, &part) != napi_ok || napi_get_buffer_info(env, part, &data, &length) != napi_ok) {
      free(request);
      napi_throw_type_error(env, "USAGE_INVALID", "pwritev parts must be buffers");
      return NULL;
    }
    request->parts[index].iov_base = data;
    request->parts[index].iov_len = length;
    total += length;
  }
  if ((uint64_t)position + total > MAX_SAFE_INTEGER) {
    free(request);
    napi_throw_range_error(env, "USAGE_INVALID", "buffer range out of bounds");
    return NULL;
  }
  request->part_count = (int)count;
  request->fd = (int)fd;
  request->position = position;
  request->length = (size_t)total;
  napi_create_reference(env, argv[1], 1, &request->buffer_ref);
  return queue(env, request);
}

static napi_value js_pread(napi_env env, napi_callback_info info) { return transfer(env, info, OP_PREAD); }
static napi_value js_pwrite(napi_env env, napi_callback_info info) { return transfer(env, info, OP_PWRITE); }

static napi_value range(napi_env env, napi_callback_info info, op_t op) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int64_t fd = 0, position = 0, length = 0;
  if (!get_int64(env, argv[0], &fd) || !get_int64(env, argv[1], &position) || !get_int64(env, argv[2], &length)) {
    return NULL;
  }
  request_t *request = new_request(env, op);
  if (request == NULL) return NULL;
  request->fd = (int)fd;
  request->position = position;
  request->length = (size_t)length;
  return queue(env, request);
}

static napi_value js_discard(napi_env env, napi_callback_info info) { return range(env, info, OP_DISCARD); }
static napi_value js_zero_out(napi_env env, napi_callback_info info) { return range(env, info, OP_ZEROOUT); }

static void free_aligned(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

// allocateAligned(length, alignment, zeroed = true) → Buffer whose memory starts at a multiple of alignment.
// Buffers about to be filled entirely (a read, a record being assembled) skip the zero fill.
static napi_value js_allocate_aligned(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "USAGE_INVALID", "missing arguments to a native I/O call");
    return NULL;
  }
  bool zeroed = true;
  if (argc >= 3) napi_get_value_bool(env, argv[2], &zeroed);
  int64_t length = 0, alignment = 0;
  if (!get_int64(env, argv[0], &length) || !get_int64(env, argv[1], &alignment)) return NULL;
  if (alignment < (int64_t)sizeof(void *) || (alignment & (alignment - 1)) != 0 || length == 0) {
    napi_throw_range_error(env, "USAGE_INVALID", "alignment must be a power of two >= pointer size, length > 0");
    return NULL;
  }
  void *memory = NULL;
  int error = posix_memalign(&memory, (size_t)alignment, (size_t)length);
  if (error != 0) {
    napi_throw(env, make_errno_error(env, error, "posix_memalign"));
    return NULL;
  }
  if (zeroed) memset(memory, 0, (size_t)length);
  // Node 20 allows external buffers unless built with the V8 sandbox, which refuses them
  // (napi_no_external_buffers_allowed); then an external ArrayBuffer viewed as a Uint8Array carries the same
  // memory, and the JavaScript side turns the view into a Buffer without copying.
  napi_value buffer;
  napi_status status = napi_create_external_buffer(env, (size_t)length, memory, free_aligned, NULL, &buffer);
  if (status == napi_no_external_buffers_allowed) {
    napi_value array_buffer;
    status = napi_create_external_arraybuffer(env, memory, (size_t)length, free_aligned, NULL, &array_buffer);
    if (status == napi_ok) status = napi_create_typedarray(env, napi_uint8_array, (size_t)length, array_buffer, 0, &buffer);
  }
  if (status != napi_ok) {
    free(memory);
    napi_throw_error(env, "NATIVE_CALL_FAILED", "cannot wrap aligned memory in a buffer");
    return NULL;
  }
  return buffer;
}

// bufferAddress(buffer) → bigint: where the buffer's bytes start, for alignment assertions.
static napi_value js_buffer_address(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  void *data = NULL;
  size_t length = 0;
  CHECK(napi_get_buffer_info(env, argv[0], &data, &length));
  napi_value address;
  CHECK(napi_create_bigint_uint64(env, (uint64_t)(uintptr_t)data, &address));
  return address;
}

static void export_function(napi_env env, napi_value exports, const char *name, napi_callback callback) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, NULL, &fn);
  napi_set_named_property(env, exports, name, fn);
}

static void export_int(napi_env env, napi_value object, const char *name, int value) {
  napi_value number;
  napi_create_int32(env, value, &number);
  napi_set_named_property(env, object, name, number);
}

static napi_value init(napi_env env, napi_value exports) {
  export_function(env, exports, "open", js_open);
  export_function(env, exports, "flock", js_flock);
  export_function(env, exports, "fdatasync", js_fdatasync);
  export_function(env, exports, "fsync", js_fsync);
  export_function(env, exports, "deviceInfo", js_info);
  export_function(env, exports, "pread", js_pread);
  export_function(env, exports, "pwrite", js_pwrite);
  export_function(env, exports, "pwritev", js_pwritev);
  export_function(env, exports, "discard", js_discard);
  export_function(env, exports, "zeroOut", js_zero_out);
  export_function(env, exports, "allocateAligned", js_allocate_aligned);
  export_function(env, exports, "bufferAddress", js_buffer_address);
  napi_value flags;
  napi_create_object(env, &flags);
  export_int(env, flags, "O_RDONLY", O_RDONLY);
  export_int(env, flags, "O_RDWR", O_RDWR);
  export_int(env, flags, "O_DIRECT", O_DIRECT);
  export_int(env, flags, "O_EXCL", O_EXCL);
  export_int(env, flags, "O_SYNC", O_SYNC);
  export_int(env, flags, "O_DSYNC", O_DSYNC);
  napi_set_named_property(env, exports, "flags", flags);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
