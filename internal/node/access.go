package node

import (
	"sync"

	"github.com/ethereum/go-ethereum/common"

	"github.com/charter-ledger/charter/internal/system"
)

// orgStatus answers, for the API's access check of every request,
// whether an organization is an active member at the head. It reads the
// registry once per organization and head: a request costs a map lookup.
// Safe for concurrent use.
type orgStatus struct {
	n *Node

	mu     sync.Mutex
	head   common.Hash
	active map[string]bool
}

// maxOrgStatus bounds the organizations remembered for one head; beyond
// it the map starts over.
const maxOrgStatus = 4096

func (s *orgStatus) Active(org string) bool {
	head := s.n.Ledger().Head().Hash()
	s.mu.Lock()
	if s.head == head {
		if a, ok := s.active[org]; ok {
			s.mu.Unlock()
			return a
		}
	} else {
		s.head, s.active = head, map[string]bool{}
	}
	s.mu.Unlock()

	reg, h, err := s.n.registry()
	if err != nil {
		return false
	}
	o, ok := reg.Org(org)
	active := ok && o.Status == system.StatusActive
	s.mu.Lock()
	if s.head == h.Hash() {
		if len(s.active) >= maxOrgStatus {
			s.active = map[string]bool{}
		}
		s.active[org] = active
	}
	s.mu.Unlock()
	return active
}
