package raft

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
)

// MsgCount counts messages and their bytes (envelope included).
type MsgCount struct {
	Msgs, Bytes uint64
}

// numRaftMsgTypes covers raftpb.MessageType values (MsgForgetLeader is 23).
const numRaftMsgTypes = 32

// Stats are the engine's counters since start, as plain numbers. The node
// exports them as metrics.
type Stats struct {
	LeaderChanges     uint64 // the known leader changed (including to none)
	Proposals         uint64 // blocks proposed by this node as leader
	ProposalsDropped  uint64 // proposals raft refused (leadership lost, limits)
	CommittedEntries  uint64 // raft entries applied (blocks, stale blocks, empty entries)
	CommittedBlocks   uint64 // blocks committed from raft entries
	StaleEntries      uint64 // committed block entries skipped: not on the head
	Snapshots         uint64 // snapshots taken (and log compactions)
	SnapshotsReceived uint64 // snapshots installed from a leader
	ConfChanges       uint64 // raft configuration changes applied (membership)
	BlocksFetched     uint64 // blocks committed from block transfer
	BlocksServed      uint64 // blocks sent to peers catching up
	TxsForwarded      uint64 // transactions forwarded to the leader
	TxsReceived       uint64 // forwarded transactions received
	Dropped           uint64 // messages dropped: bad, oversized, misaddressed, stale, inbox full
	// Sent and Received count messages by MsgType (index = type byte).
	Sent, Received [numMsgTypes]MsgCount
	// RaftSent and RaftReceived count raft messages by raftpb.MessageType.
	RaftSent, RaftReceived [numRaftMsgTypes]uint64
}

// counters is the live, atomically updated form of Stats: the core writes
// it from its goroutine, Stats reads it from any.
type counters struct {
	leaderChanges, proposals, proposalsDropped, committedEntries, committedBlocks,
	staleEntries, snapshots, snapshotsReceived, confChanges, blocksFetched, blocksServed,
	txsForwarded, txsReceived, dropped atomic.Uint64
	sentMsgs, sentBytes, recvMsgs, recvBytes [numMsgTypes]atomic.Uint64
	raftSentN, raftRecvN                     [numRaftMsgTypes]atomic.Uint64
}

func (c *counters) sent(t MsgType, n int) {
	c.sentMsgs[t].Add(1)
	c.sentBytes[t].Add(uint64(n))
}

func (c *counters) recv(t MsgType, n int) {
	c.recvMsgs[t].Add(1)
	c.recvBytes[t].Add(uint64(n))
}

func (c *counters) raftSent(t raftpb.MessageType) {
	if t >= 0 && int(t) < numRaftMsgTypes {
		c.raftSentN[t].Add(1)
	}
}

func (c *counters) raftRecv(t raftpb.MessageType) {
	if t >= 0 && int(t) < numRaftMsgTypes {
		c.raftRecvN[t].Add(1)
	}
}

func (c *counters) snapshot() Stats {
	s := Stats{
		LeaderChanges:     c.leaderChanges.Load(),
		Proposals:         c.proposals.Load(),
		ProposalsDropped:  c.proposalsDropped.Load(),
		CommittedEntries:  c.committedEntries.Load(),
		CommittedBlocks:   c.committedBlocks.Load(),
		StaleEntries:      c.staleEntries.Load(),
		Snapshots:         c.snapshots.Load(),
		SnapshotsReceived: c.snapshotsReceived.Load(),
		ConfChanges:       c.confChanges.Load(),
		BlocksFetched:     c.blocksFetched.Load(),
		BlocksServed:      c.blocksServed.Load(),
		TxsForwarded:      c.txsForwarded.Load(),
		TxsReceived:       c.txsReceived.Load(),
		Dropped:           c.dropped.Load(),
	}
	for i := range s.Sent {
		s.Sent[i] = MsgCount{c.sentMsgs[i].Load(), c.sentBytes[i].Load()}
		s.Received[i] = MsgCount{c.recvMsgs[i].Load(), c.recvBytes[i].Load()}
	}
	for i := range s.RaftSent {
		s.RaftSent[i] = c.raftSentN[i].Load()
		s.RaftReceived[i] = c.raftRecvN[i].Load()
	}
	return s
}

// raftLogger adapts slog to etcd raft's Logger. Raft's chatty Info lines
// (elections, votes) go to Debug; the engine logs leader changes itself.
// Fatal and Panic panic: the core recovers and halts.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) debugf(format string, v ...any) {
	if r.l.Enabled(context.Background(), slog.LevelDebug) {
		r.l.Debug(fmt.Sprintf(format, v...))
	}
}

func (r raftLogger) Debug(v ...any)                   { r.debugf("%s", fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any)   { r.debugf(format, v...) }
func (r raftLogger) Info(v ...any)                    { r.debugf("%s", fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)    { r.debugf(format, v...) }
func (r raftLogger) Warning(v ...any)                 { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) { r.l.Warn(fmt.Sprintf(format, v...)) }
func (r raftLogger) Error(v ...any)                   { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any)   { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                   { panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any)   { panic(fmt.Sprintf(format, v...)) }
func (r raftLogger) Panic(v ...any)                   { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any)   { panic(fmt.Sprintf(format, v...)) }
