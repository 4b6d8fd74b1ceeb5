#include "CEmberSupport.h"
#include "Clones.h"

// Layer normalisation of float32 rows, vectorised (LayerNormKernels.swift keeps the float64
// loops). The row sums may be added in any order: vector lanes, not one running total.

EMBER_CLONES void ember_layer_norm_f32(const float *restrict x, const float *restrict w, const float *restrict b,
                                       float *restrict y, float *restrict mean, float *restrict rstd,
                                       long rows, long width, float eps) {
#pragma clang fp reassociate(on)
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        float s = 0;
        for (long i = 0; i < width; i++) s += xr[i];
        const float mu = s / (float)width;
        float squares = 0;
        for (long i = 0; i < width; i++) {
            float d = xr[i] - mu;
            squares += d * d;
        }
        const float inv = 1.0f / __builtin_sqrtf(squares / (float)width + eps);
        mean[r] = mu;
        rstd[r] = inv;
        if (w && b) {
            for (long i = 0; i < width; i++) yr[i] = (xr[i] - mu) * inv * w[i] + b[i];
        } else if (w) {
            for (long i = 0; i < width; i++) yr[i] = (xr[i] - mu) * inv * w[i];
        } else if (b) {
            for (long i = 0; i < width; i++) yr[i] = (xr[i] - mu) * inv + b[i];
        } else {
            for (long i = 0; i < width; i++) yr[i] = (xr[i] - mu) * inv;
        }
    }
}

// dx = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)) with x̂ = (x - mean)·rstd and ĝ = g·w (w = 1 when
// absent); dw += Σ_rows g·x̂ and db += Σ_rows g (both zeroed by the caller).
EMBER_CLONES void ember_layer_norm_backward_f32(const float *restrict g, const float *restrict x, const float *restrict mean,
                                                const float *restrict rstd, const float *restrict w, float *restrict dx,
                                                float *restrict dw, float *restrict db, long rows, long width) {
#pragma clang fp reassociate(on)
    for (long r = 0; r < rows; r++) {
        const float *gr = g + r * width, *xr = x + r * width;
        float *out = dx + r * width;
        const float mu = mean[r], inv = rstd[r];
        float sum_g = 0, sum_gx = 0;
        if (w) {
            for (long i = 0; i < width; i++) {
                float xhat = (xr[i] - mu) * inv, gh = gr[i] * w[i];
                sum_g += gh;
                sum_gx += gh * xhat;
                dw[i] += gr[i] * xhat;
                db[i] += gr[i];
            }
        } else {
            for (long i = 0; i < width; i++) {
                float xhat = (xr[i] - mu) * inv;
                sum_g += gr[i];
                sum_gx += gr[i] * xhat;
                dw[i] += gr[i] * xhat;
                db[i] += gr[i];
            }
        }
        const float mean_g = sum_g / (float)width, mean_gx = sum_gx / (float)width;
        if (w) {
            for (long i = 0; i < width; i++) out[i] = inv * (gr[i] * w[i] - mean_g - (xr[i] - mu) * inv * mean_gx);
        } else {
            for (long i = 0; i < width; i++) out[i] = inv * (gr[i] - mean_g - (xr[i] - mu) * inv * mean_gx);
        }
    }
}
