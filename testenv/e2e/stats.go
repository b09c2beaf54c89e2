package e2e

import (
	"fmt"
	"slices"
	"time"
)

// Stats are the median, minimum and maximum of timings (d not empty), for
// the benchmarks' tables.
func Stats(d []time.Duration) (med, lo, hi time.Duration) {
	d = slices.Sorted(slices.Values(d))
	med = d[len(d)/2]
	if len(d)%2 == 0 {
		med = (d[len(d)/2-1] + d[len(d)/2]) / 2
	}
	return med, d[0], d[len(d)-1]
}

// Ms prints a timing as the benchmarks' tables do.
func Ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000)
}
