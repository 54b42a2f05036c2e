package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The pool reports totals since it started; the counter follows them.
func TestTxPoolDropped(t *testing.T) {
	m := New(prometheus.NewRegistry())
	value := func(reason string) float64 {
		var d dto.Metric
		if err := m.TxPoolEvictions.WithLabelValues(reason).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	m.TxPoolDropped(3, 0)
	m.TxPoolDropped(3, 2)
	m.TxPoolDropped(10, 2)
	if full, expired := value("full"), value("expired"); full != 10 || expired != 2 {
		t.Fatalf("evictions full %v expired %v, want 10 and 2", full, expired)
	}
}
