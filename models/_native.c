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
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
/* One build runs on any x86-64; AVX2 + FMA where the CPU has them (chosen at load by the
 * CPU's feature bits). Not "arch=haswell": GCC dispatches that clone on the CPU *model*
 * (__builtin_cpu_is("haswell")), so every other CPU, AMD's included, ran the SSE2 clone. */
#define SF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
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

/* Half-precision recurrent weights (IEEE binary16, as NumPy's float16): half the bytes a
 * step reads. The 200-unit tagger's two directions are 1.28 MB in float32, more than a 1 MiB
 * L2 cache, so each parse streamed them in from L3 again; in halves both networks' weights
 * stay in L2 between requests. Products and sums stay float32.
 *
 * The halves come in column panels (models.native.panels): the columns split into panels 64
 * wide, then 8, then 1, each panel's h rows contiguous, the panel of column jb at jb * h. A
 * block of columns then reads one run of memory over k, not 128 bytes every 4h * 2 bytes,
 * which the prefetcher kept up with less well (a third faster at h = 200, ad hoc). */
static inline float half_to_float(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu, bits;
    if (exponent == 0x1fu) {  /* inf / NaN */
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent) {  /* normal */
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa) {  /* subnormal: normalise */
        exponent = 113u;
        while (!(mantissa & 0x400u)) {
            mantissa <<= 1;
            exponent--;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    } else {
        bits = sign;
    }
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

/* The width of the panel that starts at column jb of g. */
static inline Py_ssize_t panel_width(Py_ssize_t jb, Py_ssize_t g) {
    return g - jb >= 64 ? 64 : (g - jb >= 8 ? 8 : 1);
}

static void add_matvec_half_portable(float *restrict pre, const float *restrict state,
                                     const uint16_t *restrict rec, Py_ssize_t rows,
                                     Py_ssize_t h, Py_ssize_t g) {
    for (Py_ssize_t jb = 0, w; jb < g; jb += w) {
        w = panel_width(jb, g);
        const uint16_t *panel = rec + jb * h;
        for (Py_ssize_t r = 0; r < rows; r++)
            for (Py_ssize_t k = 0; k < h; k++) {
                const float a = state[r * h + k];
                for (Py_ssize_t j = 0; j < w; j++)
                    pre[r * g + jb + j] += a * half_to_float(panel[k * w + j]);
            }
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define SF_HAVE_F16C 1
/* The x86 path: F16C widens eight halves a load (GCC 12 does not vectorise the scalar
 * conversion), eight accumulators of eight columns per 64-wide panel as add_matvec's. */
__attribute__((target("avx2,fma,f16c")))
static void add_matvec_half_f16c(float *restrict pre, const float *restrict state,
                                 const uint16_t *restrict rec, Py_ssize_t rows, Py_ssize_t h,
                                 Py_ssize_t g) {
    Py_ssize_t jb = 0;
    for (; jb + 64 <= g; jb += 64)
        for (Py_ssize_t r = 0; r < rows; r++) {
            float *out = pre + r * g + jb;
            const float *s = state + r * h;
            const uint16_t *row = rec + jb * h;
            __m256 acc[8];
            for (int b = 0; b < 8; b++) acc[b] = _mm256_loadu_ps(out + 8 * b);
            for (Py_ssize_t k = 0; k < h; k++, row += 64) {
                const __m256 a = _mm256_broadcast_ss(s + k);
                for (int b = 0; b < 8; b++) {
                    const __m128i halves = _mm_loadu_si128((const __m128i *)(row + 8 * b));
                    acc[b] = _mm256_fmadd_ps(a, _mm256_cvtph_ps(halves), acc[b]);
                }
            }
            for (int b = 0; b < 8; b++) _mm256_storeu_ps(out + 8 * b, acc[b]);
        }
    for (; jb + 8 <= g; jb += 8)
        for (Py_ssize_t r = 0; r < rows; r++) {
            float *out = pre + r * g + jb;
            const float *s = state + r * h;
            const uint16_t *row = rec + jb * h;
            __m256 acc = _mm256_loadu_ps(out);
            for (Py_ssize_t k = 0; k < h; k++, row += 8) {
                const __m128i halves = _mm_loadu_si128((const __m128i *)row);
                acc = _mm256_fmadd_ps(_mm256_broadcast_ss(s + k), _mm256_cvtph_ps(halves), acc);
            }
            _mm256_storeu_ps(out, acc);
        }
    for (; jb < g; jb++)
        for (Py_ssize_t r = 0; r < rows; r++) {
            float acc = pre[r * g + jb];
            for (Py_ssize_t k = 0; k < h; k++)
                acc += state[r * h + k] * half_to_float(rec[jb * h + k]);
            pre[r * g + jb] = acc;
        }
}
#endif

/* Set by portable_halves(True) (tests): the bit-by-bit path even where F16C is at hand. */
static int force_portable = 0;

static int has_f16c(void) {
#ifdef SF_HAVE_F16C
    static int known = -1;  /* asked once: the answer cannot change */
    if (force_portable) return 0;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                __builtin_cpu_supports("f16c");
    }
    return known;
#else
    return 0;
#endif
}

/* pre += state @ direction d's recurrent weights, read as singles or (half) as halves, by
 * F16C where f16c says so. What lstm_layer and lstm_row do every step after the first. */
static void add_recurrent(float *restrict pre, const float *restrict state, const void *rec,
                          int d, Py_ssize_t rows, Py_ssize_t h, int half, int f16c) {
    const Py_ssize_t g = 4 * h, offset = (Py_ssize_t)d * h * g;
    if (!half) {
        add_matvec(pre, state, (const float *)rec + offset, rows, h, g);
        return;
    }
    const uint16_t *halves = (const uint16_t *)rec + offset;
#ifdef SF_HAVE_F16C
    if (f16c) {
        add_matvec_half_f16c(pre, state, halves, rows, h, g);
        return;
    }
#endif
    (void)f16c;
    add_matvec_half_portable(pre, state, halves, rows, h, g);
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

/* lstm_layer(inputs, outputs, rec, counts, hidden[, half])
 *
 * inputs  float32 (2, tokens, 4h): projected inputs, direction-major, in packed order: step s
 *         owns rows first[s] .. first[s] + counts[s] - 1 (counts non-increasing, so the rows
 *         still running are a prefix and row r of step s continues row r of step s - 1);
 * outputs float32 (2, tokens, h), written: the hidden states, same layout;
 * rec     float32 (2, h, 4h): recurrent weights (transposed, gate-reordered, pre-scaled),
 *         or their binary16 halves (uint16) in column panels where half is true;
 * counts  int64 (steps,).
 */
static PyObject *lstm_layer(PyObject *self, PyObject *args) {
    Py_buffer in, out, rec, counts;
    Py_ssize_t h;
    int half = 0;
    if (!PyArg_ParseTuple(args, "y*w*y*y*n|p", &in, &out, &rec, &counts, &h, &half))
        return NULL;
    const Py_ssize_t weight_bytes = half ? (Py_ssize_t)sizeof(uint16_t) : (Py_ssize_t)sizeof(float);
    const int f16c = half && has_f16c();
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
        rec.len != weight_bytes * 2 * h * g) {
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
            Py_ssize_t first = 0, prev = 0;
            for (Py_ssize_t s = 0; s < steps; s++) {
                const Py_ssize_t at = (Py_ssize_t)d * tokens + first, rows = cnt[s];
                memcpy(work, x + at * g, sizeof(float) * (size_t)(rows * g));
                const float *state = y + ((Py_ssize_t)d * tokens + prev) * h;
                if (s) add_recurrent(work, state, rec.buf, d, rows, h, half, f16c);
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

/* lstm_row(inputs, outputs, rec, hidden, half)
 *
 * One sentence (a batch of one) in the engine's own layout, so that Python gathers and
 * scatters nothing: inputs float32 (n, 2, 4h), each token's projected inputs of both
 * directions side by side (the first layer's folded projection, as it comes); outputs
 * float32 (n, 2, h), written: token t's forward state, then its backward one; rec and half as
 * lstm_layer's. The forward direction runs t = 0 .. n-1, the backward one n-1 .. 0.
 */
static PyObject *lstm_row(PyObject *self, PyObject *args) {
    Py_buffer in, out, rec;
    Py_ssize_t h;
    int half = 0;
    if (!PyArg_ParseTuple(args, "y*w*y*n|p", &in, &out, &rec, &h, &half)) return NULL;
    PyObject *result = NULL;
    float *work = NULL, *cell = NULL;
    const Py_ssize_t g = 4 * h;
    const Py_ssize_t weight_bytes = half ? (Py_ssize_t)sizeof(uint16_t) : (Py_ssize_t)sizeof(float);
    const Py_ssize_t n = h > 0 ? in.len / ((Py_ssize_t)sizeof(float) * 2 * g) : 0;
    if (h <= 0 || in.len != (Py_ssize_t)sizeof(float) * 2 * n * g ||
        out.len != (Py_ssize_t)sizeof(float) * 2 * n * h || rec.len != weight_bytes * 2 * h * g) {
        PyErr_SetString(PyExc_ValueError, "lstm_row: buffer sizes do not match");
        goto done;
    }
    work = PyMem_RawMalloc(sizeof(float) * (size_t)g);
    cell = PyMem_RawMalloc(sizeof(float) * (size_t)h);
    if (!work || !cell) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const int f16c = half && has_f16c();
        const float *x = (const float *)in.buf;
        float *y = (float *)out.buf;
        Py_BEGIN_ALLOW_THREADS
        for (int d = 0; d < 2; d++) {
            const float *state = NULL;
            for (Py_ssize_t s = 0; s < n; s++) {
                const Py_ssize_t t = d ? n - 1 - s : s;
                memcpy(work, x + (2 * t + d) * g, sizeof(float) * (size_t)g);
                if (s) add_recurrent(work, state, rec.buf, d, 1, h, half, f16c);
                float *dest = y + (2 * t + d) * h;
                lstm_cell(work, cell, dest, h, s == 0);
                state = dest;
            }
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(work);
    PyMem_RawFree(cell);
    PyBuffer_Release(&in);
    PyBuffer_Release(&out);
    PyBuffer_Release(&rec);
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

/* The forward and backward passes of one row of n tokens: alpha[t] = (alpha[t-1] @ exp_t) *
 * probs[t], beta[t-1] = (probs[t] * beta[t]) @ exp_t.T (exp_tt: the transpose, contiguous),
 * each rescaled to sum 1 where its flag says, the sum kept in sums_a[t] / sums_b[t-1]. The
 * row's alpha[0] and beta[n-1] come set; arrays (n, k) and (n,). The flags are per step of
 * the batch's seq tokens: fres[t-1] forwards, bres[seq-1-t] backwards. scratch: k doubles. */
static void row_passes(double *alpha, double *beta, double *sums_a, double *sums_b,
                       const double *probs, const double *et, const double *ett, Py_ssize_t n,
                       Py_ssize_t seq, Py_ssize_t k, const unsigned char *fres,
                       const unsigned char *bres, double *scratch) {
    for (Py_ssize_t t = 1; t < n; t++) {
        double *next = alpha + t * k;
        matvec64(next, next - k, et, k);
        for (Py_ssize_t j = 0; j < k; j++) next[j] *= probs[t * k + j];
        if (fres[t - 1]) sums_a[t] = normalise(next, k);
    }
    for (Py_ssize_t t = n - 1; t > 0; t--) {
        for (Py_ssize_t j = 0; j < k; j++) scratch[j] = probs[t * k + j] * beta[t * k + j];
        matvec64(beta + (t - 1) * k, scratch, ett, k);
        if (bres[seq - 1 - t]) sums_b[t - 1] = normalise(beta + (t - 1) * k, k);
    }
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
    /* rows longest first: the rows running at each step are a prefix, fewer step by step */
    for (Py_ssize_t t = 0; ok && t < seq; t++)
        ok = run[t] >= 0 && run[t] <= batch && (t == 0 || run[t] <= run[t - 1]);
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
        /* Row r runs while run[t] > r: its length is the number of such steps. */
        for (Py_ssize_t r = 0; r < batch; r++) {
            Py_ssize_t n = 0;
            while (n < seq && run[n] > r) n++;
            const Py_ssize_t at = r * seq;
            row_passes(a + at * k, b + at * k, sa + at, sb + at, p + at * k, et, ett, n, seq, k,
                       fr, br, work);
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(work);
    Py_buffer *all[] = {&alpha, &beta, &sums_a, &sums_b, &probs, &exp_t, &exp_tt, &running, &fres, &bres};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    return result;
}

/* Whether to rescale at each of n steps (models.crf._rescales): the scores may have moved
 * costs[i * stride] at step i; rescale once that adds up to more than limit since the last. */
static void rescales(const double *costs, Py_ssize_t n, Py_ssize_t stride, double limit,
                     unsigned char *out) {
    double moved = 0.0;
    for (Py_ssize_t i = 0; i < n; i++) {
        moved += costs[i * stride];
        out[i] = moved > limit;
        if (out[i]) moved = 0.0;
    }
}

/* lattice_row(em32, temperature, start, end, transitions, exp_t, exp_tt, t_max, spread,
 *             (SPREAD, RESCALE, SURE), em, probs, em_max, alpha, beta, log_alpha, log_beta,
 *             tags) -> (kept, sure, log_z)
 *
 * models.crf.decode_lattice for one row of n tokens and k tags (the server's batch of one),
 * step for step: the calibrated emissions em32 / temperature in float64, their per-token
 * maxima and exponentials, the rescaled forward and backward passes, the log scales, log Z,
 * and the tags of highest marginal with whether the marginals prove them the best path
 * (models.crf._sure_paths). kept false: the probability space may have underflowed, and
 * nothing past the passes is meaningful (the caller takes the log-space pass); sure false:
 * the caller runs Viterbi. start, end, transitions, exp_t = exp(transitions - t_max) and its
 * transpose exp_tt: the calibrated CRF in float64; spread: how far its allowed scores lie
 * apart; the three limits are models.crf's constants. Outputs float64 (n, k) or (n,); tags
 * int64 (n,).
 */
static PyObject *lattice_row(PyObject *self, PyObject *args) {
    Py_buffer b_em32, b_start, b_end, b_trans, b_et, b_ett, b_em, b_probs, b_max, b_alpha,
        b_beta, b_la, b_lb, b_tags;
    double temperature, t_max, spread, limit_spread, limit_rescale, sure_factor;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*dy*y*y*y*y*dd(ddd)w*w*w*w*w*w*w*w*", &b_em32, &temperature,
                          &b_start, &b_end, &b_trans, &b_et, &b_ett, &t_max, &spread,
                          &limit_spread, &limit_rescale, &sure_factor, &b_em, &b_probs, &b_max,
                          &b_alpha, &b_beta, &b_la, &b_lb, &b_tags))
        return NULL;
    Py_buffer *all[] = {&b_em32, &b_start, &b_end,   &b_trans, &b_et, &b_ett, &b_em,
                        &b_probs, &b_max, &b_alpha, &b_beta,  &b_la, &b_lb, &b_tags};
    PyObject *result = NULL;
    double *work = NULL;
    const Py_ssize_t k = b_start.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t n = k ? b_em32.len / ((Py_ssize_t)sizeof(float) * k) : 0;
    const Py_ssize_t cube = (Py_ssize_t)sizeof(double) * n * k;
    const Py_ssize_t line = (Py_ssize_t)sizeof(double) * n;
    const Py_ssize_t square = (Py_ssize_t)sizeof(double) * k * k;
    if (k < 1 || n < 1 || b_em32.len != (Py_ssize_t)sizeof(float) * n * k ||
        b_end.len != b_start.len || b_trans.len != square || b_et.len != square ||
        b_ett.len != square || b_em.len != cube || b_probs.len != cube || b_alpha.len != cube ||
        b_beta.len != cube || b_max.len != line || b_la.len != line || b_lb.len != line ||
        b_tags.len != (Py_ssize_t)sizeof(int64_t) * n) {
        PyErr_SetString(PyExc_ValueError, "lattice_row: buffer sizes do not match");
        goto done;
    }
    /* sums_a, sums_b, costs (n each), end probabilities, scratch (k each), flags (2n bytes) */
    work = PyMem_RawMalloc(sizeof(double) * (size_t)(3 * n + 2 * k) + (size_t)(2 * n));
    if (!work) {
        PyErr_NoMemory();
        goto done;
    }
    int kept = 1, sure = 1;
    double log_z = 0.0;
    {
        const float *em32 = b_em32.buf;
        const double *start = b_start.buf, *end = b_end.buf, *trans = b_trans.buf;
        const double *et = b_et.buf, *ett = b_ett.buf;
        double *em = b_em.buf, *probs = b_probs.buf, *em_max = b_max.buf;
        double *alpha = b_alpha.buf, *beta = b_beta.buf;
        double *log_alpha = b_la.buf, *log_beta = b_lb.buf;
        int64_t *tags = b_tags.buf;
        double *sums_a = work, *sums_b = work + n, *costs = work + 2 * n;
        double *end_probs = work + 3 * n, *scratch = end_probs + k;
        unsigned char *fres = (unsigned char *)(scratch + k), *bres = fres + n;
        Py_BEGIN_ALLOW_THREADS
        const double log_k = log((double)k);
        double widest = -INFINITY;
        for (Py_ssize_t t = 0; t < n; t++) {
            double *e = em + t * k, hi = -INFINITY, lo = INFINITY;
            for (Py_ssize_t j = 0; j < k; j++) {
                e[j] = (double)em32[t * k + j];
                if (temperature != 1.0) e[j] /= temperature;
                hi = e[j] > hi ? e[j] : hi;
                lo = e[j] < lo ? e[j] : lo;
            }
            em_max[t] = hi;
            for (Py_ssize_t j = 0; j < k; j++) probs[t * k + j] = exp(e[j] - hi);
            costs[t] = (hi - lo) + spread + log_k;
            widest = hi - lo > widest ? hi - lo : widest;
            sums_a[t] = sums_b[t] = 1.0;
        }
        rescales(costs + 1, n - 1, 1, limit_rescale, fres);
        rescales(costs + n - 1, n - 1, -1, limit_rescale, bres);
        double head_max = -INFINITY, total = 0.0;
        for (Py_ssize_t j = 0; j < k; j++) {
            alpha[j] = start[j] + em[j];
            head_max = alpha[j] > head_max ? alpha[j] : head_max;
        }
        for (Py_ssize_t j = 0; j < k; j++) total += (alpha[j] = exp(alpha[j] - head_max));
        sums_a[0] = total;
        for (Py_ssize_t j = 0; j < k; j++) alpha[j] /= total;
        double end_max = -INFINITY, end_sum = 0.0;
        for (Py_ssize_t j = 0; j < k; j++) end_max = end[j] > end_max ? end[j] : end_max;
        for (Py_ssize_t j = 0; j < k; j++) end_sum += (end_probs[j] = exp(end[j] - end_max));
        for (Py_ssize_t j = 0; j < k; j++) beta[(n - 1) * k + j] = end_probs[j] / end_sum;
        row_passes(alpha, beta, sums_a, sums_b, probs, et, ett, n, n, k, fres, bres, scratch);
        /* Kept: no spread beyond the probability space's reach, no sum lost to underflow
         * (NaN compares false, so it fails too). */
        double last = 0.0, first = 0.0;
        for (Py_ssize_t j = 0; j < k; j++) {
            last += alpha[(n - 1) * k + j];
            first += beta[j];
        }
        kept = widest + spread <= limit_spread && last > 0 && first > 0;
        for (Py_ssize_t t = 0; kept && t < n; t++) kept = sums_a[t] > 0 && sums_b[t] > 0;
        sure = kept; /* nothing is proven from a lattice not kept */
        if (kept) {
            log_alpha[0] = head_max + log(sums_a[0]);
            for (Py_ssize_t t = 1; t < n; t++)
                log_alpha[t] = log_alpha[t - 1] + (t_max + em_max[t] + log(sums_a[t]));
            log_beta[n - 1] = end_max + log(end_sum);
            for (Py_ssize_t t = n - 2; t >= 0; t--)
                log_beta[t] = log_beta[t + 1] + (t_max + em_max[t + 1] + log(sums_b[t]));
            double dot = 0.0;
            for (Py_ssize_t j = 0; j < k; j++) dot += alpha[(n - 1) * k + j] * end_probs[j];
            log_z = log_alpha[n - 1] + log(dot) + end_max;
            /* The tags of highest marginal, their path's score, then the rivals per token. */
            double score = 0.0;
            for (Py_ssize_t t = 0; t < n; t++) {
                const double *a = alpha + t * k, *b = beta + t * k;
                double sum = 0.0, best = -1.0;
                int64_t arg = 0;
                for (Py_ssize_t j = 0; j < k; j++) sum += a[j] * b[j];
                for (Py_ssize_t j = 0; j < k; j++) {
                    double m = a[j] * b[j] / sum;
                    if (m > best) {
                        best = m;
                        arg = j;
                    }
                }
                tags[t] = arg;
                score += em[t * k + arg] + (t ? trans[tags[t - 1] * k + arg] : start[arg]);
            }
            score += end[tags[n - 1]];
            const double bound = sure_factor * exp(score - log_z);
            for (Py_ssize_t t = 0; sure && t < n; t++) {
                const double *a = alpha + t * k, *b = beta + t * k;
                double sum = 0.0;
                Py_ssize_t rivals = 0;
                for (Py_ssize_t j = 0; j < k; j++) sum += a[j] * b[j];
                for (Py_ssize_t j = 0; j < k; j++) rivals += a[j] * b[j] / sum >= bound;
                sure = rivals == 1;
            }
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_BuildValue("(iid)", kept, sure, log_z);
done:
    PyMem_RawFree(work);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
    return result;
}

/* span_row(emissions, probs, em_max, alpha, beta, log_alpha, log_beta, log_z, transitions,
 *          exp_t, end, t_max, tiny, path, spans, out)
 *
 * models.crf.Lattice.rows_span_probs for one row, the server's batch of one: for each span
 * (first, end, inside) of the path (n tags, int64), the marginal probability that tokens
 * first..end-1 carry the path's tags and the token at end (if any) is not tag inside (-1:
 * none), into out (float64). The lattice row's arrays: (seq, k) / (seq,) float64 with
 * seq >= n; transitions, exp_t (k, k), end (k): its CRF. A tail sum below tiny is taken in
 * log space (Lattice._tails). spans int64 (m, 3), out float64 (m,).
 */
static PyObject *span_row(PyObject *self, PyObject *args) {
    Py_buffer b_em, b_probs, b_max, b_alpha, b_beta, b_la, b_lb, b_trans, b_et, b_end, b_path,
        b_spans, b_out;
    double log_z, t_max, tiny;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*y*dy*y*y*ddy*y*w*", &b_em, &b_probs, &b_max,
                          &b_alpha, &b_beta, &b_la, &b_lb, &log_z, &b_trans, &b_et, &b_end,
                          &t_max, &tiny, &b_path, &b_spans, &b_out))
        return NULL;
    Py_buffer *all[] = {&b_em,  &b_probs, &b_max, &b_alpha, &b_beta, &b_la,   &b_lb,
                        &b_trans, &b_et,  &b_end, &b_path,  &b_spans, &b_out};
    PyObject *result = NULL;
    double *cum = NULL;
    const Py_ssize_t k = b_end.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t seq = b_max.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t n = b_path.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t m = b_out.len / (Py_ssize_t)sizeof(double);
    const Py_ssize_t cube = (Py_ssize_t)sizeof(double) * seq * k;
    const Py_ssize_t square = (Py_ssize_t)sizeof(double) * k * k;
    const int64_t *path = b_path.buf, *spans = b_spans.buf;
    int ok = k > 0 && n > 0 && n <= seq && b_em.len == cube && b_probs.len == cube &&
             b_alpha.len == cube && b_beta.len == cube && b_la.len == b_max.len &&
             b_lb.len == b_max.len && b_trans.len == square && b_et.len == square &&
             b_spans.len == (Py_ssize_t)sizeof(int64_t) * 3 * m;
    for (Py_ssize_t t = 0; ok && t < n; t++) ok = path[t] >= 0 && path[t] < k;
    for (Py_ssize_t s = 0; ok && s < m; s++) {
        const int64_t first = spans[3 * s], stop = spans[3 * s + 1], inside = spans[3 * s + 2];
        ok = first >= 0 && first < stop && stop <= n && inside >= -1 && inside < k;
    }
    if (!ok) {
        PyErr_SetString(PyExc_ValueError, "span_row: buffer sizes or spans do not match");
        goto done;
    }
    cum = PyMem_RawMalloc(sizeof(double) * (size_t)n);
    if (!cum) {
        PyErr_NoMemory();
        goto done;
    }
    {
        const double *em = b_em.buf, *probs = b_probs.buf, *em_max = b_max.buf;
        const double *alpha = b_alpha.buf, *beta = b_beta.buf, *log_alpha = b_la.buf;
        const double *log_beta = b_lb.buf, *trans = b_trans.buf, *et = b_et.buf;
        const double *end = b_end.buf;
        double *out = b_out.buf;
        Py_BEGIN_ALLOW_THREADS
        /* cum[t]: transitions and emissions along the path from token 1 to t */
        cum[0] = 0.0;
        for (Py_ssize_t t = 1; t < n; t++)
            cum[t] = cum[t - 1] + (trans[path[t - 1] * k + path[t]] + em[t * k + path[t]]);
        for (Py_ssize_t s = 0; s < m; s++) {
            const int64_t first = spans[3 * s], stop = spans[3 * s + 1], inside = spans[3 * s + 2];
            double log_p = log(alpha[first * k + path[first]]) + log_alpha[first];
            log_p += cum[stop - 1] - cum[first] - log_z;
            if (stop >= n) {
                log_p += end[path[n - 1]];
            } else {
                const double *e = et + path[stop - 1] * k, *p = probs + stop * k;
                const double *b = beta + stop * k;
                double sum = 0.0, tail;
                for (Py_ssize_t j = 0; j < k; j++) sum += j == inside ? 0.0 : e[j] * p[j] * b[j];
                if (sum > tiny) {
                    tail = log(sum);
                } else { /* in log space: the sum may have lost its mass to underflow */
                    const double *tr = trans + path[stop - 1] * k, *x = em + stop * k;
                    double top = -INFINITY, total = 0.0;
                    for (Py_ssize_t j = 0; j < k; j++) {
                        double v = j == inside ? -INFINITY : tr[j] + x[j] + log(b[j]);
                        top = v > top ? v : top;
                    }
                    const double safe = isfinite(top) ? top : 0.0;
                    for (Py_ssize_t j = 0; j < k; j++)
                        if (j != inside) total += exp(tr[j] + x[j] + log(b[j]) - safe);
                    tail = log(total) + safe - (t_max + em_max[stop]);
                }
                log_p += tail + t_max + em_max[stop] + log_beta[stop];
            }
            const double prob = exp(log_p);
            out[s] = prob > 1.0 ? 1.0 : prob; /* NaN stays NaN, as np.minimum */
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(cum);
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) PyBuffer_Release(all[i]);
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

/* Whether the running clone fuses multiply-adds, i.e. which clone the loader chose: a * b + c
 * with a = b = 1 + 2^-12 and c = -1 is 2^-11 + 2^-24 when fused (one rounding) and 2^-11
 * when the product is rounded first (2^-24 is half an ulp of 1 + 2^-11: ties to even). The
 * operands are volatile so that the compiler cannot fold the expression. */
SF_CLONES
static int fused(void) {
    volatile float a = 1.0f + 0x1p-12f, c = -1.0f;
    float x = a, y = c;
    return x * x + y != 0x1p-11f;
}

static PyObject *uses_fma(PyObject *self, PyObject *args) { return PyBool_FromLong(fused()); }

static PyObject *uses_f16c(PyObject *self, PyObject *args) { return PyBool_FromLong(has_f16c()); }

/* portable_halves(flag) -> the previous flag: widen halves bit by bit even with F16C (so
 * that a test can hold that path to the F16C one on a CPU that has both). */
static PyObject *portable_halves(PyObject *self, PyObject *args) {
    int flag;
    if (!PyArg_ParseTuple(args, "p", &flag)) return NULL;
    const int was = force_portable;
    force_portable = flag;
    return PyBool_FromLong(was);
}

static PyMethodDef methods[] = {
    {"lstm_layer", lstm_layer, METH_VARARGS, "Every step of a bidirectional LSTM layer."},
    {"lstm_row", lstm_row, METH_VARARGS, "lstm_layer for one sentence, in its own layout."},
    {"lattice_passes", lattice_passes, METH_VARARGS, "A CRF's forward-backward recursions."},
    {"lattice_row", lattice_row, METH_VARARGS, "A CRF's lattice of one row, step for step."},
    {"span_row", span_row, METH_VARARGS, "Span probabilities of one lattice row."},
    {"tanh_f32", tanh_f32, METH_VARARGS, "float32 tanh in place (the kernels' own)."},
    {"uses_fma", uses_fma, METH_NOARGS, "Whether the loaded clone fuses multiply-adds."},
    {"uses_f16c", uses_f16c, METH_NOARGS, "Whether halves are widened by F16C."},
    {"portable_halves", portable_halves, METH_VARARGS, "Widen halves bit by bit (tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
