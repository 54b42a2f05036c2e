package streams

import "github.com/prometheus/client_golang/prometheus"

var (
	lagDesc = prometheus.NewDesc("charter_stream_lag_blocks",
		"Final head minus the block of the stream's cursor.", []string{"stream"}, nil)
	deliveredDesc = prometheus.NewDesc("charter_stream_delivered_total",
		"Events the stream's sink accepted since the node started.", []string{"stream"}, nil)
	failuresDesc = prometheus.NewDesc("charter_stream_failures_total",
		"Deliveries the stream's sink refused since the node started.", []string{"stream"}, nil)
	dlqDesc = prometheus.NewDesc("charter_stream_dlq_events",
		"Events in the stream's dead-letter queue.", []string{"stream"}, nil)
	dlqDroppedDesc = prometheus.NewDesc("charter_stream_dlq_dropped_total",
		"Events dropped from the stream's full dead-letter queue.", []string{"stream"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lagDesc, deliveredDesc, failuresDesc, dlqDesc, dlqDroppedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector, from Stats.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	for _, s := range m.Stats() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(s.Lag), s.Name)
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(s.Delivered), s.Name)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(s.Failures), s.Name)
		ch <- prometheus.MustNewConstMetric(dlqDesc, prometheus.GaugeValue, float64(s.DLQEvents), s.Name)
		ch <- prometheus.MustNewConstMetric(dlqDroppedDesc, prometheus.CounterValue, float64(s.DLQDropped), s.Name)
	}
}

var _ prometheus.Collector = (*Manager)(nil)
