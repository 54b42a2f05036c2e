// Package events carries what the chain publishes downstream: committed
// blocks with their receipts and logs. Publishers never wait for
// subscribers to act; subscribers that fall behind lose their subscription
// (the feed is bounded by each subscriber's channel).
package events

import (
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
)

// ChainEvent is sent once per committed block, in height order.
type ChainEvent struct {
	Block    *types.Block
	Receipts types.Receipts // with derived fields (block hash, log indexes)
	Logs     []*types.Log
}

// Bus fans chain events out to subscribers.
type Bus struct{ chain event.Feed }

// PublishChain sends a committed block to every subscriber. It blocks until
// each subscriber's channel has taken it: subscribers must read promptly
// (buffer their channel) and never call back into the publisher.
func (b *Bus) PublishChain(ev ChainEvent) { b.chain.Send(ev) }

// SubscribeChain subscribes ch to committed blocks.
func (b *Bus) SubscribeChain(ch chan<- ChainEvent) event.Subscription { return b.chain.Subscribe(ch) }
