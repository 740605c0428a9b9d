package report

import (
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestSecs(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                "0.00s",
		ms(520):          "0.52s",
		ms(2414):         "2.41s",
		ms(2418):         "2.42s",
		90 * time.Second: "90.00s",
		time.Millisecond: "0.00s",
	} {
		if got := Secs(d); got != want {
			t.Errorf("secs(%s) = %q, want %q", d, got, want)
		}
	}
}
