// Package report holds the figures' formats the reports of bench's commands share.
package report

import (
	"math"
	"strconv"
	"time"
)

// Secs formats a duration as seconds with two decimals: "2.41s".
func Secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + "s" }

// Seconds returns d in seconds, rounded to the millisecond.
func Seconds(d time.Duration) float64 { return math.Round(d.Seconds()*1000) / 1000 }

// Ptr returns a pointer to f, for the reports' optional figures.
func Ptr(f float64) *float64 { return &f }
