// Package simnet simulates consensus engines (STYLE.md §4, TESTING.md layer
// A): a deterministic, seeded, single-process network (Network), the one
// fake chain of every engine's tests (Chain), the one harness that drives
// any consensus.Core on them with crashes, power loss, partitions and
// Byzantine hooks (Sim), the checkers (Checker), the seed ranges and their
// replay (Seeds, RunSeeds), and a live host for engines on goroutines
// (LiveHost, Bus).
//
// A Network carries opaque []byte messages between node ids in virtual time.
// Every random choice (drop, duplicate, delay) comes from one *rand.Rand
// seeded at New, maps are never iterated unsorted, and nothing reads the
// wall clock or starts a goroutine: the same seed and the same sequence of
// calls give the same sequence of deliveries, so any failure replays from
// its seed.
//
// A Network is not goroutine-safe; one test goroutine drives it.
//
// A typical driver loop interleaves deliveries with clock ticks:
//
//	for tick := uint64(1); tick <= maxTicks; tick++ {
//		for {
//			d, ok := net.NextUntil(tick * tickLen)
//			if !ok {
//				break
//			}
//			nodes[d.To].Step(d.From, d.Payload)
//		}
//		net.AdvanceTo(tick * tickLen)
//		for _, id := range ids { if net.IsUp(id) { nodes[id].Tick() } }
//	}
package simnet

import (
	"container/heap"
	"fmt"
	"math/rand"

	"github.com/charter-ledger/charter/internal/consensus"
)

// Faults are the network's misbehaviour, applied independently to every
// message sent.
type Faults struct {
	// DropRate and DupRate are probabilities per message, in [0, 1].
	// A duplicated message is delivered twice, each copy with its own delay.
	DropRate, DupRate float64
	// MinDelay and MaxDelay bound the delivery delay in virtual ticks;
	// the delay is uniform in [MinDelay, MaxDelay]. Reordering follows
	// from random delays.
	MinDelay, MaxDelay uint64
}

// Validate reports faults that make no sense.
func (f Faults) Validate() error {
	switch {
	case f.DropRate < 0 || f.DropRate > 1:
		return fmt.Errorf("simnet: Faults.DropRate %v not in [0,1]", f.DropRate)
	case f.DupRate < 0 || f.DupRate > 1:
		return fmt.Errorf("simnet: Faults.DupRate %v not in [0,1]", f.DupRate)
	case f.MaxDelay < f.MinDelay:
		return fmt.Errorf("simnet: Faults.MaxDelay %d < MinDelay %d", f.MaxDelay, f.MinDelay)
	}
	return nil
}

// Delivery is one message arriving. At is the virtual time of arrival.
// The receiver owns Payload.
type Delivery struct {
	From, To consensus.NodeID
	Payload  []byte
	At       uint64
}

// Stats count what happened to messages, for test diagnostics.
type Stats struct {
	Sent       uint64 // Send calls
	Dropped    uint64 // lost to DropRate, partitions, crashed nodes or the queue bound
	Duplicated uint64 // extra copies created by DupRate
	Delivered  uint64 // returned by Next / NextUntil
}

// MaxPending bounds the number of messages in flight. A Send beyond it is
// dropped (and counted), as a congested link would.
const MaxPending = 1 << 20

type pending struct {
	d   Delivery
	seq uint64 // ties at equal At are broken by send order
	inc uint64 // incarnation of the receiver when sent
}

type queue []*pending

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if q[i].d.At != q[j].d.At {
		return q[i].d.At < q[j].d.At
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*pending)) }
func (q *queue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return p
}

type nodeState struct {
	up          bool
	incarnation uint64 // bumped at every Crash; messages to an older incarnation are lost
	group       int    // partition group; -1 when the network is whole
}

// Network is the simulated network. Create it with New.
type Network struct {
	rng    *rand.Rand
	ids    []consensus.NodeID // in the order given to New; Broadcast follows it
	nodes  map[consensus.NodeID]*nodeState
	faults Faults
	now    uint64
	seq    uint64
	q      queue
	split  bool
	stats  Stats
	link   LinkFunc
}

// LinkFunc models the links of a network: it returns the delay, in
// virtual time, of a message of size bytes sent now from one node to
// another (latency, the sender's uplink bandwidth and queue, its busy
// CPU). When set, it replaces the uniform delay of Faults; drops and
// duplicates still follow Faults.
type LinkFunc func(from, to consensus.NodeID, size int, now uint64) uint64

// SetLink sets the link model (nil: the uniform delay of Faults).
func (n *Network) SetLink(f LinkFunc) { n.link = f }

// New makes a network of the given nodes, all up and fully connected.
// It panics on invalid faults or a duplicated id (programmer errors).
func New(seed int64, ids []consensus.NodeID, f Faults) *Network {
	if err := f.Validate(); err != nil {
		panic(err)
	}
	n := &Network{
		rng:    rand.New(rand.NewSource(seed)),
		ids:    append([]consensus.NodeID(nil), ids...),
		nodes:  make(map[consensus.NodeID]*nodeState, len(ids)),
		faults: f,
	}
	for _, id := range ids {
		if _, dup := n.nodes[id]; dup {
			panic(fmt.Sprintf("simnet: duplicate node id %s", id))
		}
		n.nodes[id] = &nodeState{up: true, group: -1}
	}
	return n
}

// Rand is the one seeded source for the whole run. Tests draw their own
// random choices (workload, fault schedule) from it so that one seed
// decides everything.
func (n *Network) Rand() *rand.Rand { return n.rng }

// Now is the virtual time in ticks.
func (n *Network) Now() uint64 { return n.now }

// IDs returns the node ids in the order given to New. The caller owns the slice.
func (n *Network) IDs() []consensus.NodeID { return append([]consensus.NodeID(nil), n.ids...) }

// Faults returns the faults in force.
func (n *Network) Faults() Faults { return n.faults }

// SetFaults changes the faults for messages sent from now on (for example
// a quiet network after healing, to check liveness).
func (n *Network) SetFaults(f Faults) {
	if err := f.Validate(); err != nil {
		panic(err)
	}
	n.faults = f
}

// Stats returns the message counters so far.
func (n *Network) Stats() Stats { return n.stats }

// Pending is the number of messages in flight.
func (n *Network) Pending() int { return len(n.q) }

func (n *Network) node(id consensus.NodeID) *nodeState {
	s, ok := n.nodes[id]
	if !ok {
		panic(fmt.Sprintf("simnet: unknown node id %s", id))
	}
	return s
}

// connected reports whether a message may pass from a to b now.
func (n *Network) connected(a, b *nodeState) bool {
	if !a.up || !b.up {
		return false
	}
	return !n.split || a.group == b.group
}

// Send sends payload from one node to another. The message is lost if
// either end is down, the two are in different partition groups (now or
// at delivery time), or the drop roll says so; it may be duplicated; it
// arrives after a uniform random delay. The network copies payload.
// Sending to oneself is allowed and subject to the same faults.
func (n *Network) Send(from, to consensus.NodeID, payload []byte) {
	fs, ts := n.node(from), n.node(to)
	n.stats.Sent++
	// Always draw the same random numbers per Send so that a change in
	// topology does not shift the random stream of later messages.
	dropRoll := n.rng.Float64()
	dupRoll := n.rng.Float64()
	d1, d2 := n.delay(), n.delay()
	if !n.connected(fs, ts) || dropRoll < n.faults.DropRate {
		n.stats.Dropped++
		return
	}
	if n.link != nil {
		d1 = n.link(from, to, len(payload), n.now)
		d2 = d1
	}
	n.enqueue(from, to, payload, d1, ts)
	if dupRoll < n.faults.DupRate {
		n.stats.Duplicated++
		n.enqueue(from, to, payload, d2, ts)
	}
}

func (n *Network) delay() uint64 {
	span := n.faults.MaxDelay - n.faults.MinDelay
	if span == 0 {
		// Still draw, to keep the stream shape independent of faults.
		n.rng.Int63()
		return n.faults.MinDelay
	}
	return n.faults.MinDelay + uint64(n.rng.Int63n(int64(span)+1))
}

func (n *Network) enqueue(from, to consensus.NodeID, payload []byte, delay uint64, ts *nodeState) {
	if len(n.q) >= MaxPending {
		n.stats.Dropped++
		return
	}
	n.seq++
	heap.Push(&n.q, &pending{
		d:   Delivery{From: from, To: to, Payload: append([]byte(nil), payload...), At: n.now + delay},
		seq: n.seq,
		inc: ts.incarnation,
	})
}

// Broadcast sends payload from one node to every other node, in the order
// of the ids given to New.
func (n *Network) Broadcast(from consensus.NodeID, payload []byte) {
	for _, id := range n.ids {
		if id != from {
			n.Send(from, id, payload)
		}
	}
}

// Partition splits the network: only nodes in the same group talk. A node
// named in no group is alone in its own group. Messages in flight between
// groups are lost when they would arrive. Partition replaces any previous
// partition.
func (n *Network) Partition(groups ...[]consensus.NodeID) {
	n.split = true
	for i, id := range n.ids {
		// Unnamed nodes get a group of their own, numbered after the given ones.
		n.nodes[id].group = len(groups) + i
	}
	for g, ids := range groups {
		for _, id := range ids {
			n.node(id).group = g
		}
	}
}

// Heal ends any partition.
func (n *Network) Heal() {
	n.split = false
	for _, id := range n.ids {
		n.nodes[id].group = -1
	}
}

// Crash stops a node: messages to it, including those already in flight,
// and messages it would send are lost until Restart. Messages it sent
// before crashing stay in flight. The caller stops feeding the node's core.
func (n *Network) Crash(id consensus.NodeID) {
	s := n.node(id)
	if s.up {
		s.up = false
		s.incarnation++
	}
}

// Restart brings a crashed node back. It receives only messages sent after
// the restart (its old connections died with it).
func (n *Network) Restart(id consensus.NodeID) { n.node(id).up = true }

// IsUp reports whether the node is running.
func (n *Network) IsUp(id consensus.NodeID) bool { return n.node(id).up }

// Next pops the earliest pending delivery (ties broken by send order),
// advancing Now to its time. Messages that can no longer arrive (receiver
// crashed since, or partitioned from the sender) are discarded on the way.
// It returns false when nothing is pending.
func (n *Network) Next() (Delivery, bool) {
	return n.NextUntil(^uint64(0))
}

// NextUntil is Next restricted to deliveries due at or before t; it returns
// false, without advancing Now, when the earliest pending message is later.
func (n *Network) NextUntil(t uint64) (Delivery, bool) {
	for len(n.q) > 0 {
		p := n.q[0]
		if p.d.At > t {
			return Delivery{}, false
		}
		heap.Pop(&n.q)
		if p.d.At > n.now {
			n.now = p.d.At
		}
		ts := n.nodes[p.d.To]
		fs := n.nodes[p.d.From]
		if ts.incarnation != p.inc || !ts.up || (n.split && fs.group != ts.group) {
			n.stats.Dropped++
			continue
		}
		n.stats.Delivered++
		d := p.d
		d.At = n.now
		return d, true
	}
	return Delivery{}, false
}

// Peek returns the time of the earliest pending message, false if none.
// The message may still be discarded by Next (crash, partition).
func (n *Network) Peek() (uint64, bool) {
	if len(n.q) == 0 {
		return 0, false
	}
	return n.q[0].d.At, true
}

// AdvanceTo moves virtual time forward to t (never back). Messages due
// before t that are still pending are delivered afterwards, at the new Now;
// drivers normally drain them first with NextUntil(t).
func (n *Network) AdvanceTo(t uint64) {
	if t > n.now {
		n.now = t
	}
}
