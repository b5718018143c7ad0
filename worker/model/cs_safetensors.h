/* cs_safetensors.h - memory-mapped safetensors files: one model.safetensors or the shards named by
 * model.safetensors.index.json.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} and the data;
 * offsets are relative to the first byte after the header. Every check that can fail is an error
 * naming the file and the tensor: header length beyond the file or above CS_ST_MAX_HEADER, JSON
 * that is not an object of tensors, an unknown dtype, a shape whose byte size does not equal
 * end-begin, offsets outside the data, a tensor listed twice. Nothing is read outside the mapping.
 */
#ifndef CS_WORKER_MODEL_CS_SAFETENSORS_H
#define CS_WORKER_MODEL_CS_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

#define CS_ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
#define CS_ST_MAX_DIMS   8

typedef enum cs_st_dtype {
    CS_ST_F32,
    CS_ST_F16,
    CS_ST_BF16,
    CS_ST_F64,
    CS_ST_I64,
    CS_ST_I32,
    CS_ST_I16,
    CS_ST_I8,
    CS_ST_U8,
    CS_ST_BOOL,
} cs_st_dtype;

typedef struct cs_st_tensor {
    char *name;
    cs_st_dtype dtype;
    int ndim;
    int64_t shape[CS_ST_MAX_DIMS];
    size_t numel;
    const void *data; /* inside the mapping; not necessarily aligned */
    size_t nbytes;
    size_t file_index; /* which shard */
} cs_st_tensor;

typedef struct cs_st cs_st;

/* Opens the weights of a Hugging Face model folder: model.safetensors.index.json if present (every
 * shard it names is mapped, and every tensor of its weight_map must be in the named shard), else
 * model.safetensors. CS_ENOENT when neither exists; CS_EPARSE/CS_ERANGE for malformed files. */
cs_rc cs_st_open_dir(cs_st **out, const char *dir, cs_err *err);

/* Maps one file. */
cs_rc cs_st_open_file(cs_st **out, const char *path, cs_err *err);

/* Parses a whole file image from memory (borrowed; must outlive *out). For tests and the fuzzer. */
cs_rc cs_st_open_mem(cs_st **out, const void *data, size_t len, const char *name, cs_err *err);

/* NULL-safe; unmaps. */
void cs_st_close(cs_st *st);

size_t cs_st_count(const cs_st *st);
const cs_st_tensor *cs_st_at(const cs_st *st, size_t i);
/* NULL when absent. */
const cs_st_tensor *cs_st_find(const cs_st *st, const char *name);

const char *cs_st_dtype_name(cs_st_dtype d);
size_t cs_st_dtype_size(cs_st_dtype d);

/* Converts t (f32, f16 or bf16) to f32 in dst[0..t->numel). CS_ENOTSUP for other dtypes. */
cs_rc cs_st_to_f32(const cs_st_tensor *t, float *dst, cs_err *err);

/* Gives back the memory of t's pages once it was converted (its whole pages only, so that a
 * neighbour used in place keeps its own): a checkpoint in bf16 or f16 is converted tensor by
 * tensor, and without this every page read would stay resident until the end of the load, half
 * as much again as the f32 weights. Reading t after this reads the file again. No-op for memory
 * given to cs_st_open_mem. */
void cs_st_drop(cs_st *st, const cs_st_tensor *t);

/* Drops the mappings (after all tensors were converted). Tensors keep names and shapes but their
 * data pointers become NULL. */
void cs_st_unmap(cs_st *st);

/* Scalar conversions. */
float cs_bf16_to_f32(uint16_t h);
float cs_f16_to_f32(uint16_t h);
uint16_t cs_f32_to_bf16(float f);

#endif
