/* Compiled inner loops of the NumPy engine (models/native.py says when they run).
 *
 * At batch 1 a recurrent step of the NumPy engine is one matrix-vector product plus eight
 * NumPy calls whose dispatch costs more than their arithmetic; here a whole layer (every
 * step, both directions) is one call. The arithmetic is the engine's: the same gate layout
 * (o, i, f pre-halved so that sigmoid(x) = (tanh(x) + 1) / 2, then g), float32 throughout.
 * tanh is a rational approximation (Eigen's generic_fast_tanh_float) that the compiler
 * vectorises; glibc's tanhf does not vectorise and made a compiled step slower than NumPy's
 * (docs/results/serving.md). Buffers come through the buffer protocol (C-contiguous, so no
 * NumPy headers at build time); models/native.py checks dtypes and shapes before calling.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build runs on any x86-64; AVX2 + FMA where the CPU has them (chosen at load). */
#define SF_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define SF_CLONES
#endif

/* tanh to within a few float32 ulps (Eigen: MathFunctionsImpl.h, generic_fast_tanh_float). */
__attribute__((always_inline)) static inline float fast_tanh(float x) {
    const float bound = 7.90531110763549805f;
    float c = x > bound ? bound : (x < -bound ? -bound : x);
    float x2 = c * c;
    float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = x2 * p + -8.60467152213735e-11f;
    p = x2 * p + 5.12229709037114e-08f;
    p = x2 * p + 1.48572235717979e-05f;
    p = x2 * p + 6.37261928875436e-04f;
    p = x2 * p + 4.89352455891786e-03f;
    p = c * p;
    float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = x2 * q + 2.26843463243900e-03f;
    q = x2 * q + 4.89352518554385e-03f;
    float r = p / q;
    return (x > -0.0004f && x < 0.0004f) ? x : r;
}

SF_CLONES
static void tanh_inplace(float *x, Py_ssize_t n) {
    for (Py_ssize_t j = 0; j < n; j++) x[j] = fast_tanh(x[j]);
}

/* pre[r, 0:g] += sum_k state[r, k] * rec[k, 0:g] for each of rows (pre rows g apart, state
 * rows h apart): column blocks of 64 (eight independent vector sums, enough to keep two
 * fused multiply-add units busy), then of 8, then one at a time, each block's sums held in
 * registers over all k. Rows are the inner loop, so a block of rec (h x 64 floats) comes
 * from memory once per step and from the cache for the other rows. */
#define MATVEC_BLOCKS(WIDTH)                                                   \
    for (; jb + (WIDTH) <= g; jb += (WIDTH)) {                                 \
        for (Py_ssize_t r = 0; r < rows; r++) {                                \
            float *restrict out = pre + r * g + jb;                            \
            const float *restrict s = state + r * h;                           \
            float acc[WIDTH];                                                  \
            for (int j = 0; j < (WIDTH); j++) acc[j] = out[j];                 \
            for (Py_ssize_t k = 0; k < h; k++) {                               \
                const float a = s[k];                                          \
                const float *restrict row = rec + k * g + jb;                  \
                for (int j = 0; j < (WIDTH); j++) acc[j] += a * row[j];        \
            }                                                                  \
            for (int j = 0; j < (WIDTH); j++) out[j] = acc[j];                 \
        }                                                                      \
    }

SF_CLONES
static void add_matvec(float *restrict pre, const float *restrict state,
                       const float *restrict rec, Py_ssize_t rows, Py_ssize_t h,
                       Py_ssize_t g) {
    Py_ssize_t jb = 0;
    MATVEC_BLOCKS(64)
    MATVEC_BLOCKS(8)
    MATVEC_BLOCKS(1)
}

/* The cell update of one row: work = [o, i, f | g] (pre-activations, o, i, f halved),
 * cell (h) the running cell state, out (h) the new hidden state. */
SF_CLONES
static void lstm_cell(float *restrict work, float *restrict cell, float *restrict out,
                      Py_ssize_t h, int first) {
    tanh_inplace(work, 4 * h);
    const float *o = work, *i = work + h, *f = work + 2 * h, *g = work + 3 * h;
    for (Py_ssize_t j = 0; j < h; j++) {
        float ig = (i[j] * 0.5f + 0.5f) * g[j];
        float c = first ? ig : (f[j] * 0.5f + 0.5f) * cell[j] + ig;
        cell[j] = c;
        out[j] = (o[j] * 0.5f + 0.5f) * fast_tanh(c);
    }
}

/* lstm_layer(inputs, outputs, rec, counts, hidden)
 *
 * inputs  float32 (2, tokens, 4h): projected inputs, direction-major, in packed order: step s
 *         owns rows first[s] .. first[s] + counts[s] - 1 (counts non-increasing, so the rows
 *         still running are a prefix and row r of step s continues row r of step s - 1);
 * outputs float32 (2, tokens, h), written: the hidden states, same layout;
 * rec     float32 (2, h, 4h): recurrent weights (transposed, gate-reordered, pre-scaled);
 * counts  int64 (steps,).
 */
static PyObject *lstm_layer(PyObject *self, PyObject *args) {
    Py_buffer in, out, rec, counts;
    Py_ssize_t h;
    if (!PyArg_ParseTuple(args, "y*w*y*y*n", &in, &out, &rec, &counts, &h)) return NULL;
    PyObject *result = NULL;
    float *work = NULL, *cells = NULL;
    const Py_ssize_t g = 4 * h;
    const Py_ssize_t steps = counts.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *cnt = (const int64_t *)counts.buf;
    Py_ssize_t tokens = 0, widest = 0;
    int ok = h > 0 && counts.len % (Py_ssize_t)sizeof(int64_t) == 0;
    for (Py_ssize_t s = 0; ok && s < steps; s++) {
        ok = cnt[s] >= 0 && (s == 0 || cnt[s] <= cnt[s - 1]);
        tokens += cnt[s];
        if (cnt[s] > widest) widest = cnt[s];
    }
    if (!ok || in.len != (Py_ssize_t)sizeof(float) * 2 * tokens * g ||
        out.len != (Py_ssize_t)sizeof(float) * 2 * tokens * h ||
        rec.len != (Py_ssize_t)sizeof(float) * 2 * h * g) {
        PyErr_SetString(PyExc_ValueError, "lstm_layer: buffer sizes do not match the counts");
        goto done;
    }
    work = PyMem_RawMalloc(sizeof(float) * (size_t)((widest ? widest : 1) * g));
    cells = PyMem_RawMalloc(sizeof(float) * (size_t)((widest ? widest : 1) * h));
    if (!work || !cells) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const float *x = (const float *)in.buf;
        float *y = (float *)out.buf;
        Py_BEGIN_ALLOW_THREADS
        /* Direction by direction (they are independent): one direction's weights stay in
         * the cache from step to step where they fit, both directions' may not. */
        for (int d = 0; d < 2; d++) {
            const Py_ssize_t offset = (Py_ssize_t)d * h * g;
            Py_ssize_t first = 0, prev = 0;
            for (Py_ssize_t s = 0; s < steps; s++) {
                const Py_ssize_t at = (Py_ssize_t)d * tokens + first, rows = cnt[s];
                memcpy(work, x + at * g, sizeof(float) * (size_t)(rows * g));
                const float *state = y + ((Py_ssize_t)d * tokens + prev) * h;
                if (s) add_matvec(work, state, (const float *)rec.buf + offset, rows, h, g);
                for (Py_ssize_t r = 0; r < rows; r++)
                    lstm_cell(work + r * g, cells + r * h, y + (at + r) * h, h, s == 0);
                prev = first;
                first += rows;
            }
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(work);
    PyMem_RawFree(cells);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    PyBuffer_Release(&rec);
    PyBuffer_Release(&counts);
    return result;
}

/* out[0:k] = sum_i x[i] * m[i, 0:k] (float64, rows of m contiguous). */
SF_CLONES
static void matvec64(double *restrict out, const double *restrict x, const double *restrict m,
                     Py_ssize_t k) {
    for (Py_ssize_t j = 0; j < k; j++) out[j] = 0.0;
    for (Py_ssize_t i = 0; i < k; i++) {
        const double a = x[i];
        const double *restrict row = m + i * k;
        for (Py_ssize_t j = 0; j < k; j++) out[j] += a * row[j];
    }
}

/* Rescale v[0:k] to sum 1 and return the sum (0 or NaN left as they come: the caller
 * checks the sums, as NumPy's division under errstate(ignore) gives the same). */
static double normalise(double *v, Py_ssize_t k) {
    double total = 0.0;
    for (Py_ssize_t j = 0; j < k; j++) total += v[j];
    for (Py_ssize_t j = 0; j < k; j++) v[j] /= total;
    return total;
}

/* lattice_passes(alpha, beta, sums_a, sums_b, probs, exp_t, exp_tt, running,
 *                forward_rescales, backward_rescales, num_tags)
 *
 * models.crf.decode_lattice's forward and backward recursions in probability space, rows
 * longest first (running[t] rows still run at token t). alpha[:, 0] and each row's last
 * beta come set; the rest is written: alpha[r, t] = (alpha[r, t-1] @ exp_t) * probs[r, t],
 * beta[r, t-1] = (probs[r, t] * beta[r, t]) @ exp_t.T, each rescaled to sum 1 where its
 * flag (uint8, one per step, in the order the pass takes the steps) says, the sum kept in
 * sums_a[r, t] / sums_b[r, t-1]. float64 (batch, seq_len, num_tags) / (batch, seq_len).
 */
static PyObject *lattice_passes(PyObject *self, PyObject *args) {
    Py_buffer alpha, beta, sums_a, sums_b, probs, exp_t, exp_tt, running, fres, bres;
    Py_ssize_t k;
    (void)self;
    if (!PyArg_ParseTuple(args, "w*w*w*w*y*y*y*y*y*y*n", &alpha, &beta, &sums_a, &sums_b,
                          &probs, &exp_t, &exp_tt, &running, &fres, &bres, &k))
        return NULL;
    PyObject *result = NULL;
    double *work = NULL;
    const Py_ssize_t seq = running.len / (Py_ssize_t)sizeof(int64_t);
    const int64_t *run = (const int64_t *)running.buf;
    const Py_ssize_t batch = seq && k > 0 ? alpha.len / ((Py_ssize_t)sizeof(double) * seq * k) : 0;
    const Py_ssize_t cube = (Py_ssize_t)sizeof(double) * batch * seq * k;
    const Py_ssize_t plane = (Py_ssize_t)sizeof(double) * batch * seq;
    int ok = k > 0 && seq > 0 && alpha.len == cube && beta.len == cube && probs.len == cube &&
             sums_a.len == plane && sums_b.len == plane &&
             exp_t.len == (Py_ssize_t)sizeof(double) * k * k && exp_tt.len == exp_t.len &&
             fres.len == seq - 1 && bres.len == seq - 1;
    for (Py_ssize_t t = 0; ok && t < seq; t++) ok = run[t] >= 0 && run[t] <= batch;
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "lattice_passes: buffer sizes do not match");
        goto done;
    }
    work = PyMem_RawMalloc(sizeof(double) * (size_t)k);
    if (!work) {
        PyErr_NoMemory();
        goto done;
    }
    {
        double *a = alpha.buf, *b = beta.buf, *sa = sums_a.buf, *sb = sums_b.buf;
        const double *p = probs.buf, *et = exp_t.buf, *ett = exp_tt.buf;
        const unsigned char *fr = fres.buf, *br = bres.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t t = 1; t < seq; t++) {
            for (Py_ssize_t r = 0; r < run[t]; r++) {
                double *next = a + (r * seq + t) * k;
                const double *pr = p + (r * seq + t) * k;
                matvec64(next, next - k, et, k);
                for (Py_ssize_t j = 0; j < k; j++) next[j] *= pr[j];
                if (fr[t - 1]) sa[r * seq + t] = normalise(next, k);
            }
        }
        for (Py_ssize_t t = seq - 1; t > 0; t--) {
            for (Py_ssize_t r = 0; r < run[t]; r++) {
                const double *pr = p + (r * seq + t) * k, *bt = b + (r * seq + t) * k;
                double *into = b + (r * seq + t - 1) * k;
                for (Py_ssize_t j = 0; j < k; j++) work[j] = pr[j] * bt[j];
                matvec64(into, work, ett, k);
                if (br[seq - 1 - t]) sb[r * seq + t - 1] = normalise(into, k);
            }
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(work);
    Py_buffer *all[] = {&alpha, &beta, &sums_a, &sums_b, &probs, &exp_t, &exp_tt, &running, &fres, &bres};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]->obj) PyBuffer_Release(all[i]);
    return result;
}

/* tanh(values) in place, float32: what the kernels use, exposed so that a test can hold it
 * against NumPy's tanh over the whole float range. */
static PyObject *tanh_f32(PyObject *self, PyObject *args) {
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "w*", &buf)) return NULL;
    tanh_inplace((float *)buf.buf, buf.len / (Py_ssize_t)sizeof(float));
    PyBuffer_Release(&buf);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"lstm_layer", lstm_layer, METH_VARARGS, "Every step of a bidirectional LSTM layer."},
    {"lattice_passes", lattice_passes, METH_VARARGS, "A CRF's forward-backward recursions."},
    {"tanh_f32", tanh_f32, METH_VARARGS, "float32 tanh in place (the kernels' own)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
