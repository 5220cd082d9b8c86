/*
 * rmsprop._fused: the RMSprop update rule in one pass per element, in C.
 *
 * The same IEEE operations as the NumPy path (kernels.rmsprop_rule), in the
 * same order, each rounded to the arrays' dtype
 * (float32 math stays float32): IEEE + - * / and sqrt are correctly rounded
 * per element, so doing them in one loop instead of one NumPy pass each gives
 * the same bits, as long as the compiler neither contracts a*b+c into an FMA
 * nor reorders (built with -ffp-contract=off -fno-fast-math; see setup.py).
 * -fno-math-errno lets sqrt vectorize; it changes no result.
 *
 * Plain CPython C API and the buffer protocol: no NumPy headers, so one build
 * works with NumPy 1.x and 2.x, and nothing new is needed at run time.
 *
 * Threads: a large update is split into contiguous element ranges, one per
 * thread, started for this call and joined before it returns (no pool that
 * outlives a call, so a fork()ed child inherits no half-alive threads). Each
 * element is computed the same way whichever thread does it, so the results do
 * not depend on the thread count. The GIL is released during the math.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Elements a thread gets at least: below this, starting a thread costs more
 * than it saves. */
#define MIN_PER_THREAD ((Py_ssize_t)1 << 18)
/* Split points are multiples of this (64 float64 = 8 cache lines): no two
 * threads write the same cache line. */
#define SPLIT_ALIGN 64
#define MAX_THREADS 64

typedef struct {
    char *ptr;
    Py_ssize_t len;         /* elements */
} Segment;

typedef struct {
    Segment *segs;
    Py_ssize_t count;
    Py_ssize_t *starts;     /* element offset of each segment (count + 1 entries) */
} SegmentList;

typedef struct Scalars Scalars;

typedef struct {
    int is_double;
    int variant;            /* CENTERED | MOMENTUM | CLIP | DECAY | EMA (below) */
    SegmentList params, grads;
    /* flat; average/momentum/ema may be NULL */
    char *velocity, *average, *momentum_slot, *ema;
    const Scalars *scalars;
} Job;

typedef struct {
    const Job *job;
    Py_ssize_t lo, hi;
} Part;

/* On x86-64, each loop is also compiled for AVX2 and the better version is
 * picked when the module loads (GCC function multiversioning): 8 floats per
 * instruction instead of 4, which nearly halves the time of updates that fit
 * in cache. AVX2's add, sub, mul, div and sqrt round exactly as SSE's do, and
 * "avx2" does not enable FMA, so the results are the same bits. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define MULTIVERSION
#endif

/* ------------------------------------------------------------------------ */
/* The element loop. The comment beside each line names the NumPy call it
 * matches (kernels.rmsprop_rule, and for the optional steps the function of
 * kernels.py / steps.py that does them unfused), operands in the same order.
 *
 * The optional steps fused into the pass, each in Keras' order around the
 * update (BaseOptimizer._backend_apply_gradients):
 *   CLIP   clipvalue: g = maximum(minimum(g, c), -c) before the update
 *          (BaseOptimizer._clip_gradients, ops.clip); a NaN stays NaN.
 *   DECAY  weight decay: p = p - p * wd * lr before the update
 *          (BaseOptimizer._apply_weight_decay).
 *   EMA    average = average * m + p_new * (1 - m) after the update
 *          (BaseOptimizer._update_model_variables_moving_average).
 * Each is element-wise and rounds in the same dtype at the same point as the
 * unfused step, so fusing it changes no bit.
 *
 * rule_body is written once with the variant flags as parameters; the
 * dispatcher calls it with constant flags, so each variant is compiled to its
 * own branch-free loop (which vectorizes). */

struct Scalars {
    double lr, rho, omr, eps, mom;
    double clip, decay, ema_decay, ema_omd;
};

enum { CENTERED = 1, MOMENTUM = 2, CLIP = 4, DECAY = 8, EMA = 16, VARIANTS = 32 };

#define DEFINE_RULE(NAME, T, SQRT)                                                       \
static inline __attribute__((always_inline)) void NAME##_body(                           \
    Py_ssize_t n, T *p, const T *g, T *v, T *a, T *m, T *e, const Scalars *s,            \
    const int centered, const int momentum, const int clip, const int decay,             \
    const int ema)                                                                       \
{                                                                                         \
    const T lr = (T)s->lr, rho = (T)s->rho, omr = (T)s->omr, eps = (T)s->eps;            \
    const T mom = (T)s->mom, c = (T)s->clip, nc = -(T)s->clip, wd = (T)s->decay;         \
    const T ed = (T)s->ema_decay, eomd = (T)s->ema_omd;                                  \
    Py_ssize_t i;                                                                         \
    for (i = 0; i < n; i++) {                                                             \
        T gi = g[i], pi = p[i], t, vi, inc;                                               \
        if (clip) {                                                                       \
            gi = gi > c ? c : gi;       /* minimum(g, clipvalue) */                       \
            gi = gi < nc ? nc : gi;     /* maximum(g, -clipvalue) */                      \
        }                                                                                 \
        if (decay) {                                                                      \
            T d = pi * wd;              /* multiply(p, weight_decay) */                   \
            d = d * lr;                 /* multiply(t, lr) */                             \
            pi = pi - d;                /* subtract(p, t) */                              \
        }                                                                                 \
        t = gi * gi;                    /* multiply(g, g) */                              \
        t = t * omr;                    /* multiply(t, one_minus_rho) */                  \
        vi = v[i] * rho;                /* multiply(v, rho) */                            \
        vi = vi + t;                    /* add(v, t) */                                   \
        v[i] = vi;                                                                        \
        if (centered) {                                                                   \
            T ai = a[i] * rho;          /* multiply(a, rho) */                            \
            t = gi * omr;               /* multiply(g, one_minus_rho) */                  \
            ai = ai + t;                /* add(a, t) */                                   \
            a[i] = ai;                                                                    \
            t = ai * ai;                /* multiply(a, a) */                              \
            t = vi - t;                 /* subtract(v, t) */                              \
            t = t + eps;                /* add(t, epsilon) */                             \
        } else {                                                                          \
            t = vi + eps;               /* add(v, epsilon) */                             \
        }                                                                                 \
        t = SQRT(t);                    /* sqrt(t) */                                     \
        inc = gi * lr;                  /* multiply(g, lr) */                             \
        inc = inc / t;                  /* divide(inc, t) */                              \
        if (momentum) {                                                                   \
            T mi = m[i] * mom;          /* multiply(m, momentum) */                       \
            mi = mi + inc;              /* add(m, inc) */                                 \
            m[i] = mi;                                                                    \
            pi = pi - mi;               /* subtract(p, m) */                              \
        } else {                                                                          \
            pi = pi - inc;              /* subtract(p, inc) */                            \
        }                                                                                 \
        p[i] = pi;                                                                        \
        if (ema) {                                                                        \
            T ei = e[i] * ed;           /* multiply(average, decay) */                    \
            t = pi * eomd;              /* multiply(param, one_minus_decay) */            \
            e[i] = ei + t;              /* add(average, t) */                             \
        }                                                                                 \
    }                                                                                     \
}                                                                                         \
                                                                                          \
MULTIVERSION static void NAME(Py_ssize_t n, T *p, const T *g, T *v, T *a, T *m, T *e,    \
                              const Scalars *s, int variant)                              \
{                                                                                         \
    switch (variant) {                                                                    \
    VARIANT_CASES(NAME##_body)                                                            \
    }                                                                                     \
}

#define VARIANT_CASE(BODY, F)                                                             \
    case F: BODY(n, p, g, v, a, m, e, s, (F) & CENTERED, (F) & MOMENTUM, (F) & CLIP,       \
                 (F) & DECAY, (F) & EMA); break;
#define VARIANT_CASES(BODY)                                                               \
    VARIANT_CASE(BODY, 0) VARIANT_CASE(BODY, 1) VARIANT_CASE(BODY, 2)                     \
    VARIANT_CASE(BODY, 3) VARIANT_CASE(BODY, 4) VARIANT_CASE(BODY, 5)                     \
    VARIANT_CASE(BODY, 6) VARIANT_CASE(BODY, 7) VARIANT_CASE(BODY, 8)                     \
    VARIANT_CASE(BODY, 9) VARIANT_CASE(BODY, 10) VARIANT_CASE(BODY, 11)                   \
    VARIANT_CASE(BODY, 12) VARIANT_CASE(BODY, 13) VARIANT_CASE(BODY, 14)                  \
    VARIANT_CASE(BODY, 15) VARIANT_CASE(BODY, 16) VARIANT_CASE(BODY, 17)                  \
    VARIANT_CASE(BODY, 18) VARIANT_CASE(BODY, 19) VARIANT_CASE(BODY, 20)                  \
    VARIANT_CASE(BODY, 21) VARIANT_CASE(BODY, 22) VARIANT_CASE(BODY, 23)                  \
    VARIANT_CASE(BODY, 24) VARIANT_CASE(BODY, 25) VARIANT_CASE(BODY, 26)                  \
    VARIANT_CASE(BODY, 27) VARIANT_CASE(BODY, 28) VARIANT_CASE(BODY, 29)                  \
    VARIANT_CASE(BODY, 30) VARIANT_CASE(BODY, 31)

DEFINE_RULE(rule_f32, float, sqrtf)
DEFINE_RULE(rule_f64, double, sqrt)

/* Index of the segment holding element `at` (starts is sorted, starts[0] = 0). */
static Py_ssize_t find_segment(const SegmentList *list, Py_ssize_t at)
{
    Py_ssize_t lo = 0, hi = list->count - 1;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi + 1) / 2;
        if (list->starts[mid] <= at) lo = mid; else hi = mid - 1;
    }
    return lo;
}

/* Elements [lo, hi): walk the parameter and gradient segments side by side
 * and run the loop on each stretch where both are contiguous. */
static void run_part(const Job *job, Py_ssize_t lo, Py_ssize_t hi)
{
    size_t size = job->is_double ? sizeof(double) : sizeof(float);
    Py_ssize_t ip, ig, at = lo;
    if (lo >= hi) return;
    ip = find_segment(&job->params, lo);
    ig = find_segment(&job->grads, lo);
    while (at < hi) {
        const Segment *ps = &job->params.segs[ip], *gs = &job->grads.segs[ig];
        Py_ssize_t poff = at - job->params.starts[ip], goff = at - job->grads.starts[ig];
        Py_ssize_t n = hi - at;
        if (ps->len - poff < n) n = ps->len - poff;
        if (gs->len - goff < n) n = gs->len - goff;
        if (n > 0) {
            char *p = ps->ptr + poff * size;
            char *g = gs->ptr + goff * size;
            char *v = job->velocity + at * size;
            char *a = job->average ? job->average + at * size : NULL;
            char *m = job->momentum_slot ? job->momentum_slot + at * size : NULL;
            char *e = job->ema ? job->ema + at * size : NULL;
            if (job->is_double)
                rule_f64(n, (double *)p, (const double *)g, (double *)v, (double *)a,
                         (double *)m, (double *)e, job->scalars, job->variant);
            else
                rule_f32(n, (float *)p, (const float *)g, (float *)v, (float *)a, (float *)m,
                         (float *)e, job->scalars, job->variant);
            at += n;
        }
        if (at - job->params.starts[ip] >= ps->len && ip + 1 < job->params.count) ip++;
        if (at - job->grads.starts[ig] >= gs->len && ig + 1 < job->grads.count) ig++;
    }
}

static void *part_thread(void *arg)
{
    Part *part = (Part *)arg;
    run_part(part->job, part->lo, part->hi);
    return NULL;
}

/* Runs the job on `threads` threads (this one included); returns how many ran. */
static int run_job(const Job *job, Py_ssize_t total, int threads)
{
    Part parts[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS];
    int k, used;
    Py_ssize_t most = total / MIN_PER_THREAD;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (most < threads) threads = most < 1 ? 1 : (int)most;
    for (k = 0; k < threads; k++) {
        Py_ssize_t lo = total / threads * k, hi = total / threads * (k + 1);
        lo -= lo % SPLIT_ALIGN;
        hi -= hi % SPLIT_ALIGN;
        parts[k].job = job;
        parts[k].lo = k == 0 ? 0 : lo;
        parts[k].hi = k == threads - 1 ? total : hi;
    }
    used = 1;
    for (k = 1; k < threads; k++) {
        /* A thread that cannot be started leaves its part to this one. */
        started[k] = pthread_create(&ids[k], NULL, part_thread, &parts[k]) == 0;
        used += started[k];
    }
    run_part(job, parts[0].lo, parts[0].hi);
    for (k = 1; k < threads; k++) {
        if (started[k]) pthread_join(ids[k], NULL);
        else run_part(job, parts[k].lo, parts[k].hi);
    }
    return used;
}

/* ------------------------------------------------------------------------ */
/* Arguments */

/* A buffer format past its byte-order prefix when that prefix means native
 * order; unchanged otherwise (a non-native prefix then matches no format). */
static const char *skip_native_order(const char *f)
{
    if (*f == '@' || *f == '=') return f + 1;
#if PY_LITTLE_ENDIAN
    if (*f == '<') return f + 1;
#else
    if (*f == '>' || *f == '!') return f + 1;
#endif
    return f;
}

/* 1 for float64, 0 for float32, -1 for anything else (native byte order). */
static int dtype_code(const Py_buffer *view)
{
    const char *f = skip_native_order(view->format ? view->format : "B");
    if (strcmp(f, "f") == 0 && view->itemsize == 4) return 0;
    if (strcmp(f, "d") == 0 && view->itemsize == 8) return 1;
    return -1;
}

typedef struct {
    Py_buffer *views;
    Py_ssize_t count;       /* views acquired (to release) */
} Views;

static void release_views(Views *held)
{
    Py_ssize_t i;
    for (i = 0; i < held->count; i++) PyBuffer_Release(&held->views[i]);
    held->count = 0;
}

static int get_view(PyObject *obj, Py_buffer *view, int writable, const char *what, int want)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "%s must be a %sC-contiguous float32 or float64 array; got %.200s",
                     what, writable ? "writable, " : "", Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (dtype_code(view) != want) {
        PyErr_Format(PyExc_TypeError, "%s must be %s (format '%s'); got format '%s'", what,
                     want ? "float64" : "float32", want ? "d" : "f",
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* One array, or a list/tuple of arrays, as segments; returns total elements or -1. */
static Py_ssize_t get_segments(PyObject *obj, SegmentList *list, Views *held, int writable,
                               const char *what, int want)
{
    Py_ssize_t i, n, total = 0;
    int many = PyList_Check(obj) || PyTuple_Check(obj);
    n = many ? PySequence_Fast_GET_SIZE(obj) : 1;
    if (n == 0) {
        PyErr_Format(PyExc_ValueError, "%s is an empty list", what);
        return -1;
    }
    list->segs = PyMem_RawMalloc(sizeof(Segment) * n);
    list->starts = PyMem_RawMalloc(sizeof(Py_ssize_t) * (n + 1));
    list->count = n;
    if (!list->segs || !list->starts) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i < n; i++) {
        PyObject *item = many ? PySequence_Fast_GET_ITEM(obj, i) : obj;
        Py_buffer *view = &held->views[held->count];
        if (get_view(item, view, writable, what, want) < 0) return -1;
        held->count++;
        list->segs[i].ptr = view->buf;
        list->segs[i].len = view->len / view->itemsize;
        list->starts[i] = total;
        total += list->segs[i].len;
    }
    list->starts[n] = total;
    return total;
}

static Py_ssize_t count_items(PyObject *obj)
{
    return (PyList_Check(obj) || PyTuple_Check(obj)) ? PySequence_Fast_GET_SIZE(obj) : 1;
}

static int get_flat(PyObject *obj, Py_buffer *views, Views *held, char **out, Py_ssize_t total,
                    const char *what, int want)
{
    Py_buffer *view;
    if (obj == Py_None) {
        *out = NULL;
        return 0;
    }
    view = &views[held->count];
    if (get_view(obj, view, 1, what, want) < 0) return -1;
    held->count++;
    if (view->len / view->itemsize != total) {
        PyErr_Format(PyExc_ValueError, "%s has %zd elements; the parameters have %zd", what,
                     view->len / view->itemsize, total);
        return -1;
    }
    *out = view->buf;
    return 0;
}

PyDoc_STRVAR(rmsprop_doc,
"rmsprop(params, grads, velocity, average_grad, momentum_slot,\n"
"        lr, rho, one_minus_rho, epsilon, momentum, threads=1, *,\n"
"        clip=None, weight_decay=None,\n"
"        ema_average=None, ema_decay=0.0, ema_one_minus_decay=1.0) -> threads used\n"
"\n"
"One RMSprop step, as kernels.rmsprop_rule computes it, in one pass.\n"
"`params` (updated in place) and `grads` are each one C-contiguous array or a\n"
"list of them, read as one sequence of elements (the lists may be split\n"
"differently); the slots are flat arrays of the same total length, updated in\n"
"place; `average_grad`/`momentum_slot` are None when not centered / no\n"
"momentum. All arrays are float32, or all float64, in native byte order; the\n"
"scalars are rounded to that dtype.\n"
"\n"
"In the same pass, optionally: `clip` clips each gradient element to\n"
"[-clip, clip] first (steps.clip_by_value); `weight_decay` decays each\n"
"parameter by p * weight_decay * lr before its update (kernels.decay_weights);\n"
"`ema_average` (a flat array like the slots) becomes\n"
"ema_average * ema_decay + p * ema_one_minus_decay with the updated p\n"
"(kernels.moving_average). Nothing is written unless every argument is\n"
"accepted.");

/* A float argument that may be None (then *present = 0). */
static int optional_double(PyObject *obj, const char *what, double *out, int *present)
{
    *present = obj != Py_None;
    if (!*present) return 0;
    *out = PyFloat_AsDouble(obj);
    if (*out == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a number or None", what);
        return -1;
    }
    return 0;
}

static PyObject *fused_rmsprop(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"params", "grads", "velocity", "average_grad", "momentum_slot",
                               "lr", "rho", "one_minus_rho", "epsilon", "momentum", "threads",
                               "clip", "weight_decay", "ema_average", "ema_decay",
                               "ema_one_minus_decay", NULL};
    PyObject *params, *grads, *velocity, *average, *momentum_slot;
    PyObject *clip = Py_None, *decay = Py_None, *ema = Py_None;
    PyObject *fast_params = NULL, *fast_grads = NULL;
    Scalars scalars;
    int threads = 1, used = 0, want, has_clip, has_decay;
    Job job;
    Views held = {NULL, 0};
    Py_buffer probe;
    Py_ssize_t capacity, total, grad_total;
    PyObject *result = NULL;

    memset(&scalars, 0, sizeof(scalars));
    scalars.ema_omd = 1.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOddddd|i$OOOdd:rmsprop", keywords,
                                     &params, &grads, &velocity, &average, &momentum_slot,
                                     &scalars.lr, &scalars.rho, &scalars.omr, &scalars.eps,
                                     &scalars.mom, &threads, &clip, &decay, &ema,
                                     &scalars.ema_decay, &scalars.ema_omd))
        return NULL;
    if (optional_double(clip, "clip", &scalars.clip, &has_clip) < 0 ||
        optional_double(decay, "weight_decay", &scalars.decay, &has_decay) < 0)
        return NULL;
    memset(&job, 0, sizeof(job));
    job.scalars = &scalars;
    /* The velocity's dtype is the dtype of the step. */
    if (PyObject_GetBuffer(velocity, &probe, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "velocity must be a C-contiguous float32 or float64 "
                     "array; got %.200s", Py_TYPE(velocity)->tp_name);
        return NULL;
    }
    want = dtype_code(&probe);
    PyBuffer_Release(&probe);
    if (want < 0) {
        PyErr_SetString(PyExc_TypeError, "velocity must be float32 or float64");
        return NULL;
    }
    job.is_double = want;

    /* Lists are read through PySequence_Fast so that their items are held. */
    if (PyList_Check(params) || PyTuple_Check(params)) {
        if (!(fast_params = PySequence_Fast(params, "params"))) goto done;
        params = fast_params;
    }
    if (PyList_Check(grads) || PyTuple_Check(grads)) {
        if (!(fast_grads = PySequence_Fast(grads, "grads"))) goto done;
        grads = fast_grads;
    }
    capacity = count_items(params) + count_items(grads) + 4;
    held.views = PyMem_RawMalloc(sizeof(Py_buffer) * capacity);
    if (!held.views) { PyErr_NoMemory(); goto done; }

    total = get_segments(params, &job.params, &held, 1, "params", want);
    if (total < 0) goto done;
    grad_total = get_segments(grads, &job.grads, &held, 0, "grads", want);
    if (grad_total < 0) goto done;
    if (grad_total != total) {
        PyErr_Format(PyExc_ValueError, "grads have %zd elements; params have %zd", grad_total,
                     total);
        goto done;
    }
    if (get_flat(velocity, held.views, &held, &job.velocity, total, "velocity", want) < 0 ||
        get_flat(average, held.views, &held, &job.average, total, "average_grad", want) < 0 ||
        get_flat(momentum_slot, held.views, &held, &job.momentum_slot, total, "momentum_slot",
                 want) < 0 ||
        get_flat(ema, held.views, &held, &job.ema, total, "ema_average", want) < 0)
        goto done;
    job.variant = (job.average ? CENTERED : 0) | (job.momentum_slot ? MOMENTUM : 0) |
                  (has_clip ? CLIP : 0) | (has_decay ? DECAY : 0) | (job.ema ? EMA : 0);
    if (threads < 1) threads = 1;

    Py_BEGIN_ALLOW_THREADS
    used = run_job(&job, total, threads);
    Py_END_ALLOW_THREADS
    result = PyLong_FromLong(used);

done:
    release_views(&held);
    PyMem_RawFree(held.views);
    PyMem_RawFree(job.params.segs);
    PyMem_RawFree(job.params.starts);
    PyMem_RawFree(job.grads.segs);
    PyMem_RawFree(job.grads.starts);
    Py_XDECREF(fast_params);
    Py_XDECREF(fast_grads);
    return result;
}

/* ------------------------------------------------------------------------ */
/* Surveying a step's gradients in one pass (the optimizer's fast path for
 * many tensors: reading .shape, .dtype and .base of each gradient from Python
 * costs more than updating a tensor of a thousand floats). */

/* 1 for the format of a native-order integer or float NumPy exports (what the
 * optimizer accepts without converting: dtype kinds f, i, u), else 0. */
static int numeric_format(const char *f)
{
    if (f == NULL) return 1;            /* "B", unsigned bytes */
    f = skip_native_order(f);
    return f[0] != '\0' && f[1] == '\0' && strchr("efdbBhHiIlLqQnN", f[0]) != NULL;
}

typedef struct {
    uintptr_t lo, hi;       /* bytes [lo, hi) */
} Range;

static int range_order(const void *a, const void *b)
{
    uintptr_t x = ((const Range *)a)->lo, y = ((const Range *)b)->lo;
    return x < y ? -1 : x > y;
}

/* The bytes a strided buffer can touch; empty (lo == hi) when it has no element. */
static Range extent(const Py_buffer *view)
{
    Range r;
    intptr_t lo = 0, hi = 0;
    int k;
    r.lo = r.hi = (uintptr_t)view->buf;
    for (k = 0; k < view->ndim; k++) {
        Py_ssize_t n = view->shape[k];
        Py_ssize_t stride = view->strides ? view->strides[k] : 0;
        if (n == 0) return r;
        if (stride < 0) lo += (intptr_t)(n - 1) * stride;
        else hi += (intptr_t)(n - 1) * stride;
    }
    r.lo = (uintptr_t)((intptr_t)r.lo + lo);
    r.hi = (uintptr_t)((intptr_t)r.hi + hi + view->itemsize);
    return r;
}

PyDoc_STRVAR(survey_doc,
"survey(grads, array_type, shapes, avoid) -> bool\n"
"\n"
"True when every item of the list `grads` is exactly of type `array_type`\n"
"(numpy.ndarray), has the shape at its position in `shapes` (bytes: for each\n"
"position, ndim then the dimensions, as native Py_ssize_t), a native integer\n"
"or float dtype, and shares no memory with any object of the list `avoid`\n"
"(overlapping byte ranges count as shared). False otherwise, including for\n"
"anything it cannot read: the caller then checks each gradient itself. It\n"
"never raises for a gradient, and changes nothing.");

static PyObject *survey(PyObject *self, PyObject *args)
{
    PyObject *grads, *array_type, *shapes, *avoid;
    const Py_ssize_t *table;
    Py_ssize_t table_len, at = 0, i, n, n_avoid, n_ranges = 0;
    Range *ranges = NULL;
    int ok = 1;

    if (!PyArg_ParseTuple(args, "O!OO!O!:survey", &PyList_Type, &grads, &array_type,
                          &PyBytes_Type, &shapes, &PyList_Type, &avoid))
        return NULL;
    table = (const Py_ssize_t *)PyBytes_AS_STRING(shapes);
    table_len = PyBytes_GET_SIZE(shapes) / (Py_ssize_t)sizeof(Py_ssize_t);
    n = PyList_GET_SIZE(grads);
    n_avoid = PyList_GET_SIZE(avoid);
    if (n_avoid > 0) {
        ranges = PyMem_Malloc(sizeof(Range) * n_avoid);
        if (!ranges) return PyErr_NoMemory();
    }
    for (i = 0; i < n_avoid && ok; i++) {
        Py_buffer view;
        if (PyObject_GetBuffer(PyList_GET_ITEM(avoid, i), &view, PyBUF_RECORDS_RO) < 0) {
            PyErr_Clear();
            ok = 0;
            break;
        }
        ranges[n_ranges] = extent(&view);
        if (ranges[n_ranges].hi > ranges[n_ranges].lo) n_ranges++;
        PyBuffer_Release(&view);
    }
    if (ok && n_ranges > 1) {
        /* Sorted and merged, so that each gradient needs one binary search. */
        Py_ssize_t merged = 0;
        qsort(ranges, (size_t)n_ranges, sizeof(Range), range_order);
        for (i = 1; i < n_ranges; i++) {
            if (ranges[i].lo <= ranges[merged].hi) {
                if (ranges[i].hi > ranges[merged].hi) ranges[merged].hi = ranges[i].hi;
            } else {
                ranges[++merged] = ranges[i];
            }
        }
        n_ranges = merged + 1;
    }
    for (i = 0; i < n && ok; i++) {
        PyObject *item = PyList_GET_ITEM(grads, i);
        Py_buffer view;
        Py_ssize_t ndim, k;
        Range r;
        if (Py_TYPE(item) != (PyTypeObject *)array_type || at >= table_len) { ok = 0; break; }
        if (PyObject_GetBuffer(item, &view, PyBUF_RECORDS_RO) < 0) {
            PyErr_Clear();
            ok = 0;
            break;
        }
        ndim = table[at];
        if (view.ndim != ndim || at + 1 + ndim > table_len || !numeric_format(view.format))
            ok = 0;
        for (k = 0; ok && k < ndim; k++)
            if (view.shape[k] != table[at + 1 + k]) ok = 0;
        at += 1 + ndim;
        if (ok && n_ranges > 0) {
            r = extent(&view);
            if (r.hi > r.lo) {
                /* The last range starting below r.hi must end at or before r.lo. */
                Py_ssize_t lo = 0, hi = n_ranges;
                while (lo < hi) {
                    Py_ssize_t mid = (lo + hi) / 2;
                    if (ranges[mid].lo < r.hi) lo = mid + 1; else hi = mid;
                }
                if (lo > 0 && ranges[lo - 1].hi > r.lo) ok = 0;
            }
        }
        PyBuffer_Release(&view);
    }
    if (ok && at != table_len) ok = 0;      /* fewer gradients than positions */
    PyMem_Free(ranges);
    return PyBool_FromLong(ok);
}

static PyMethodDef methods[] = {
    {"rmsprop", (PyCFunction)(void (*)(void))fused_rmsprop, METH_VARARGS | METH_KEYWORDS,
     rmsprop_doc},
    {"survey", survey, METH_VARARGS, survey_doc},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fused",
    "The RMSprop update rule fused into one compiled pass (see kernels.py for the "
    "NumPy reference).", -1, methods
};

PyMODINIT_FUNC PyInit__fused(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "MIN_PER_THREAD", (long)MIN_PER_THREAD) < 0 ||
        PyModule_AddIntConstant(m, "MAX_THREADS", MAX_THREADS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
