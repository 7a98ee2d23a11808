/* Host-CPU kernels of the Gemmini baseline (Kim, Hooper et al. 2023, section 3.4.1): the non-matmul operations of a
 * BERT encoder that run on the Rocket core in single-precision float, plus the (de)quantization around every matmul.
 *
 * Faithful equivalents, not Gemmini's own code: Gemmini's software (ucb-bar/gemmini-rocc-tests, include/gemmini.h)
 * has CPU versions only of the *integer* I-BERT kernels (matmul_cpu with act = SOFTMAX / LAYERNORM / IGELU), which
 * is what the co-designed accelerator runs in hardware; the baseline's float kernels are not published. These follow
 * the reference semantics of PyTorch / ONNX Runtime's CPU kernels (see README.md): softmax subtracts the row max and
 * scales by the reciprocal of the sum, LayerNorm is two-pass (mean, then variance), GELU is the exact erf form that
 * BERT uses, dequantize is one multiply per int8, requantize is a round-to-nearest-even and saturate to int8.
 *
 * Each kernel is bracketed by calls to region_begin() / region_end() so that an instruction trace can isolate it
 * (benchmarks/host_kernels/measure.py). Built with the flags of gemmini-rocc-tests' Makefile: -O2 -march=rv64gc.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void region_begin(void) { __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void region_end(void) { __asm__ volatile("" ::: "memory"); }

__attribute__((noinline)) void softmax_rows(const float *x, float *y, int rows, int n) {
    for (int r = 0; r < rows; r++, x += n, y += n) {
        float m = x[0];
        for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
        float s = 0.0f;
        for (int i = 0; i < n; i++) {
            float e = expf(x[i] - m);
            y[i] = e;
            s += e;
        }
        float inv = 1.0f / s;
        for (int i = 0; i < n; i++) y[i] *= inv;
    }
}

__attribute__((noinline)) void layernorm_rows(const float *x, const float *g, const float *b, float *y, int rows,
                                              int n, float eps) {
    for (int r = 0; r < rows; r++, x += n, y += n) {
        float s = 0.0f;
        for (int i = 0; i < n; i++) s += x[i];
        float mean = s / (float)n;
        float v = 0.0f;
        for (int i = 0; i < n; i++) {
            float d = x[i] - mean;
            v += d * d;
        }
        float rstd = 1.0f / sqrtf(v / (float)n + eps);
        for (int i = 0; i < n; i++) y[i] = (x[i] - mean) * rstd * g[i] + b[i];
    }
}

__attribute__((noinline)) void gelu_erf(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

__attribute__((noinline)) void gelu_tanh(const float *x, float *y, int n) {
    for (int i = 0; i < n; i++) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    }
}

__attribute__((noinline)) void resadd(const float *a, const float *b, float *y, int n) {
    for (int i = 0; i < n; i++) y[i] = a[i] + b[i];
}

__attribute__((noinline)) void dequantize(const int8_t *q, float *y, int n, float scale) {
    for (int i = 0; i < n; i++) y[i] = (float)q[i] * scale;
}

__attribute__((noinline)) void requantize(const float *x, int8_t *q, int n, float inv_scale) {
    for (int i = 0; i < n; i++) {
        long v = lrintf(x[i] * inv_scale);
        q[i] = (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
    }
}

/* deterministic inputs: an approximately standard normal value (sum of 4 uniforms, centred and scaled) */
static uint32_t state = 12345u;
static float uniform(void) {
    state = state * 1664525u + 1013904223u;
    return (float)(state >> 8) / 16777216.0f;
}
static float normal(void) { return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f; }

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s softmax|layernorm|gelu|gelu_tanh|resadd|dequantize|requantize ROWS N\n", argv[0]);
        return 2;
    }
    const char *k = argv[1];
    int rows = atoi(argv[2]), n = atoi(argv[3]);
    size_t total = (size_t)rows * (size_t)n;
    float *x = malloc(total * sizeof(float) + 64), *x2 = malloc(total * sizeof(float) + 64);
    float *y = malloc(total * sizeof(float) + 64), *g = malloc((size_t)n * sizeof(float) + 64);
    float *b = malloc((size_t)n * sizeof(float) + 64);
    int8_t *q = malloc(total + 64);
    /* attention logits of a trained BERT span a few units: N(0, 1) * 3; GELU / residual inputs ~ N(0, 1) */
    for (size_t i = 0; i < total; i++) {
        x[i] = normal() * (strcmp(k, "softmax") == 0 ? 3.0f : 1.0f);
        x2[i] = normal();
        q[i] = (int8_t)(lrintf(normal() * 32.0f) & 0xff);
    }
    for (int i = 0; i < n; i++) {
        g[i] = 1.0f + 0.1f * normal();
        b[i] = 0.1f * normal();
    }
    static const char *const names[] = {"softmax", "layernorm", "gelu", "gelu_tanh", "resadd", "dequantize",
                                        "requantize"};
    int kind = -1;
    for (int i = 0; i < 7; i++)
        if (strcmp(k, names[i]) == 0) kind = i;
    if (kind < 0) {
        fprintf(stderr, "unknown kernel %s\n", k);
        return 2;
    }
    region_begin(); /* the region holds the dispatch below (a few instructions) and the kernel call */
    switch (kind) {
    case 0: softmax_rows(x, y, rows, n); break;
    case 1: layernorm_rows(x, g, b, y, rows, n, 1e-12f); break;
    case 2: gelu_erf(x, y, (int)total); break;
    case 3: gelu_tanh(x, y, (int)total); break;
    case 4: resadd(x, x2, y, (int)total); break;
    case 5: dequantize(q, y, (int)total, 0.05f); break;
    default: requantize(x, q, (int)total, 20.0f); break;
    }
    region_end();
    /* keep the results live */
    double acc = 0.0;
    for (size_t i = 0; i < total; i++) acc += (double)y[i] + (double)q[i];
    printf("%s rows=%d n=%d checksum=%.6g\n", k, rows, n, acc);
    return 0;
}
