/*
 * The latency histogram of the bench's independent load generators (libmodbus-load.c, snap7-load.cpp):
 * 1 µs buckets below 10 ms, 100 µs buckets from 10 ms to 10 s (the last one holds anything slower).
 * Header-only, C and C++.
 */
#ifndef EDGESHIELD_LOAD_HISTOGRAM_H
#define EDGESHIELD_LOAD_HISTOGRAM_H

#include <stdint.h>

#define FINE_US 10000
#define COARSE_US 100
#define BUCKETS (FINE_US + (10000000 - FINE_US) / COARSE_US)

/* The bucket of a latency in microseconds. */
static inline int64_t latency_bucket(int64_t us)
{
    int64_t bucket = us < FINE_US ? us : FINE_US + (us - FINE_US) / COARSE_US;
    return bucket < BUCKETS ? bucket : BUCKETS - 1;
}

/* The lowest latency a bucket holds, in microseconds. */
static inline int bucket_us(int bucket)
{
    return bucket < FINE_US ? bucket : FINE_US + (bucket - FINE_US) * COARSE_US;
}

/* The p-quantile (0..1) of total answered requests in hist, in microseconds. */
static inline int percentile(const uint64_t *hist, uint64_t total, double p)
{
    if (total == 0) {
        return 0;
    }
    uint64_t rank = (uint64_t) (p * (double) total);
    if (rank >= total) {
        rank = total - 1;
    }
    uint64_t seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
        seen += hist[i];
        if (seen > rank) {
            return bucket_us(i);
        }
    }
    return bucket_us(BUCKETS - 1);
}

/* The highest non-empty bucket's latency, in microseconds (0 when empty). */
static inline int max_us(const uint64_t *hist)
{
    for (int b = BUCKETS - 1; b >= 0; b--) {
        if (hist[b]) {
            return bucket_us(b);
        }
    }
    return 0;
}

#endif
