package streams

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/charter-ledger/charter/internal/chaindata"
)

// SinkFactory builds a sink from a stream's sink settings. It checks
// them and returns an error naming the bad one; it should not wait on
// the network (a sink connects lazily or in the background), as Create
// calls it.
type SinkFactory func(cfg json.RawMessage) (chaindata.Sink, error)

var sinkKinds = struct {
	sync.RWMutex
	m map[string]SinkFactory
}{m: map[string]SinkFactory{}}

// RegisterSink makes kind available to stream definitions. Call it at
// start-up, before NewManager loads streams of that kind; registering a
// kind twice replaces the factory. The "webhook" kind is registered by
// this package.
func RegisterSink(kind string, factory SinkFactory) {
	if kind == "" || factory == nil {
		panic("streams: RegisterSink with an empty kind or nil factory")
	}
	sinkKinds.Lock()
	defer sinkKinds.Unlock()
	sinkKinds.m[kind] = factory
}

// SinkKinds lists the registered kinds, sorted.
func SinkKinds() []string {
	sinkKinds.RLock()
	defer sinkKinds.RUnlock()
	out := make([]string, 0, len(sinkKinds.m))
	for k := range sinkKinds.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func newSink(c SinkConfig) (chaindata.Sink, error) {
	sinkKinds.RLock()
	f, ok := sinkKinds.m[c.Kind]
	sinkKinds.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: sink.kind %q (registered: %v)", ErrSinkKind, c.Kind, SinkKinds())
	}
	s, err := f(c.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: sink.config: %v", ErrBadInput, err)
	}
	return s, nil
}
