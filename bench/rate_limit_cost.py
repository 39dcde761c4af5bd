"""CPU cost of the rate-limit check on the hot path (both buckets on), in microseconds per request.

Run:  .venv/bin/python bench/rate_limit_cost.py
Compare with ~200 µs of meshgate CPU per proxied call (bench/proxy_overhead.py).
"""

from __future__ import annotations

import time

from meshgate.access.ratelimit import Rate, RateLimiter


def main() -> None:
    limiter = RateLimiter(Rate(1e9, 1e9), Rate(1e9, 1e9))
    keys = [(f"org-{n % 50}", f"key-{n % 500}") for n in range(1000)]
    rounds = 500
    started = time.perf_counter()
    for _ in range(rounds):
        for org, key in keys:
            limiter.check(org, key)
    per_check = (time.perf_counter() - started) / (rounds * len(keys))
    print(f"rate-limit check: {per_check * 1e6:.2f} µs per request (key and organization buckets)")


if __name__ == "__main__":
    main()
